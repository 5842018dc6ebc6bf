"""What a reconcile may use and raise: its deadline, and the error that stops retries.

A Python thread cannot be interrupted from outside, so a reconcile timeout is cooperative:
the controller gives each reconcile a ``Deadline`` (``reconcile_deadline()`` in the
reconcile's thread) to pass on as call timeouts or to ``check()`` between steps. A
reconcile that overruns its deadline is logged and counted when it returns, and is then
retried with backoff; its key stays taken while it runs, because handing the key to a
second worker would reconcile one object twice at once.
"""

from __future__ import annotations

import threading
from typing import Optional

from kubesync.core.clock import SYSTEM_CLOCK, Clock
from kubesync.errors import KubeError

__all__ = ["Deadline", "ReconcileTimeout", "TerminalError", "reconcile_deadline"]


class TerminalError(KubeError):
    """Raise from a reconcile for a failure that retrying cannot mend (a spec that can
    never be valid, say): it is logged and counted, and the key is not retried (its
    backoff is forgotten) until the object or a related one changes again.

    The error policy is not consulted: record an Event or a condition before raising.
    """


class ReconcileTimeout(KubeError):
    """A reconcile ran past its deadline (raised by ``Deadline.check()``)."""


class Deadline:
    """When the current reconcile should be done, on the controller's clock."""

    __slots__ = ("_at", "_clock", "timeout")

    def __init__(self, timeout: float, clock: Clock = SYSTEM_CLOCK) -> None:
        self.timeout = timeout
        self._clock = clock
        self._at = clock.monotonic() + timeout

    def remaining(self) -> float:
        """Seconds left (0 once passed): e.g. the ``timeout`` of the next call."""
        return max(0.0, self._at - self._clock.monotonic())

    @property
    def expired(self) -> bool:
        return self._clock.monotonic() >= self._at

    def check(self) -> None:
        """Raise ``ReconcileTimeout`` if the deadline has passed."""
        if self.expired:
            raise ReconcileTimeout(f"the reconcile ran past its {self.timeout} s timeout")

    def __repr__(self) -> str:
        return f"<Deadline {self.remaining():.3f}s of {self.timeout}s left>"


_current = threading.local()


def reconcile_deadline() -> Optional[Deadline]:
    """The deadline of the reconcile running in this thread, or None (no timeout set, or
    not inside a reconcile)."""
    return getattr(_current, "deadline", None)


def _set_deadline(deadline: Optional[Deadline]) -> None:
    _current.deadline = deadline
