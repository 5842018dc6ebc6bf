"""Sharding's logic without a server: the ring, membership on a fake clock, the sharder's
decisions and passes, and a member's side of the drain protocol."""

from __future__ import annotations

import collections
import datetime as dt
import subprocess
import sys
import threading
from typing import Any, Dict, List, Mapping, Optional

import attrs
import pytest

from kubesync.core.clock import FakeClock
from kubesync.core.objectref import ObjectRef
from kubesync.errors import Conflict, Status
from kubesync.models.coordination_v1 import Lease, LeaseSpec
from kubesync.models.meta_v1 import ObjectMeta
from kubesync.runtime import Controller, HashRing, Sharding
from kubesync.runtime import sharding as sharding_module
from kubesync.runtime.sharding import (
    ASSIGN,
    DRAIN,
    REASSIGN,
    UNDRAIN,
    Membership,
    Sharder,
    ShardMove,
    decide,
    default_member_id,
    stable_hash,
)
from kubesync.runtime.store import StoreWriter
from kubesync.runtime.watcher import WatcherConfig
from tests.unit.runtime_fakes import FakeApi, FakeResource

KEYS = [f"ns-{i % 7}/obj-{i}" for i in range(6000)]


def shares(ring: HashRing) -> Dict[str, str]:
    return {k: ring.owner(k) or "" for k in KEYS}


# -- the ring -------------------------------------------------------------------------------


def test_the_ring_is_the_same_whatever_order_the_members_come_in() -> None:
    assert shares(HashRing(["a", "b", "c"])) == shares(HashRing(["c", "a", "b"]))


def test_the_ring_is_the_same_in_another_process_with_another_hash_seed() -> None:
    code = ("from kubesync.runtime.sharding import HashRing;"
            "r = HashRing(['a', 'b', 'c']);"
            "print(','.join(r.owner(f'ns/obj-{i}') or '' for i in range(200)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "12345", "PATH": ""},
                         cwd=str(__import__("pathlib").Path(__file__).parents[2])).stdout
    ring = HashRing(["a", "b", "c"])
    assert out.strip() == ",".join(ring.owner(f"ns/obj-{i}") or "" for i in range(200))


def test_a_member_joining_takes_about_a_fair_share_and_only_from_the_others() -> None:
    before = shares(HashRing(["a", "b", "c"]))
    after = shares(HashRing(["a", "b", "c", "d"]))
    moved = [k for k in KEYS if before[k] != after[k]]
    assert all(after[k] == "d" for k in moved)  # nothing moves between old members
    assert 0.17 < len(moved) / len(KEYS) < 0.33  # about 1/4
    # ... and it takes from each of the others, not from one.
    assert set(collections.Counter(before[k] for k in moved)) == {"a", "b", "c"}


def test_a_member_leaving_moves_only_its_own_keys() -> None:
    before = shares(HashRing(["a", "b", "c", "d"]))
    after = shares(HashRing(["a", "b", "c"]))
    moved = [k for k in KEYS if before[k] != after[k]]
    assert moved and all(before[k] == "d" for k in moved)
    assert [k for k in KEYS if before[k] == "d"] == moved


def test_virtual_nodes_spread_the_keys_about_evenly() -> None:
    counts = collections.Counter(shares(HashRing(["a", "b", "c"])).values())
    assert all(0.8 * 2000 < n < 1.2 * 2000 for n in counts.values()), counts
    # One point per member spreads far worse: that is what the virtual nodes are for.
    lone = collections.Counter(shares(HashRing(["a", "b", "c"], virtual_nodes=1)).values())
    assert max(lone.values()) - min(lone.values()) > max(counts.values()) - min(counts.values())


def test_an_empty_ring_owns_nothing() -> None:
    assert HashRing([]).owner("ns/x") is None
    with pytest.raises(ValueError):
        HashRing(["a"], virtual_nodes=0)


def test_the_hash_is_64_bits_and_stable() -> None:
    assert stable_hash("ns/x") == stable_hash("ns/x") != stable_hash("ns/y")
    assert 0 <= stable_hash("ns/x") < 2 ** 64


# -- configuration --------------------------------------------------------------------------


def test_sharding_names_its_labels_and_leases_after_the_controller() -> None:
    s = Sharding(name="web", namespace="ops", member_id="pod-1")
    assert s.shard_label == "shard.kubesync.io/web"
    assert s.drain_label == "drain.shard.kubesync.io/web"
    assert s.selector == "shard.kubesync.io/web=pod-1"
    assert (s.member_lease, s.sharder_lease) == ("web-shard-pod-1", "web-sharder")
    # An id that is a label value but no DNS name gets a Lease name of its own.
    odd = Sharding(name="web", namespace="ops", member_id="Pod_1")
    other = Sharding(name="web", namespace="ops", member_id="pod_1")
    assert odd.member_lease.startswith("web-shard-pod-1-")
    assert odd.member_lease != other.member_lease


