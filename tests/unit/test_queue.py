"""WorkQueue: client-go's workqueue guarantees, delays and backoff on a fake clock, shutdown."""

from __future__ import annotations

import functools
import queue as stdlib_queue
import random
import sys
import threading
from typing import Callable, Dict, Hashable, Iterator, List, Optional, Set, TypeVar

import pytest

from kubesync.core.clock import FakeClock
from kubesync.core.clock import SystemClock as MonotonicClock
from kubesync.errors import UsageError
from kubesync.runtime.queue import (
    DEFAULT_BASE_DELAY,
    DEFAULT_BURST,
    DEFAULT_MAX_DELAY,
    DEFAULT_QPS,
    BucketRateLimiter,
    ItemExponentialRateLimiter,
    MaxOfRateLimiter,
    QueueShutDown,
    WorkQueue,
    default_rate_limiter,
)

# Generous bounds for waits on other threads: a test passes in milliseconds; these only turn
# a hang into a failure.
WAIT = 10.0


K = TypeVar("K", bound=Hashable)


def drain_ready(q: WorkQueue[K]) -> List[K]:
    """Take every ready key without blocking, marking each done."""
    keys: List[K] = []
    while True:
        try:
            key = q.get_key(timeout=0)
        except stdlib_queue.Empty:
            return keys
        keys.append(key)
        q.done(key)


def start(target: Callable[[], None], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=f"test-{name}", daemon=True)
    thread.start()
    return thread


# -- de-duplication and the dirty set


def test_add_deduplicates_a_waiting_key() -> None:
    q: WorkQueue[str] = WorkQueue()
    for _ in range(5):
        q.add("a")
    q.add("b")
    q.add("a")
    assert len(q) == 2
    assert drain_ready(q) == ["a", "b"]


def test_add_while_processing_requeues_exactly_once_after_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    key = q.get_key()
    q.add("a")
    q.add("a")
    assert len(q) == 0, "a key being processed must not wait for a second worker"
    with pytest.raises(stdlib_queue.Empty):
        q.get_key(timeout=0)
    q.done(key)
    assert len(q) == 1
    assert drain_ready(q) == ["a"]
    assert len(q) == 0 and q.processing == 0


def test_done_without_a_new_add_does_not_requeue() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    with q.get() as key:
        assert key == "a"
    assert len(q) == 0 and q.processing == 0


def test_with_get_calls_done_even_when_the_body_raises() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    with pytest.raises(RuntimeError), q.get() as key:
        assert q.processing == 1
        q.add(key)
        raise RuntimeError("reconcile failed")
    assert q.processing == 0
    assert drain_ready(q) == ["a"]


def test_done_for_a_key_not_being_processed_is_a_usage_error() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    with pytest.raises(UsageError):
        q.done("a")
    key = q.get_key()
    q.done(key)
    with pytest.raises(UsageError):
        q.done(key)


# -- concurrency


@pytest.fixture(autouse=True)
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads every few microseconds, not every 5 ms: races show up in small tests."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(interval)


def run_pool(
    q: WorkQueue[int],
    handle: Callable[[int], None],
    produce: Callable[[random.Random], None],
    settled: Optional[Callable[[], bool]] = None,
    state: Optional[threading.Condition] = None,
) -> None:
    """8 workers ``handle`` keys while 4 producers run; wait until ``settled`` (checked under
    ``state``, which ``handle`` notifies), then shut down, drained, and check every thread ended.
    """

    def worker() -> None:
        while True:
            try:
                with q.get() as key:
                    handle(key)
            except QueueShutDown:
                return

    workers = [start(worker, f"worker-{i}") for i in range(8)]
    producers = [
        start(functools.partial(produce, random.Random(i)), f"producer-{i}") for i in range(4)
    ]
    for thread in producers:
        thread.join(WAIT)
    if settled is not None and state is not None:
        with state:
            assert state.wait_for(settled, timeout=WAIT)
    assert q.shutdown(drain=True, timeout=WAIT)
    for thread in workers:
        thread.join(WAIT)
    assert not any(t.is_alive() for t in workers + producers)


def test_no_key_is_handed_to_two_workers_at_once_under_8_threads() -> None:
    q: WorkQueue[int] = WorkQueue("hammer")
    in_flight: Set[int] = set()
    lock = threading.Lock()
    overlaps: List[int] = []
    processed = [0]
    rng = random.Random(0)

    def handle(key: int) -> None:
        with lock:
            if key in in_flight:
                overlaps.append(key)
            in_flight.add(key)
            processed[0] += 1
        # Re-add keys while this one is in flight, itself included: the dirty path.
        q.add(key)
        q.add(rng.randrange(20))
        with lock:
            in_flight.discard(key)

    def produce(rng: random.Random) -> None:
        for _ in range(5000):
            q.add(rng.randrange(20))

    run_pool(q, handle, produce)
    assert overlaps == []
    assert processed[0] > 0


