"""Deprecated: moved to ``kubesync.display.progress`` (presentation is not part of the pure
core). Kept one release; each name read from here warns."""

from __future__ import annotations

from types import ModuleType

from kubesync.core.deprecation import moved_module


def _load() -> ModuleType:
    from kubesync.display import progress

    return progress


__getattr__ = moved_module(__name__, "kubesync.display.progress", _load)
