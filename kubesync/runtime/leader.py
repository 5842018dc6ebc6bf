"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection.

One ``LeaderElector`` per process and lease. Writes use the Lease's resourceVersion
(optimistic concurrency): two candidates never both believe they won. Expiry is judged
by our own clock from when we last saw the record change (not by the holder's
timestamps), so clock skew between machines does not matter.
See https://kubernetes.io/docs/concepts/architecture/leases/
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
import uuid
import warnings
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Tuple, Union

from kubesync.core.clock import SYSTEM_CLOCK, Clock, as_clock
from kubesync.errors import AlreadyExists, Conflict, KubeError, NotFound
from kubesync.runtime.threads import join_thread

if TYPE_CHECKING:
    from kubesync.client.client import Client

__all__ = ["LeaderElector"]

log = logging.getLogger("kubesync.runtime.leader")

#: client-go's defaults (and kube-controller-manager's): a lease lasts 15 s, the leader
#: must renew within 10 s or step down, candidates retry every 2 s.
LEASE_DURATION = 15.0
RENEW_DEADLINE = 10.0
RETRY_PERIOD = 2.0


class _WallClock:
    """``clock`` with its wall time read from ``now`` (the deprecated ``wall_clock``)."""

    def __init__(self, clock: Clock, now: Callable[[], dt.datetime]) -> None:
        self._clock = clock
        self._now = now

    def monotonic(self) -> float:
        return self._clock.monotonic()

    def now(self) -> dt.datetime:
        return self._now()

    def sleep(self, seconds: float) -> None:
        self._clock.sleep(seconds)

    def wait(self, event: threading.Event, timeout: Optional[float]) -> bool:
        return self._clock.wait(event, timeout)

    def wait_until(self, cond: threading.Condition, deadline: Optional[float]) -> None:
        self._clock.wait_until(cond, deadline)