def test_every_key_is_processed_after_its_last_add() -> None:
    # Producers bump a key's version, then add it; a worker records the version it saw when
    # it started, and sometimes bumps and adds its key itself, as an event arriving while it
    # is processed. Every key's last version must be seen: no update is lost.
    q: WorkQueue[int] = WorkQueue("lost-updates")
    state = threading.Condition()
    latest: Dict[int, int] = {}
    seen: Dict[int, int] = {}
    bumps_in_flight = dict.fromkeys(range(50), 3)

    def handle(key: int) -> None:
        with state:
            seen[key] = latest[key]
            state.notify_all()
            bump = bumps_in_flight[key] > 0
            if bump:
                bumps_in_flight[key] -= 1
                latest[key] += 1
        if bump:
            q.add(key)

    def produce(rng: random.Random) -> None:
        for _ in range(3000):
            key = rng.randrange(50)
            with state:
                latest[key] = latest.get(key, 0) + 1
            q.add(key)

    run_pool(q, handle, produce, settled=lambda: seen == latest, state=state)
    assert seen == latest


def test_delayed_adds_from_many_threads_are_all_processed() -> None:
    # The real clock and tiny delays: no delayed key may be stranded by a missed wake-up.
    q: WorkQueue[int] = WorkQueue("delays")
    state = threading.Condition()
    processed: Set[int] = set()
    keys = iter(range(2000))
    keys_lock = threading.Lock()

    def handle(key: int) -> None:
        with state:
            processed.add(key)
            state.notify_all()

    def produce(rng: random.Random) -> None:
        while True:
            with keys_lock:
                key = next(keys, None)
            if key is None:
                return
            q.add_after(key, rng.choice([0.0, 0.0005, 0.001, 0.002]))

    run_pool(q, handle, produce, settled=lambda: len(processed) == 2000, state=state)


# -- delays, on a fake clock


def test_add_after_releases_keys_in_deadline_order() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add_after("c", 3.0)
    q.add_after("a", 1.0)
    q.add_after("b", 2.0)
    assert len(q) == 0 and q.delayed == 3
    clock.advance(0.999)
    assert drain_ready(q) == []
    clock.advance(0.001)
    assert drain_ready(q) == ["a"]
    clock.advance(5.0)
    assert drain_ready(q) == ["b", "c"]
    assert q.delayed == 0


def test_add_after_earliest_deadline_wins() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add_after("a", 10.0)
    q.add_after("a", 2.0)  # earlier: replaces
    q.add_after("a", 5.0)  # later: ignored
    assert q.delayed == 1
    clock.advance(2.0)
    assert drain_ready(q) == ["a"]
    clock.advance(10.0)
    assert drain_ready(q) == [], "a superseded deadline must not add the key again"


def test_add_after_keeps_the_delay_heap_bounded() -> None:
    clock = FakeClock()
    q: WorkQueue[int] = WorkQueue(clock=clock)
    for key in range(10):
        for step in range(1000):
            q.add_after(key, 10_000.0 - step)  # each one earlier than the last
    assert q.delayed == 10
    assert len(q._heap) <= 2 * 10 + 64 + 1


def test_add_after_with_no_delay_adds_at_once() -> None:
    q: WorkQueue[str] = WorkQueue(clock=FakeClock())
    q.add_after("a", 0)
    q.add_after("b", -1.0)
    assert drain_ready(q) == ["a", "b"]


def test_delayed_key_being_processed_is_marked_dirty_when_due() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add("a")
    key = q.get_key()
    q.add_after("a", 1.0)
    clock.advance(1.0)
    assert len(q) == 0, "still processing: not handed out twice"
    q.done(key)
    assert drain_ready(q) == ["a"]


def test_blocked_get_wakes_when_a_delay_expires() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    got: List[str] = []
    q.add_after("a", 5.0)
    getter = start(lambda: got.append(q.get_key()), "getter")
    assert clock.wait_for_sleeps(1, timeout=WAIT)
    clock.advance(5.0)
    getter.join(WAIT)
    assert got == ["a"]


def test_an_earlier_add_after_shortens_a_blocked_getters_wait() -> None:
    # The fake clock wakes a waiter only at its own deadline: unless add_after wakes the
    # getter to wait for the new, earlier deadline, it sleeps on until 100 s.
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    got: List[str] = []
    q.add_after("late", 100.0)
    getter = start(lambda: got.append(q.get_key()), "getter")
    assert clock.wait_for_sleeps(1, timeout=WAIT)
    q.add_after("soon", 1.0)
    assert clock.wait_for_sleeps(2, timeout=WAIT), "the getter was not woken"
    clock.advance(1.0)
    getter.join(WAIT)
    assert got == ["soon"]


