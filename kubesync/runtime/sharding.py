"""Controllers sharded across replica processes, standing on Kubernetes itself.

Leader election makes replicas standbys; sharding makes them all work, each on its part of
the objects, so memory, watch traffic and the GIL divide by the number of replicas. Nothing
but the API server coordinates them:

- **Membership.** Each replica (member) holds a Lease of its own,
  ``<name>-shard-<member>`` in ``Sharding.namespace``, renewed as a leader's lease is and
  labelled ``member.shard.kubesync.io/<name>: <member>``. A member is live while its Lease
  is unexpired, judged on the sharder's clock from when it saw the Lease change (as
  client-go's leader election judges a lease: never by comparing another machine's
  timestamps).
- **Assignment.** A consistent-hash ring (``HashRing``, virtual nodes over the live member
  ids, a stable hash of ``namespace/name``) names the owner of each object, so a member
  joining or leaving moves about 1/N of them. The sharder writes the owner into the
  object's shard label, ``shard.kubesync.io/<name>: <member>``; each member's controller
  lists and watches with that label as its selector, so its watch and its store hold only
  its own objects.
- **The sharder** runs in whichever replica holds the ordinary leader Lease
  ``<name>-sharder``. It watches the objects metadata-only and the member Leases, and
  patches the shard label of an object that has no live owner, or whose owner the ring no
  longer names.
- **Hand-over without two owners.** An object moves from a live member A to B in two
  steps: the sharder adds the drain label ``drain.shard.kubesync.io/<name>``; A's
  controller, on seeing it, takes the key from its queue when no reconcile of it runs
  (the work queue never hands a key to two workers), reconciles it no more, and removes
  both labels (the object leaves its watch); only then does the sharder, seeing no owner,
  label it for B. A member whose Lease expired (killed, or cut off longer than its renew
  deadline, after which it stops picking keys) is not asked: its objects go to their new
  owners at once. A graceful stop finishes the reconciles in flight, then deletes the
  member's Lease, so its objects move at once.

Every label write carries the resourceVersion it was decided on (optimistic
concurrency), so a decision made on a stale view fails with a conflict instead of
undoing a newer write; the watch then brings the newer state and the decision is taken
again. See docs/sharding.md for the guarantees and their limits.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import hashlib
import logging
import os
import re
import socket
import threading
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    FrozenSet,
    Iterable,
    List,
    Mapping,
    Optional,
    Set,
    Tuple,
)

import attrs

from kubesync.core.clock import SYSTEM_CLOCK, Clock
from kubesync.core.objectref import ObjectRef
from kubesync.core.params import Patch
from kubesync.errors import Conflict, KubeError, NotFound
from kubesync.runtime.informer import Subscription, subscribe_to
from kubesync.runtime.leader import LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD, LeaderElector
from kubesync.runtime.threads import join_thread, unique_name
from kubesync.runtime.watcher import (
    Apply,
    Init,
    InitApply,
    InitDone,
    WatcherConfig,
    watcher_config,
)

if TYPE_CHECKING:
    from kubesync.client.api import Api
    from kubesync.client.client import Client

__all__ = [
    "VIRTUAL_NODES",
    "HashRing",
    "Membership",
    "ShardMove",
    "Sharder",
    "Sharding",
    "decide",
    "default_member_id",
    "stable_hash",
]

log = logging.getLogger("kubesync.runtime.sharding")

#: The domain of our label keys: one we own, so no user's or Kubernetes' label collides.
LABEL_DOMAIN = "shard.kubesync.io"
#: Points per member on the ring. With 100, each of a few members gets its fair share
#: within about 10-15 %, and the ring stays small (members x 100 sorted integers) and
#: cheap to rebuild on every membership change.
VIRTUAL_NODES = 100
#: A member Lease the sharder has seen expired for this many lease durations is deleted
#: (replicas named after host and pid would otherwise leave one behind per crash).
STALE_LEASE_DURATIONS = 4
#: Label writes of one pass in flight at once: a member leaving moves 1/N of the objects
#: at one go, and one write at a time (some 5-20 ms each) would make a graceful hand-over
#: of a few hundred objects take seconds. Four keep the API server's load modest.
WRITERS = 4
#: How often the sharder's thread looks for leadership and shutdown while idle.
_IDLE_POLL = 0.5

# A label value (and so a member id), and the name part of a label key.
_LABEL_VALUE = re.compile(r"^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$")
_DNS_LABEL = re.compile(r"^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$")
_NOT_DNS = re.compile(r"[^-a-z0-9]+")


def stable_hash(key: str) -> int:
    """A 64-bit hash of ``key`` that every process computes alike (``hash()`` is salted
    per process, so two replicas would disagree on every key)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


