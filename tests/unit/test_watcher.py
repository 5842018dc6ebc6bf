"""The watcher's state machine (step/recover, no threads) and its thread."""

from __future__ import annotations

import threading
from typing import Any, Iterator, List

import pytest

from kubesync.core.backoff import ExponentialBackoff
from kubesync.errors import Gone, ServerError, Status, TransportError
from kubesync.runtime.watcher import (
    Apply,
    Delete,
    Empty,
    Init,
    InitApply,
    InitDone,
    InitListed,
    InitPage,
    PredicateFilter,
    Watcher,
    WatcherConfig,
    Watching,
    applied_objects,
    predicate_filter,
    recover,
    step,
    watch,
)
from tests.helpers import eventually
from tests.unit.runtime_fakes import (
    FakeApi,
    FakeStream,
    blocking_stream,
    bookmark,
    event,
    obj,
    page,
)

CFG = WatcherConfig(page_size=2)


def test_empty_starts_a_list_with_init() -> None:
    events, state = step(FakeApi(), CFG, Empty())  # type: ignore[arg-type]
    assert events == [Init()]
    assert state == InitPage(None)


def test_pages_are_followed_and_the_list_ends_with_init_done_at_its_rv() -> None:
    api = FakeApi()
    api.pages = [page([obj("a"), obj("b")], cont="tok"), page([obj("c")], rv="42")]
    events, state = step(api, CFG, InitPage(None))  # type: ignore[arg-type]
    assert [e.object.metadata.name for e in events] == ["a", "b"]
    assert state == InitPage("tok")
    events, state = step(api, CFG, state)  # type: ignore[arg-type]
    assert [type(e) for e in events] == [InitApply, InitDone]
    assert events[-1] == InitDone("42")
    assert state == InitListed("42")
    assert [c["continue_"] for c in api.list_calls] == [None, "tok"]
    assert all(c["limit"] == 2 for c in api.list_calls)
    # The first list is served from the API server's watch cache; later pages follow on.
    assert api.list_calls[0]["resource_version"] == "0"
    assert "resource_version" not in api.list_calls[1]


def test_a_relist_asks_for_a_state_no_older_than_the_last_seen() -> None:
    api = FakeApi()
    api.pages = [page([obj("a")], rv="50")]
    _, state = step(api, CFG, Empty("42"))  # type: ignore[arg-type]
    assert state == InitPage(None, "42")
    step(api, CFG, state)  # type: ignore[arg-type]
    assert api.list_calls[0]["resource_version"] == "42"
    assert api.list_calls[0]["resource_version_match"] == "NotOlderThan"


def test_list_from_cache_off_lists_consistently_from_etcd() -> None:
    api = FakeApi()
    api.pages = [page([obj("a")], rv="50")]
    step(api, WatcherConfig(list_from_cache=False), InitPage(None))  # type: ignore[arg-type]
    assert "resource_version" not in api.list_calls[0]


def test_watch_starts_from_the_listed_rv_with_bookmarks_and_a_random_timeout() -> None:
    api = FakeApi()
    api.streams = [[]]
    events, state = step(api, CFG, InitListed("42"))  # type: ignore[arg-type]
    assert events == [] and isinstance(state, Watching)
    call = api.watch_calls[0]
    assert call["resource_version"] == "42"
    assert call["bookmarks"] is True
    assert 300 <= call["timeout_seconds"] <= 600


def _watching(events: List[Any], rv: str = "42") -> Watching:
    s = FakeStream(iter(events))
    return Watching(rv, s, iter(s))


def test_watch_events_map_to_apply_and_delete_and_track_the_rv() -> None:
    state: Any = _watching([event("ADDED", obj("a", "43")), bookmark("50"),
                            event("MODIFIED", obj("a", "51")), event("DELETED", obj("a", "52"))])
    seen = []
    for _ in range(4):
        events, state = step(FakeApi(), CFG, state)  # type: ignore[arg-type]
        seen.append((events, state.resource_version))
    assert isinstance(seen[0][0][0], Apply) and seen[0][1] == "43"
    assert seen[1] == ([], "50")  # a bookmark moves the rv, emits nothing
    assert isinstance(seen[2][0][0], Apply) and seen[2][1] == "51"
    assert isinstance(seen[3][0][0], Delete) and seen[3][1] == "52"


def test_a_watch_the_server_ended_resumes_from_the_last_rv_without_relisting() -> None:
    events, state = step(FakeApi(), CFG, _watching([], rv="77"))  # type: ignore[arg-type]
    assert events == [] and state == InitListed("77")


def _gone() -> Gone:
    return Gone(Status(code=410, reason="Expired", message="too old resource version"))


def test_gone_while_watching_relists_and_closes_the_stream() -> None:
    state = _watching([])
    # The relist must not go back before what the store has seen.
    assert recover(state, _gone()) == Empty("42")
    assert state.stream.closed.is_set()


def test_a_broken_watch_resumes_from_its_rv() -> None:
    assert recover(_watching([], rv="9"), TransportError("reset")) == InitListed("9")


