"""``ObjectRef``: the one way to name an object of a known kind, by name and namespace.

Stores key their objects by it, controllers queue it, mappers return it. Where two objects
with the same name must be told apart over time (deleted and created again), use the uid
(``identity``).
"""

from __future__ import annotations

from typing import Any, Hashable, NamedTuple, Optional

__all__ = ["ObjectRef", "identity"]


class ObjectRef(NamedTuple):
    """Which object: name and namespace (None for cluster-scoped kinds)."""

    name: str
    namespace: Optional[str] = None

    @classmethod
    def of(cls, obj: Any) -> ObjectRef:
        """The reference to ``obj`` (anything with ``metadata.name``/``namespace``)."""
        meta = obj.metadata
        return cls(meta.name, meta.namespace or None)


def identity(obj: Any) -> Hashable:
    """What tells ``obj`` apart from every other object, past or present: its uid, or its
    ``ObjectRef`` when it has none (an object built locally, never stored)."""
    meta = getattr(obj, "metadata", None)
    uid = getattr(meta, "uid", None)
    if uid:
        return str(uid)
    return ObjectRef(getattr(meta, "name", None) or "", getattr(meta, "namespace", None) or None)
