"""The controller's production features over a fake Api: terminal errors, reconcile
deadlines, debounce, priorities of list keys, metadata-only relations, bounded predicate
memory. Timing runs on a fake clock."""

from __future__ import annotations

import threading
from typing import Any, Iterator, List, Optional

import pytest

from kubesync.core.clock import FakeClock
from kubesync.errors import Gone, Status
from kubesync.runtime.controller import Action, Controller, ObjectRef
from kubesync.runtime.queue import PRIORITY_NORMAL
from kubesync.runtime.reconcile import (
    Deadline,
    ReconcileTimeout,
    TerminalError,
    reconcile_deadline,
)
from tests.helpers import eventually
from tests.unit.runtime_fakes import FakeApi, FakeStream, Obj, blocking_stream, event, obj, page

REF_A = ObjectRef("a", "ns")


def _idle(c: Controller[Any]) -> bool:
    return c.queue.processing == 0 and len(c.queue) == 0


def gated_stream(gate: threading.Event, events: List[Any], sent: threading.Event,
                 stop: threading.Event) -> Any:
    """A watch that yields ``events`` once ``gate`` opens, sets ``sent``, then idles."""

    def make() -> FakeStream:
        holder: List[FakeStream] = []

        def gen() -> Iterator[Any]:
            gate.wait(10)
            yield from events
            sent.set()
            while not stop.is_set() and not holder[0].closed.is_set():
                holder[0].closed.wait(0.05)

        s = FakeStream(gen())
        holder.append(s)
        return s

    return make


def test_a_terminal_error_is_counted_forgotten_and_not_retried_until_the_object_changes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    gate, sent, stop = threading.Event(), threading.Event(), threading.Event()
    api = FakeApi()
    api.pages = [page([obj("a", "1", value="bad")], rv="5")]
    api.streams = [gated_stream(gate, [event("MODIFIED", obj("a", "6", value="good"))],
                                sent, stop)]
    values: List[Any] = []
    policy_calls: List[BaseException] = []

    def reconcile(o: Obj, ctx: Any) -> Action:
        values.append(o.value)
        if o.value == "bad":
            raise TerminalError("spec.value 'bad' can never work")
        return Action.await_change()

    def policy(o: Obj, error: BaseException, ctx: Any) -> Action:
        policy_calls.append(error)
        return Action.retry_with_backoff()

    c = Controller(api, clock=clock)  # type: ignore[arg-type]
    with caplog.at_level("ERROR", logger="kubesync.runtime.controller"):
        c.start(reconcile, policy)  # type: ignore[arg-type]
        try:
            eventually(lambda: c.metrics()["terminal_errors"] == 1 and _idle(c))
            # Nothing is scheduled: no backoff counted, no delayed retry, even far past the
            # longest backoff (1000 s).
            assert c.queue.num_requeues(REF_A) == 0
            assert c.queue.delayed == 0
            clock.advance(2000.0)
            assert len(c.queue) == 0 and values == ["bad"]
            # A change brings it back.
            gate.set()
            eventually(lambda: values == ["bad", "good"])
        finally:
            stop.set()
            c.stop(timeout=10)
    assert policy_calls == [], "a terminal error does not go to the error policy"
    m = c.metrics()
    assert (m["reconciles"], m["errors"], m["terminal_errors"]) == (2, 1, 1)
    assert any("can never work" in r.getMessage() and "a" in r.getMessage()
               for r in caplog.records if r.levelname == "ERROR"), caplog.text


def test_a_terminal_error_cancels_a_requeue_an_earlier_run_asked_for() -> None:
    clock = FakeClock()
    gate, sent, stop = threading.Event(), threading.Event(), threading.Event()
    api = FakeApi()
    api.pages = [page([obj("a", "1", value="ok")], rv="5")]
    api.streams = [gated_stream(gate, [event("MODIFIED", obj("a", "6", value="bad"))],
                                sent, stop)]
    values: List[Any] = []

    def reconcile(o: Obj, ctx: Any) -> Action:
        values.append(o.value)
        if o.value == "bad":
            raise TerminalError("bad")
        return Action.requeue(60.0)

    c = Controller(api, clock=clock)  # type: ignore[arg-type]
    c.start(reconcile)  # type: ignore[arg-type]
    try:
        eventually(lambda: values == ["ok"] and c.queue.delayed == 1 and _idle(c))
        gate.set()
        eventually(lambda: values == ["ok", "bad"] and c.metrics()["terminal_errors"] == 1
                   and _idle(c))
        assert c.queue.delayed == 0, "the requeue asked for before is cancelled"
        clock.advance(120.0)
        assert len(c.queue) == 0
    finally:
        stop.set()
        c.stop(timeout=10)
    assert values == ["ok", "bad"]