class LeaderElector:
    """Campaign for ``name`` in ``namespace``; lead while renewals succeed.

    ``start()`` runs the campaign in a named background thread; ``is_leader`` tells the
    current state; ``wait_for_leadership(timeout)`` blocks until we lead. Losing the
    lease (no successful renewal within ``renew_deadline``) calls
    ``on_stopped_leading`` and the elector campaigns again. ``stop()`` releases the lease
    if we hold it (so another candidate takes over at once) and joins the thread.

    ``labels`` go on the Lease (a sharded controller's members are found by them).

    Thread-safe. Callbacks run in the elector's thread, outside its lock. Time is read and
    waited for through ``clock`` (a ``kubesync.core.clock.Clock``): its ``monotonic()``
    judges expiry, its ``now()`` stamps the Lease.
    """

    def __init__(
        self,
        client: Client,
        name: str,
        namespace: str,
        *,
        identity: Optional[str] = None,
        lease_duration: float = LEASE_DURATION,
        renew_deadline: float = RENEW_DEADLINE,
        retry_period: float = RETRY_PERIOD,
        on_started_leading: Optional[Callable[[], None]] = None,
        on_stopped_leading: Optional[Callable[[], None]] = None,
        clock: Union[Clock, Callable[[], float]] = SYSTEM_CLOCK,
        wall_clock: Optional[Callable[[], dt.datetime]] = None,
        labels: Optional[Mapping[str, str]] = None,
    ):
        if not lease_duration > renew_deadline > retry_period > 0:
            raise ValueError("need lease_duration > renew_deadline > retry_period > 0")
        from kubesync.client.api import Api
        from kubesync.models.coordination_v1 import Lease

        self.api = Api(client, Lease, namespace)
        self.name = name
        self.namespace = namespace
        self.identity = identity or f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        # Put on the Lease when we create it (and kept on it), so others can select it.
        self.labels: Dict[str, str] = dict(labels or {})
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        if not isinstance(clock, Clock):
            warnings.warn("LeaderElector(clock=) takes a kubesync.core.clock.Clock; a bare "
                          "function is deprecated", DeprecationWarning, stacklevel=2)
        self._clock = as_clock(clock)
        if wall_clock is not None:
            warnings.warn("LeaderElector(wall_clock=) is deprecated: pass a Clock, whose "
                          "now() gives the wall time", DeprecationWarning, stacklevel=2)
            self._clock = _WallClock(self._clock, wall_clock)
        self._lock = threading.Lock()
        self._leading = threading.Event()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._observed: Optional[Tuple[Any, ...]] = None
        self._observed_at = 0.0
        self._last_renew = 0.0

    # -- public -------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self._leading.is_set()

    @property
    def running(self) -> bool:
        """Whether the election thread is alive (leading or standing by)."""
        return self._thread is not None and self._thread.is_alive()

    def wait_for_leadership(self, timeout: Optional[float] = None) -> bool:
        return self._leading.wait(timeout)

    def start(self) -> LeaderElector:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"kubesync-leader-{self.name}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout: Optional[float] = 30.0) -> None:
        """Stop campaigning; release the lease if we hold it; join the thread."""
        self._stop.set()
        join_thread(self._thread, timeout, log)

    def __enter__(self) -> LeaderElector:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- one attempt --------------------------------------------------------------------

    def try_acquire_or_renew(self) -> bool:
        """One attempt to take or keep the lease. True if we hold it afterwards."""
        from kubesync.models.coordination_v1 import Lease, LeaseSpec
        from kubesync.models.meta_v1 import ObjectMeta

        now, wall = self._clock.monotonic(), self._clock.now()
        try:
            lease = self.api.get_opt(self.name)
            if lease is None:
                fresh = Lease(
                    metadata=ObjectMeta(name=self.name, namespace=self.namespace,
                                        labels=dict(self.labels) or None),
                    spec=LeaseSpec(
                        holder_identity=self.identity,
                        lease_duration_seconds=int(self.lease_duration),
                        acquire_time=wall, renew_time=wall, lease_transitions=0,
                    ),
                )
                self.api.create(fresh)
                self._observe(fresh.spec, now)
                return True
            spec = lease.spec or LeaseSpec()
            self._observe(spec, now)
            holder = spec.holder_identity or ""
            if holder and holder != self.identity and not self._expired(spec, now):
                return False
            if holder != self.identity:
                spec.lease_transitions = (spec.lease_transitions or 0) + 1
                spec.acquire_time = wall
            spec.holder_identity = self.identity
            spec.lease_duration_seconds = int(self.lease_duration)
            spec.renew_time = wall
            lease.spec = spec
            if self.labels and lease.metadata is not None:
                lease.metadata.labels = {**(lease.metadata.labels or {}), **self.labels}
            self.api.replace(self.name, lease)  # carries the resourceVersion we read
            self._observe(spec, now)
            return True
        except (Conflict, AlreadyExists):
            return False  # someone else wrote first: not ours this round

    def _observe(self, spec: Any, now: float) -> None:
        record = (spec.holder_identity, spec.renew_time, spec.lease_transitions)
        if record != self._observed:
            self._observed = record
            self._observed_at = now

    def _expired(self, spec: Any, now: float) -> bool:
        duration = spec.lease_duration_seconds or self.lease_duration
        return self._observed_at + duration <= now

    def release(self) -> None:
        """Give the lease up if we hold it (holder cleared, duration 1 s)."""
        try:
            lease = self.api.get_opt(self.name)
            if lease is None or lease.spec is None or (
                lease.spec.holder_identity != self.identity
            ):
                return
            lease.spec.holder_identity = None
            lease.spec.lease_duration_seconds = 1
            lease.spec.renew_time = self._clock.now()
            self.api.replace(self.name, lease)
        except (Conflict, NotFound):
            pass
        except KubeError as e:
            log.warning("releasing lease %s/%s failed: %s", self.namespace, self.name, e)

    # -- the thread ---------------------------------------------------------------------

    def _attempt(self) -> bool:
        try:
            return self.try_acquire_or_renew()
        except KubeError as e:
            log.warning("lease %s/%s: %s", self.namespace, self.name, e)
            return False

    def _run(self) -> None:
        clock = self._clock
        try:
            while not self._stop.is_set():
                # Campaign until we hold the lease.
                if not self._attempt():
                    clock.wait(self._stop, self.retry_period)
                    continue
                self._last_renew = clock.monotonic()
                self._set_leading(True)
                # Lead: renew every retry period; step down past the renew deadline.
                while not clock.wait(self._stop, self._next_wait()):
                    if self._attempt():
                        self._last_renew = clock.monotonic()
                    elif clock.monotonic() - self._last_renew >= self.renew_deadline:
                        log.warning("lost lease %s/%s", self.namespace, self.name)
                        break
                self._set_leading(False)
        finally:
            if self._leading.is_set():
                self._set_leading(False)
            self.release()

    def _next_wait(self) -> float:
        """A retry period, but never past the renew deadline (step down on time)."""
        left = self._last_renew + self.renew_deadline - self._clock.monotonic()
        return max(0.0, min(self.retry_period, left))

    def _set_leading(self, leading: bool) -> None:
        if leading == self._leading.is_set():
            return
        if leading:
            self._leading.set()
            log.info("leading %s/%s as %s", self.namespace, self.name, self.identity)
            callback = self._on_started
        else:
            self._leading.clear()
            callback = self._on_stopped
        if callback is not None:
            try:
                callback()
            except Exception:
                log.exception("leader callback failed")
