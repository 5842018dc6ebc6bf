"""Where a value sits in a decoded object, for ``DecodeError`` messages.

A location is the top-level class (or a kind name), then one tuple per step:
``(parent, json name)`` for a field, ``(parent, index or key, None)`` for an item. Tuples,
not strings: the path is only spelled out when an error is raised, so decoding allocates
nothing for error reporting.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from kubesync.errors import DecodeError

__all__ = ["Loc", "decode_error", "expected", "kind_name", "location", "type_name"]

Loc = Any


def kind_name(root: Any) -> Optional[str]:
    """The kind a location starts from: a kind name, a resource class's kind, a class name."""
    if isinstance(root, str):
        return root
    if isinstance(root, type):
        resource = getattr(root, "api_resource", None)
        return resource.kind if resource is not None else root.__name__
    return None


def location(loc: Loc) -> Tuple[Optional[str], str]:
    """(kind, field path) of a location, e.g. ``("Pod", "spec.containers[0].ports")``."""
    parts = []
    while isinstance(loc, tuple):
        parts.append(f".{loc[1]}" if len(loc) == 2 else f"[{loc[1]}]")
        loc = loc[0]
    return kind_name(loc), "".join(reversed(parts)).lstrip(".")


def decode_error(loc: Loc, message: str) -> DecodeError:
    """A ``DecodeError`` naming the kind and field path of ``loc``."""
    kind, path = location(loc)
    return DecodeError(message, kind=kind, path=path)


_TYPE_WORDS: Dict[type, str] = {
    dict: "object", list: "array", str: "string", bool: "boolean", int: "integer",
    float: "number", type(None): "null",
}


def type_name(value: Any) -> str:
    """The JSON word for a value's type (``object``, ``array``, ``string``...)."""
    return _TYPE_WORDS.get(type(value), type(value).__name__)


def expected(check: Any) -> str:
    """The JSON words for an isinstance check (a type or a tuple of types)."""
    types = check if isinstance(check, tuple) else (check,)
    return " or ".join(_TYPE_WORDS.get(t, t.__name__) for t in types)
