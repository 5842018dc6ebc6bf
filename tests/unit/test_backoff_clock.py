"""The one backoff (pure delays, the failure counter) and the one clock (real and fake)."""

from __future__ import annotations

import importlib
import random
import sys
import threading
from typing import Iterator, List

import pytest
import responses

from kubesync.core import backoff
from kubesync.core.backoff import Backoff, ExponentialBackoff
from kubesync.core.clock import SYSTEM_CLOCK, Clock, FakeClock, SystemClock, as_clock

WAIT = 10.0


# -- Backoff ------------------------------------------------------------------------------


def test_delays_double_from_initial_up_to_the_maximum() -> None:
    b = Backoff(initial=0.5, maximum=4.0)
    assert [b.delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert Backoff(initial=1, maximum=100, factor=3).ceiling(2) == 9


def test_jitter_is_the_random_share_of_each_step() -> None:
    half = Backoff(initial=2.0, maximum=2.0, jitter=0.5)
    assert (half.delay(0, 0.0), half.delay(0, 1.0)) == (1.0, 2.0)
    full = Backoff(initial=2.0, maximum=2.0, jitter=1.0)
    assert (full.delay(0, 0.0), full.delay(0, 0.25)) == (0.0, 0.5)


def test_huge_attempt_numbers_stay_at_the_cap() -> None:
    assert Backoff(initial=0.005, maximum=1000.0).delay(10**6) == 1000.0
    assert Backoff(initial=1.0, maximum=5.0, factor=10.0).delay(400) == 5.0


@pytest.mark.parametrize("kw", [dict(initial=0, maximum=1), dict(initial=2, maximum=1),
                                dict(initial=1, maximum=2, factor=0.5),
                                dict(initial=1, maximum=2, jitter=2)])
def test_nonsense_policies_are_refused(kw: dict) -> None:
    with pytest.raises(ValueError):
        Backoff(**kw)


def test_the_defaults_are_the_ones_their_sources_give() -> None:
    assert (backoff.WATCHER.initial, backoff.WATCHER.maximum) == (0.8, 30.0)
    assert backoff.WATCHER_RESET_AFTER == 120.0
    assert (backoff.QUEUE_ITEM.initial, backoff.QUEUE_ITEM.maximum) == (0.005, 1000.0)
    assert backoff.UPDATE_CONFLICT.initial == 0.01


def test_the_failure_counter_resets_after_a_healthy_period_on_its_clock() -> None:
    clock = FakeClock()
    b = ExponentialBackoff(1.0, 8.0, jitter=False, reset_after=120.0, clock=clock)
    assert [b.next_delay() for _ in range(3)] == [1.0, 2.0, 4.0]
    clock.advance(119)
    assert b.next_delay() == 8.0  # 119 s after the last failure: not healthy yet
    clock.advance(120)
    assert b.next_delay() == 1.0
    b.reset()
    assert b.failures == 0 and b.next_delay() == 1.0


def test_the_failure_counter_jitters_between_half_and_all_of_the_step() -> None:
    b = ExponentialBackoff(2.0, 2.0, rng=random.Random(7), clock=FakeClock())
    delays = [b.next_delay() for _ in range(50)]
    assert all(1.0 <= d <= 2.0 for d in delays) and len(set(delays)) > 1


# -- Clock --------------------------------------------------------------------------------


def test_both_clocks_are_clocks_and_a_bare_function_can_stand_in() -> None:
    assert isinstance(SYSTEM_CLOCK, Clock) and isinstance(FakeClock(), Clock)
    assert as_clock(None) is SYSTEM_CLOCK
    t = [5.0]
    wrapped = as_clock(lambda: t[0])
    assert wrapped.monotonic() == 5.0
    with pytest.raises(TypeError):
        as_clock(3)  # type: ignore[arg-type]


def test_the_system_clock_reads_utc_wall_time_and_waits_on_events() -> None:
    c = SystemClock()
    assert c.now().utcoffset() is not None and c.now().utcoffset().total_seconds() == 0
    ev = threading.Event()
    ev.set()
    assert c.wait(ev, 0)
    assert not c.wait(threading.Event(), 0)


def test_fake_sleep_and_advance_move_both_readings_on() -> None:
    clock = FakeClock(start=10.0)
    wall = clock.now()
    clock.sleep(2.5)
    clock.advance(0.5)
    assert clock.monotonic() == 13.0
    assert (clock.now() - wall).total_seconds() == 3.0
    assert clock.sleeps == 1
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_a_fake_wait_ends_when_time_passes_its_timeout_or_the_event_is_set() -> None:
    clock, ev = FakeClock(), threading.Event()
    results: List[bool] = []
    t = threading.Thread(target=lambda: results.append(clock.wait(ev, 5.0)), name="waiter")
    t.start()
    assert clock.wait_for_sleeps(1, WAIT)
    clock.advance(4.0)
    assert t.is_alive()  # not yet: 4 of its 5 s
    clock.advance(1.0)
    t.join(WAIT)
    assert results == [False]

    t = threading.Thread(target=lambda: results.append(clock.wait(ev, None)), name="waiter2")
    t.start()
    assert clock.wait_for_sleeps(2, WAIT)
    ev.set()
    t.join(WAIT)
    assert results == [False, True]


# -- users of the clock and the backoff ---------------------------------------------------


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as r:
        yield r


@pytest.mark.filterwarnings("ignore::kubesync.errors.InsecureTLSWarning")
def test_update_waits_between_conflicts_through_its_clock(
    rsps: responses.RequestsMock,
) -> None:
    from kubesync import Api, Client, Config
    from kubesync.errors import Conflict
    from kubesync.models.core_v1 import ConfigMap

    cms = "https://k8s.test/api/v1/namespaces/ns/configmaps"
    rsps.get(f"{cms}/a", json={"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": "a", "resourceVersion": "1"}})
    rsps.put(f"{cms}/a", status=409, json={
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 409,
        "reason": "Conflict", "message": "the object has been modified"})
    clock = FakeClock()
    client = Client(Config(server="https://k8s.test", insecure_skip_tls_verify=True),
                    retries=0)
    try:
        with pytest.raises(Conflict):
            Api(client, ConfigMap, "ns").update("a", lambda o: None, retries=3, clock=clock)
    finally:
        client.close()
    assert clock.sleeps == 3  # between the four tries, and none after the last
    assert 0 <= clock.monotonic() <= 0.01 + 0.02 + 0.04  # UPDATE_CONFLICT, full jitter


def test_the_client_retry_policy_uses_the_shared_backoff() -> None:
    from kubesync.client import RetryPolicy

    policy = RetryPolicy(random=lambda: 1.0)
    assert [policy.backoff(n) for n in range(6)] == [
        backoff.CLIENT_RETRY.delay(n) for n in range(6)]
    assert policy.backoff(5) == 8.0
    assert RetryPolicy(random=lambda: 0.0).backoff(0) == 0.25  # half of the step is random


@pytest.mark.parametrize("old, new", [("kubesync.runtime.backoff", "ExponentialBackoff"),
                                      ("kubesync.runtime.clock", "FakeClock")])
def test_the_old_module_paths_still_import_with_a_deprecation_warning(old: str,
                                                                      new: str) -> None:
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match="kubesync.core"):
        module = importlib.import_module(old)
    assert getattr(module, new) is getattr(
        importlib.import_module(old.replace("runtime", "core")), new)
