"""Generated models, one module per API group/version (``core_v1``, ``apps_v1``, ...).

Submodules are imported on first attribute access (``kubesync.models.core_v1``), so
``import kubesync`` stays cheap; ``from kubesync.models.core_v1 import Pod`` works as
usual. ``scripts/gen_models.py`` regenerates them; never edit them by hand.
"""

from __future__ import annotations

from types import ModuleType
from typing import Optional

from kubesync.core.forkgate import import_module

__all__ = ["model_for"]


def model_for(api_version: str, kind: str) -> Optional[type]:
    """The model class of ``(apiVersion, kind)``, e.g. ``("apps/v1", "Deployment")``;
    None when there is none (custom resources, versions newer or older than ours)."""
    from kubesync.models._index import KINDS

    module = KINDS.get((api_version, kind))
    if module is None:
        return None
    cls: type = getattr(import_module(f"{__name__}.{module}"), kind)
    return cls


def __getattr__(name: str) -> ModuleType:
    if not name.startswith("_"):
        try:
            return import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
