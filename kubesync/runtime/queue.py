"""The controller's work queue: client-go's workqueue guarantees, for threads.

A key waiting is queued once however often it is added; a key being processed is never
handed to a second worker, and an add while it is processed queues it again once its worker
is done, so no event is lost. Delayed adds, and adds delayed by a per-key exponential backoff
(``add_rate_limited``), come with it. Keys are any hashable value, such as the controller's
object references.

Every add takes a ``priority`` (default ``PRIORITY_NORMAL``): ready keys are handed out
highest priority first, first come first served within one priority, as controller-runtime's
priority queue does so that a restart's initial list (queued at ``PRIORITY_LOW``) does not
hold up the changes that happen meanwhile. Adding a key that waits already at a higher
priority moves it up; a lower one never moves it down.

    with queue.get() as key:   # blocks; raises QueueShutDown once the queue is shut down
        reconcile(key)         # done(key) is called on leaving the block, whatever happens
"""

from __future__ import annotations

import heapq
import itertools
import queue as _stdlib_queue
import threading
from types import TracebackType
from typing import (
    Dict,
    Generic,
    Hashable,
    List,
    Optional,
    Protocol,
    Tuple,
    Type,
    TypeVar,
)

from kubesync.core.backoff import QUEUE_ITEM, Backoff
from kubesync.core.clock import SYSTEM_CLOCK, Clock
from kubesync.errors import KubeError, UsageError

__all__ = [
    "DEFAULT_BASE_DELAY",
    "DEFAULT_BURST",
    "DEFAULT_MAX_DELAY",
    "DEFAULT_QPS",
    "PRIORITY_LOW",
    "PRIORITY_NORMAL",
    "BucketRateLimiter",
    "ItemExponentialRateLimiter",
    "MaxOfRateLimiter",
    "QueueShutDown",
    "RateLimiter",
    "WorkItem",
    "WorkQueue",
    "default_rate_limiter",
]

#: client-go's DefaultControllerRateLimiter: per key ``kubesync.core.backoff.QUEUE_ITEM``
#: (5 ms doubling to 1000 s); and all keys together are held to 10 retries a second after a
#: burst of 100, which only bites when many fail at once.
DEFAULT_BASE_DELAY = QUEUE_ITEM.initial
DEFAULT_MAX_DELAY = QUEUE_ITEM.maximum
DEFAULT_QPS = 10.0
DEFAULT_BURST = 100

#: The priority of a live change, and of the keys of an initial list or a resync: the
#: latter wait behind the former. -100 is controller-runtime's LowPriority for the same use.
PRIORITY_NORMAL = 0
PRIORITY_LOW = -100

T = TypeVar("T", bound=Hashable)


class QueueShutDown(KubeError):
    """The queue was shut down: a worker blocked in, or calling, ``get()`` should return."""


class RateLimiter(Protocol):
    """How long a key waits before its next retry; thread-safe."""

    def when(self, key: Hashable) -> float:
        """Count a failure of ``key`` and return the delay in seconds before its retry."""
        ...

    def forget(self, key: Hashable) -> None:
        """Drop what is known of ``key`` (it succeeded, or it is gone)."""
        ...

    def num_requeues(self, key: Hashable) -> int:
        """How many failures of ``key`` are counted since it was last forgotten."""
        ...


class ItemExponentialRateLimiter:
    """Per key, ``base * 2**failures`` seconds, at most ``max_delay``; ``forget`` resets.

    Holds one entry per key that failed and was not forgotten yet.
    """

    def __init__(
        self, base: float = DEFAULT_BASE_DELAY, max_delay: float = DEFAULT_MAX_DELAY
    ) -> None:
        if not 0 < base <= max_delay:
            raise ValueError("exponential backoff needs 0 < base <= max_delay")
        self.base = base
        self.max_delay = max_delay
        self._backoff = Backoff(initial=base, maximum=max_delay)
        self._failures: Dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def when(self, key: Hashable) -> float:
        with self._lock:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        return self._backoff.delay(failures)

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def num_requeues(self, key: Hashable) -> int:
        with self._lock:
            return self._failures.get(key, 0)

    def __len__(self) -> int:
        """How many keys have failures counted (for metrics and memory checks)."""
        with self._lock:
            return len(self._failures)