def test_gone_during_paging_restarts_the_list_other_errors_retry_the_page() -> None:
    assert recover(InitPage("tok"), _gone()) == Empty()
    assert recover(InitPage("tok", "7"), _gone()) == Empty("7")
    assert recover(InitPage("tok"), ServerError(Status(code=500))) == InitPage("tok")
    assert recover(InitListed("5"), TransportError("refused")) == InitListed("5")


# -- the thread ---------------------------------------------------------------------------


def _fast_backoff() -> ExponentialBackoff:
    return ExponentialBackoff(0.001, 0.002, jitter=False)


def test_the_thread_hands_over_events_in_order_and_stop_joins_it() -> None:
    before = set(threading.enumerate())
    stop = threading.Event()
    api = FakeApi()
    api.pages = [page([obj("a"), obj("b")], rv="5")]
    api.streams = [[event("ADDED", obj("c", "6"))], blocking_stream(stop)]
    w = Watcher(api, CFG)  # type: ignore[arg-type]
    got = []
    with w:
        for ev in w:
            got.append(ev)
            if isinstance(ev, Apply):
                break
        assert w.running
        assert w.name.startswith("kubesync-watcher-things-")
    assert [type(e).__name__ for e in got] == ["Init", "InitApply", "InitApply", "InitDone",
                                               "Apply"]
    assert not w.running
    assert set(threading.enumerate()) == before
    assert w.next_event(timeout=0.1) is None  # a stopped watcher ends the iteration


def test_errors_are_retried_with_backoff_and_reported_to_on_error() -> None:
    stop = threading.Event()
    api = FakeApi()
    boom = ServerError(Status(code=500, message="boom"))
    api.pages = [boom, boom, page([obj("a")], rv="5")]
    api.streams = [blocking_stream(stop)]
    errors: List[BaseException] = []
    backoff = _fast_backoff()
    w = Watcher(api, CFG, backoff=backoff, on_error=errors.append)  # type: ignore[arg-type]
    with w:
        evs = [w.next_event(timeout=5) for _ in range(3)]
    assert [type(e).__name__ for e in evs] == ["Init", "InitApply", "InitDone"]
    assert errors == [boom, boom]
    assert backoff.failures == 2
    assert len(api.list_calls) == 3


def test_gone_relists_and_the_relist_is_framed_by_init_and_init_done() -> None:
    stop = threading.Event()
    api = FakeApi()
    api.pages = [page([obj("a")], rv="5"), page([obj("b")], rv="9")]
    api.streams = [[_gone()], blocking_stream(stop)]
    w = Watcher(api, CFG)  # type: ignore[arg-type]
    with w:
        evs = [w.next_event(timeout=5) for _ in range(6)]
    names = [type(e).__name__ for e in evs]
    assert names == ["Init", "InitApply", "InitDone", "Init", "InitApply", "InitDone"]
    assert evs[4].object.metadata.name == "b"  # type: ignore[union-attr]


def test_a_consumer_that_stops_reading_bounds_what_the_thread_pulls() -> None:
    pulled = []

    def endless() -> Iterator[Any]:
        i = 0
        while True:
            i += 1
            pulled.append(i)
            yield event("MODIFIED", obj("a", str(100 + i)))

    api = FakeApi()
    api.pages = [page([], rv="5")]
    api.streams = [lambda: FakeStream(endless())]
    w = Watcher(api, CFG, queue_size=8)  # type: ignore[arg-type]
    w.start()
    # Wait (bounded) until the queue is full and the thread is parked on it.
    eventually(w._queue.full, timeout=10, what="the queue full")
    # The queue's 8, one event in the thread's hand, one being pulled: no more.
    assert len(pulled) <= 8 + 2
    w.stop()
    assert not w.running


def test_the_sink_form_calls_the_sink_from_the_thread() -> None:
    stop = threading.Event()
    api = FakeApi()
    api.pages = [page([obj("a")], rv="5")]
    api.streams = [blocking_stream(stop)]
    got: List[Any] = []
    done = threading.Event()

    def sink(ev: Any) -> None:
        got.append((ev, threading.current_thread().name))
        if isinstance(ev, InitDone):
            done.set()

    w = Watcher(api, CFG, sink=sink)  # type: ignore[arg-type]
    w.start()
    assert done.wait(5)
    w.stop()
    assert all(name == w.name for _, name in got)
    with pytest.raises(Exception, match="sink"):
        next(iter(w))


