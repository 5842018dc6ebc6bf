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
