"""Store and StoreWriter: atomic relists, indexes, readiness, thread-safety."""

from __future__ import annotations

import threading
from typing import Any, List

import pytest

from kubesync.errors import UsageError
from kubesync.runtime.reflector import reflect
from kubesync.runtime.store import Store, StoreWriter
from kubesync.runtime.watcher import Apply, Delete, Init, InitApply, InitDone
from tests.unit.runtime_fakes import Obj, obj


def _names(store: Store[Any]) -> List[str]:
    return sorted(o.metadata.name for o in store.list())


def test_the_store_is_ready_only_after_the_first_complete_list() -> None:
    w: StoreWriter[Obj] = StoreWriter()
    w.apply_event(Init())
    w.apply_event(InitApply(obj("a")))
    assert not w.store.is_ready
    assert not w.store.wait_until_ready(timeout=0.01)
    w.apply_event(InitDone("5"))
    assert w.store.is_ready and w.store.wait_until_ready(timeout=0)
    assert _names(w.store) == ["a"]


def test_a_relist_is_swapped_in_at_init_done_and_drops_objects_deleted_meanwhile() -> None:
    w: StoreWriter[Obj] = StoreWriter()
    for ev in (Init(), InitApply(obj("a")), InitApply(obj("b")), InitDone("5")):
        w.apply_event(ev)
    w.apply_event(Init())
    w.apply_event(InitApply(obj("b", "9")))
    w.apply_event(InitApply(obj("c", "9")))
    # Half-way through the relist readers still see the old, complete state.
    assert _names(w.store) == ["a", "b"]
    w.apply_event(InitDone("9"))
    assert _names(w.store) == ["b", "c"]
    b = w.store.get("b", "ns")
    assert b is not None and b.metadata.resource_version == "9"


def test_apply_and_delete_while_watching() -> None:
    w: StoreWriter[Obj] = StoreWriter()
    for ev in (Init(), InitDone("1"), Apply(obj("a", "2")), Apply(obj("a", "3")),
               Apply(obj("z", "4", ns=None))):
        w.apply_event(ev)
    assert len(w.store) == 2
    assert w.store.get("a", "ns").metadata.resource_version == "3"  # type: ignore[union-attr]
    assert w.store.get("z") is not None  # cluster-scoped: no namespace
    w.apply_event(Delete(obj("a", "5")))
    assert w.store.get("a", "ns") is None and len(w.store) == 1


def test_indexes_follow_changes_relists_and_deletes() -> None:
    w: StoreWriter[Obj] = StoreWriter()
    w.store.add_index("value", lambda o: [o.value])
    for ev in (Init(), InitApply(obj("a", value="x")), InitApply(obj("b", value="y")),
               InitDone("1")):
        w.apply_event(ev)
    assert [o.metadata.name for o in w.store.by_index("value", "x")] == ["a"]
    w.apply_event(Apply(obj("b", "2", value="x")))
    assert sorted(o.metadata.name for o in w.store.by_index("value", "x")) == ["a", "b"]
    assert w.store.by_index("value", "y") == []
    w.apply_event(Delete(obj("a", "3", value="x")))
    assert [o.metadata.name for o in w.store.by_index("value", "x")] == ["b"]
    with pytest.raises(UsageError, match="no index named 'nope'"):
        w.store.by_index("nope", "x")


def test_an_index_added_late_covers_existing_objects() -> None:
    w: StoreWriter[Obj] = StoreWriter()
    for ev in (Init(), InitApply(obj("a", value=1)), InitDone("1")):
        w.apply_event(ev)
    w.store.add_index("v", lambda o: [o.value])
    assert [o.metadata.name for o in w.store.by_index("v", 1)] == ["a"]
    with pytest.raises(UsageError, match="exists already"):
        w.store.add_index("v", lambda o: [])