@pytest.mark.parametrize("kwargs, what", [
    ({"name": "Web"}, "DNS label"),
    ({"member_id": "a b"}, "label value"),
    ({"member_id": "x" * 64}, "label value"),
    ({"namespace": ""}, "namespace"),
    ({"lease_duration": 2.0}, "lease_duration > renew_deadline"),
    ({"virtual_nodes": 0}, "virtual_nodes"),
    ({"label_key": "a/b", "drain_label_key": "a/b"}, "differ"),
])
def test_sharding_refuses_what_kubernetes_would(kwargs: Dict[str, Any], what: str) -> None:
    given = {"name": "web", "namespace": "ops", "member_id": "m", **kwargs}
    with pytest.raises(ValueError, match=what):
        Sharding(**given)


def test_the_default_member_id_is_a_label_value_with_the_pid(monkeypatch: Any) -> None:
    monkeypatch.setattr(sharding_module.socket, "gethostname", lambda: "h" * 80 + ".local")
    monkeypatch.setattr(sharding_module.os, "getpid", lambda: 4242)
    member = default_member_id()
    assert member.endswith("-4242") and len(member) <= 63
    Sharding(name="web", namespace="ops", member_id=member)  # valid


# -- membership on our clock ---------------------------------------------------------------


T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def lease(name: str, holder: Optional[str], renewed: float, duration: int = 4,
          rv: str = "1") -> Lease:
    return Lease(metadata=ObjectMeta(name=name, namespace="ops", resource_version=rv),
                 spec=LeaseSpec(holder_identity=holder, lease_duration_seconds=duration,
                                renew_time=T0 + dt.timedelta(seconds=renewed)))


def test_a_member_lives_for_its_duration_from_when_we_saw_its_lease_change() -> None:
    m = Membership()
    m.observe([lease("l-a", "a", renewed=0)], now=100.0)
    assert m.live(103.9) == {"a"} and m.next_expiry(100.0) == 104.0
    # The same record seen again does not extend it: we never trust the remote timestamp,
    # only a change we observed.
    m.observe([lease("l-a", "a", renewed=0)], now=103.0)
    assert m.live(104.0) == frozenset()
    # A renewal seen at 105 counts from 105, whatever renewTime says.
    m.observe([lease("l-a", "a", renewed=-500)], now=105.0)
    assert m.live(108.9) == {"a"} and m.live(109.0) == frozenset()


def test_a_released_or_deleted_lease_is_no_member_at_once() -> None:
    m = Membership()
    m.observe([lease("l-a", "a", 0), lease("l-b", "b", 0)], now=0.0)
    m.observe([lease("l-a", None, 1)], now=1.0)
    assert m.live(1.0) == frozenset()


def test_long_expired_leases_are_garbage_with_the_version_seen() -> None:
    m = Membership()
    m.observe([lease("l-a", "a", 0, rv="7"), lease("l-b", "b", 0)], now=0.0)
    m.observe([lease("l-a", "a", 0, rv="7"), lease("l-b", "b", 10)], now=10.0)
    assert m.stale(now=19.9, after=16.0) == []
    assert m.stale(now=20.0, after=16.0) == [("l-a", "7")]


# -- decisions ------------------------------------------------------------------------------

S = Sharding(name="web", namespace="ops", member_id="a")
RING = HashRing(["a", "b"])
# A key the ring gives to b, and one it gives to a.
TO_B = next(ObjectRef(f"o{i}", "ns") for i in range(100) if RING.owner(f"ns/o{i}") == "b")
TO_A = next(ObjectRef(f"o{i}", "ns") for i in range(100) if RING.owner(f"ns/o{i}") == "a")
LIVE = frozenset({"a", "b"})
OWNER, DRAINING = S.shard_label, S.drain_label


def test_an_object_without_owner_goes_to_the_rings_member() -> None:
    move = decide(TO_B, {}, LIVE, RING, S, "5")
    assert move == ShardMove(TO_B, ASSIGN, {OWNER: "b"}, "5")


