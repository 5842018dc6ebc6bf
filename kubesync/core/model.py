"""``Model``, the base of every generated class, and the tables they are built from.

A model decoded from JSON is a thin typed view: it keeps the source mapping and converts
a field on first read (``kubesync.core.lazy`` does the work), so decoding a LIST costs
almost nothing and encoding gives back exactly what came in, unknown fields included.

Generated modules hold tables, not class statements: ``define_models`` turns a table
entry into an attrs class the first time the name is looked up, because building ~200
attrs classes up front costs ~0.3 ms each. Their ``.pyi`` files carry the typed
declarations for mypy and editors.
"""

from __future__ import annotations

import sys
import threading
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Tuple,
)

import attrs

from kubesync.core.fieldtypes import IntOrString, MicroTime, Quantity, Time, TimeFormat
from kubesync.core.forkgate import guarded, import_module, renew_in_child
from kubesync.core.json import json_copy
from kubesync.core.lazy import ABSENT_AS_EMPTY, JSON_NAME, View, decode, encode, model_repr
from kubesync.core.resource import ApiResource

__all__ = [
    "ABSENT_AS_EMPTY",
    "API_REFERENCE",
    "JSON_NAME",
    "IntOrString",
    "MicroTime",
    "Model",
    "Quantity",
    "Time",
    "TimeFormat",
    "define_models",
]

API_REFERENCE = "https://kubernetes.io/docs/reference/kubernetes-api/"


@attrs.define(slots=True, kw_only=True, repr=False)
class Model(View):
    """Base of every model: an attrs class whose fields read through to decoded JSON.

    ``None`` means absent. Objects decoded from the server share the source mapping:
    ``copy.deepcopy(obj)`` gives a private copy cheaply (via its JSON form). Reading a
    shared object from several threads is safe (a first read may convert twice, harmless);
    changing one that other threads read is not: change a private copy.
    """

    _kube_raw: Optional[Dict[str, Any]] = attrs.field(
        default=None, eq=False, repr=False, alias="_kube_raw"
    )

    def __repr__(self) -> str:
        return model_repr(self)

    def __eq__(self, other: object) -> bool:
        # The generated classes are built with eq=False and compare here, field by field
        # in order as attrs's own __eq__ would: attrs compiles that method per class, about
        # 1 M instructions for ObjectMeta's, paid by every fresh process on first use.
        # Classes that users declare with @attrs.define get attrs's __eq__ as usual.
        if other.__class__ is not self.__class__:
            return NotImplemented
        for name in _compared(self.__class__):
            if not getattr(self, name) == getattr(other, name):
                return False
        return True

    def __copy__(self) -> Any:
        return attrs.evolve(self)

    def __deepcopy__(self, memo: Dict[int, Any]) -> Any:
        return decode(type(self), json_copy(encode(self)))

    def __reduce__(self) -> Tuple[Any, ...]:
        return (decode, (type(self), encode(self)))

    def _repr_html_(self) -> str:
        # Presentation lives in kubesync.display, above core: imported only when a
        # notebook asks for the HTML form.
        from kubesync.display import object_html

        return object_html(self)


_COMPARED: Dict[type, Tuple[str, ...]] = {}


def _compared(cls: type) -> Tuple[str, ...]:
    """The attributes ``Model.__eq__`` compares: the attrs fields with eq=True."""
    names = _COMPARED.get(cls)
    if names is None:
        names = _COMPARED[cls] = tuple(a.name for a in attrs.fields(cls) if a.eq)
    return names


# -- lazy model modules -------------------------------------------------------------------

#: One field row of a generated table: attribute, JSON name, annotation, required.
FieldRow = Tuple[str, str, str, bool]
#: A generated table entry: (apiVersion, kind) when the class has exactly one,
#: resource (plural, namespaced, verbs, subresources, short names) for top-level kinds,
#: and the field rows.
Entry = Tuple[
    Optional[Tuple[str, str]],
    Optional[Tuple[str, bool, Tuple[str, ...], Tuple[str, ...], Tuple[str, ...]]],
    Tuple[FieldRow, ...],
]

# One lock for all class building: two threads asking for the same name must get the same
# class object, or isinstance() would fail between them.
_BUILD_LOCK = threading.RLock()
renew_in_child(globals(), "_BUILD_LOCK", threading.RLock)


def define_models(
    module: str, group_version: str, table: Mapping[str, Entry]
) -> Tuple[Callable[[str], type], Callable[[], List[str]], Tuple[str, ...]]:
    """The ``__getattr__``, ``__dir__`` and ``__all__`` of a generated models module."""

    def __getattr__(name: str) -> type:
        entry = table.get(name)
        if entry is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        namespace = sys.modules[module].__dict__
        with guarded(), _BUILD_LOCK:  # a fork must not find the lock held (forkgate)
            cls = namespace.get(name)
            if cls is None:
                cls = namespace[name] = _build_class(module, group_version, name, entry)
        return cls

    def __dir__() -> List[str]:
        return sorted(set(sys.modules[module].__dict__) | set(table))

    return __getattr__, __dir__, tuple(sorted(table))


def _build_class(module: str, group_version: str, name: str, entry: Entry) -> type:
    gvk, resource, rows = entry
    annotations: Dict[str, str] = {}
    body: Dict[str, Any] = {
        "__module__": module,
        "__qualname__": name,
        "__doc__": f"{group_version} {name}; see {API_REFERENCE}",
        "__annotations__": annotations,
    }
    defaults = {"api_version": gvk[0], "kind": gvk[1]} if gvk else {}
    for attr, json_name, annotation, required in rows:
        if gvk and attr == "metadata" and annotation.rpartition(".")[2] == "ObjectMeta":
            annotations[attr] = annotation
            body[attr] = attrs.field(factory=_object_meta,
                                     metadata={JSON_NAME: json_name, ABSENT_AS_EMPTY: True})
            continue
        annotations[attr] = annotation if required else f"Optional[{annotation}]"
        body[attr] = attrs.field(
            default=attrs.NOTHING if required else defaults.get(attr),
            metadata={JSON_NAME: json_name},
        )
    if resource is not None and gvk is not None:
        group, _, version = gvk[0].rpartition("/")
        plural, namespaced, verbs, subresources, short_names = resource
        body["api_resource"] = ApiResource(
            group, version, gvk[1], plural, namespaced, verbs, subresources, short_names
        )
    cls = type(name, (Model,), body)
    return attrs.define(slots=True, kw_only=True, repr=False, eq=False)(cls)


def _object_meta() -> Any:
    """A new, empty ObjectMeta (looked up by name: the models are built on ``core``)."""
    return import_module("kubesync.models.meta_v1").ObjectMeta()
