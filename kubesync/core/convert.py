"""JSON <-> objects, in one import: decode, encode, lists, validation, the converter.

The work is done where each concern lives; this module is the public entry point:

- ``kubesync.core.lazy``: models as lazy, lossless views (``decode``, ``encode``,
  ``validate``, ``drop_field``);
- ``kubesync.core.objectlist``: ``ObjectList`` and ``decode_list``;
- ``kubesync.core.time``: ``parse_time``, ``format_time``;
- ``kubesync.core.converter``: the one cattrs converter (``make_converter``,
  ``configure_converter``; ``converter`` is made on first use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubesync.core.converter import configure_converter, get_converter, make_converter
from kubesync.core.json import json_copy
from kubesync.core.lazy import codec_for, decode, drop_field, encode, model_repr, plan_of, validate
from kubesync.core.location import location
from kubesync.core.objectlist import ObjectList, decode_list
from kubesync.core.time import format_time, parse_time

if TYPE_CHECKING:
    import cattrs

__all__ = [
    "ObjectList",
    "codec_for",
    "configure_converter",
    "converter",
    "decode",
    "decode_list",
    "drop_field",
    "encode",
    "format_time",
    "json_copy",
    "location",
    "make_converter",
    "model_repr",
    "parse_time",
    "plan_of",
    "validate",
]

if TYPE_CHECKING:
    converter: cattrs.Converter
else:

    def __getattr__(name: str) -> Any:
        if name == "converter":
            return get_converter()
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
