"""The one cattrs converter, for the types our own field codecs do not cover.

Enums, plain attrs classes in hand-written models and the like go through cattrs. The
converter knows our object types by what they can do, not by import: a class with a
``_kube_decode(data, tp)`` classmethod and a ``_kube_encode()`` method (``Model``,
``DynamicObject``, ``ObjectList``) converts itself. That keeps this module below the
models in the import graph, so the models' codecs can fall back to it.

It is made by ``make_converter()`` on first use (importing cattrs costs ~15 ms, which
``import kubesync`` does not pay), and never is cattrs' global converter: hooks there
would change behaviour for every other library in the process.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any, Callable, Optional, get_origin

from kubesync.core.time import format_time, parse_time

if TYPE_CHECKING:
    import cattrs

__all__ = ["configure_converter", "get_converter", "make_converter"]


def _self_converting(tp: Any) -> bool:
    cls = get_origin(tp) or tp
    return isinstance(cls, type) and hasattr(cls, "_kube_decode")


def _structure_hook(tp: Any) -> Callable[[Any, Any], Any]:
    cls = get_origin(tp) or tp
    return lambda value, t: cls._kube_decode(value, t)


def _unstructure(obj: Any) -> Any:
    return obj._kube_encode()


def configure_converter(c: cattrs.Converter) -> None:
    """Teach a cattrs converter our models, DynamicObject, ObjectList and datetimes."""
    c.register_structure_hook_factory(_self_converting, _structure_hook)
    c.register_unstructure_hook_factory(_self_converting, lambda tp: _unstructure)
    c.register_structure_hook(datetime.datetime, lambda v, t: parse_time(v))
    c.register_unstructure_hook(datetime.datetime, format_time)


def make_converter() -> cattrs.Converter:
    """A new cattrs converter configured like ours (never cattrs' global one)."""
    import cattrs

    c = cattrs.Converter()
    configure_converter(c)
    return c


_converter: Optional[cattrs.Converter] = None


def get_converter() -> cattrs.Converter:
    """The shared converter, made on first use."""
    global _converter
    if _converter is None:
        _converter = make_converter()
    return _converter
