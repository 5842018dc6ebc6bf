"""Injectable clocks: the runtime reads time and waits through one, so tests can fake time.

``monotonic()`` is also a plain ``Callable[[], float]`` for code that only reads time.
Waiting goes through ``wait_until(cond, deadline)`` rather than ``sleep``: a wait on a
``threading.Condition`` is woken at once by whoever changes the state (an add, a stop), and
a fake clock can wake it when a test moves time past its deadline.
"""

from __future__ import annotations

import threading
import time
from typing import Dict, List, Optional, Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "FakeClock", "MonotonicClock"]


class Clock(Protocol):
    """What the runtime needs from time: a monotonic reading and a deadline-bounded wait."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes backwards."""
        ...

    def wait_until(self, cond: threading.Condition, deadline: Optional[float]) -> None:
        """Wait on ``cond``, which the caller holds, until notified or ``deadline`` passes.

        ``deadline`` is in ``monotonic()`` seconds; None waits for a notification only. It may
        return early, so callers loop and re-check their predicate.
        """
        ...


class MonotonicClock:
    """The real clock: ``time.monotonic`` and ``Condition.wait(timeout)``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wait_until(self, cond: threading.Condition, deadline: Optional[float]) -> None:
        if deadline is None:
            cond.wait()
            return
        remaining = deadline - time.monotonic()
        if remaining > 0:
            cond.wait(remaining)


SYSTEM_CLOCK = MonotonicClock()


class FakeClock:
    """A clock for tests: time stands still until ``advance()``; waits never sleep for real.

    ``advance()`` wakes the waiters whose deadline it reaches (and, through ``notify_all``,
    the others on the same condition: a spurious wake-up the ``Clock`` contract allows).
    ``wait_for_sleeps()`` lets a test know another thread is blocked before it moves time on.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        # The deadlines of the threads blocked in wait_until(), by condition.
        self._sleeping: Dict[threading.Condition, List[Optional[float]]] = {}
        self._sleeps = 0

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``, waking the waiters whose deadline is reached."""
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go back")
        with self._lock:
            self._now += seconds
            now = self._now
            due = [
                cond
                for cond, deadlines in self._sleeping.items()
                if any(d is not None and d <= now for d in deadlines)
            ]
        # Notify outside our lock: a waiter holds its condition while it takes ours.
        for cond in due:
            with cond:
                cond.notify_all()

    @property
    def sleeps(self) -> int:
        """How many times, in all, a thread has blocked in ``wait_until``."""
        with self._lock:
            return self._sleeps

    def wait_for_sleeps(self, count: int, timeout: float = 10.0) -> bool:
        """Block (really, up to ``timeout`` seconds) until ``sleeps`` reaches ``count``."""
        with self._changed:
            return self._changed.wait_for(lambda: self._sleeps >= count, timeout=timeout)

    def wait_until(self, cond: threading.Condition, deadline: Optional[float]) -> None:
        with self._lock:
            # Checked and registered under our lock, so an advance() either is seen here or
            # finds this deadline registered and notifies ``cond`` (which it can only take
            # once cond.wait() has released it): no wake-up is lost.
            if deadline is not None and self._now >= deadline:
                return
            self._sleeping.setdefault(cond, []).append(deadline)
            self._sleeps += 1
            self._changed.notify_all()
        try:
            cond.wait()
        finally:
            with self._lock:
                deadlines = self._sleeping[cond]
                deadlines.remove(deadline)
                if not deadlines:
                    del self._sleeping[cond]
