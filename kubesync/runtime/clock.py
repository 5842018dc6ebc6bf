"""Deprecated: the clock moved to ``kubesync.core.clock`` (one protocol for all timing)."""

from __future__ import annotations

import warnings

from kubesync.core.clock import SYSTEM_CLOCK, Clock, FakeClock
from kubesync.core.clock import SystemClock as MonotonicClock

__all__ = ["SYSTEM_CLOCK", "Clock", "FakeClock", "MonotonicClock"]

warnings.warn("kubesync.runtime.clock moved to kubesync.core.clock",
              DeprecationWarning, stacklevel=2)
