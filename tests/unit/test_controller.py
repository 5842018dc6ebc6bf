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
    gate, sent, quiet = threading.Event(), threading.Event(), threading.Event()
    updates = [event("MODIFIED", obj("a", str(10 + i), value=i)) for i in range(50)]

    def stream() -> Any:
        def gen() -> Any:
            gate.wait(10)  # the updates come while the first reconcile runs
            yield from updates
            sent.set()  # the watcher asked for more: every update is in store and queue
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
        sent.wait(10)  # hold the key until all 50 updates have arrived (8 workers idle)
        with lock:
            in_flight[o.metadata.name] -= 1
            last_value.append(o.value)
        return Action.await_change()

    c = Controller(api).start(reconcile, workers=8)  # type: ignore[arg-type]
    eventually(lambda: last_value and last_value[-1] == 49)
    quiet.set()
    c.stop(timeout=10)
    assert overlaps == []
    # De-duplicated: the 50 updates that arrived while the key was busy ran it once more,
    # with the latest state.
    assert last_value == [-1, 49]


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


def _generation_obj(name: str, uid: str, rv: str) -> Obj:
    o = obj(name, rv)
    o.metadata.uid = uid
    o.metadata.generation = 1
    return o


def test_an_object_recreated_under_its_name_while_the_watch_was_down_is_reconciled() -> None:
    # The first list has "a" (uid-1); the watch then fails with 410 Gone, and the relist
    # finds a new "a" (uid-2) with the same generation: deleted and created again meanwhile.
    from kubesync.errors import Gone, Status

    stop, first_done = threading.Event(), threading.Event()

    def broken_watch() -> Any:
        first_done.wait(10)  # the first object is reconciled before the watch goes
        raise Gone(Status(code=410, reason="Expired"))
        yield

    api = FakeApi()
    api.pages = [page([_generation_obj("a", "uid-1", "1")], rv="5"),
                 page([_generation_obj("a", "uid-2", "9")], rv="10")]
    api.streams = [lambda: FakeStream(broken_watch()), blocking_stream(stop)]
    uids: List[str] = []

    def reconcile(o: Obj, ctx: Any) -> Action:
        uids.append(str(o.metadata.uid))
        first_done.set()
        return Action.await_change()

    c = Controller(api, predicate=lambda o: o.metadata.generation)  # type: ignore[arg-type]
    c.start(reconcile)  # type: ignore[arg-type]
    try:
        eventually(lambda: "uid-2" in uids, timeout=10, what="the new object reconciled")
    finally:
        stop.set()
        c.stop(timeout=10)
    assert uids == ["uid-1", "uid-2"]


def test_stop_from_inside_a_reconcile_only_signals_and_the_controller_then_stops() -> None:
    before = set(threading.enumerate())
    stop = threading.Event()
    api = _api([obj("a")], blocking_stream(stop))
    errors: List[BaseException] = []
    returned = threading.Event()
    holder: List[Controller[Any]] = []

    def reconcile(o: Obj, ctx: Any) -> Action:
        try:
            holder[0].stop(timeout=30)
        except BaseException as e:  # the defect: RuntimeError('cannot join current thread')
            errors.append(e)
        returned.set()
        return Action.await_change()

    c = Controller(api)  # type: ignore[arg-type]
    holder.append(c)
    c.start(reconcile)  # type: ignore[arg-type]
    # Had stop() waited for this very reconcile to drain, it would block for its whole
    # 30 s timeout: returning within 10 s shows it only signalled.
    assert returned.wait(10), "stop() from a worker blocked"
    assert errors == []
    eventually(lambda: c.stopped, timeout=10, what="the controller stopped")
    eventually(lambda: set(threading.enumerate()) <= before, timeout=10,
               what="every controller thread ended")


def test_two_controllers_on_one_kind_name_their_threads_apart() -> None:
    stop = threading.Event()
    api = _api([], blocking_stream(stop))
    before = {t.ident for t in threading.enumerate()}
    first = Controller(api).start(lambda o, ctx: None)  # type: ignore[arg-type]
    second = Controller(api).start(lambda o, ctx: None)  # type: ignore[arg-type]
    try:
        names = [t.name for t in threading.enumerate() if t.ident not in before]
        assert len(names) == len(set(names)), names
        # A fake Api has no Client, so each controller gets a private informer: its
        # watcher thread, and the controller's consumer thread.
        assert sum(n.startswith("kubesync-informer-") for n in names) == 2
        assert sum(n.startswith("kubesync-controller-") and "worker" not in n
                   for n in names) == 2
    finally:
        stop.set()
        first.stop(timeout=10)
        second.stop(timeout=10)


def test_a_thread_that_outlives_its_join_timeout_is_reported_by_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = threading.Event()
    api = _api([obj("a")], blocking_stream(stop))
    started, release = threading.Event(), threading.Event()

    def reconcile(o: Obj, ctx: Any) -> Action:
        started.set()
        release.wait(10)  # a gate the test holds: the stop below cannot drain it
        return Action.await_change()

    c = Controller(api).start(reconcile)  # type: ignore[arg-type]
    assert started.wait(10)
    try:
        with caplog.at_level("WARNING", logger="kubesync.runtime.controller"):
            c.stop(timeout=0.01)
    finally:
        release.set()
        stop.set()
    assert any(f"{c.name}-worker-0 did not stop" in r.getMessage()
               for r in caplog.records), caplog.text


def test_controller_owns_and_watches_take_a_watcher_config() -> None:
    from kubesync.runtime.watcher import WatcherConfig

    stop = threading.Event()
    main, child, other = (_api([], blocking_stream(stop)) for _ in range(3))
    c = (
        Controller(main, config=WatcherConfig(label_selector="app=x", page_size=9),  # type: ignore[arg-type]
                   field_selector="f=g")
        .owns(child, WatcherConfig(metadata_only=True))  # type: ignore[arg-type]
        .watches(other, lambda o: [], WatcherConfig(page_size=2),  # type: ignore[arg-type]
                 label_selector="tier=db")
        .start(lambda o, ctx: None)  # type: ignore[arg-type]
    )
    try:
        eventually(lambda: all(a.list_calls for a in (main, child, other)))
    finally:
        stop.set()
        c.stop(timeout=10)
    m = main.list_calls[0]
    assert (m["label_selector"], m["field_selector"], m["limit"]) == ("app=x", "f=g", 9)
    assert child.list_calls[0]["label_selector"] is None
    assert other.list_calls[0]["label_selector"] == "tier=db"
    assert other.list_calls[0]["limit"] == 2