class CountingClock(MonotonicClock):
    """The real clock, counting the waits begun, so a test knows when getters are blocked."""

    def __init__(self) -> None:
        self.sleeps = 0
        self.changed = threading.Condition()

    def wait_until(self, cond: threading.Condition, deadline: Optional[float]) -> None:
        with self.changed:
            self.sleeps += 1
            self.changed.notify_all()
        super().wait_until(cond, deadline)


def test_keys_due_together_wake_as_many_getters() -> None:
    # The real clock, as the fake one wakes every waiter on a condition. Both getters first
    # sleep with no deadline; add_after("a") wakes one, which alone then waits for the
    # deadline. When it finds two keys due, it must wake the other for the second.
    clock = CountingClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    got: List[str] = []
    getters = [start(lambda: got.append(q.get_key()), f"getter-{i}") for i in range(2)]
    with clock.changed:
        assert clock.changed.wait_for(lambda: clock.sleeps >= 2, timeout=WAIT)
    q.add_after("a", 0.05)
    q.add_after("b", 0.05)  # not earlier than "a": wakes nobody
    for thread in getters:
        thread.join(WAIT)
    assert sorted(got) == ["a", "b"]
    assert q.processing == 2


def test_a_getter_giving_up_hands_the_next_deadline_to_another() -> None:
    # Real clock. The first getter (with a timeout) is the one add_after wakes, so it alone
    # waits for the deadline; when its timeout ends first, the other getter, asleep with no
    # deadline, must take over the wait for "b".
    clock = CountingClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    outcomes: List[str] = []

    def impatient() -> None:
        try:
            q.get_key(timeout=0.05)
        except stdlib_queue.Empty:
            outcomes.append("gave up")

    def patient() -> None:
        outcomes.append(q.get_key())

    threads = []
    for target in (impatient, patient):  # in this order, each asleep before the next starts
        threads.append(start(target, target.__name__))
        with clock.changed:
            assert clock.changed.wait_for(lambda: clock.sleeps >= len(threads), timeout=WAIT)
    q.add_after("b", 0.5)  # far enough that the first getter's timeout surely ends first
    for thread in threads:
        thread.join(WAIT)
    assert outcomes == ["gave up", "b"]


def test_get_timeout_raises_empty_when_the_clock_passes_it() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    with pytest.raises(stdlib_queue.Empty):
        q.get(timeout=0)
    outcome: List[str] = []

    def getter() -> None:
        try:
            q.get_key(timeout=3.0)
        except stdlib_queue.Empty:
            outcome.append("empty")

    thread = start(getter, "getter")
    assert clock.wait_for_sleeps(1, timeout=WAIT)
    clock.advance(3.0)
    thread.join(WAIT)
    assert outcome == ["empty"]


# -- rate limiting


def test_backoff_doubles_from_5ms_up_to_the_cap() -> None:
    limiter = ItemExponentialRateLimiter()
    delays = [limiter.when("a") for _ in range(20)]
    assert delays[:5] == pytest.approx([0.005, 0.010, 0.020, 0.040, 0.080])
    assert all(b == pytest.approx(min(2 * a, 1000.0)) for a, b in zip(delays, delays[1:]))
    assert delays[-1] == 1000.0
    assert limiter.num_requeues("a") == 20
    assert limiter.when("b") == pytest.approx(0.005), "failures are counted per key"
    for _ in range(5000):
        limiter.when("c")
    assert limiter.when("c") == 1000.0, "no overflow after many failures"


def test_forget_resets_backoff_and_frees_the_entry() -> None:
    limiter = ItemExponentialRateLimiter(base=1.0, max_delay=60.0)
    for _ in range(4):
        limiter.when("a")
    assert limiter.when("a") == 16.0
    limiter.forget("a")
    assert len(limiter) == 0
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == 1.0


def test_add_rate_limited_delays_the_key_by_its_backoff() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock, rate_limiter=ItemExponentialRateLimiter())
    for expected_delay in (0.005, 0.010, 0.020):
        q.add_rate_limited("a")
        assert q.delayed == 1
        clock.advance(expected_delay * 0.99)
        assert drain_ready(q) == []
        clock.advance(expected_delay * 0.02)
        assert drain_ready(q) == ["a"]
    assert q.num_requeues("a") == 3
    q.forget("a")
    assert q.num_requeues("a") == 0
    q.add_rate_limited("a")
    clock.advance(0.005)
    assert drain_ready(q) == ["a"]


def test_bucket_allows_a_burst_then_spaces_retries_at_qps() -> None:
    clock = FakeClock()
    bucket = BucketRateLimiter(qps=10.0, burst=3, clock=clock)
    assert [bucket.when(k) for k in "abc"] == [0.0, 0.0, 0.0]
    assert [bucket.when(k) for k in "de"] == pytest.approx([0.1, 0.2])
    clock.advance(10.0)  # refills, but never beyond the burst
    assert [bucket.when(k) for k in "fgh"] == [0.0, 0.0, 0.0]
    assert bucket.when("i") == pytest.approx(0.1)