def test_an_object_of_a_live_member_the_ring_moves_is_drained_first_not_moved() -> None:
    move = decide(TO_B, {OWNER: "a"}, LIVE, RING, S)
    assert move is not None and move.kind == DRAIN and move.labels == {DRAINING: "true"}
    assert OWNER not in move.labels  # the owner keeps it until it lets go
    # Drained already: wait for the owner, however often we look.
    assert decide(TO_B, {OWNER: "a", DRAINING: "true"}, LIVE, RING, S) is None
    # It let go (both labels gone): now it goes to b.
    assert decide(TO_B, {}, LIVE, RING, S) == ShardMove(TO_B, ASSIGN, {OWNER: "b"})


def test_an_object_of_a_member_that_is_gone_moves_at_once_even_mid_drain() -> None:
    only_b = HashRing(["b"])
    assert decide(TO_A, {OWNER: "a"}, frozenset({"b"}), only_b, S) == ShardMove(
        TO_A, REASSIGN, {OWNER: "b"})
    assert decide(TO_A, {OWNER: "a", DRAINING: "true"}, frozenset({"b"}), only_b, S) == (
        ShardMove(TO_A, REASSIGN, {OWNER: "b", DRAINING: None}))


def test_a_drain_the_ring_no_longer_needs_is_taken_back() -> None:
    assert decide(TO_A, {OWNER: "a", DRAINING: "true"}, LIVE, RING, S) == ShardMove(
        TO_A, UNDRAIN, {DRAINING: None})


def test_objects_in_place_and_objects_without_members_are_left_alone() -> None:
    assert decide(TO_A, {OWNER: "a"}, LIVE, RING, S) is None
    assert decide(TO_A, {OWNER: "a"}, frozenset(), HashRing([]), S) is None


# -- the sharder's passes, on a fake clock -------------------------------------------------


@attrs.define
class FakeSub:
    """An informer subscription as the sharder reads it: a store, filled by hand."""

    writer: StoreWriter[Any] = attrs.field(factory=StoreWriter)

    @property
    def store(self) -> Any:
        return self.writer.store

    def fill(self, objs: List[Any]) -> None:
        from kubesync.runtime.watcher import Init, InitApply, InitDone

        self.writer.apply_event(Init())
        for o in objs:
            self.writer.apply_event(InitApply(o))
        self.writer.apply_event(InitDone())


def meta(name: str, labels: Mapping[str, str], rv: str = "1") -> Any:
    from kubesync.models.meta_v1 import PartialObjectMetadata

    return PartialObjectMetadata(metadata=ObjectMeta(name=name, namespace="ns",
                                                     labels=dict(labels),
                                                     resource_version=rv))


class LeadingElector:
    is_leader = True


@pytest.fixture
def sharder(monkeypatch: Any) -> Any:
    clock = FakeClock(start=1000.0)
    api = FakeApi()
    api.client = None  # type: ignore[attr-defined]
    api.namespace = "ns"  # type: ignore[attr-defined]
    s = Sharder(api, WatcherConfig(), S, clock=clock)  # type: ignore[arg-type]
    s._elector = LeadingElector()  # type: ignore[assignment]
    writes: List[ShardMove] = []
    conflicts: List[str] = []

    def patch_labels(api: Any, ref: ObjectRef, rv: Optional[str],
                     labels: Mapping[str, Optional[str]]) -> None:
        if ref.name in conflicts:
            raise Conflict(Status(code=409, reason="Conflict", message="changed"))
        writes.append(ShardMove(ref, "", dict(labels), rv))

    monkeypatch.setattr(sharding_module, "patch_labels", patch_labels)
    s.test_clock, s.test_writes, s.test_conflicts = clock, writes, conflicts  # type: ignore
    return s


def run_pass(s: Any, objects: FakeSub, leases: FakeSub, membership: Membership,
             ring: Optional[HashRing] = None) -> Any:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as writers:
        return s._pass(objects, leases, membership, ring, writers)


def test_the_sharder_moves_a_killed_members_objects_only_once_its_lease_expired(
    sharder: Any,
) -> None:
    clock, writes = sharder.test_clock, sharder.test_writes
    leases = FakeSub()
    leases.fill([lease("web-shard-a", "a", 0), lease("web-shard-b", "b", 0)])
    objects = FakeSub()
    objects.fill([meta(TO_A.name, {OWNER: "a"}), meta(TO_B.name, {OWNER: "b"})])
    membership = Membership()
    ring, timeout = run_pass(sharder, objects, leases, membership)
    assert writes == [] and timeout == 4.0  # both in place; look again when one expires
    # b renews (its record changes), a does not: a killed replica.
    clock.advance(3.0)
    leases.fill([lease("web-shard-a", "a", 0), lease("web-shard-b", "b", 3)])
    ring, timeout = run_pass(sharder, objects, leases, membership, ring)
    assert writes == [] and timeout == pytest.approx(1.0)
    clock.advance(1.0)  # a's lease ends now, on our clock
    ring, timeout = run_pass(sharder, objects, leases, membership, ring)
    assert writes == [ShardMove(TO_A, "", {OWNER: "b"}, "1")]
    assert sharder.metrics()["reassignments"] == 1 and sharder.metrics()["members"] == 1