def test_a_sink_that_fails_on_an_event_gets_it_again_from_a_relist() -> None:
    # A store that failed to take an event lacks it: logging and going on would leave it
    # stale for good (a forked child whose models could not load dropped every event).
    stop = threading.Event()
    api = FakeApi()
    api.pages = [page([obj("a")], rv="5"), page([obj("a"), obj("b", "6")], rv="6")]
    api.streams = [[event("ADDED", obj("b", "6"))], blocking_stream(stop)]
    got: List[Any] = []
    errors: List[BaseException] = []
    failed_once = threading.Event()
    relisted = threading.Event()

    def sink(ev: Any) -> None:
        if isinstance(ev, Apply) and not failed_once.is_set():
            failed_once.set()
            raise RuntimeError("cannot store it")
        got.append(ev)
        if isinstance(ev, InitDone) and failed_once.is_set():
            relisted.set()

    w = Watcher(api, CFG, sink=sink, on_error=errors.append,  # type: ignore[arg-type]
                backoff=ExponentialBackoff(0.001, 0.002, jitter=False))
    w.start()
    try:
        assert relisted.wait(10)
    finally:
        stop.set()
        w.stop()
    second = got[got.index(InitDone("5")) + 1:]
    assert [type(e) for e in second] == [Init, InitApply, InitApply, InitDone]
    assert [e.object.metadata.name for e in second if isinstance(e, InitApply)] == ["a", "b"]
    assert [str(e) for e in errors] == ["cannot store it"]
    assert len(api.list_calls) == 2


# -- helpers ------------------------------------------------------------------------------


def test_applied_objects_and_predicate_filter_skip_unchanged_predicate() -> None:
    a1, a2, a3 = obj("a", "1", 1), obj("a", "2", 1), obj("a", "3", 2)
    evs: List[Any] = [Init(), InitApply(a1), InitDone("1"), Apply(a2), Apply(a3),
                      Delete(a3), Apply(obj("a", "4", 2))]
    out = list(applied_objects(predicate_filter(iter(evs), lambda o: o.value)))
    assert [o.metadata.resource_version for o in out] == ["1", "3", "4"]


def test_the_predicate_filter_keys_by_uid_so_a_recreated_object_counts_as_new() -> None:
    old, new = obj("a", "1", 1), obj("a", "9", 1)
    new.metadata.uid = "uid-a-again"
    evs: List[Any] = [Init(), InitApply(old), InitDone("1"), Init(), InitApply(new),
                      InitDone("9")]
    out = list(applied_objects(predicate_filter(iter(evs), lambda o: o.value)))
    assert [o.metadata.uid for o in out] == ["uid-a", "uid-a-again"]


def test_a_relist_prunes_the_predicate_memory_of_objects_it_did_not_list() -> None:
    changed = PredicateFilter(lambda o: o.value)
    for ev in [Init(), InitApply(obj("a", "1", 1)), InitApply(obj("b", "1", 1)),
               InitDone("1")]:
        assert changed(ev)
    assert len(changed) == 2
    for ev in [Init(), InitApply(obj("b", "2", 1)), InitDone("2")]:
        changed(ev)
    assert len(changed) == 1
    # "a" came back unchanged: after the prune it counts as new again.
    assert changed(Apply(obj("a", "3", 1)))
    assert not changed(Apply(obj("b", "3", 1)))


def test_watcher_takes_one_config_and_keywords_override_its_fields() -> None:
    cfg = WatcherConfig(label_selector="app=x", page_size=7, metadata_only=True)
    w = watch(FakeApi(), cfg, field_selector="a=b")  # type: ignore[arg-type]
    assert w.config == WatcherConfig(label_selector="app=x", field_selector="a=b",
                                     page_size=7, metadata_only=True)
    assert watch(FakeApi()).config == WatcherConfig()  # type: ignore[arg-type]


def test_watcher_config_is_keyword_only_and_keeps_its_old_spellings_deprecated() -> None:
    with pytest.warns(DeprecationWarning, match="keyword"):
        old = WatcherConfig("app=x", None, 7)  # type: ignore[misc]
    assert old == WatcherConfig(label_selector="app=x", page_size=7)
    with pytest.warns(DeprecationWarning, match="timeout_seconds"):
        renamed = WatcherConfig(watch_timeout=30)
    assert renamed == WatcherConfig(timeout_seconds=30)
    with pytest.warns(DeprecationWarning):
        assert renamed.watch_timeout == 30


def test_watcher_threads_get_names_no_other_thread_has() -> None:
    first, second = Watcher(FakeApi()), Watcher(FakeApi())  # type: ignore[arg-type]
    assert first.name != second.name
    assert first.name.startswith("kubesync-watcher-things-")


def test_the_watcher_backs_off_through_its_clock() -> None:
    from kubesync.core.clock import FakeClock
    from kubesync.errors import ServerError, Status

    clock = FakeClock()
    api = FakeApi()
    api.pages = [ServerError(Status(code=500, message="boom")), page([obj("a")], rv="3")]
    stop = threading.Event()
    api.streams = [blocking_stream(stop)]
    w = Watcher(api, CFG, clock=clock,  # type: ignore[arg-type]
                backoff=ExponentialBackoff(1.0, 1.0, jitter=False, clock=clock))
    try:
        w.start()
        assert clock.wait_for_sleeps(1), "the watcher never waited after the error"
        assert len(api.list_calls) == 1  # it waits for the clock, not real time
        clock.advance(1.0)
        assert isinstance(w.next_event(timeout=10), Init)
        assert isinstance(w.next_event(timeout=10), InitApply)
    finally:
        stop.set()
        w.stop()