def _key_of(ref: ObjectRef) -> str:
    return f"{ref.namespace}/{ref.name}" if ref.namespace else ref.name


class HashRing:
    """A consistent-hash ring: ``owner(key)`` is the member whose next point on the ring
    follows the key's hash. Each member has ``virtual_nodes`` points, so a member joining
    or leaving moves about 1/N of the keys, taken from (or given to) all others evenly.
    Immutable and deterministic: the same members give the same owners in every process."""

    def __init__(self, members: Iterable[str], virtual_nodes: int = VIRTUAL_NODES) -> None:
        if virtual_nodes < 1:
            raise ValueError("virtual_nodes must be at least 1")
        self.members: FrozenSet[str] = frozenset(members)
        self.virtual_nodes = virtual_nodes
        # Ties (two points with one hash) go to the smaller id: still the same everywhere.
        points = sorted((stable_hash(f"{m}#{i}"), m)
                        for m in self.members for i in range(virtual_nodes))
        self._hashes = [h for h, _ in points]
        self._owners = [m for _, m in points]

    def owner(self, key: str) -> Optional[str]:
        """The member that owns ``key`` (``namespace/name``), or None with no members."""
        if not self._hashes:
            return None
        i = bisect.bisect_right(self._hashes, stable_hash(key))
        return self._owners[i % len(self._owners)]

    def owner_of(self, ref: ObjectRef) -> Optional[str]:
        return self.owner(_key_of(ref))

    def __len__(self) -> int:
        return len(self.members)

    def __repr__(self) -> str:
        return f"<HashRing {sorted(self.members)} x{self.virtual_nodes}>"


def default_member_id() -> str:
    """``<hostname>-<pid>``: unique among the replicas of a Deployment (a pod's hostname is
    its name) and among processes on one machine; cut to fit a label value."""
    host = re.sub(r"[^-A-Za-z0-9_.]+", "-", socket.gethostname()).strip("-_.") or "host"
    suffix = f"-{os.getpid()}"
    return host[: 63 - len(suffix)].rstrip("-_.") + suffix


def _lease_slug(member: str) -> str:
    """``member`` as part of a Lease name (lowercase DNS): a hash is added when it had to
    change, so two ids never share a Lease."""
    slug = _NOT_DNS.sub("-", member.lower()).strip("-") or "member"
    if slug != member:
        slug = f"{slug[:40]}-{stable_hash(member):016x}"[:63]
    return slug


