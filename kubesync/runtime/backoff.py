"""Deprecated: the backoff moved to ``kubesync.core.backoff`` (pure, shared by every retry)."""

from __future__ import annotations

import warnings

from kubesync.core.backoff import WATCHER, WATCHER_RESET_AFTER, ExponentialBackoff

__all__ = ["ExponentialBackoff"]

warnings.warn("kubesync.runtime.backoff moved to kubesync.core.backoff",
              DeprecationWarning, stacklevel=2)

WATCHER_INITIAL = WATCHER.initial
WATCHER_MAX = WATCHER.maximum
__all__ += ["WATCHER_INITIAL", "WATCHER_MAX", "WATCHER_RESET_AFTER"]
