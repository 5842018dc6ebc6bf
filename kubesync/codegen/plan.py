"""From one version of a CustomResourceDefinition to the classes of its module.

A structural schema (what apiextensions.k8s.io/v1 requires) maps onto types node by node:
an object with properties becomes a class named after its path (``WidgetSpecPorts``), an
array a ``List``, ``additionalProperties`` a ``Dict[str, ...]``, an enum a ``Literal``,
``x-kubernetes-int-or-string`` an ``IntOrString``, a ``date-time`` string a ``Time``, and a
subtree that keeps unknown fields (``x-kubernetes-preserve-unknown-fields`` without
properties) a plain mapping. ``x-kubernetes-embedded-resource`` objects get ``apiVersion``,
``kind`` and a typed ``metadata``. ``anyOf``/``oneOf``/``allOf``/``not`` only validate in a
structural schema, so they add no types.

Everything here is plain data (``ModuleSpec``); ``render`` writes it as Python source.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, List, Mapping, Optional, Set, Tuple

import attrs

from kubesync.codegen.naming import class_part, snake
from kubesync.errors import KubeError

__all__ = ["ClassSpec", "CodegenError", "FieldSpec", "ModuleSpec", "crd_digest", "plan_version"]

# Names the generated module imports or defines at top level: a class must not take one.
RESERVED = frozenset({
    "Any", "ClassVar", "Dict", "List", "Literal", "Optional", "Union", "Model", "ApiResource",
    "Time", "IntOrString", "ObjectMeta", "attrs", "annotations", "JSON_NAME", "ABSENT_AS_EMPTY",
})
# Attribute names a generated class must not use: Model's own, and the class attribute.
RESERVED_ATTRS = frozenset({"api_resource", "kube_raw"})
_SCALARS = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}


class CodegenError(KubeError, ValueError):
    """A CRD the generator cannot read: names the CRD, the version and the schema path."""


@attrs.frozen
class FieldSpec:
    """One field: attribute and JSON names, the annotation (without Optional), whether the
    schema requires it, a scalar default (as Python source), and the schema's text."""

    attr: str
    json_name: str
    annotation: str
    required: bool
    default: Optional[str] = None
    description: Optional[str] = None


@attrs.frozen
class ClassSpec:
    """One class: its name, where it sits in the schema, its fields and text."""

    name: str
    path: str
    fields: Tuple[FieldSpec, ...]
    description: Optional[str] = None
    embedded: bool = False


@attrs.frozen
class ModuleSpec:
    """One module: the classes of one CRD version, the top-level one last."""

    crd_name: str
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    subresources: Tuple[str, ...]
    short_names: Tuple[str, ...]
    digest: str
    classes: Tuple[ClassSpec, ...]
    uses: Tuple[str, ...]
    storage: bool = False
    deprecated: bool = False

    @property
    def root(self) -> ClassSpec:
        """The resource class (the kind)."""
        return self.classes[-1]


