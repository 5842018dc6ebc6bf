"""One watch document to a ``WatchEvent``: the shapes a decoder gives, and the bad ones."""

from __future__ import annotations

import types
from typing import Any

import pytest

from kubesync.core.events import parse_event
from kubesync.errors import DecodeError, NotFound


@pytest.mark.parametrize("doc", [
    {"type": 1, "object": {}},
    {"type": "ADDED", "object": []},
    {"type": "ADDED"},
    [],
    None,
])
def test_a_document_without_a_string_type_and_an_object_is_a_decode_error(doc: Any) -> None:
    with pytest.raises(DecodeError, match="needs a string 'type' and an object"):
        parse_event(doc, lambda o: o, kind="ConfigMap")


def test_dicts_and_other_mappings_both_decode() -> None:
    for doc in ({"type": "ADDED", "object": {"a": 1}},
                types.MappingProxyType({"type": "MODIFIED", "object": {"a": 2}})):
        ev = parse_event(doc, dict)
        assert ev.type == doc["type"] and ev.object == doc["object"]


def test_an_error_event_raises_its_status() -> None:
    status = {"kind": "Status", "code": 404, "reason": "NotFound", "message": "gone"}
    with pytest.raises(NotFound, match="gone"):
        parse_event({"type": "ERROR", "object": status}, dict)
