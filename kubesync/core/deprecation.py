"""Old public names and module paths kept for one release: each use warns, then answers
as before."""

from __future__ import annotations

import sys
import types
import warnings
from typing import Any, Callable, Mapping, Tuple

__all__ = ["callable_module", "deprecated_names", "moved_module", "warn_renamed"]

#: old name -> (where the new one lives, spelled for the warning; the value to give).
Renames = Mapping[str, Tuple[str, Any]]


def warn_renamed(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn that ``old`` is deprecated in favour of ``new`` (both full dotted names)."""
    warnings.warn(f"{old} is deprecated: use {new}", DeprecationWarning,
                  stacklevel=stacklevel)


def deprecated_names(module: str, renames: Renames) -> Callable[[str], Any]:
    """A module ``__getattr__`` that serves ``renames`` with a ``DeprecationWarning``."""

    def __getattr__(name: str) -> Any:
        if name not in renames:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        new, value = renames[name]
        warn_renamed(f"{module}.{name}", new)
        return value

    return __getattr__


def moved_module(
    old: str, new: str, load: Callable[[], types.ModuleType]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``old``, a module that moved to ``new``: every name is
    read from ``load()`` (which imports ``new`` only when a name is asked for) and warns."""

    def __getattr__(name: str) -> Any:
        value = getattr(load(), name)
        warn_renamed(f"{old}.{name}", f"{new}.{name}")
        return value

    return __getattr__


def callable_module(module: str, func: Callable[..., Any], renames: Renames) -> None:
    """Make ``module`` callable as the same-named function it used to hide, with a warning.

    Before the rename, ``kubesync.runtime.watcher`` was a function shadowing its module;
    calling the module keeps such code working for one release. ``renames`` are old names
    read from the module itself (``from kubesync.runtime.watcher import watcher``).
    """
    mod = sys.modules[module]
    new = f"{func.__module__.rpartition('.')[0]}.{func.__name__}"

    class _CallableModule(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            warn_renamed(f"calling the module {module}", new)
            return func(*args, **kwargs)

        def __getattr__(self, name: str) -> Any:
            if name not in renames:
                raise AttributeError(f"module {module!r} has no attribute {name!r}")
            warn_renamed(f"{module}.{name}", renames[name][0])
            return renames[name][1]

    mod.__class__ = _CallableModule
