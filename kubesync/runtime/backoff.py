"""Backoff policies for the runtime's retries, with their defaults and where they come from."""

from __future__ import annotations

import random
import threading
import time
from typing import Callable, Optional

__all__ = ["ExponentialBackoff"]

#: The watcher's defaults, as kube-rs's DefaultBackoff, which took them from client-go's
#: reflector: 800 ms doubling to 30 s, with jitter, reset after 120 s without an error.
WATCHER_INITIAL = 0.8
WATCHER_MAX = 30.0
WATCHER_RESET_AFTER = 120.0


class ExponentialBackoff:
    """``initial * factor**n`` capped at ``maximum``, with full jitter on the upper half.

    ``next_delay()`` after each failure; the count resets by itself once ``reset_after``
    seconds pass without a failure (a healthy period), or by ``reset()``. Thread-safe.
    """

    def __init__(
        self,
        initial: float = WATCHER_INITIAL,
        maximum: float = WATCHER_MAX,
        *,
        factor: float = 2.0,
        jitter: bool = True,
        reset_after: Optional[float] = WATCHER_RESET_AFTER,
        clock: Callable[[], float] = time.monotonic,
        rng: Optional[random.Random] = None,
    ):
        if initial <= 0 or maximum < initial or factor < 1:
            raise ValueError("backoff needs 0 < initial <= maximum and factor >= 1")
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
        self.reset_after = reset_after
        self._clock = clock
        self._rng = rng or random.Random()
        self._failures = 0
        self._last: Optional[float] = None
        self._lock = threading.Lock()

    @property
    def failures(self) -> int:
        return self._failures

    def next_delay(self) -> float:
        """The delay before the next try, counting this failure."""
        with self._lock:
            now = self._clock()
            if (
                self.reset_after is not None
                and self._last is not None
                and now - self._last >= self.reset_after
            ):
                self._failures = 0
            self._last = now
            base = min(self.maximum, self.initial * self.factor**self._failures)
            self._failures += 1
        if self.jitter:
            # Between half and all of the step: spreads reconnecting clients apart.
            return base / 2 + self._rng.random() * base / 2
        return base

    def reset(self) -> None:
        with self._lock:
            self._failures = 0
            self._last = None
