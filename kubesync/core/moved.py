"""Modules that moved: the old one forwards each name to the new one, with a warning."""

from __future__ import annotations

import warnings
from types import ModuleType
from typing import Any, Callable

__all__ = ["moved_to"]


def moved_to(old: str, new: str, load: Callable[[], ModuleType]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``old`` that reads names from ``load()`` (the module
    now called ``new``) and warns ``DeprecationWarning`` on each use. ``load`` imports
    the new module only when a name is asked for."""

    def __getattr__(name: str) -> Any:
        value = getattr(load(), name)
        warnings.warn(f"{old}.{name} moved to {new}.{name}", DeprecationWarning, stacklevel=2)
        return value

    return __getattr__