@attrs.frozen(kw_only=True)
class Sharding:
    """How a ``Controller`` shards its objects across replicas (``Controller(sharding=)``).

    ``name`` names the sharded controller, the same in every replica (a DNS label: it goes
    into Lease names and label keys); ``namespace`` holds the member and sharder Leases.
    ``member_id`` must be unique among live replicas (default ``<hostname>-<pid>``).
    ``lease_duration``/``renew_deadline``/``retry_period`` are the member Leases' (and the
    sharder's), with client-go's leader-election defaults: a killed replica's objects move
    about ``lease_duration`` after its last renewal. ``label_key`` and ``drain_label_key``
    default to ``shard.kubesync.io/<name>`` and ``drain.shard.kubesync.io/<name>``.
    """

    name: str
    namespace: str
    member_id: str = attrs.field(factory=default_member_id)
    lease_duration: float = LEASE_DURATION
    renew_deadline: float = RENEW_DEADLINE
    retry_period: float = RETRY_PERIOD
    virtual_nodes: int = VIRTUAL_NODES
    label_key: Optional[str] = None
    drain_label_key: Optional[str] = None

    def __attrs_post_init__(self) -> None:
        if not _DNS_LABEL.match(self.name):
            raise ValueError(f"Sharding(name={self.name!r}): must be a DNS label (lowercase "
                             "letters, digits and '-', at most 63), as it names Leases")
        if not self.namespace:
            raise ValueError("Sharding(namespace=) is the namespace of the member Leases")
        if not _LABEL_VALUE.match(self.member_id):
            raise ValueError(f"Sharding(member_id={self.member_id!r}): must be a valid label "
                             "value (letters, digits, '-', '_', '.', at most 63)")
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise ValueError("Sharding needs lease_duration > renew_deadline > retry_period > 0")
        if self.virtual_nodes < 1:
            raise ValueError("Sharding(virtual_nodes=) must be at least 1")
        if self.shard_label == self.drain_label:
            raise ValueError("the shard and drain label keys must differ")

    @property
    def shard_label(self) -> str:
        """The label naming an object's owner."""
        return self.label_key or f"{LABEL_DOMAIN}/{self.name}"

    @property
    def drain_label(self) -> str:
        """The label asking an object's owner to let it go."""
        return self.drain_label_key or f"drain.{LABEL_DOMAIN}/{self.name}"

    @property
    def member_label(self) -> str:
        """The label on each member Lease (its value: the member id)."""
        return f"member.{LABEL_DOMAIN}/{self.name}"

    @property
    def selector(self) -> str:
        """This member's objects, as a label selector."""
        return f"{self.shard_label}={self.member_id}"

    @property
    def member_lease(self) -> str:
        return f"{self.name}-shard-{_lease_slug(self.member_id)}"

    @property
    def sharder_lease(self) -> str:
        return f"{self.name}-sharder"

    def member_elector(self, client: Client, clock: Clock = SYSTEM_CLOCK) -> LeaderElector:
        """The elector that holds (and renews) this member's own Lease: it "leads" while
        the renewals succeed, and the member's workers pick keys only then."""
        return LeaderElector(
            client, self.member_lease, self.namespace, identity=self.member_id,
            lease_duration=self.lease_duration, renew_deadline=self.renew_deadline,
            retry_period=self.retry_period, clock=clock,
            labels={self.member_label: self.member_id})


def labels_of(obj: Any) -> Mapping[str, str]:
    meta = getattr(obj, "metadata", None)
    labels = getattr(meta, "labels", None)
    return labels if isinstance(labels, Mapping) else {}


def _api_in(api: Api[Any], namespace: Optional[str]) -> Api[Any]:
    """``api``'s kind in ``namespace`` (an all-namespaces Api cannot write one object)."""
    if namespace is None or api.namespace == namespace:
        return api
    from kubesync.client.api import Api
    from kubesync.core.dynamic import DynamicObject

    kind: Any = api.resource if api.model is DynamicObject else api.model
    return Api(api.client, kind, namespace)


def patch_labels(api: Api[Any], ref: ObjectRef, resource_version: Optional[str],
                 labels: Mapping[str, Optional[str]]) -> None:
    """Merge-patch only ``metadata.labels`` of ``ref`` (None removes a label), on the
    condition that the object is still at ``resource_version``: ``Conflict`` otherwise."""
    meta: Dict[str, Any] = {"labels": dict(labels)}
    if resource_version:
        meta["resourceVersion"] = resource_version
    _api_in(api, ref.namespace).patch(ref.name, Patch.merge({"metadata": meta}))


def release(api: Api[Any], obj: Any, sharding: Sharding) -> bool:
    """A member lets a drained object go: both labels removed, if the object is still as
    the member last saw it. True if it let go now; False if the object changed or went
    meanwhile (the watch brings the newer state, and with it the next step)."""
    ref = ObjectRef.of(obj)
    rv = getattr(obj.metadata, "resource_version", None)
    try:
        patch_labels(api, ref, rv, {sharding.shard_label: None, sharding.drain_label: None})
    except (Conflict, NotFound):
        return False
    return True


def delete_member_lease(client: Client, sharding: Sharding) -> None:
    """Delete this member's Lease after a graceful stop, so the sharder moves its objects
    at once (a released Lease would also do; deleting leaves nothing behind)."""
    from kubesync.client.api import Api
    from kubesync.models.coordination_v1 import Lease

    try:
        Api(client, Lease, sharding.namespace).delete(sharding.member_lease)
    except NotFound:
        pass
    except KubeError as e:
        log.warning("deleting member lease %s/%s failed: %s", sharding.namespace,
                    sharding.member_lease, e)