def test_a_reconcile_past_its_deadline_is_logged_counted_and_retried_with_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    stop, overran, release = threading.Event(), threading.Event(), threading.Event()
    api = FakeApi()
    api.pages = [page([obj("a")], rv="5")]
    api.streams = [blocking_stream(stop)]
    seen: List[Any] = []

    def reconcile(o: Obj, ctx: Any) -> Action:
        deadline = reconcile_deadline()
        assert deadline is not None
        seen.append(deadline.remaining())
        if len(seen) == 1:
            clock.advance(6.0)  # the work takes longer than the 5 s allowed
            seen.append(deadline.expired)
            overran.set()
            release.wait(10)  # a gate the test holds while it reads the metrics
        return Action.await_change()

    c = Controller(api, clock=clock, reconcile_timeout=5.0)  # type: ignore[arg-type]
    with caplog.at_level("WARNING", logger="kubesync.runtime.controller"):
        c.start(reconcile)  # type: ignore[arg-type]
        try:
            assert overran.wait(10)
            assert c.metrics()["overrunning"] == 1, "seen while it still runs"
            assert c.queue.processing == 1, "the key stays taken while its reconcile runs"
            release.set()
            eventually(lambda: c.queue.num_requeues(REF_A) == 1 and c.queue.delayed == 1)
            assert c.metrics()["timeouts"] == 1
            clock.advance(1.0)  # past the first backoff step
            eventually(lambda: len(seen) == 3 and _idle(c))
        finally:
            stop.set()
            c.stop(timeout=10)
    assert seen == [5.0, True, 5.0]
    m = c.metrics()
    assert (m["timeouts"], m["overrunning"], m["reconciles"]) == (1, 0, 2)
    assert c.queue.num_requeues(REF_A) == 0, "the timely second reconcile forgot the backoff"
    assert reconcile_deadline() is None, "no deadline outside a reconcile"
    assert any("past its 5.0 s timeout" in r.getMessage() for r in caplog.records)


def test_a_deadline_check_raises_reconcile_timeout_into_the_error_policy() -> None:
    clock = FakeClock()
    stop = threading.Event()
    api = FakeApi()
    api.pages = [page([obj("a")], rv="5")]
    api.streams = [blocking_stream(stop)]
    errors: List[BaseException] = []

    def reconcile(o: Obj, ctx: Any) -> Action:
        clock.advance(3.0)
        deadline = reconcile_deadline()
        assert deadline is not None
        deadline.check()
        return Action.await_change()

    def policy(o: Obj, error: BaseException, ctx: Any) -> Action:
        errors.append(error)
        return Action.await_change()

    c = Controller(api, clock=clock, reconcile_timeout=2.0)  # type: ignore[arg-type]
    c.start(reconcile, policy)  # type: ignore[arg-type]
    try:
        eventually(lambda: errors and _idle(c))
    finally:
        stop.set()
        c.stop(timeout=10)
    assert isinstance(errors[0], ReconcileTimeout)
    assert "2.0 s timeout" in str(errors[0])
    assert c.metrics()["timeouts"] == 1


def test_deadline_counts_down_on_its_clock() -> None:
    clock = FakeClock()
    d = Deadline(2.0, clock)
    assert (d.remaining(), d.expired) == (2.0, False)
    d.check()
    clock.advance(2.5)
    assert (d.remaining(), d.expired) == (0.0, True)
    with pytest.raises(ReconcileTimeout):
        d.check()


def test_controller_rejects_a_nonpositive_timeout_and_a_negative_debounce() -> None:
    with pytest.raises(ValueError, match="reconcile_timeout"):
        Controller(FakeApi(), reconcile_timeout=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="debounce"):
        Controller(FakeApi(), debounce=-1)  # type: ignore[arg-type]


def test_a_burst_of_changes_to_one_object_is_reconciled_once_after_the_debounce_window() -> None:
    clock = FakeClock()
    gate, sent, stop = threading.Event(), threading.Event(), threading.Event()
    burst = [event("ADDED", obj("a", "6", value=0))] + [
        event("MODIFIED", obj("a", str(7 + i), value=i + 1)) for i in range(4)]
    api = FakeApi()
    api.pages = [page([obj("b")], rv="5")]
    api.streams = [gated_stream(gate, burst, sent, stop)]
    seen: List[Any] = []

    def reconcile(o: Obj, ctx: Any) -> Action:
        seen.append((o.metadata.name, o.value))
        return Action.await_change()

    c = Controller(api, clock=clock, debounce=10.0)  # type: ignore[arg-type]
    c.start(reconcile)  # type: ignore[arg-type]
    try:
        eventually(lambda: seen == [("b", None)] and _idle(c), what="the list is not debounced")
        gate.set()
        assert sent.wait(10)
        eventually(lambda: (c.store.get("a", "ns") or obj("a", value=-1)).value == 4
                   and c.queue.delayed == 1)
        assert seen == [("b", None)], "nothing before the window has passed"
        clock.advance(10.0)
        eventually(lambda: len(seen) == 2 and _idle(c))
        clock.advance(100.0)
        assert c.queue.delayed == 0 and len(c.queue) == 0
    finally:
        stop.set()
        c.stop(timeout=10)
    assert seen == [("b", None), ("a", 4)]


