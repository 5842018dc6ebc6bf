"""The controller over a fake Api: queueing, workers, actions, errors, shutdown."""

from __future__ import annotations

import threading
from typing import Any, Dict, List

import pytest

from kubesync.runtime.controller import Action, Controller, ObjectRef
from kubesync.runtime.queue import ItemExponentialRateLimiter, WorkQueue
from tests.helpers import eventually
from tests.unit.runtime_fakes import FakeApi, FakeStream, Obj, blocking_stream, event, obj, page


def _api(items: List[Obj], stream: Any) -> FakeApi:
    api = FakeApi()
    api.pages = [page(items, rv="5")]
    api.streams = [stream]
    return api


def test_every_listed_object_is_reconciled_and_stop_joins_every_thread() -> None:
    before = set(threading.enumerate())
    stop = threading.Event()
    api = _api([obj(f"o{i}") for i in range(20)], blocking_stream(stop))
    seen: List[str] = []
    lock = threading.Lock()

    def reconcile(o: Obj, ctx: Any) -> Action:
        with lock:
            seen.append(o.metadata.name)
        return Action.await_change()

    c = Controller(api).start(reconcile, workers=4)  # type: ignore[arg-type]
    eventually(lambda: len(seen) >= 20)
    c.stop(timeout=10)
    assert sorted(seen) == sorted(f"o{i}" for i in range(20))
    assert set(threading.enumerate()) == before
    assert c.metrics()["reconciles"] == 20


def test_a_key_is_never_reconciled_by_two_workers_and_changes_during_it_run_again() -> None:
    gate, quiet = threading.Event(), threading.Event()
    updates = [event("MODIFIED", obj("a", str(10 + i), value=i)) for i in range(50)]

    def stream() -> Any:
        def gen() -> Any:
            gate.wait(10)
            yield from updates
            quiet.wait(30)  # then quiet, until the test ends

        return FakeStream(gen())

    api = _api([obj("a", "5", value=-1)], stream)
    in_flight: Dict[str, int] = {}
    overlaps = []
    last_value: List[Any] = []
    lock = threading.Lock()

    def reconcile(o: Obj, ctx: Any) -> Action:
        with lock:
            in_flight[o.metadata.name] = in_flight.get(o.metadata.name, 0) + 1
            if in_flight[o.metadata.name] > 1:
                overlaps.append(o.metadata.name)
        gate.set()
        threading.Event().wait(0.002)  # hold the key a moment so events pile up
        with lock:
            in_flight[o.metadata.name] -= 1
            last_value.append(o.value)
        return Action.await_change()

    c = Controller(api).start(reconcile, workers=8)  # type: ignore[arg-type]
    eventually(lambda: last_value and last_value[-1] == 49)
    quiet.set()
    c.stop(timeout=10)
    assert overlaps == []
    # De-duplicated: 50 updates arrived while busy, far fewer reconciles ran.
    assert len(last_value) < 51


def test_errors_back_off_per_key_and_success_forgets() -> None:
    stop = threading.Event()
    api = _api([obj("a")], blocking_stream(stop))
    limiter = ItemExponentialRateLimiter(base=0.001, max_delay=0.01)
    q: WorkQueue[ObjectRef] = WorkQueue("t", rate_limiter=limiter)
    calls = []
    policy_calls = []

    def reconcile(o: Obj, ctx: Any) -> Action:
        calls.append(o.metadata.name)
        if len(calls) < 4:
            raise RuntimeError("not yet")
        return Action.await_change()

    def policy(o: Obj, error: BaseException, ctx: Any) -> Action:
        policy_calls.append(str(error))
        assert ctx == "ctx"
        return Action.retry_with_backoff()

    c = Controller(api, queue=q).start(reconcile, policy, "ctx")  # type: ignore[arg-type]
    eventually(lambda: len(calls) >= 4 and c.metrics()["queue_processing"] == 0)
    assert q.num_requeues(ObjectRef("a", "ns")) == 0  # forgotten after the success
    c.stop(timeout=10)
    assert policy_calls == ["not yet"] * 3
    assert c.metrics()["errors"] == 3


def test_requeue_after_reconciles_again() -> None:
    stop = threading.Event()
    api = _api([obj("a")], blocking_stream(stop))
    calls = []

    def reconcile(o: Obj, ctx: Any) -> Action:
        calls.append(1)
        return Action.requeue(0.01)

    c = Controller(api).start(reconcile)  # type: ignore[arg-type]
    eventually(lambda: len(calls) >= 3)
    c.stop(timeout=10)


def test_watches_maps_other_objects_to_our_keys() -> None:
    stop = threading.Event()
    first = threading.Event()
    api = _api([obj("target")], blocking_stream(stop))

    def other_events() -> Any:
        first.wait(10)  # after the first reconcile, so the two adds are not merged
        yield event("ADDED", obj("x", "7"))

    other = _api([], lambda: FakeStream(other_events()))
    other.streams.append(blocking_stream(stop))
    calls = []

    def reconcile(o: Obj, ctx: Any) -> Action:
        calls.append(o.metadata.name)
        first.set()
        return Action.await_change()

    c = (
        Controller(api)
        .watches(  # type: ignore[arg-type]
            other,
            lambda o: [ObjectRef("target", "ns")],  # type: ignore[arg-type]
        )
        .start(reconcile)
    )
    eventually(lambda: len(calls) >= 2)  # once from the list, once from the mapped event
    c.stop(timeout=10)
    assert set(calls) == {"target"}


def test_stop_lets_the_reconcile_in_flight_finish() -> None:
    stop = threading.Event()
    api = _api([obj("a")], blocking_stream(stop))
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def reconcile(o: Obj, ctx: Any) -> Action:
        started.set()
        release.wait(10)
        finished.set()
        return Action.await_change()

    c = Controller(api).start(reconcile)  # type: ignore[arg-type]
    assert started.wait(10)
    stopper = threading.Thread(target=c.stop, kwargs={"timeout": 10}, name="stopper")
    stopper.start()
    release.set()
    stopper.join(10)
    assert finished.is_set() and c.stopped


def test_action_rejects_negative_delays() -> None:
    with pytest.raises(ValueError):
        Action.requeue(-1)


def test_prometheus_collector_exposes_the_metrics_snapshot() -> None:
    import prometheus_client  # the 'prometheus' extra; the test extra includes it

    from kubesync.runtime.metrics import register_prometheus

    stop = threading.Event()
    api = _api([obj("a"), obj("b")], blocking_stream(stop))
    done = threading.Event()

    def reconcile(o: Obj, ctx: Any) -> Action:
        if o.metadata.name == "b":
            done.set()
        return Action.await_change()

    registry = prometheus_client.CollectorRegistry()
    c = Controller(api).start(reconcile)  # type: ignore[arg-type]
    register_prometheus(c, registry, name="things")
    assert done.wait(10)
    eventually(lambda: c.metrics()["reconciles"] == 2)
    c.stop(timeout=10)
    text = prometheus_client.generate_latest(registry).decode()
    assert 'kubesync_controller_reconciles_total{controller="things"} 2.0' in text
    assert 'kubesync_controller_store_objects{controller="things"} 2.0' in text