# -- membership, on the sharder's clock ---------------------------------------------------


@attrs.define
class _Seen:
    record: Tuple[Any, ...]
    observed_at: float
    duration: float
    holder: Optional[str]
    resource_version: Optional[str] = None


class Membership:
    """The live members, from the member Leases as the sharder sees them.

    A Lease's expiry is the time we saw its record (holder, renewal, transitions) change,
    plus its ``leaseDurationSeconds``, on our own monotonic clock: a lease first seen counts
    as just renewed, which errs towards keeping a member (never towards two owners). A
    Lease without holder (released) or gone is not a member. Not thread-safe: the sharder's
    thread owns it.
    """

    def __init__(self, default_duration: float = LEASE_DURATION) -> None:
        self._default = default_duration
        self._seen: Dict[str, _Seen] = {}

    def observe(self, leases: Iterable[Any], now: float) -> None:
        """Take in the current Leases (all of them: a Lease not among them is gone)."""
        names: Set[str] = set()
        for lease in leases:
            name = lease.metadata.name
            names.add(name)
            spec = lease.spec
            holder = getattr(spec, "holder_identity", None) or None
            record = (holder, getattr(spec, "renew_time", None),
                      getattr(spec, "lease_transitions", None))
            duration = float(getattr(spec, "lease_duration_seconds", None) or self._default)
            rv = getattr(lease.metadata, "resource_version", None)
            seen = self._seen.get(name)
            if seen is None or seen.record != record:
                self._seen[name] = _Seen(record, now, duration, holder, rv)
            else:
                seen.duration = duration
                seen.resource_version = rv
        for name in list(self._seen):
            if name not in names:
                del self._seen[name]

    def live(self, now: float) -> FrozenSet[str]:
        return frozenset(s.holder for s in self._seen.values()
                         if s.holder is not None and s.observed_at + s.duration > now)

    def next_expiry(self, now: float) -> Optional[float]:
        """When the next live member expires (if it does not renew before)."""
        times = [s.observed_at + s.duration for s in self._seen.values()
                 if s.holder is not None and s.observed_at + s.duration > now]
        return min(times) if times else None

    def stale(self, now: float, after: float) -> List[Tuple[str, Optional[str]]]:
        """Leases expired (or released) for more than ``after`` seconds, with the
        resourceVersion seen: garbage, unless renewed since."""
        return [(name, s.resource_version) for name, s in self._seen.items()
                if s.observed_at + s.duration + after <= now]


# -- decisions ----------------------------------------------------------------------------

ASSIGN = "assign"        # no owner yet: label it for the ring's choice
REASSIGN = "reassign"    # its owner is gone (Lease expired, released or deleted)
DRAIN = "drain"          # its live owner must let it go first
UNDRAIN = "undrain"      # a drain no longer needed: the ring names the owner again


@attrs.frozen
class ShardMove:
    """One label write the sharder decided on: ``labels`` to merge (None removes one)."""

    ref: ObjectRef
    kind: str
    labels: Mapping[str, Optional[str]]
    resource_version: Optional[str] = None


def decide(ref: ObjectRef, labels: Mapping[str, str], live: FrozenSet[str], ring: HashRing,
           sharding: Sharding, resource_version: Optional[str] = None) -> Optional[ShardMove]:
    """What the sharder writes on one object, or None. Pure: the whole protocol's logic.

    An object goes straight to the ring's member only when nobody may be reconciling it:
    no owner label, or an owner that is not live. A live owner the ring no longer names
    gets the drain label and keeps the object until it removes its own label.
    """
    target = ring.owner_of(ref)
    if target is None:
        return None  # no live member: leave the labels for whoever comes
    owner = labels.get(sharding.shard_label) or None
    draining = sharding.drain_label in labels
    if owner is None or owner not in live:
        kind = ASSIGN if owner is None else REASSIGN
        new: Dict[str, Optional[str]] = {sharding.shard_label: target}
        if draining:
            new[sharding.drain_label] = None
        return ShardMove(ref, kind, new, resource_version)
    if owner == target:
        if draining:
            return ShardMove(ref, UNDRAIN, {sharding.drain_label: None}, resource_version)
        return None
    if draining:
        return None  # asked already: waiting for the owner to let go
    return ShardMove(ref, DRAIN, {sharding.drain_label: "true"}, resource_version)