def test_a_live_change_overtakes_the_keys_of_the_initial_list() -> None:
    gate, sent, stop = threading.Event(), threading.Event(), threading.Event()
    hold = threading.Event()
    api = FakeApi()
    api.pages = [page([obj(f"o{i:02}") for i in range(20)], rv="5")]
    api.streams = [gated_stream(gate, [event("MODIFIED", obj("o19", "6", value="live"))],
                                sent, stop)]
    order: List[str] = []

    def reconcile(o: Obj, ctx: Any) -> Action:
        order.append(o.metadata.name)
        if len(order) == 1:
            gate.set()  # the live change arrives while the first list key is reconciled
            hold.wait(60)
        return Action.await_change()

    c = Controller(api).start(reconcile)  # type: ignore[arg-type]
    try:
        assert sent.wait(10)
        eventually(lambda: (c.store.get("o19", "ns") or obj("x")).value == "live")
        # The store is written before the controller's consumer thread hears of the change:
        # wait until the key is queued at the live changes' priority.
        eventually(lambda: any(getattr(k, "name", None) == "o19" and p == PRIORITY_NORMAL
                               for k, p in list(c.queue._dirty.items())),
                   what="the live change queued")
        hold.set()
        eventually(lambda: len(set(order)) == 20 and _idle(c))
    finally:
        hold.set()
        stop.set()
        c.stop(timeout=10)
    assert order[:2] == ["o00", "o19"]
    assert sorted(order) == [f"o{i:02}" for i in range(20)], "each key once"


def test_owns_and_watches_can_watch_metadata_only() -> None:
    stop = threading.Event()
    main, child, other = FakeApi(), FakeApi(), FakeApi()
    for a in (main, child, other):
        a.pages = [page([], rv="5")]
        a.streams = [blocking_stream(stop)]
    c = (Controller(main)  # type: ignore[arg-type]
         .owns(child, metadata_only=True)  # type: ignore[arg-type]
         .watches(other, lambda o: [], metadata_only=False)  # type: ignore[arg-type]
         .start(lambda o, ctx: None))  # type: ignore[arg-type]
    try:
        eventually(lambda: all(a.watch_calls for a in (main, child, other)))
    finally:
        stop.set()
        c.stop(timeout=10)
    assert child.watch_calls[0]["metadata_only"] is True
    assert other.watch_calls[0]["metadata_only"] is False
    assert main.watch_calls[0]["metadata_only"] is False


def _gen(name: str, generation: int = 1) -> Obj:
    o = obj(name)
    o.metadata.generation = generation
    return o


def test_the_predicates_memory_is_pruned_on_delete_and_on_relist() -> None:
    stop, relist = threading.Event(), threading.Event()

    def deleting() -> Any:
        yield event("DELETED", _gen("b"))
        relist.wait(10)
        raise Gone(Status(code=410, reason="Expired"))

    api = FakeApi()
    api.pages = [page([_gen("a"), _gen("b"), _gen("c")], rv="5"), page([_gen("a")], rv="9")]
    api.streams = [lambda: FakeStream(deleting()), blocking_stream(stop)]
    memory: List[Optional[int]] = []
    c = Controller(api, predicate=lambda o: o.metadata.generation)  # type: ignore[arg-type]
    c.start(lambda o, ctx: None)  # type: ignore[arg-type]
    try:
        eventually(lambda: c.metrics()["predicate_memory"] == 2, what="b forgotten on delete")
        memory.append(c.metrics()["predicate_memory"])
        relist.set()
        eventually(lambda: len(api.list_calls) == 2 and c.metrics()["predicate_memory"] == 1,
                   what="c forgotten on the relist that no longer lists it")
    finally:
        stop.set()
        c.stop(timeout=10)
    assert memory == [2]


def test_prometheus_exposes_terminal_errors_timeouts_and_predicate_memory() -> None:
    import prometheus_client  # the 'prometheus' extra; the test extra includes it

    from kubesync.runtime.metrics import register_prometheus

    stop = threading.Event()
    api = FakeApi()
    api.pages = [page([_gen("a")], rv="5")]
    api.streams = [blocking_stream(stop)]

    def reconcile(o: Obj, ctx: Any) -> Action:
        raise TerminalError("never")

    registry = prometheus_client.CollectorRegistry()
    c = Controller(api, predicate=lambda o: o.metadata.generation)  # type: ignore[arg-type]
    register_prometheus(c, registry, name="things")
    c.start(reconcile)  # type: ignore[arg-type]
    try:
        eventually(lambda: c.metrics()["terminal_errors"] == 1)
    finally:
        stop.set()
        c.stop(timeout=10)
    text = prometheus_client.generate_latest(registry).decode()
    for line in ('kubesync_controller_reconcile_terminal_errors_total{controller="things"} 1.0',
                 'kubesync_controller_reconcile_timeouts_total{controller="things"} 0.0',
                 'kubesync_controller_reconciles_overrunning{controller="things"} 0.0',
                 'kubesync_controller_predicate_memory{controller="things"} 1.0'):
        assert line in text, text
