"""Deprecated: moved to ``kubesync.display.progress`` (presentation is not part of the pure
core)."""

from __future__ import annotations

import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    # A deprecated alias, kept one release: forwards on use, with a warning.
    from kubesync.display import progress

    value = getattr(progress, name)
    warnings.warn(
        f"kubesync.core.progress.{name} moved to kubesync.display.progress.{name}",
        DeprecationWarning,
        stacklevel=2,
    )
    return value
