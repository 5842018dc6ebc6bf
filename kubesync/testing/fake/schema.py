"""How an object's fields merge: the type tree strategic merge patch and apply walk.

Built-in kinds take it from the generated models (field names and types) and
``kubesync.models._merge`` (the spec's patch strategies, merge keys and list types);
custom resources from their CRD's ``openAPIV3Schema`` (``x-kubernetes-list-type``,
``x-kubernetes-list-map-keys``, ``x-kubernetes-map-type``). A field the tree does not
know merges as untyped JSON: maps merge key by key, lists are replaced whole.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Dict, Mapping, NamedTuple, Optional, Tuple

import attrs

from kubesync.core.lazy import JSON_NAME


class ListRule(NamedTuple):
    """One field's merge extensions, as the spec names them."""

    strategy: Optional[str]      # x-kubernetes-patch-strategy: "merge", "retainKeys", ...
    merge_key: Optional[str]     # x-kubernetes-patch-merge-key
    list_type: Optional[str]     # x-kubernetes-list-type: "atomic", "set", "map"
    map_keys: Tuple[str, ...]    # x-kubernetes-list-map-keys
    map_type: Optional[str]      # x-kubernetes-map-type: "atomic", "granular"


NO_RULE = ListRule(None, None, None, (), None)


class TypeInfo:
    """The merge view of one object type; the base knows nothing (untyped JSON)."""

    atomic = False

    def child(self, name: str) -> TypeInfo:
        """The type of field ``name``'s value (of its items, for a list or map)."""
        return UNTYPED

    def rule(self, name: str) -> ListRule:
        return NO_RULE


UNTYPED = TypeInfo()
_WRAPPER_RE = re.compile(r"^(?:Optional|List|Dict\[str,\s*)\[?(.*)\]$")


def _unwrap(annotation: str) -> str:
    while True:
        m = _WRAPPER_RE.match(annotation.strip())
        if m is None:
            return annotation.strip()
        annotation = m.group(1)


class ModelType(TypeInfo):
    """A generated model class as a merge type."""

    def __init__(self, cls: type) -> None:
        from kubesync.models._merge import ATOMIC, FIELDS

        self._cls = cls
        self._module = cls.__module__
        key = f"{self._module.rpartition('.')[2]}.{cls.__name__}"
        self.atomic = key in ATOMIC
        self._rules: Mapping[str, Tuple[Any, ...]] = FIELDS.get(key, {})  # type: ignore[assignment]
        self._types: Dict[str, str] = {
            f.metadata[JSON_NAME]: str(f.type) for f in attrs.fields(cls)
            if JSON_NAME in f.metadata
        }

    def child(self, name: str) -> TypeInfo:
        annotation = self._types.get(name)
        if annotation is None:
            return UNTYPED
        target = _unwrap(annotation)
        module, _, cls_name = target.rpartition(".")
        module = f"kubesync.models.{module}" if module else self._module
        if not cls_name[:1].isupper() or cls_name in ("Any", "Time", "MicroTime",
                                                      "IntOrString", "Quantity"):
            return UNTYPED
        cls = getattr(importlib.import_module(module), cls_name, None)
        return ModelType(cls) if isinstance(cls, type) else UNTYPED

    def rule(self, name: str) -> ListRule:
        row = self._rules.get(name)
        return ListRule(*row) if row else NO_RULE


class SchemaType(TypeInfo):
    """A node of a CRD's structural schema as a merge type."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self._schema = schema
        self.atomic = schema.get("x-kubernetes-map-type") == "atomic"

    def _prop(self, name: str) -> Mapping[str, Any]:
        props = self._schema.get("properties") or {}
        if name in props:
            return dict(props[name])
        extra = self._schema.get("additionalProperties")
        return extra if isinstance(extra, Mapping) else {}

    def child(self, name: str) -> TypeInfo:
        prop: Mapping[str, Any] = self._prop(name)
        if prop.get("type") == "array":
            prop = prop.get("items") or {}
        elif prop.get("type") == "object" and "additionalProperties" in prop and \
                not prop.get("properties"):
            extra = prop["additionalProperties"]
            prop = extra if isinstance(extra, Mapping) else {}
        return SchemaType(prop) if prop else UNTYPED

    def rule(self, name: str) -> ListRule:
        prop = self._prop(name)
        return ListRule(None, None, prop.get("x-kubernetes-list-type"),
                        tuple(prop.get("x-kubernetes-list-map-keys") or ()),
                        prop.get("x-kubernetes-map-type"))