def test_the_sharder_drains_for_a_joining_member_and_assigns_after_the_release(
    sharder: Any,
) -> None:
    writes = sharder.test_writes
    leases = FakeSub()
    leases.fill([lease("web-shard-a", "a", 0)])
    objects = FakeSub()
    objects.fill([meta(TO_A.name, {OWNER: "a"}), meta(TO_B.name, {OWNER: "a"})])
    membership = Membership()
    ring, _ = run_pass(sharder, objects, leases, membership)
    assert writes == []
    leases.fill([lease("web-shard-a", "a", 0), lease("web-shard-b", "b", 0)])
    ring, _ = run_pass(sharder, objects, leases, membership, ring)
    assert writes == [ShardMove(TO_B, "", {DRAINING: "true"}, "1")]  # never straight to b
    # a's controller lets go (both labels gone): the watch brings the change.
    objects.writer.apply_event(sharding_module.Apply(meta(TO_B.name, {}, rv="3")))
    sharder._on_object(sharding_module.Apply(meta(TO_B.name, {}, rv="3")))
    ring, _ = run_pass(sharder, objects, leases, membership, ring)
    assert writes[1:] == [ShardMove(TO_B, "", {OWNER: "b"}, "3")]
    assert sharder.metrics()["drains"] == 1 and sharder.metrics()["assignments"] == 1


def test_a_conflict_is_not_retried_blindly_the_newer_state_decides(sharder: Any) -> None:
    sharder.test_conflicts.append(TO_B.name)
    leases = FakeSub()
    leases.fill([lease("web-shard-b", "b", 0)])
    objects = FakeSub()
    objects.fill([meta(TO_B.name, {})])
    _, timeout = run_pass(sharder, objects, leases, Membership())
    assert sharder.test_writes == [] and sharder.metrics()["conflicts"] == 1
    assert timeout == 4.0  # no retry timer: the watch brings the newer version


# -- a member's side of the drain ----------------------------------------------------------


@attrs.define
class Meta:
    name: str
    namespace: str = "ns"
    resource_version: str = "1"
    labels: Dict[str, str] = attrs.field(factory=dict)
    uid: Optional[str] = None


@attrs.define
class Thing:
    metadata: Meta


def member_controller(monkeypatch: Any, objs: List[Thing]) -> Any:
    api = FakeApi()
    api.resource = FakeResource()
    ctl: Controller[Any] = Controller(api, sharding=S, shared=False)  # type: ignore[arg-type]
    writer = StoreWriter(ctl.store)
    from kubesync.runtime.watcher import Init, InitApply, InitDone

    writer.apply_event(Init())
    for o in objs:
        writer.apply_event(InitApply(o))
    writer.apply_event(InitDone())
    released: List[str] = []

    def release(api: Any, obj: Any, sharding: Sharding) -> bool:
        released.append(obj.metadata.name)
        return True

    monkeypatch.setattr("kubesync.runtime.controller.release", release)
    ctl.test_released = released  # type: ignore[attr-defined]
    return ctl


def test_a_member_lets_a_drained_object_go_without_reconciling_it(monkeypatch: Any) -> None:
    drained = Thing(Meta("x", labels={OWNER: "a", DRAINING: "true"}))
    mine = Thing(Meta("y", labels={OWNER: "a"}))
    theirs = Thing(Meta("z", labels={OWNER: "b"}))  # moved; our store has not heard yet
    ctl = member_controller(monkeypatch, [drained, mine, theirs])
    seen: List[str] = []

    def reconcile(obj: Any, ctx: Any) -> None:
        seen.append(obj.metadata.name)

    for name in ("x", "y", "z"):
        ctl._reconcile_one(ObjectRef(name, "ns"), 0, reconcile, None, None)
    assert seen == ["y"]
    assert ctl.test_released == ["x"]
    m = ctl.metrics()
    assert (m["shard_releases"], m["shard_skipped"], m["shard_member"]) == (1, 1, "a")


