"""Deprecated: moved to ``kubesync.display.render`` (presentation is not part of the pure
core). Kept one release; each name read from here warns."""

from __future__ import annotations

from types import ModuleType

from kubesync.core.deprecation import moved_module


def _load() -> ModuleType:
    from kubesync.display import render

    return render


__getattr__ = moved_module(__name__, "kubesync.display.render", _load)
