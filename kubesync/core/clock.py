"""The one clock protocol: everything that reads time or waits goes through a ``Clock``.

Code that waits takes a clock (default ``SYSTEM_CLOCK``) so tests can swap in ``FakeClock``
and move time on by hand instead of sleeping. Waiting is for an ``Event`` with a timeout, or
on a ``Condition`` until a deadline: whoever changes the state (a stop, an add) wakes the
waiter at once, and a fake clock wakes it when a test moves time past its deadline. Plain
``sleep`` is only for waits nothing can cut short (a retry pause inside one call).

Pure: no threads of its own, no I/O.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Callable, Dict, List, Optional, Protocol, Union, runtime_checkable

__all__ = ["SYSTEM_CLOCK", "Clock", "FakeClock", "SystemClock", "as_clock"]


@runtime_checkable
class Clock(Protocol):
    """What code needs from time: readings, and waits bounded by it."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes backwards. For intervals."""
        ...

    def now(self) -> dt.datetime:
        """The wall time, timezone-aware in UTC. For timestamps others read."""
        ...

    def sleep(self, seconds: float) -> None:
        """Pause for ``seconds`` (a fake clock just moves its time on)."""
        ...

    def wait(self, event: threading.Event, timeout: Optional[float]) -> bool:
        """Wait until ``event`` is set or ``timeout`` seconds pass (None: no limit).

        Returns whether the event is set, as ``Event.wait`` does.
        """
        ...

    def wait_until(self, cond: threading.Condition, deadline: Optional[float]) -> None:
        """Wait on ``cond``, which the caller holds, until notified or ``deadline`` passes.

        ``deadline`` is in ``monotonic()`` seconds; None waits for a notification only. It may
        return early, so callers loop and re-check their predicate.
        """
        ...


class SystemClock:
    """The real clock: ``time.monotonic``, UTC ``datetime.now`` and the standard waits."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def wait(self, event: threading.Event, timeout: Optional[float]) -> bool:
        return event.wait(timeout)

    def wait_until(self, cond: threading.Condition, deadline: Optional[float]) -> None:
        if deadline is None:
            cond.wait()
            return
        remaining = deadline - time.monotonic()
        if remaining > 0:
            cond.wait(remaining)


SYSTEM_CLOCK = SystemClock()

#: How often (in real seconds) a thread blocked in ``FakeClock.wait`` looks at its Event:
#: ``Event.set()`` cannot notify anyone else, so the fake clock checks it this often.
_FAKE_EVENT_POLL = 0.005


class FakeClock:
    """A clock for tests: time stands still until ``advance()``; waits never sleep for real.

    ``advance()`` wakes the waiters whose deadline it reaches (and, through ``notify_all``,
    the others on the same condition: a spurious wake-up the ``Clock`` contract allows).
    ``sleep()`` moves the clock on at once. ``wait_for_sleeps()`` lets a test know another
    thread is blocked before it moves time on.
    """

    def __init__(self, start: float = 0.0,
                 wall_start: Optional[dt.datetime] = None) -> None:
        self._now = start
        self._start = start
        self._wall_start = wall_start or dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        # The deadlines of the threads blocked in wait_until(), by condition.
        self._sleeping: Dict[threading.Condition, List[Optional[float]]] = {}
        self._sleeps = 0

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def now(self) -> dt.datetime:
        """The wall time: ``wall_start`` plus the time advanced since the start."""
        with self._lock:
            return self._wall_start + dt.timedelta(seconds=self._now - self._start)

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
            self._changed.notify_all()
        # Notify outside our lock: a waiter holds its condition while it takes ours.
        for cond in due:
            with cond:
                cond.notify_all()

    def sleep(self, seconds: float) -> None:
        """Count a sleep and move time on by ``seconds`` at once."""
        with self._lock:
            self._sleeps += 1
            self._changed.notify_all()
        if seconds > 0:
            self.advance(seconds)

    @property
    def sleeps(self) -> int:
        """How many times, in all, a thread has slept or blocked in a wait."""
        with self._lock:
            return self._sleeps

    def wait_for_sleeps(self, count: int, timeout: float = 10.0) -> bool:
        """Block (really, up to ``timeout`` seconds) until ``sleeps`` reaches ``count``."""
        with self._changed:
            return self._changed.wait_for(lambda: self._sleeps >= count, timeout=timeout)

    def wait(self, event: threading.Event, timeout: Optional[float]) -> bool:
        with self._changed:
            deadline = None if timeout is None else self._now + timeout
            self._sleeps += 1
            self._changed.notify_all()
            while not event.is_set():
                if deadline is not None and self._now >= deadline:
                    return False
                # Woken at once by advance(); a set() is seen within the poll interval.
                self._changed.wait(_FAKE_EVENT_POLL)
            return True

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


class _CallableClock(SystemClock):
    """A ``Clock`` whose ``monotonic()`` is a bare function (the older way to inject time)."""

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._fn = monotonic

    def monotonic(self) -> float:
        return self._fn()


def as_clock(clock: Union[Clock, Callable[[], float], None]) -> Clock:
    """``clock`` as a ``Clock``: None is the system clock; a bare ``() -> float`` function
    (how some classes took time before) becomes a clock reading from it."""
    if clock is None:
        return SYSTEM_CLOCK
    if isinstance(clock, Clock):
        return clock
    if callable(clock):
        return _CallableClock(clock)
    raise TypeError(f"not a clock: {clock!r}")
