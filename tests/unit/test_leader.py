"""LeaderElector over a fake Lease API, on a fake clock: taking, expiry, renewal, release."""

from __future__ import annotations

import copy
import datetime as dt
import threading
from typing import Any, Dict, List, Optional

import pytest

from kubesync.core.clock import FakeClock
from kubesync.errors import Conflict, ServerError, Status
from kubesync.models.coordination_v1 import Lease
from kubesync.runtime.leader import LeaderElector
from tests.helpers import eventually

WAIT = 10.0


class FakeLeases:
    """Leases by name with optimistic concurrency: a replace must carry the current rv."""

    def __init__(self) -> None:
        self.leases: Dict[str, Lease] = {}
        self.rv = 0
        self.broken = False
        self.lock = threading.Lock()

    def _check(self) -> None:
        if self.broken:
            raise ServerError(Status(code=500, message="etcd is away"))

    def get_opt(self, name: str) -> Optional[Lease]:
        with self.lock:
            self._check()
            found = self.leases.get(name)
            return copy.deepcopy(found) if found is not None else None

    def create(self, lease: Lease) -> Lease:
        with self.lock:
            self._check()
            assert lease.metadata is not None and lease.metadata.name
            self.rv += 1
            stored = copy.deepcopy(lease)
            stored.metadata.resource_version = str(self.rv)  # type: ignore[union-attr]
            self.leases[lease.metadata.name] = stored
            return copy.deepcopy(stored)

    def replace(self, name: str, lease: Lease) -> Lease:
        with self.lock:
            self._check()
            current = self.leases[name]
            assert current.metadata is not None and lease.metadata is not None
            if lease.metadata.resource_version != current.metadata.resource_version:
                raise Conflict(Status(code=409, reason="Conflict", message="modified"))
            self.rv += 1
            stored = copy.deepcopy(lease)
            stored.metadata.resource_version = str(self.rv)  # type: ignore[union-attr]
            self.leases[name] = stored
            return copy.deepcopy(stored)


def elector(leases: FakeLeases, clock: FakeClock, identity: str, **kw: Any) -> LeaderElector:
    e = LeaderElector(object(), "ctl", "ns", identity=identity, clock=clock,  # type: ignore[arg-type]
                      **kw)
    e.api = leases  # type: ignore[assignment]
    return e


def spec(leases: FakeLeases) -> Any:
    return leases.leases["ctl"].spec


def test_a_candidate_takes_a_free_lease_stamped_with_the_clocks_wall_time() -> None:
    leases = FakeLeases()
    clock = FakeClock(wall_start=dt.datetime(2030, 5, 1, tzinfo=dt.timezone.utc))
    clock.advance(3)
    a = elector(leases, clock, "a")
    assert a.try_acquire_or_renew()
    s = spec(leases)
    assert s.holder_identity == "a"
    assert s.lease_duration_seconds == 15
    assert s.renew_time == s.acquire_time == dt.datetime(2030, 5, 1, 0, 0, 3,
                                                         tzinfo=dt.timezone.utc)


def test_a_held_lease_is_taken_only_once_it_expired_by_the_candidates_own_clock() -> None:
    leases, clock = FakeLeases(), FakeClock()
    a, b = elector(leases, clock, "a"), elector(leases, clock, "b")
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()  # b first sees the record now, at t=0
    clock.advance(14)
    assert not b.try_acquire_or_renew()
    assert a.try_acquire_or_renew()  # a renews at t=14...
    assert not b.try_acquire_or_renew()  # ... b sees the change: its count starts over
    clock.advance(14)
    assert not b.try_acquire_or_renew()
    clock.advance(1)
    assert b.try_acquire_or_renew()
    assert spec(leases).holder_identity == "b"
    assert spec(leases).lease_transitions == 1
    assert not a.try_acquire_or_renew()


def test_two_candidates_writing_at_once_never_both_win() -> None:
    leases, clock = FakeLeases(), FakeClock()
    gone, a, b = (elector(leases, clock, n) for n in ("gone", "a", "b"))
    assert gone.try_acquire_or_renew()  # a holder that then stops renewing
    assert not a.try_acquire_or_renew() and not b.try_acquire_or_renew()
    clock.advance(20)
    # Both read the expired record before either writes; only the first replace carries
    # the current resourceVersion.
    snapshot = leases.get_opt("ctl")
    leases.get_opt = lambda name: copy.deepcopy(snapshot)  # type: ignore[method-assign]
    assert [a.try_acquire_or_renew(), b.try_acquire_or_renew()] == [True, False]
    assert spec(leases).holder_identity == "a"


def test_the_leader_steps_down_once_renewals_fail_past_the_renew_deadline() -> None:
    leases, clock = FakeLeases(), FakeClock()
    calls: List[str] = []
    a = elector(leases, clock, "a", on_started_leading=lambda: calls.append("started"),
                on_stopped_leading=lambda: calls.append("stopped"))
    a.start()
    try:
        assert a.wait_for_leadership(WAIT)
        leases.broken = True
        # It renews every retry period (2 s): four failures still leave it leading...
        for n in range(1, 5):
            assert clock.wait_for_sleeps(n, WAIT)
            clock.advance(2.0)
        assert clock.wait_for_sleeps(5, WAIT)
        assert a.is_leader and calls == ["started"]
        # ... the one at the renew deadline (10 s) makes it step down.
        clock.advance(2.0)
        eventually(lambda: not a.is_leader, timeout=WAIT, what="stepped down")
        assert calls == ["started", "stopped"]
    finally:
        leases.broken = False
        a.stop(timeout=WAIT)


def test_stop_releases_the_lease_so_another_candidate_takes_it_at_once() -> None:
    leases, clock = FakeLeases(), FakeClock()
    a, b = elector(leases, clock, "a"), elector(leases, clock, "b")
    a.start()
    assert a.wait_for_leadership(WAIT)
    a.stop(timeout=WAIT)
    assert not a.is_leader
    assert spec(leases).holder_identity is None
    assert spec(leases).lease_duration_seconds == 1
    assert b.try_acquire_or_renew()


def test_a_bare_clock_function_still_works_but_is_deprecated() -> None:
    now = [100.0]
    with pytest.warns(DeprecationWarning, match="Clock"):
        e = LeaderElector(object(), "ctl", "ns", identity="a",  # type: ignore[arg-type]
                          clock=lambda: now[0])
    e.api = FakeLeases()  # type: ignore[assignment]
    assert e.try_acquire_or_renew()
    assert e._observed_at == 100.0
