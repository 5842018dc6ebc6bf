"""The controller runtime against the real server: workers, relations, errors, restarts,
leader election, finalizers, events."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List

import pytest

from kubesync import Api
from kubesync.core.params import Patch
from kubesync.models.core_v1 import ConfigMap, Secret
from kubesync.models.meta_v1 import ObjectMeta, OwnerReference
from kubesync.runtime.conditions import is_deleted
from kubesync.runtime.controller import Action, Controller, ObjectRef
from kubesync.runtime.finalizer import finalize
from kubesync.runtime.leader import LeaderElector
from kubesync.runtime.queue import ItemExponentialRateLimiter, WorkQueue
from kubesync.runtime.recorder import Recorder
from kubesync.runtime.wait import await_condition
from tests.helpers import eventually

pytestmark = pytest.mark.e2e


def cm(name: str, value: str = "0") -> ConfigMap:
    return ConfigMap(metadata=ObjectMeta(name=name), data={"v": value})


class Recording:
    """Instrumented reconcile: in-flight keys, overlaps, the last value seen per key."""

    def __init__(self, fail: Callable[[ConfigMap], bool] = lambda o: False):
        self.lock = threading.Lock()
        self.in_flight: Dict[str, int] = {}
        self.overlaps: List[str] = []
        self.last: Dict[str, str] = {}
        self.times: Dict[str, List[float]] = {}
        self.fail = fail

    def __call__(self, obj: ConfigMap, ctx: Any) -> Action:
        name = obj.metadata.name
        with self.lock:
            self.in_flight[name] = self.in_flight.get(name, 0) + 1
            if self.in_flight[name] > 1:
                self.overlaps.append(name)
            self.times.setdefault(name, []).append(time.monotonic())
        try:
            if self.fail(obj):
                raise RuntimeError(f"{name} fails")
            with self.lock:
                self.last[name] = (obj.data or {}).get("v", "")
            return Action.await_change()
        finally:
            with self.lock:
                self.in_flight[name] -= 1


def test_8_workers_under_bursts_never_overlap_a_key_and_reconcile_every_last_state(
    cms: Api[ConfigMap],
) -> None:
    before = {t.name for t in threading.enumerate()}
    rec = Recording()
    c = Controller(cms).start(rec, workers=8)
    names = [f"b{i}" for i in range(20)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: cms.create(cm(n)), names))
        for round_ in range(1, 6):
            patch = Patch.merge({"data": {"v": str(round_)}})
            list(pool.map(lambda n, p=patch: cms.patch(n, p), names))
    eventually(lambda: all(rec.last.get(n) == "5" for n in names), what="last states")
    c.stop(timeout=30)
    assert rec.overlaps == []
    assert {t.name for t in threading.enumerate()} == before


def test_a_failing_reconcile_is_retried_with_growing_delays(cms: Api[ConfigMap]) -> None:
    rec = Recording(fail=lambda o: True)
    queue: WorkQueue[ObjectRef] = WorkQueue(
        "retry", rate_limiter=ItemExponentialRateLimiter(base=0.02, max_delay=5.0))
    c = Controller(cms, queue=queue).start(rec)
    cms.create(cm("flaky"))
    eventually(lambda: len(rec.times.get("flaky", [])) >= 5, what="5 tries")
    c.stop(timeout=30)
    t = rec.times["flaky"][:5]
    gaps = [b - a for a, b in zip(t, t[1:])]
    # 20 ms, 40 ms, 80 ms, 160 ms: each wait at least the previous one's base.
    assert gaps[-1] > gaps[0]
    assert all(g >= 0.02 * 2**i * 0.9 for i, g in enumerate(gaps)), gaps


def test_the_controller_carries_on_after_an_apiserver_restart(
    cms: Api[ConfigMap], kube_local_cluster: Any
) -> None:
    rec = Recording()
    c = Controller(cms).start(rec, workers=2)
    cms.create(cm("before", "1"))
    eventually(lambda: rec.last.get("before") == "1")
    kube_local_cluster.restart_apiserver()
    cms.create(cm("after", "2"))
    cms.patch("before", Patch.merge({"data": {"v": "3"}}))
    eventually(lambda: rec.last.get("after") == "2" and rec.last.get("before") == "3",
                what="caught up after the restart")
    c.stop(timeout=30)


def test_owns_reconciles_the_owner_when_its_child_changes(
    kube_client: Any, kube_namespace: str, cms: Api[ConfigMap]
) -> None:
    secrets = Api(kube_client, Secret, namespace=kube_namespace)
    rec = Recording()
    c = Controller(cms).owns(secrets).start(rec)
    owner = cms.create(cm("parent", "p"))
    eventually(lambda: "parent" in rec.last)
    count = len(rec.times["parent"])
    secrets.create(Secret(metadata=ObjectMeta(name="kid", owner_references=[OwnerReference(
        api_version="v1", kind="ConfigMap", name="parent", uid=owner.metadata.uid,
        controller=True)]), string_data={"a": "b"}))
    eventually(lambda: len(rec.times["parent"]) > count, what="owner reconciled")
    c.stop(timeout=30)


def test_two_controllers_on_one_lease_one_leads_and_the_other_takes_over(
    kube_client: Any, kube_namespace: str, cms: Api[ConfigMap]
) -> None:
    timing = {"lease_duration": 3.0, "renew_deadline": 2.0, "retry_period": 0.5}
    recs = [Recording(), Recording()]
    electors = [LeaderElector(kube_client, "ctl", kube_namespace, identity=f"c{i}", **timing)
                for i in range(2)]
    ctls = [Controller(cms).start(recs[i], workers=2, leader_elector=electors[i])
            for i in range(2)]
    eventually(lambda: any(e.is_leader for e in electors), what="a leader")
    cms.create(cm("led", "1"))
    eventually(lambda: any(r.last.get("led") == "1" for r in recs))
    leaders = [e.is_leader for e in electors]
    assert leaders.count(True) == 1
    leader = leaders.index(True)
    other = 1 - leader
    assert "led" not in recs[other].last  # the follower reconciles nothing
    stopped_at = time.monotonic()
    ctls[leader].stop(timeout=30)  # graceful: releases the lease
    eventually(lambda: electors[other].is_leader, timeout=10, what="takeover")
    took = time.monotonic() - stopped_at
    assert took <= timing["lease_duration"] + timing["retry_period"] + 1.0
    cms.patch("led", Patch.merge({"data": {"v": "2"}}))
    eventually(lambda: recs[other].last.get("led") == "2", what="the new leader works")
    ctls[other].stop(timeout=30)


def test_graceful_stop_finishes_in_flight_work_and_leaves_no_thread(
    cms: Api[ConfigMap],
) -> None:
    before = {t.name for t in threading.enumerate()}
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def slow(obj: ConfigMap, ctx: Any) -> Action:
        started.set()
        release.wait(30)  # in-flight work the stop must wait for, held by the test
        finished.set()
        return Action.await_change()

    c = Controller(cms).start(slow)
    cms.create(cm("slow"))
    assert started.wait(30)
    stopper = threading.Thread(target=c.stop, kwargs={"timeout": 30}, name="stopper")
    stopper.start()
    eventually(lambda: c.queue.shutting_down, what="the stop began")
    assert stopper.is_alive() and not finished.is_set()  # it waits for the reconcile
    release.set()
    stopper.join(30)
    assert not stopper.is_alive() and finished.is_set() and c.stopped
    assert {t.name for t in threading.enumerate()} == before


def test_finalizer_runs_cleanup_exactly_once_per_deletion(cms: Api[ConfigMap]) -> None:
    cleanups: List[str] = []
    applies: List[str] = []
    lock = threading.Lock()

    def reconcile(obj: ConfigMap, ctx: Any) -> Any:
        def apply(o: ConfigMap) -> Action:
            with lock:
                applies.append(o.metadata.name)
            return Action.await_change()

        def cleanup(o: ConfigMap) -> Action:
            with lock:
                cleanups.append(o.metadata.name)
            return Action.await_change()

        return finalize(cms, "kubesync.test/cleanup", obj, apply=apply, cleanup=cleanup)

    c = Controller(cms).start(reconcile, workers=4)
    created = [cms.create(cm(f"f{i}")) for i in range(5)]
    eventually(lambda: {f"f{i}" for i in range(5)} <= set(applies), what="applied")
    for o in created:
        assert "kubesync.test/cleanup" in (cms.get(o.metadata.name).metadata.finalizers or [])
    for o in created:
        cms.delete(o.metadata.name)
    for o in created:
        await_condition(cms, o.metadata.name, is_deleted(o.metadata.uid), timeout=30)
    c.stop(timeout=30)
    assert sorted(cleanups) == [f"f{i}" for i in range(5)]


def test_recorder_folds_repeats_into_a_series(
    kube_client: Any, kube_namespace: str, cms: Api[ConfigMap]
) -> None:
    target = cms.create(cm("evented"))
    rec = Recorder(kube_client, "kubesync-test")
    first = rec.publish(target, reason="Synced", action="Reconcile", note="all good")
    assert first is not None
    for _ in range(3):
        rec.publish(target, reason="Synced", action="Reconcile", note="all good")
    rec.publish(target, type="Warning", reason="Failed", action="Reconcile", note="boom")
    events = kube_client.request(
        "GET", f"/apis/events.k8s.io/v1/namespaces/{kube_namespace}/events")["items"]
    synced = [e for e in events if e["reason"] == "Synced"]
    assert len(synced) == 1
    assert synced[0]["series"]["count"] == 4
    assert synced[0]["regarding"]["uid"] == target.metadata.uid
    assert [e["type"] for e in events if e["reason"] == "Failed"] == ["Warning"]