def test_a_drain_event_is_queued_even_when_the_predicate_sees_no_change(
    monkeypatch: Any,
) -> None:
    from kubesync.runtime.watcher import Apply

    api = FakeApi()
    api.resource = FakeResource()
    ctl: Controller[Any] = Controller(api, sharding=S, shared=False,  # type: ignore[arg-type]
                                      predicate=lambda o: "same")
    before = Thing(Meta("x", labels={OWNER: "a"}))
    ctl._on_main_event(Apply(before))
    with ctl.queue.get(timeout=1) as ref:
        assert ref == ObjectRef("x", "ns")
    ctl._on_main_event(Apply(Thing(Meta("x", labels={OWNER: "a"}))))
    assert len(ctl.queue) == 0  # the predicate filters a plain change
    ctl._on_main_event(Apply(Thing(Meta("x", labels={OWNER: "a", DRAINING: "true"}))))
    assert len(ctl.queue) == 1  # but not the drain


def test_a_sharded_controller_watches_only_its_label_and_takes_no_leader_elector() -> None:
    api = FakeApi()
    api.resource = FakeResource()
    ctl: Controller[Any] = Controller(api, sharding=S, shared=False,  # type: ignore[arg-type]
                                      label_selector="app=web")
    assert ctl._config.label_selector == "app=web,shard.kubesync.io/web=a"
    assert ctl._unsharded_config.label_selector == "app=web"
    from kubesync.errors import KubeError

    with pytest.raises(KubeError, match="leader_elector"):
        ctl.start(lambda o, c: None, leader_elector=object())  # type: ignore[arg-type]


def test_the_sharder_thread_stops_and_joins_while_standing_by(sharder: Any) -> None:
    class Standby:
        is_leader = False
        running = True

        def __init__(self) -> None:
            self.stopped = threading.Event()

        def start(self) -> None:
            pass

        def wait_for_leadership(self, timeout: float) -> bool:
            return self.stopped.wait(0.01) and False

        def stop(self, timeout: Optional[float] = None) -> None:
            self.stopped.set()

    elector = Standby()
    sharder._elector = elector
    sharder.start()
    assert sharder.alive
    sharder.stop(5)
    assert not sharder._thread.is_alive() and elector.stopped.is_set()


def test_a_stop_deletes_the_member_lease_only_where_the_controller_started(
    monkeypatch: Any,
) -> None:
    deleted: List[str] = []
    monkeypatch.setattr("kubesync.runtime.controller.delete_member_lease",
                        lambda client, sharding: deleted.append(sharding.member_lease))
    api = FakeApi()
    api.resource = FakeResource()
    api.client = None  # type: ignore[attr-defined]
    child: Controller[Any] = Controller(api, sharding=S, shared=False)  # type: ignore[arg-type]
    child._started = True  # as start() leaves it, without threads to stop
    child._started_pid = -1  # started in another process: this one is its forked child
    child.stop(1)
    assert deleted == []
    never: Controller[Any] = Controller(api, sharding=S, shared=False)  # type: ignore[arg-type]
    never.stop(1)
    assert deleted == []  # never started: the Lease (if any) is not this controller's
    parent: Controller[Any] = Controller(api, sharding=S, shared=False)  # type: ignore[arg-type]
    parent._started = True
    parent.stop(1)
    assert deleted == ["web-shard-a"]


def test_a_sharded_controller_shows_its_shard_in_the_metrics_samples() -> None:
    from kubesync.runtime.metrics import controller_samples

    api = FakeApi()
    api.resource = FakeResource()
    plain: Controller[Any] = Controller(api, shared=False)  # type: ignore[arg-type]
    assert not [s for s in controller_samples(plain) if "shard" in s.name]
    ctl: Controller[Any] = Controller(api, sharding=S, shared=False)  # type: ignore[arg-type]
    names = {s.name: s.value for s in controller_samples(ctl)}
    assert names["shard_objects"] == 0 and names["sharder_leading"] == 0.0
    assert {"shard_members", "shard_reassignments", "shard_drains", "shard_releases"} <= set(names)


def test_a_member_lease_carries_the_label_the_sharder_selects_and_keeps_it() -> None:
    from tests.unit.test_leader import FakeLeases

    elector = S.member_elector(None, FakeClock())  # type: ignore[arg-type]
    leases = FakeLeases()
    elector.api = leases  # type: ignore[assignment]
    assert elector.try_acquire_or_renew()
    stored = leases.leases[S.member_lease]
    assert stored.metadata.labels == {S.member_label: "a"}
    assert stored.spec is not None and stored.spec.holder_identity == "a"
    stored.metadata.labels = {"other": "x"}  # someone edited the labels away
    assert elector.try_acquire_or_renew()
    assert leases.leases[S.member_lease].metadata.labels == {"other": "x", S.member_label: "a"}