def test_readers_never_see_a_half_built_relist_while_a_writer_relists() -> None:
    w: StoreWriter[Obj] = StoreWriter()
    full = [obj(f"o{i}") for i in range(50)]
    for ev in [Init(), *[InitApply(o) for o in full], InitDone("1")]:
        w.apply_event(ev)
    seen_sizes = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen_sizes.add(len(w.store.list()))

    readers = [threading.Thread(target=read, name=f"reader-{i}") for i in range(3)]
    for t in readers:
        t.start()
    for _ in range(50):
        w.apply_event(Init())
        for o in full:
            w.apply_event(InitApply(o))
        w.apply_event(InitDone("2"))
    stop.set()
    for t in readers:
        t.join(5)
    assert seen_sizes == {50}


def test_reflector_applies_before_passing_the_event_on() -> None:
    w: StoreWriter[Obj] = StoreWriter()
    evs = [Init(), InitApply(obj("a")), InitDone("1"), Apply(obj("b"))]
    sizes = [len(w.store) for _ in reflect(w, iter(evs))]
    assert sizes == [0, 0, 1, 2]


def test_transform_runs_on_the_way_in() -> None:
    def upper(o: Obj) -> Obj:
        o.value = "T"
        return o

    w: StoreWriter[Obj] = StoreWriter(transform=upper)
    for ev in (Init(), InitApply(obj("a")), InitDone("1"), Apply(obj("b"))):
        w.apply_event(ev)
    assert {o.value for o in w.store.list()} == {"T"}


def test_waiting_on_a_store_whose_reflector_stopped_raises_at_once_with_the_last_error(
) -> None:
    from kubesync.errors import Forbidden, Status
    from kubesync.runtime.reflector import start_reflector
    from kubesync.runtime.store import StoreStopped
    from tests.helpers import eventually
    from tests.unit.runtime_fakes import FakeApi

    api = FakeApi()
    api.pages = [Forbidden(Status(code=403, reason="Forbidden", message="no list for you"))]
    store = start_reflector(api)  # type: ignore[arg-type]
    eventually(lambda: store.last_error is not None, timeout=10, what="the first error")
    store.stop()
    outcome: List[BaseException] = []

    def wait() -> None:
        try:
            store.wait_until_ready()
        except BaseException as e:
            outcome.append(e)

    waiter = threading.Thread(target=wait, name="waiter", daemon=True)
    waiter.start()
    waiter.join(10)
    assert not waiter.is_alive(), "wait_until_ready() blocked on a stopped store"
    assert len(outcome) == 1 and isinstance(outcome[0], StoreStopped)
    assert "no list for you" in str(outcome[0])
    assert isinstance(store.last_error, Forbidden)
    with pytest.raises(StoreStopped):
        store.wait_until_ready(timeout=30)


def test_the_store_is_keyed_by_object_ref_and_get_takes_either_form() -> None:
    from kubesync.core.objectref import ObjectRef

    w: StoreWriter[Any] = StoreWriter()
    for ev in [Init(), InitApply(obj("a")), InitApply(obj("c", ns=None)), InitDone("1")]:
        w.apply_event(ev)
    store = w.store
    assert sorted(store.keys(), key=repr) == [ObjectRef("a", "ns"), ObjectRef("c", None)]
    assert ObjectRef("a", "ns") in store
    a = store.get("a", namespace="ns")
    assert a is not None and store.get(ObjectRef("a", "ns")) is a
    assert store.get("c") is not None and store.get(ObjectRef("c")) is store.get("c")


def test_start_reflector_takes_a_watcher_config() -> None:
    from kubesync.runtime.reflector import start_reflector
    from kubesync.runtime.watcher import WatcherConfig
    from tests.unit.runtime_fakes import FakeApi, blocking_stream, page

    stop = threading.Event()
    api = FakeApi()
    api.pages = [page([obj("a")])]
    api.streams = [blocking_stream(stop)]
    store = start_reflector(api, WatcherConfig(label_selector="app=x", page_size=3),  # type: ignore[arg-type]
                            field_selector="f=g")
    try:
        assert store.wait_until_ready(10)
        assert store.last_error is None
        call = api.list_calls[0]
        assert (call["label_selector"], call["field_selector"], call["limit"]) == (
            "app=x", "f=g", 3)
    finally:
        stop.set()
        store.stop()
