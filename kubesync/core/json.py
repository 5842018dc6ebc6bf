"""JSON encoding and decoding for every body the client sends or reads.

``orjson`` is used when importable (about 25% faster on large LIST bodies, the hot path);
otherwise the standard library. Both backends behave alike: ``loads`` raises ``ValueError``
on bad input, ``dumps`` returns compact UTF-8 bytes and raises ``TypeError`` for values
JSON has no form for (orjson's native datetime/dataclass support is switched off so that
code does not work with one backend and fail with the other).
"""

from __future__ import annotations

import json as _std_json
from typing import Any, Union

__all__ = ["BACKEND", "dumps", "json_copy", "loads"]

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised where orjson is absent
    _orjson = None  # type: ignore[assignment]

if _orjson is not None:
    BACKEND = "orjson"
    _OPTIONS = _orjson.OPT_PASSTHROUGH_DATETIME | _orjson.OPT_PASSTHROUGH_DATACLASS

    def loads(data: Union[bytes, str]) -> Any:
        """Decode one JSON document."""
        return _orjson.loads(data)

    def dumps(obj: Any) -> bytes:
        """Encode ``obj`` as compact UTF-8 JSON."""
        return _orjson.dumps(obj, option=_OPTIONS)

else:  # pragma: no cover - exercised where orjson is absent
    BACKEND = "json"

    def loads(data: Union[bytes, str]) -> Any:
        """Decode one JSON document."""
        return _std_json.loads(data)

    def dumps(obj: Any) -> bytes:
        """Encode ``obj`` as compact UTF-8 JSON."""
        return _std_json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_copy(data: Any) -> Any:
    """A deep copy of JSON-native data (through the JSON codec: faster than deepcopy)."""
    return loads(dumps(data))