def crd_digest(crd: Mapping[str, Any]) -> str:
    """The sha256 of the CRD's spec in canonical JSON: names what a module was made from."""
    spec = crd.get("spec", {})
    return hashlib.sha256(
        json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()


def plan_version(crd: Mapping[str, Any], version: str) -> ModuleSpec:
    """The module plan of ``version`` of CRD ``crd`` (a dict in the API's JSON form)."""
    name = _get(crd, ("metadata", "name"), str, "the CRD")
    where = f"CustomResourceDefinition {name}"
    spec = _get(crd, ("spec",), dict, where)
    group = _get(spec, ("group",), str, f"{where}: spec")
    names = _get(spec, ("names",), dict, f"{where}: spec")
    kind = _get(names, ("kind",), str, f"{where}: spec.names")
    plural = _get(names, ("plural",), str, f"{where}: spec.names")
    versions = _get(spec, ("versions",), list, f"{where}: spec")
    entry = next((v for v in versions if isinstance(v, dict) and v.get("name") == version), None)
    if entry is None:
        served = [v.get("name") for v in versions if isinstance(v, dict)]
        raise CodegenError(f"{where} has no version {version!r} (it has {served})")
    where = f"{where} version {version}"
    schema = (entry.get("schema") or {}).get("openAPIV3Schema")
    if not isinstance(schema, dict):
        raise CodegenError(f"{where}: schema.openAPIV3Schema is missing; a typed model needs "
                           "a structural schema")
    if kind in RESERVED:
        raise CodegenError(f"{where}: kind {kind!r} clashes with a name the module imports")
    walker = _Walker(where)
    root = walker.root(kind, schema)
    subresources = tuple(s for s in ("status", "scale") if s in (entry.get("subresources") or {}))
    return ModuleSpec(
        crd_name=name, group=group, version=version, kind=kind, plural=plural,
        namespaced=spec.get("scope", "Namespaced") != "Cluster", subresources=subresources,
        short_names=tuple(names.get("shortNames") or ()), digest=crd_digest(crd),
        classes=(*tuple(walker.classes), root), uses=tuple(sorted(walker.uses)),
        storage=bool(entry.get("storage")), deprecated=bool(entry.get("deprecated")),
    )


def _get(node: Mapping[str, Any], path: Tuple[str, ...], tp: type, where: str) -> Any:
    value: Any = node
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if not isinstance(value, tp) or (tp is str and not value):
        expected = "a non-empty string" if tp is str else f"a {tp.__name__}"
        raise CodegenError(f"{where}: {'.'.join(path)} must be {expected}, got {value!r}")
    return value


class _Walker:
    """Walks one schema depth first; nested classes come out before the classes using them."""

    def __init__(self, where: str):
        self.where = where
        self.classes: List[ClassSpec] = []
        self.names: Set[str] = set()
        self.uses: Set[str] = set()

    def root(self, kind: str, schema: Dict[str, Any]) -> ClassSpec:
        self.names.add(kind)
        properties = dict(schema.get("properties") or {})
        for name in ("apiVersion", "kind", "metadata"):
            properties.pop(name, None)
        fields = [
            FieldSpec("api_version", "apiVersion", "str", False),
            FieldSpec("kind", "kind", "str", False),
            FieldSpec("metadata", "metadata", "ObjectMeta", False),
        ]
        self.uses.add("ObjectMeta")
        fields += self.fields(kind, "", properties, set(schema.get("required") or ()))
        return ClassSpec(kind, "", tuple(fields), _text(schema))

    def fields(self, owner: str, path: str, properties: Mapping[str, Any],
               required: Set[str]) -> List[FieldSpec]:
        out: List[FieldSpec] = []
        seen: Dict[str, str] = {}
        for json_name in sorted(properties):
            node = properties[json_name]
            at = f"{path}.{json_name}" if path else json_name
            if not isinstance(node, dict):
                raise CodegenError(f"{self.where}: {at}: a schema must be an object, "
                                   f"got {node!r}")
            attr = snake(json_name)
            while attr in RESERVED_ATTRS or attr in seen:
                attr += "_"
            seen[attr] = json_name
            annotation = self.annotation(owner + class_part(json_name), at, node)
            out.append(FieldSpec(attr, json_name, annotation, json_name in required,
                                 _default(node, annotation), _text(node)))
        return out

    def annotation(self, class_name: str, path: str, node: Dict[str, Any]) -> str:
        if node.get("x-kubernetes-int-or-string"):
            self.uses.add("IntOrString")
            return "IntOrString"
        kind = node.get("type")
        if kind == "array":
            items = node.get("items")
            if not isinstance(items, dict):
                return "List[Any]"
            return f"List[{self.annotation(class_name, path + '[]', items)}]"
        if kind == "object" or (kind is None and "properties" in node):
            return self.object(class_name, path, node)
        if kind == "string":
            enum = node.get("enum")
            if isinstance(enum, list) and enum and all(isinstance(e, str) for e in enum):
                self.uses.add("Literal")
                return f"Literal[{', '.join(_source(e) for e in enum)}]"
            if node.get("format") == "date-time":
                self.uses.add("Time")
                return "Time"
        if kind in _SCALARS:
            return _SCALARS[kind]
        if kind is None:  # only x-kubernetes-preserve-unknown-fields: any JSON value
            return "Any"
        raise CodegenError(f"{self.where}: {path}: unknown type {kind!r}")

    def object(self, class_name: str, path: str, node: Dict[str, Any]) -> str:
        properties = node.get("properties")
        embedded = bool(node.get("x-kubernetes-embedded-resource"))
        if not properties and not embedded:
            extra = node.get("additionalProperties")
            if isinstance(extra, dict):
                return f"Dict[str, {self.annotation(class_name, path + '{}', extra)}]"
            return "Dict[str, Any]"
        name = class_name
        n = 2
        while name in self.names or name in RESERVED:
            name, n = f"{class_name}{n}", n + 1
        self.names.add(name)
        fields: List[FieldSpec] = []
        props = dict(properties or {})
        if embedded:
            for json_name in ("apiVersion", "kind", "metadata"):
                props.pop(json_name, None)
            fields += [FieldSpec("api_version", "apiVersion", "str", False),
                       FieldSpec("kind", "kind", "str", False),
                       FieldSpec("metadata", "metadata", "ObjectMeta", False)]
            self.uses.add("ObjectMeta")
        fields += self.fields(name, path, props, set(node.get("required") or ()))
        self.classes.append(ClassSpec(name, path, tuple(fields), _text(node), embedded))
        return name


def _text(node: Mapping[str, Any]) -> Optional[str]:
    text = node.get("description")
    return text.strip() if isinstance(text, str) and text.strip() else None


def _source(value: Any) -> str:
    """A JSON scalar as Python source, strings double-quoted."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else repr(value)


def _default(node: Mapping[str, Any], annotation: str) -> Optional[str]:
    """A scalar default as Python source; structured defaults are left to the server."""
    value = node.get("default")
    if isinstance(value, bool):
        return _source(value) if annotation == "bool" else None
    if isinstance(value, int) and annotation in ("int", "float", "IntOrString"):
        return _source(value)
    if isinstance(value, float) and annotation == "float":
        return _source(value)
    if isinstance(value, str) and (annotation in ("str", "IntOrString")
                                   or annotation.startswith("Literal[")):
        return _source(value)
    return None