class BucketRateLimiter:
    """One token bucket for all keys: ``burst`` retries at once, then ``qps`` a second.

    Each call reserves the next token, so under a flood the delays queue up one
    ``1/qps`` apart instead of everyone retrying together.
    """

    def __init__(
        self, qps: float = DEFAULT_QPS, burst: int = DEFAULT_BURST, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("a token bucket needs qps > 0 and burst >= 1")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock.monotonic()
        self._lock = threading.Lock()

    def when(self, key: Hashable) -> float:
        with self._lock:
            now = self._clock.monotonic()
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
            self._last = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, key: Hashable) -> None:
        """Nothing is kept per key."""

    def num_requeues(self, key: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    """The longest delay any of ``limiters`` asks for; ``forget`` goes to all of them."""

    def __init__(self, *limiters: RateLimiter) -> None:
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self.limiters: Tuple[RateLimiter, ...] = limiters

    def when(self, key: Hashable) -> float:
        # Every limiter must count the failure, so no short-circuit.
        return max([limiter.when(key) for limiter in self.limiters])

    def forget(self, key: Hashable) -> None:
        for limiter in self.limiters:
            limiter.forget(key)

    def num_requeues(self, key: Hashable) -> int:
        return max(limiter.num_requeues(key) for limiter in self.limiters)


def default_rate_limiter(
    *,
    base: float = DEFAULT_BASE_DELAY,
    max_delay: float = DEFAULT_MAX_DELAY,
    qps: Optional[float] = DEFAULT_QPS,
    burst: int = DEFAULT_BURST,
    clock: Clock = SYSTEM_CLOCK,
) -> RateLimiter:
    """client-go's controller default: per-key backoff, and the bucket unless ``qps`` is None."""
    per_key = ItemExponentialRateLimiter(base, max_delay)
    if qps is None:
        return per_key
    return MaxOfRateLimiter(per_key, BucketRateLimiter(qps, burst, clock=clock))


class WorkItem(Generic[T]):
    """A key handed out by ``WorkQueue.get()``; leaving its ``with`` block calls ``done``."""

    __slots__ = ("_queue", "key", "priority")

    def __init__(self, queue: WorkQueue[T], key: T, priority: int = PRIORITY_NORMAL) -> None:
        self._queue = queue
        self.key = key
        #: The priority it was handed out at (a retry keeps it).
        self.priority = priority

    def __enter__(self) -> T:
        return self.key

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self._queue.done(self.key)

    def __repr__(self) -> str:
        return f"WorkItem({self.key!r})"


# A delay heap entry: (deadline, tie-breaker so keys are never compared, key, priority).
_Entry = Tuple[float, int, T, int]
# A ready heap entry: (-priority, arrival order, key); the heap's smallest is handed out first.
_ReadyEntry = Tuple[int, int, T]


class WorkQueue(Generic[T]):
    """A de-duplicating priority work queue with delayed, debounced and rate-limited adds.

    Thread-safety: every method may be called from any thread. One lock (inside one
    ``Condition``) guards all state and is held only for a few dict and heap operations; the
    rate limiter is called outside it, and no other code of yours runs under it but the
    keys' ``__hash__``/``__eq__``. The queue starts no thread.

    A key is live in each of the queue's collections at most once (the two heaps hold at most
    twice their live entries), so memory is bounded by the number of distinct keys; the
    rate limiter keeps an entry per failing key until
    ``forget``. After ``shutdown()`` adds are ignored and ``get`` raises ``QueueShutDown``.
    """

    def __init__(
        self,
        name: str = "default",
        *,
        rate_limiter: Optional[RateLimiter] = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.name = name
        self._clock = clock
        self._rate_limiter = (
            rate_limiter if rate_limiter is not None else default_rate_limiter(clock=clock)
        )
        self._cond = threading.Condition(threading.Lock())
        # client-go's three collections: _dirty maps every key that needs processing (waiting,
        # or added again while processed) to the highest priority it was added at; _waiting
        # the waiting ones to their live entry in the _ready heap; _processing the ones a
        # worker holds to when they were handed out (a _seq number, which dates the delayed
        # adds against it: see cancel_earlier_delays). A key in _processing is never
        # in _waiting. A key moved up leaves its old entry in _ready (skipped when popped;
        # the heap is rebuilt once such entries outnumber the live ones).
        self._ready: List[_ReadyEntry[T]] = []
        self._waiting: Dict[T, _ReadyEntry[T]] = {}
        self._dirty: Dict[T, int] = {}
        self._processing: Dict[T, int] = {}
        # Delayed adds need no timer thread: get() promotes the keys whose deadline passed,
        # and a waiting getter sleeps only until the earliest deadline (an earlier add_after
        # wakes one to shorten its wait). With no getter, nobody would take a key anyway; a
        # thread would be one more thing to own, name, stop and join.
        # _delayed maps a key to its live heap entry; an entry superseded by an earlier
        # deadline stays in the heap until popped or the heap is rebuilt.
        self._heap: List[_Entry[T]] = []
        self._delayed: Dict[T, _Entry[T]] = {}
        self._seq = itertools.count()
        self._shutting_down = False

    # -- adding

    def add(self, key: T, priority: int = PRIORITY_NORMAL) -> None:
        """Queue ``key`` unless it waits already; if it is being processed, queue it after.

        A key waiting at a lower ``priority`` moves up to this one.
        """
        with self._cond:
            if not self._shutting_down and self._add_locked(key, priority):
                self._cond.notify()

    def add_after(self, key: T, delay: float, priority: int = PRIORITY_NORMAL) -> None:
        """Add ``key`` once ``delay`` seconds have passed; of two pending delays the earlier wins
        (at the higher of their priorities).

        A pending delayed add is independent of ``add``: the key runs at the deadline even if
        it ran in between (client-go's semantics; a spare reconcile is harmless, a lost one
        is not).
        """
        if delay <= 0:
            self.add(key, priority)
            return
        with self._cond:
            if not self._shutting_down:
                self._add_after_locked(key, delay, priority)

    def add_debounced(self, key: T, window: float, priority: int = PRIORITY_NORMAL) -> None:
        """Add ``key`` ``window`` seconds after the first of a burst of such adds.

        The adds that follow within the window join the pending one, so a burst of changes
        to one object costs one reconcile, at most ``window`` seconds after the first
        change. A key already waiting to be handed out needs no delay: it will be processed
        after this change anyway, and only moves up to ``priority``.
        """
        if window <= 0:
            self.add(key, priority)
            return
        with self._cond:
            if self._shutting_down:
                return
            if key in self._waiting:
                self._add_locked(key, priority)
            else:
                self._add_after_locked(key, window, priority)

    def add_rate_limited(self, key: T, priority: int = PRIORITY_NORMAL) -> None:
        """Add ``key`` after the rate limiter's delay for it (its backoff after a failure)."""
        if self._shutting_down:
            return  # and do not count a failure nobody will retry
        self.add_after(key, self._rate_limiter.when(key), priority)

    def cancel_earlier_delays(self, key: T) -> bool:
        """Cancel ``key``'s pending delayed add if it was made before the key was handed out
        to the worker that holds it now (a requeue an earlier run asked for); one made since
        (a change during this run) stands. A key nobody holds loses any pending delay.

        For a run that ended in a way no earlier plan should outlive (a terminal error).
        Returns whether a delay was cancelled.
        """
        with self._cond:
            entry = self._delayed.get(key)
            if entry is None:
                return False
            handed_out = self._processing.get(key)
            if handed_out is not None and entry[1] > handed_out:
                return False
            del self._delayed[key]  # its heap entry is skipped when popped
            self._compact_delays_locked()
            return True

    def forget(self, key: T) -> None:
        """Reset ``key``'s failures (after a success): its next backoff starts small again."""
        self._rate_limiter.forget(key)

    def num_requeues(self, key: T) -> int:
        """How many rate-limited adds of ``key`` since it was last forgotten."""
        return self._rate_limiter.num_requeues(key)

    # -- taking

    def get(self, timeout: Optional[float] = None) -> WorkItem[T]:
        """Block until a key is ready and hand it out as a ``WorkItem`` for a ``with`` block.

        Raises ``QueueShutDown`` once the queue is shut down (at once, also for a getter
        already blocked), and the standard library's ``queue.Empty`` if ``timeout`` seconds
        pass first.
        """
        key, priority = self._get(timeout)
        return WorkItem(self, key, priority)

    def get_key(self, timeout: Optional[float] = None) -> T:
        """Like ``get``, but returns the bare key: you must call ``done(key)`` yourself."""
        return self._get(timeout)[0]

    def _get(self, timeout: Optional[float]) -> Tuple[T, int]:
        clock = self._clock
        with self._cond:
            give_up = None if timeout is None else clock.monotonic() + max(timeout, 0.0)
            # Whether this getter last slept until the earliest delay deadline. Idle getters
            # rely on one of them doing so; one that leaves with delays pending wakes another
            # to take over the watch.
            watching = False
            while True:
                if self._shutting_down:
                    raise QueueShutDown(f"work queue {self.name!r} is shut down")
                if self._heap:
                    self._promote_locked()
                if self._waiting:
                    key, priority = self._pop_ready_locked()
                    if watching and self._heap:
                        self._cond.notify()
                    return key, priority
                wake = self._heap[0][0] if self._heap else None
                watching = wake is not None
                if give_up is not None:
                    if clock.monotonic() >= give_up:
                        if watching:
                            self._cond.notify()
                        raise _stdlib_queue.Empty
                    wake = give_up if wake is None else min(wake, give_up)
                clock.wait_until(self._cond, wake)

    def done(self, key: T) -> None:
        """Mark ``key`` processed; if it was added meanwhile, queue it again now."""
        with self._cond:
            try:
                del self._processing[key]
            except KeyError:
                raise UsageError(
                    f"done({key!r}) on work queue {self.name!r}: that key is not being processed"
                ) from None
            if self._shutting_down:
                if not self._processing:
                    self._cond.notify_all()  # wake shutdown(drain=True)
            elif key in self._dirty:
                self._push_ready_locked(key, self._dirty[key])
                self._cond.notify()

    # -- stopping

    def shutdown(self, drain: bool = False, timeout: Optional[float] = None) -> bool:
        """Stop: ignore adds from now on, drop waiting and delayed keys, wake every getter.

        With ``drain``, also wait (up to ``timeout`` seconds, None for no limit) until every
        key handed out is done. Returns whether none is in processing any more. Idempotent.
        """
        clock = self._clock
        with self._cond:
            self._shutting_down = True
            self._ready.clear()
            self._waiting.clear()
            self._dirty.clear()
            self._heap.clear()
            self._delayed.clear()
            self._cond.notify_all()
            if drain:
                give_up = None if timeout is None else clock.monotonic() + timeout
                while self._processing:
                    if give_up is not None and clock.monotonic() >= give_up:
                        break
                    clock.wait_until(self._cond, give_up)
            return not self._processing

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    # -- metrics

    def __len__(self) -> int:
        """Keys ready to be handed out (including delayed ones whose deadline has passed)."""
        with self._cond:
            if self._heap:
                self._promote_locked()
            return len(self._waiting)

    @property
    def processing(self) -> int:
        """Keys handed out and not done yet."""
        with self._cond:
            return len(self._processing)

    @property
    def delayed(self) -> int:
        """Keys waiting for a deadline that has not passed yet."""
        with self._cond:
            if self._heap:
                self._promote_locked()
            return len(self._delayed)

    def __repr__(self) -> str:
        with self._cond:
            return (
                f"<WorkQueue {self.name!r} ready={len(self._waiting)} "
                f"processing={len(self._processing)} delayed={len(self._delayed)}"
                f"{' shut down' if self._shutting_down else ''}>"
            )

    # -- helpers that need the lock held

    def _add_locked(self, key: T, priority: int) -> bool:
        """Record that ``key`` needs processing; True if it became ready (wake a getter)."""
        known = self._dirty.get(key)
        if known is not None and known >= priority:
            return False
        self._dirty[key] = priority
        if key in self._processing:
            return False
        self._push_ready_locked(key, priority)
        return known is None  # a key moved up was ready already: nobody new to wake

    def _push_ready_locked(self, key: T, priority: int) -> None:
        entry = (-priority, next(self._seq), key)
        self._waiting[key] = entry
        heapq.heappush(self._ready, entry)
        if len(self._ready) > 2 * len(self._waiting) + 64:
            # Too many entries of keys that moved up: keep the heap within twice the live ones.
            self._ready = list(self._waiting.values())
            heapq.heapify(self._ready)

    def _pop_ready_locked(self) -> Tuple[T, int]:
        """Hand out the first waiting key (there is one): the highest priority, oldest."""
        while True:
            entry = heapq.heappop(self._ready)
            key = entry[2]
            if self._waiting.get(key) is entry:
                del self._waiting[key]
                priority = self._dirty.pop(key)
                self._processing[key] = next(self._seq)
                return key, priority

    def _add_after_locked(self, key: T, delay: float, priority: int) -> None:
        deadline = self._clock.monotonic() + delay
        old = self._delayed.get(key)
        if old is not None:
            if old[0] <= deadline and old[3] >= priority:
                return
            deadline = min(deadline, old[0])
            priority = max(priority, old[3])
        entry = (deadline, next(self._seq), key, priority)
        self._delayed[key] = entry
        heapq.heappush(self._heap, entry)
        self._compact_delays_locked()
        if self._heap[0] is entry:
            # A new earliest deadline: a getter waiting for a later one must wait less.
            self._cond.notify()

    def _compact_delays_locked(self) -> None:
        if len(self._heap) > 2 * len(self._delayed) + 64:
            # Too many superseded or cancelled entries: keep the heap within twice the live ones.
            self._heap = list(self._delayed.values())
            heapq.heapify(self._heap)

    def _promote_locked(self) -> None:
        """Move delayed keys whose deadline has passed to the ready queue."""
        now = self._clock.monotonic()
        heap, delayed = self._heap, self._delayed
        woken = 0
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            key = entry[2]
            if delayed.get(key) is entry:
                del delayed[key]
                woken += self._add_locked(key, entry[3])
        if woken:
            self._cond.notify(woken)