def test_max_of_limiters_takes_the_longest_delay_and_counts_in_all() -> None:
    clock = FakeClock()
    per_key = ItemExponentialRateLimiter(base=0.005)
    limiter = MaxOfRateLimiter(per_key, BucketRateLimiter(qps=10.0, burst=1, clock=clock))
    assert limiter.when("a") == pytest.approx(0.005)  # bucket: 0, per key: 5 ms
    assert limiter.when("b") == pytest.approx(0.1)  # bucket empty: 100 ms beats 5 ms
    assert limiter.num_requeues("a") == 1
    limiter.forget("a")
    assert per_key.num_requeues("a") == 0


def test_default_rate_limiter_has_client_go_defaults() -> None:
    assert (DEFAULT_BASE_DELAY, DEFAULT_MAX_DELAY) == (0.005, 1000.0)
    assert (DEFAULT_QPS, DEFAULT_BURST) == (10.0, 100)
    limiter = default_rate_limiter(clock=FakeClock())
    assert isinstance(limiter, MaxOfRateLimiter)
    per_key, bucket = limiter.limiters
    assert isinstance(per_key, ItemExponentialRateLimiter)
    assert (per_key.base, per_key.max_delay) == (0.005, 1000.0)
    assert isinstance(bucket, BucketRateLimiter)
    assert (bucket.qps, bucket.burst) == (10.0, 100)
    assert isinstance(default_rate_limiter(qps=None), ItemExponentialRateLimiter)


# -- shutdown


def test_shutdown_wakes_blocked_getters_and_leaves_no_thread_behind() -> None:
    before = set(threading.enumerate())
    q: WorkQueue[str] = WorkQueue("stop")  # the real clock: getters block for real
    q.add_after("never", 3600.0)  # a pending delay must not keep anything alive either
    outcomes: List[str] = []
    lock = threading.Lock()
    blocked = threading.Semaphore(0)

    def getter() -> None:
        blocked.release()
        try:
            q.get_key()
        except QueueShutDown:
            with lock:
                outcomes.append("shut down")

    getters = [start(getter, f"getter-{i}") for i in range(4)]
    for _ in getters:
        assert blocked.acquire(timeout=WAIT)
    q.shutdown()
    for thread in getters:
        thread.join(WAIT)
    assert outcomes == ["shut down"] * 4
    assert set(threading.enumerate()) == before


def test_after_shutdown_get_raises_and_adds_are_ignored() -> None:
    q: WorkQueue[str] = WorkQueue(rate_limiter=ItemExponentialRateLimiter())
    q.add("waiting")
    q.add_after("delayed", 1.0)
    assert q.shutdown() is True
    assert q.shutting_down
    q.add("a")
    q.add_after("b", 1.0)
    q.add_rate_limited("c")
    assert (len(q), q.delayed, q.processing) == (0, 0, 0)
    assert q.num_requeues("c") == 0
    with pytest.raises(QueueShutDown):
        q.get()
    with pytest.raises(QueueShutDown):
        q.get_key(timeout=0)


def test_drain_waits_for_in_flight_keys_to_be_done() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add("a")
    q.add("b")
    a, b = q.get_key(), q.get_key()
    q.add("a")  # dirty: must not be requeued once shut down
    result: List[bool] = []
    stopper = start(lambda: result.append(q.shutdown(drain=True, timeout=30.0)), "stopper")
    assert clock.wait_for_sleeps(1, timeout=WAIT)  # the drain is waiting
    q.done(a)
    assert result == [] and stopper.is_alive(), "b is still in flight"
    q.done(b)
    stopper.join(WAIT)
    assert result == [True]
    assert (len(q), q.processing) == (0, 0)


def test_drain_gives_up_after_its_timeout() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add("a")
    key = q.get_key()
    result: List[Optional[bool]] = []
    stopper = start(lambda: result.append(q.shutdown(drain=True, timeout=30.0)), "stopper")
    assert clock.wait_for_sleeps(1, timeout=WAIT)
    clock.advance(30.0)
    stopper.join(WAIT)
    assert result == [False]
    q.done(key)  # a late done is still accepted
    assert q.processing == 0


def test_counts_for_metrics() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add("a")
    q.add("b")
    q.add_after("c", 1.0)
    q.get_key()
    assert (len(q), q.processing, q.delayed) == (1, 1, 1)
    clock.advance(1.0)
    assert (len(q), q.processing, q.delayed) == (2, 1, 0)
    assert "ready=2 processing=1 delayed=0" in repr(q)