# -- the sharder --------------------------------------------------------------------------


@attrs.define
class _SharderMetrics:
    assignments: int = 0
    reassignments: int = 0
    drains: int = 0
    conflicts: int = 0
    failures: int = 0
    members: int = 0
    leases_collected: int = 0


class Sharder:
    """Writes the shard labels of ``api``'s objects while this replica holds the sharder
    Lease; stands by otherwise. One per sharded controller and replica (the ``Controller``
    runs it); ``config`` is the controller's watch without the shard selector (its own
    label and field selectors say which objects are sharded at all).

    Its thread, ``kubesync-sharder-<name>-<n>``, and the elector's are started by
    ``start()`` and joined by ``stop()``; the two watches (objects metadata-only, member
    Leases) run only while it leads. Thread-safe.
    """

    def __init__(self, api: Api[Any], config: WatcherConfig, sharding: Sharding, *,
                 clock: Clock = SYSTEM_CLOCK, shared: bool = True) -> None:
        from kubesync.client.api import Api as _Api
        from kubesync.models.coordination_v1 import Lease

        self.api = api
        self.sharding = sharding
        self._config = watcher_config(config, metadata_only=True)
        self._lease_api = _Api(api.client, Lease, sharding.namespace)
        self._lease_config = WatcherConfig(label_selector=sharding.member_label)
        self._clock = clock
        self._shared = shared
        self.name = unique_name(f"kubesync-sharder-{sharding.name}")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._dirty: Set[ObjectRef] = set()  # objects changed since the last pass
        self._full = True  # every object to be looked at (a list, a membership change)
        self._metrics = _SharderMetrics()
        self._elector = LeaderElector(
            api.client, sharding.sharder_lease, sharding.namespace,
            identity=sharding.member_id, lease_duration=sharding.lease_duration,
            renew_deadline=sharding.renew_deadline, retry_period=sharding.retry_period,
            clock=clock, on_stopped_leading=self._wake.set)
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Sharder:
        if self._thread is None:
            self._elector.start()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: Optional[float] = 30.0) -> None:
        """Stop sharding, release the sharder Lease (another replica takes over at once),
        join the threads."""
        self._stop.set()
        self._wake.set()
        join_thread(self._thread, timeout, log)
        self._elector.stop(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._elector.running

    @property
    def leading(self) -> bool:
        return self._elector.is_leader

    def metrics(self) -> Dict[str, Any]:
        with self._lock:
            m = attrs.asdict(self._metrics)
        m["leading"] = self.leading
        return m

    # -- events (informer threads) --------------------------------------------------------

    def _on_object(self, ev: Any) -> None:
        with self._lock:
            if isinstance(ev, (InitApply, Apply)):
                self._dirty.add(ObjectRef.of(ev.object))
            elif isinstance(ev, (Init, InitDone)):
                self._full = True
        self._wake.set()

    def _on_lease(self, ev: Any) -> None:
        self._wake.set()  # membership is read from the lease store on the next pass

    # -- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._elector.wait_for_leadership(_IDLE_POLL):
                continue
            if self._stop.is_set():
                return
            log.info("%s: sharding %s as %s", self.name, self.api.resource.plural,
                     self.sharding.member_id)
            try:
                self._lead()
            except Exception:  # never die silently: log, and try again next round
                log.exception("%s: the sharder failed", self.name)
                self._clock.wait(self._stop, self.sharding.retry_period)

    def _lead(self) -> None:
        subs: List[Subscription] = []
        # Named, and joined when we stop leading (shutdown below).
        writers = concurrent.futures.ThreadPoolExecutor(
            WRITERS, thread_name_prefix=f"{self.name}-writer")
        try:
            objects = subscribe_to(self.api, self._config, self._on_object, shared=self._shared,
                                   name=f"{self.name}-objects", clock=self._clock)
            subs.append(objects)
            leases = subscribe_to(self._lease_api, self._lease_config, self._on_lease,
                                  shared=self._shared, name=f"{self.name}-leases",
                                  clock=self._clock)
            subs.append(leases)
            with self._lock:
                self._full = True
            membership = Membership(self.sharding.lease_duration)
            ring: Optional[HashRing] = None
            while not self._stop.is_set() and self._elector.is_leader:
                self._wake.clear()
                timeout: Optional[float] = _IDLE_POLL
                if objects.store.is_ready and leases.store.is_ready:
                    ring, timeout = self._pass(objects, leases, membership, ring, writers)
                self._clock.wait(self._wake, timeout)
        finally:
            writers.shutdown(wait=True)
            for sub in subs:
                sub.stop()
            with self._lock:
                self._metrics.members = 0

    def _pass(self, objects: Subscription, leases: Subscription, membership: Membership,
              ring: Optional[HashRing], writers: concurrent.futures.Executor,
              ) -> Tuple[HashRing, Optional[float]]:
        """Look at what changed and write the labels it needs; returns the ring and how
        long to wait at most before the next pass (a member's expiry, or a retry)."""
        s = self.sharding
        now = self._clock.monotonic()
        membership.observe(leases.store.list(), now)
        live = membership.live(now)
        with self._lock:
            if ring is None or ring.members != live:
                ring = HashRing(live, s.virtual_nodes)
                self._full = True
                log.info("%s: members %s", self.name, sorted(live) or "none")
            full, self._full = self._full, False
            dirty, self._dirty = self._dirty, set()
            self._metrics.members = len(live)
        refs: Iterable[ObjectRef] = objects.store.keys() if full else dirty
        moves: List[ShardMove] = []
        for ref in refs:
            meta = objects.store.get(ref.name, ref.namespace)
            if meta is None:
                continue
            move = decide(ref, labels_of(meta), live, ring, s,
                          getattr(meta.metadata, "resource_version", None))
            if move is not None:
                moves.append(move)
        written = writers.map(self._write, moves) if moves else iter(())
        retry = {move.ref for move, ok in zip(moves, written) if not ok}
        for name, rv in membership.stale(now, STALE_LEASE_DURATIONS * s.lease_duration):
            self._collect(name, rv)
        timeout: Optional[float] = None
        expiry = membership.next_expiry(now)
        if expiry is not None:
            timeout = max(0.0, expiry - self._clock.monotonic())
        if retry:
            with self._lock:
                self._dirty |= retry
            timeout = s.retry_period if timeout is None else min(timeout, s.retry_period)
        return ring, timeout

    def _write(self, move: ShardMove) -> bool:
        """Write one move (in a writer thread); False if it failed in a way worth retrying,
        or was not tried as we stop leading (not a conflict or a deletion, whose newer
        state the watch brings anyway)."""
        if self._stop.is_set() or not self._elector.is_leader:
            return False
        try:
            patch_labels(self.api, move.ref, move.resource_version, move.labels)
        except (Conflict, NotFound):
            with self._lock:
                self._metrics.conflicts += 1
            return True
        except KubeError as e:
            log.warning("%s: labelling %s failed: %s", self.name, move.ref, e)
            with self._lock:
                self._metrics.failures += 1
            return False
        log.debug("%s: %s %s %s", self.name, move.kind, move.ref, dict(move.labels))
        with self._lock:
            m = self._metrics
            if move.kind == ASSIGN:
                m.assignments += 1
            elif move.kind == REASSIGN:
                m.reassignments += 1
            elif move.kind == DRAIN:
                m.drains += 1
        return True

    def _collect(self, lease_name: str, resource_version: Optional[str]) -> None:
        # Only the version seen expired: a member renewing meanwhile keeps its Lease (and
        # a conflict here), instead of losing it while it believes itself live.
        try:
            self._lease_api.delete(lease_name, precondition_resource_version=resource_version)
        except (NotFound, Conflict):
            return
        except KubeError as e:
            log.warning("%s: deleting stale member lease %s failed: %s", self.name,
                        lease_name, e)
            return
        log.info("%s: deleted the stale member lease %s", self.name, lease_name)
        with self._lock:
            self._metrics.leases_collected += 1
