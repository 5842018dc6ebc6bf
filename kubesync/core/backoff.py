"""The one backoff: how long to wait before retry number n, and the defaults we use.

``Backoff`` is a pure policy, ``delay(attempt, rand)``: an exponential step capped at a
maximum, with part of it random. ``ExponentialBackoff`` counts failures for code that retries
in a loop and forgets them after a healthy period. Nothing here sleeps: callers wait through
their ``Clock`` (``kubesync.core.clock``), so a stop can cut the wait short and tests can fake
it.
"""

from __future__ import annotations

import random
import threading
from typing import Callable, Optional, Union

import attrs

from kubesync.core.clock import Clock, as_clock

__all__ = [
    "CLIENT_RETRY",
    "CRD_WAIT",
    "NEW_KIND_RETRY",
    "QUEUE_ITEM",
    "UPDATE_CONFLICT",
    "WATCHER",
    "WATCHER_RESET_AFTER",
    "Backoff",
    "ExponentialBackoff",
]

#: 2.0 ** 1024 overflows a float; every cap is reached long before.
_MAX_EXPONENT = 1023


@attrs.frozen(kw_only=True)
class Backoff:
    """``initial * factor**attempt`` seconds, at most ``maximum``; ``jitter`` of it random.

    ``jitter`` is the random share: 0 waits exactly the step, 0.5 waits between half and all
    of it (spreads clients that failed together, keeps a floor), 1 anywhere from 0 to it.
    """

    initial: float
    maximum: float
    factor: float = 2.0
    jitter: float = 0.0

    def __attrs_post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum or self.factor < 1:
            raise ValueError("backoff needs 0 < initial <= maximum and factor >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("backoff jitter is a share between 0 and 1")

    def ceiling(self, attempt: int) -> float:
        """The step before retry number ``attempt + 1`` (0 for the first), without jitter."""
        exponent = min(max(attempt, 0), _MAX_EXPONENT)
        try:
            step = self.initial * self.factor**exponent
        except OverflowError:
            return self.maximum
        return min(self.maximum, step)

    def delay(self, attempt: int, rand: float = 1.0) -> float:
        """The wait before retry number ``attempt + 1``; ``rand`` in [0, 1] picks where in
        the jittered range (a ``random.random()``; the default 1.0 is the ceiling)."""
        step = self.ceiling(attempt)
        return step * (1 - self.jitter) + step * self.jitter * rand


#: client-go's reflector, taken over by kube-rs's DefaultBackoff: a failing watcher waits
#: 800 ms doubling to 30 s, with jitter so clients that lost one API server do not return in
#: step; the count starts over after 120 s without an error.
WATCHER = Backoff(initial=0.8, maximum=30.0, jitter=0.5)
WATCHER_RESET_AFTER = 120.0

#: client-go's DefaultControllerRateLimiter (util/workqueue/default_rate_limiters.go): a key
#: that keeps failing waits 5 ms, 10 ms, 20 ms, ... up to 1000 s. No jitter: one key's retries
#: are spread by the queue's token bucket, not chance.
QUEUE_ITEM = Backoff(initial=0.005, maximum=1000.0)

#: A call the client retries (a connection error, 429, 5xx): half a second doubling to 8 s,
#: half of it random so a herd of clients spreads out; covers an API server restart, short
#: enough that a user's call still answers within seconds.
CLIENT_RETRY = Backoff(initial=0.5, maximum=8.0, jitter=0.5)

#: Read-modify-write after a Conflict: 10 ms, as client-go's retry.DefaultRetry starts, up to
#: 1 s, fully random (each writer picks a different moment, so two contenders stop colliding).
UPDATE_CONFLICT = Backoff(initial=0.01, maximum=1.0, jitter=1.0)

#: Applying an object of a kind a CRD of the same batch just defined: the server may answer
#: 404 for a moment after Established, until its handler sees the CRD; 100 ms doubling to 1 s.
NEW_KIND_RETRY = Backoff(initial=0.1, maximum=1.0)

#: Polling a new CRD until it is Established: the server usually takes well under a second,
#: so start at 50 ms and ask at least once a second.
CRD_WAIT = Backoff(initial=0.05, maximum=1.0)


class ExponentialBackoff:
    """A failure counter over a ``Backoff``: ``next_delay()`` after each failure.

    The count resets by itself once ``reset_after`` seconds pass without a failure (a healthy
    period), or by ``reset()``. Defaults are the watcher's (``WATCHER``). Thread-safe.
    """

    def __init__(
        self,
        initial: float = WATCHER.initial,
        maximum: float = WATCHER.maximum,
        *,
        factor: float = 2.0,
        jitter: Union[bool, float] = True,
        reset_after: Optional[float] = WATCHER_RESET_AFTER,
        clock: Union[Clock, Callable[[], float], None] = None,
        rng: Optional[random.Random] = None,
    ):
        share = (WATCHER.jitter if jitter else 0.0) if isinstance(jitter, bool) else jitter
        self.policy = Backoff(initial=initial, maximum=maximum, factor=factor, jitter=share)
        self.reset_after = reset_after
        self._clock = as_clock(clock)
        self._rng = rng or random.Random()
        self._failures = 0
        self._last: Optional[float] = None
        self._lock = threading.Lock()

    @property
    def initial(self) -> float:
        return self.policy.initial

    @property
    def maximum(self) -> float:
        return self.policy.maximum

    @property
    def factor(self) -> float:
        return self.policy.factor

    @property
    def jitter(self) -> bool:
        return self.policy.jitter > 0

    @property
    def failures(self) -> int:
        return self._failures

    def next_delay(self) -> float:
        """The delay before the next try, counting this failure."""
        with self._lock:
            now = self._clock.monotonic()
            if (
                self.reset_after is not None
                and self._last is not None
                and now - self._last >= self.reset_after
            ):
                self._failures = 0
            self._last = now
            attempt = self._failures
            self._failures += 1
            rand = self._rng.random()
        return self.policy.delay(attempt, rand)

    def reset(self) -> None:
        with self._lock:
            self._failures = 0
            self._last = None
