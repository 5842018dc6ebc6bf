"""Shared informers: one watcher and store, fanned out; late joiners; slow consumers;
reference-counted stop; one per query per Client."""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator, List, Tuple

from kubesync import Api
from kubesync.models.core_v1 import ConfigMap
from kubesync.runtime.informer import SharedInformer, Subscription, shared_informers
from kubesync.runtime.watcher import Apply, Delete, Init, InitApply, InitDone, WatcherConfig
from tests.helpers import eventually
from tests.unit.runtime_fakes import FakeApi, FakeStream, blocking_stream, event, obj, page


class Collect:
    def __init__(self) -> None:
        self.events: List[Any] = []
        self.lock = threading.Lock()

    def __call__(self, ev: Any) -> None:
        with self.lock:
            self.events.append(ev)

    def names(self) -> List[Any]:
        with self.lock:
            return [(type(e).__name__, getattr(getattr(e, "object", None), "metadata",
                                              None) and e.object.metadata.name)
                    for e in self.events]


def _informer(api: FakeApi) -> SharedInformer[Any]:
    return SharedInformer(api, WatcherConfig())  # type: ignore[arg-type]


def _threads(prefix: str) -> List[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(prefix)]


def test_consumers_share_one_watch_and_a_late_joiner_gets_the_state_first() -> None:
    api = FakeApi()
    stop = threading.Event()
    api.pages = [page([obj("a"), obj("b")], rv="5")]
    api.streams = [blocking_stream(stop)]
    inf = _informer(api)
    first, late = Collect(), Collect()
    s1 = inf.subscribe(first)
    try:
        assert inf.store.wait_until_ready(10)
        eventually(lambda: len(first.names()) == 4, timeout=10, what="the first list")
        s2 = inf.subscribe(late)
        eventually(lambda: len(late.names()) == 4, timeout=10, what="the synthetic list")
        assert late.names() == [("Init", None), ("InitApply", "a"), ("InitApply", "b"),
                                ("InitDone", None)]
        assert len(api.list_calls) == 1 and len(api.watch_calls) == 1
        s2.stop()
    finally:
        stop.set()
        s1.stop()


def test_the_last_consumer_to_leave_stops_and_joins_the_watcher() -> None:
    api = FakeApi()
    stop = threading.Event()
    api.pages = [page([obj("a")], rv="5")]
    api.streams = [blocking_stream(stop)]
    inf = _informer(api)
    s1, s2 = inf.subscribe(Collect(), name="kubesync-test-c1"), inf.subscribe(None)
    assert inf.store.wait_until_ready(10)
    s1.stop()
    assert not inf.stopped and _threads(inf.name) == [inf.name]
    assert _threads("kubesync-test-c1") == []  # a leaving consumer's thread is joined
    s2.stop()
    assert inf.stopped and _threads(inf.name) == []
    stop.set()


def test_the_store_is_written_before_a_consumer_hears_of_the_event() -> None:
    api = FakeApi()
    stop = threading.Event()
    api.pages = [page([], rv="5")]
    api.streams = [lambda: FakeStream(iter([event("ADDED", obj("a", "6"))])),
                   blocking_stream(stop)]
    inf = _informer(api)
    seen: List[Any] = []
    sub = inf.subscribe(lambda ev: seen.append((ev, inf.store.get("a", "ns"))))
    try:
        eventually(lambda: any(isinstance(e, Apply) for e, _ in seen), timeout=10,
                   what="the apply")
        (found,) = [o for e, o in seen if isinstance(e, Apply)]
        assert found is not None
    finally:
        stop.set()
        sub.stop()


@contextlib.contextmanager
def slow_and_fast(initial: List[Any], live: List[Any]
                  ) -> Iterator[Tuple[Collect, Collect, Subscription, threading.Event]]:
    """``(slow, fast, slow's subscription, gate)``: two consumers of one informer over
    ``initial``, the slow one (a queue of 4) held in its handler on its first event until
    the gate opens. The ``live`` changes come once both are in and the slow one is held."""
    api = FakeApi()
    stop = threading.Event()
    api.pages = [page(initial, rv="9")]
    go = threading.Event()  # the changes come once both consumers are in
    held = threading.Event()  # ... and the slow one is stuck in its handler

    def changes() -> Iterator[Any]:
        assert go.wait(60) and held.wait(60)
        yield from live

    api.streams = [lambda: FakeStream(changes()), blocking_stream(stop)]
    inf = _informer(api)
    gate = threading.Event()
    slow, fast = Collect(), Collect()

    def blocked(ev: Any) -> None:
        held.set()
        assert gate.wait(60)
        slow(ev)

    s_slow = inf.subscribe(blocked, queue_size=4)
    s_fast = inf.subscribe(fast)
    go.set()
    try:
        yield slow, fast, s_slow, gate
    finally:
        gate.set()
        stop.set()
        s_slow.stop()
        s_fast.stop()


