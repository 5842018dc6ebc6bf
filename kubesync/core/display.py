"""Deprecated: moved to ``kubesync.display`` (presentation is not part of the pure core)."""

from __future__ import annotations

import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    # A deprecated alias, kept one release: forwards on use, with a warning.
    from kubesync.display import render

    value = getattr(render, name)
    warnings.warn(
        f"kubesync.core.display.{name} moved to kubesync.display.render.{name}",
        DeprecationWarning,
        stacklevel=2,
    )
    return value