def test_a_slow_consumer_is_resynced_from_the_cache_and_holds_up_no_one() -> None:
    live = [event("MODIFIED", obj(f"o{i % 3}", str(10 + i), value=i)) for i in range(50)]
    with slow_and_fast([obj("o0"), obj("o1"), obj("o2")], live) as (slow, fast, s_slow, gate):
        # The fast consumer gets everything while the slow one is stuck on its first event.
        eventually(lambda: len(fast.names()) == 5 + 50, timeout=60, what="fast consumer")
        assert s_slow.resyncs >= 1
        gate.set()

        def replayed() -> Any:  # what the slow consumer ends up knowing
            with slow.lock:
                return {e.object.metadata.name: e.object.value for e in slow.events
                        if isinstance(e, (InitApply, Apply))}

        # It ends with the current state (each object at its last value), by way of a
        # resync (a second Init) instead of all 50 changes.
        eventually(lambda: replayed() == {"o0": 48, "o1": 49, "o2": 47}, timeout=60,
                   what="the slow consumer to catch up")
        assert any(isinstance(e, Init) for e in slow.events[1:])
        assert len(slow.events) < 5 + 50


def test_live_changes_a_slow_consumer_missed_come_again_as_live_after_its_resync() -> None:
    # A controller takes live changes ahead of its initial list by their kind: folded
    # into a resync they would come as InitApply only, at the list's low priority.
    live = [event("MODIFIED", obj(f"o{i % 3}", str(10 + i), value=i)) for i in range(30)]
    live.append(event("DELETED", obj("o1", "50", value=29)))
    initial = [obj("o0"), obj("o1"), obj("o2"), obj("o3")]
    with slow_and_fast(initial, live) as (slow, fast, s_slow, gate):
        eventually(lambda: len(fast.events) == 6 + 31, timeout=60, what="fast consumer")
        assert s_slow.resyncs >= 1
        gate.set()
        eventually(lambda: any(isinstance(e, Delete) for e in slow.events), timeout=60,
                   what="the slow consumer to hear of the delete")
        with slow.lock:
            events = list(slow.events)
        last_done = max(i for i, e in enumerate(events) if isinstance(e, InitDone))
        after = events[last_done + 1:]
        # Each object changed live comes after the snapshot as live, once more or as its
        # own last events (up to queue_size - 1 trail the resync), with its last state:
        # o0 and o2 as Apply, o1 as its Delete; o3, not changed, does not.
        assert all(isinstance(e, (Apply, Delete)) for e in after)
        last = {e.object.metadata.name: (type(e).__name__, e.object.value) for e in after}
        assert last == {"o0": ("Apply", 27), "o2": ("Apply", 29), "o1": ("Delete", 29)}
        assert isinstance(events[last_done - 1], InitApply)  # after a snapshot of the cache


def test_one_informer_per_query_per_client() -> None:
    class FakeClient:  # Api only keeps it; the factory keys on it
        pass

    client_a, client_b = FakeClient(), FakeClient()
    api = Api(client_a, ConfigMap, "ns")  # type: ignore[arg-type]
    factory = shared_informers(client_a)  # type: ignore[arg-type]
    assert shared_informers(client_a) is factory  # type: ignore[arg-type]
    one = factory.informer(api, WatcherConfig())
    assert factory.informer(Api(client_a, ConfigMap, "ns"),  # type: ignore[arg-type]
                            WatcherConfig(page_size=10)) is one
    assert factory.informer(api, WatcherConfig(label_selector="a=b")) is not one
    assert factory.informer(api, WatcherConfig(metadata_only=True)) is not one
    assert factory.informer(Api(client_a, ConfigMap, "other"),  # type: ignore[arg-type]
                            WatcherConfig()) is not one
    other = shared_informers(client_b).informer(  # type: ignore[arg-type]
        Api(client_b, ConfigMap, "ns"), WatcherConfig())  # type: ignore[arg-type]
    assert other is not one


def test_a_reflector_store_stop_ends_one_reflector_and_the_last_ends_the_watch() -> None:
    from kubesync.runtime.reflector import start_reflector

    api = FakeApi()
    stop = threading.Event()
    api.pages = [page([obj("a")], rv="5")]
    api.streams = [blocking_stream(stop)]
    inf = _informer(api)
    # Two reflectors on one informer, as the factory would give them.
    store = inf.hold_store(inf.subscribe())
    assert inf.hold_store(inf.subscribe()) is store
    assert store.wait_until_ready(10)
    store.stop()
    assert not inf.stopped
    store.stop()
    assert inf.stopped
    stop.set()
    assert callable(start_reflector)
