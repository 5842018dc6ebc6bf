"""``CustomResource``: a resource class built from attrs spec/status classes, and its CRD.

kube-derive's ``#[derive(CustomResource)]`` generates ``Foo`` from ``FooSpec``. Here the
class statement names it (so type checkers know ``Foo``), or ``custom_resource`` builds it::

    class Foo(CustomResource[FooSpec, FooStatus], group="example.com", version="v1"): ...
    Foo = custom_resource(group="example.com", version="v1", status=FooStatus)(FooSpec)

Either way ``Foo`` is a ``Model`` like the generated ones (lazy decoding, unknown fields
kept, ``None`` means absent) with ``metadata``, ``spec`` and ``status`` fields, an
``api_resource`` for ``Api``, ``Foo.new(name, spec)`` and ``Foo.crd()``.
"""

from __future__ import annotations

import sys
import types
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    ClassVar,
    Dict,
    Generic,
    Iterable,
    List,
    Mapping,
    Optional,
    Tuple,
    Type,
    TypeVar,
    Union,
    get_args,
    get_origin,
)

import attrs

from kubesync.core.convert import decode, encode, json_copy
from kubesync.core.model import ABSENT_AS_EMPTY, Model
from kubesync.core.resource import ApiResource
from kubesync.crd.schema import Rule, SchemaError, model_of, rules_json, schema_for, to_model
from kubesync.errors import UsageError

if TYPE_CHECKING:
    from typing_extensions import Self

    from kubesync.models.apiextensions_v1 import CustomResourceDefinition
    from kubesync.models.meta_v1 import ObjectMeta

__all__ = [
    "CustomResource",
    "PrinterColumn",
    "ScaleSubresource",
    "custom_resource",
    "merge_crds",
]

# A spec is any attrs class: a Model subclass, or a plain one (a Model is built from it).
S = TypeVar("S", bound=attrs.AttrsInstance)
T = TypeVar("T")

CRD_API_VERSION = "apiextensions.k8s.io/v1"
# Every custom resource is served with these verbs (the server's own list for CRs).
_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
_COLUMN_TYPES = ("integer", "number", "string", "boolean", "date")
# The key under which the decorator hands the caller's locals to the metaclass.
_LOCALNS = "__kubesync_localns__"


@attrs.frozen
class PrinterColumn:
    """One additionalPrinterColumn: a column of ``kubectl get`` (and of Table answers).

    ``type`` is integer, number, string, boolean or date; ``json_path`` is a JSONPath into
    the object, e.g. ``.spec.replicas``. ``priority`` > 0 shows only with ``-o wide``.
    """

    name: str
    type: str = attrs.field(validator=attrs.validators.in_(_COLUMN_TYPES))
    json_path: str
    description: Optional[str] = None
    format: Optional[str] = None
    priority: Optional[int] = None

    def to_dict(self) -> Dict[str, Any]:
        """The CRD's JSON form (``jsonPath`` and the rest)."""
        out = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        return _add_present(out, description=self.description, format=self.format,
                            priority=self.priority)


@attrs.frozen
class ScaleSubresource:
    """The scale subresource: where the replica counts and the label selector live.

    ``label_selector_path`` (e.g. ``.status.selector``, a string field) lets the
    HorizontalPodAutoscaler find the pods.
    """

    spec_replicas_path: str = ".spec.replicas"
    status_replicas_path: str = ".status.replicas"
    label_selector_path: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        """The CRD's JSON form."""
        out = {"specReplicasPath": self.spec_replicas_path,
               "statusReplicasPath": self.status_replicas_path}
        return _add_present(out, labelSelectorPath=self.label_selector_path)


def _add_present(out: Dict[str, Any], **values: Any) -> Dict[str, Any]:
    out.update((k, v) for k, v in values.items() if v is not None)
    return out


@attrs.frozen
class Definition:
    """Everything a resource class says about its CRD (one version of it)."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    shortnames: Tuple[str, ...]
    categories: Tuple[str, ...]
    printer_columns: Tuple[Dict[str, Any], ...]
    scale: Optional[Dict[str, Any]]
    spec: type
    status: Optional[type]
    schema: Dict[str, Any]
    selectable_fields: Tuple[str, ...] = ()
    deprecated: bool = False
    deprecation_warning: Optional[str] = None

    @property
    def api_resource(self) -> ApiResource:
        subresources = ("status",) * (self.status is not None) + ("scale",) * bool(self.scale)
        return ApiResource(self.group, self.version, self.kind, self.plural, self.namespaced,
                           _VERBS, subresources, self.shortnames)

    def crd_json(self) -> Dict[str, Any]:
        """The CustomResourceDefinition as JSON: names, scope and this one version."""
        version: Dict[str, Any] = {
            "name": self.version, "served": True, "storage": True,
            "schema": {"openAPIV3Schema": json_copy(self.schema)},
        }
        subresources: Dict[str, Any] = {}
        if self.status is not None:
            subresources["status"] = {}
        if self.scale:
            subresources["scale"] = dict(self.scale)
        if subresources:
            version["subresources"] = subresources
        if self.printer_columns:
            version["additionalPrinterColumns"] = [dict(c) for c in self.printer_columns]
        if self.selectable_fields:
            version["selectableFields"] = [{"jsonPath": p} for p in self.selectable_fields]
        if self.deprecated:
            version["deprecated"] = True
            if self.deprecation_warning is not None:
                version["deprecationWarning"] = self.deprecation_warning
        names: Dict[str, Any] = {"kind": self.kind, "listKind": f"{self.kind}List",
                                 "plural": self.plural, "singular": self.kind.lower()}
        if self.shortnames:
            names["shortNames"] = list(self.shortnames)
        if self.categories:
            names["categories"] = list(self.categories)
        return {
            "apiVersion": CRD_API_VERSION,
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{self.plural}.{self.group}"},
            "spec": {"group": self.group, "names": names,
                     "scope": "Namespaced" if self.namespaced else "Cluster",
                     "versions": [version]},
        }


def define(
    name: str,
    doc: Optional[str],
    spec: Any,
    status: Any,
    localns: Optional[Mapping[str, Any]],
    *,
    group: str,
    version: str,
    kind: Optional[str] = None,
    plural: Optional[str] = None,
    namespaced: bool = True,
    shortnames: Iterable[str] = (),
    categories: Iterable[str] = (),
    printer_columns: Iterable[Union[PrinterColumn, Mapping[str, Any]]] = (),
    scale: Union[ScaleSubresource, Mapping[str, Any], None] = None,
    validations: Iterable[Union[Rule, str]] = (),
    selectable_fields: Iterable[str] = (),
    deprecated: bool = False,
    deprecation_warning: Optional[str] = None,
) -> Definition:
    """Check the options and the classes of resource ``name``; build its root schema.

    ``validations`` are CEL rules on the whole object (``self.spec``, ``self.metadata``);
    ``selectable_fields`` are JSON paths (``.spec.color``) the server then accepts in
    ``field_selector``; ``deprecated``/``deprecation_warning`` mark this version so the
    server warns its clients.

    Plain attrs spec and status classes are replaced by the Model subclasses built from
    them (``model_of``), so the objects decode lazily and keep unknown fields.
    """
    kind = kind or name
    for option, value in (("group", group), ("version", version), ("kind", kind)):
        if not isinstance(value, str) or not value:
            raise UsageError(f"{name}: {option} must be a non-empty string, not {value!r}")
    spec = _model_of(spec, localns, f"{name}.spec")
    status = None if status is None else _model_of(status, localns, f"{name}.status")
    properties = {"spec": schema_for(spec, localns, where=f"{name}.spec")}
    if status is not None:
        node = schema_for(status, localns, where=f"{name}.status")
        node["nullable"] = True
        properties["status"] = node
    root: Dict[str, Any] = {"type": "object"}
    if doc:
        import inspect

        root["description"] = inspect.cleandoc(doc)
    root.update(properties=properties, required=["spec"])
    rules = rules_json(list(validations), name)
    if rules:
        root["x-kubernetes-validations"] = rules
    paths = _strings(selectable_fields, "selectable_fields")
    for path in paths:
        if not path.startswith("."):
            raise UsageError(f"{name}: a selectable field is a JSON path such as "
                             f"'.spec.color', not {path!r}")
    if deprecation_warning is not None and not deprecated:
        raise UsageError(f"{name}: deprecation_warning is for a deprecated version; "
                         "set deprecated=True too")
    return Definition(
        group=group, version=version, kind=kind, plural=plural or f"{kind.lower()}s",
        namespaced=bool(namespaced), shortnames=_strings(shortnames, "shortnames"),
        categories=_strings(categories, "categories"),
        printer_columns=tuple(_column(c) for c in printer_columns),
        scale=_scale(scale), spec=spec, status=status, schema=root,
        selectable_fields=paths, deprecated=bool(deprecated),
        deprecation_warning=deprecation_warning,
    )


def _model_of(cls: Any, localns: Optional[Mapping[str, Any]], where: str) -> Any:
    try:
        return model_of(cls, localns)
    except SchemaError as e:
        raise SchemaError(f"{where}: {e}") from None


def _strings(values: Iterable[str], option: str) -> Tuple[str, ...]:
    if isinstance(values, str):
        raise UsageError(f"{option} is a list of strings, not one string ({values!r})")
    return tuple(values)


def _column(column: Union[PrinterColumn, Mapping[str, Any]]) -> Dict[str, Any]:
    if isinstance(column, PrinterColumn):
        return column.to_dict()
    missing = {"name", "type", "jsonPath"} - set(column)
    if missing:
        raise UsageError(f"printer column {dict(column)!r} lacks {sorted(missing)}")
    if column["type"] not in _COLUMN_TYPES:
        raise UsageError(f"printer column type is one of {_COLUMN_TYPES}, "
                         f"not {column['type']!r}")
    return dict(column)


def _scale(scale: Union[ScaleSubresource, Mapping[str, Any], None]) -> Optional[Dict[str, Any]]:
    if scale is None or isinstance(scale, ScaleSubresource):
        return None if scale is None else scale.to_dict()
    missing = {"specReplicasPath", "statusReplicasPath"} - set(scale)
    if missing:
        raise UsageError(f"scale {dict(scale)!r} lacks {sorted(missing)}")
    return dict(scale)


# -- the resource class -------------------------------------------------------------------


class _ResourceType(type):
    """Makes each ``CustomResource[Spec, Status]`` subclass a slotted attrs ``Model``.

    The class keywords (group, version, ...) are consumed here; attrs then rebuilds the
    class with slots, which comes back through here and is left alone.
    """

    def __new__(mcls, name: str, bases: Tuple[type, ...], ns: Dict[str, Any],
                **options: Any) -> Any:
        if "_crd_definition" in ns or not any(isinstance(b, _ResourceType) for b in bases):
            return super().__new__(mcls, name, bases, ns, **options)
        # Names in string annotations may be classes local to the function that declares
        # the resource: that frame's locals (or the decorator caller's) resolve them.
        localns = ns.pop(_LOCALNS, None)
        if localns is None:
            localns = sys._getframe(1).f_locals
        spec, status = _type_args(name, ns.get("__orig_bases__", ()))
        if ns.get("__annotations__"):
            raise SchemaError(
                f"{name}: a custom resource's fields are metadata, spec and status; declare "
                f"{sorted(ns['__annotations__'])} on its spec or status class"
            )
        _check_options(name, options)
        definition = define(name, ns.get("__doc__"), spec, status, localns, **options)
        body = dict(ns)
        body.update(_fields(definition))
        cls = super().__new__(mcls, name, bases, body)
        return attrs.define(slots=True, kw_only=True, repr=False)(cls)


def _check_options(name: str, options: Mapping[str, Any]) -> None:
    import inspect

    known = [p.name for p in inspect.signature(define).parameters.values()
             if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise UsageError(f"{name}: unknown option(s) {unknown}; the options are {known}")


def _type_args(name: str, orig_bases: Tuple[Any, ...]) -> Tuple[type, Optional[type]]:
    for base in orig_bases:
        if get_origin(base) is CustomResource:
            spec, status = get_args(base)
            if isinstance(spec, TypeVar) or isinstance(status, TypeVar):
                break
            return spec, None if status is type(None) else status
    raise SchemaError(
        f"{name}: name the spec and status classes, as in "
        f"`class {name}(CustomResource[{name}Spec, {name}Status], group=..., version=...)` "
        "(None for no status)"
    )


def _fields(d: Definition) -> Dict[str, Any]:
    from kubesync.models.meta_v1 import ObjectMeta

    return {
        "__annotations__": {
            "api_version": Optional[str], "kind": Optional[str], "metadata": ObjectMeta,
            "spec": d.spec, "status": Optional[d.status if d.status is not None else Any],
        },
        "api_version": attrs.field(default=f"{d.group}/{d.version}"),
        "kind": attrs.field(default=d.kind),
        "metadata": attrs.field(factory=ObjectMeta, metadata={ABSENT_AS_EMPTY: True}),
        # to_model: an instance of a plain spec or status class becomes its Model's.
        "spec": attrs.field(converter=to_model),
        "status": attrs.field(default=None, converter=to_model),
        "api_resource": d.api_resource,
        "_crd_definition": d,
    }


class CustomResource(Model, Generic[S, T], metaclass=_ResourceType):
    """Base of custom resource classes: subclass ``CustomResource[Spec, Status]`` with the
    CRD's options as class keywords (``group``, ``version``; ``kind`` defaults to the
    class name). Spec, status and nested classes are attrs classes: ``Model`` subclasses,
    or plain ones, for which a ``Model`` with the same fields is built (reading
    ``obj.spec`` then gives that Model, which keeps the fields the class does not know;
    instances of the plain class are taken wherever one is set)."""

    __slots__ = ()

    api_resource: ClassVar[ApiResource]
    _crd_definition: ClassVar[Definition]

    if TYPE_CHECKING:
        api_version: Optional[str]
        kind: Optional[str]
        metadata: ObjectMeta
        spec: S
        status: Optional[T]

        def __init__(
            self, *, spec: S, metadata: ObjectMeta = ..., status: Optional[T] = None,
            api_version: Optional[str] = ..., kind: Optional[str] = ...,
            _kube_raw: Optional[Dict[str, Any]] = None,
        ) -> None: ...

        def __init_subclass__(
            cls, *, group: str, version: str, kind: Optional[str] = None,
            plural: Optional[str] = None, namespaced: bool = True,
            shortnames: Iterable[str] = (), categories: Iterable[str] = (),
            printer_columns: Iterable[Union[PrinterColumn, Mapping[str, Any]]] = (),
            scale: Union[ScaleSubresource, Mapping[str, Any], None] = None,
            validations: Iterable[Union[Rule, str]] = (),
            selectable_fields: Iterable[str] = (), deprecated: bool = False,
            deprecation_warning: Optional[str] = None,
        ) -> None: ...

    @classmethod
    def new(cls, name: str, spec: S, *, namespace: Optional[str] = None) -> Self:
        """A new object named ``name`` (in ``namespace``, for namespaced kinds) with ``spec``."""
        from kubesync.models.meta_v1 import ObjectMeta

        d = _definition(cls)
        spec = to_model(spec)
        if not isinstance(spec, d.spec):
            raise UsageError(f"{d.kind}.new takes a {d.spec.__name__} spec, "
                             f"not {type(spec).__name__}")
        if namespace is not None and not d.namespaced:
            raise UsageError(f"{d.kind} is cluster-scoped: no namespace (got {namespace!r})")
        return cls(metadata=ObjectMeta(name=name, namespace=namespace), spec=spec)

    @classmethod
    def crd(cls) -> CustomResourceDefinition:
        """This resource's CustomResourceDefinition (a new model each call)."""
        from kubesync.models.apiextensions_v1 import CustomResourceDefinition

        return decode(CustomResourceDefinition, _definition(cls).crd_json())


def _definition(cls: type) -> Definition:
    d = cls.__dict__.get("_crd_definition")
    if d is None:
        raise UsageError(f"{cls.__name__} is not a custom resource class; subclass "
                         "CustomResource[Spec, Status] with group= and version=")
    return d


def custom_resource(
    *,
    group: str,
    version: str,
    kind: Optional[str] = None,
    plural: Optional[str] = None,
    namespaced: bool = True,
    status: Optional[Type[T]] = None,
    shortnames: Iterable[str] = (),
    categories: Iterable[str] = (),
    printer_columns: Iterable[Union[PrinterColumn, Mapping[str, Any]]] = (),
    scale: Union[ScaleSubresource, Mapping[str, Any], None] = None,
    validations: Iterable[Union[Rule, str]] = (),
    selectable_fields: Iterable[str] = (),
    deprecated: bool = False,
    deprecation_warning: Optional[str] = None,
) -> Callable[[Type[S]], Type[CustomResource[S, T]]]:
    """kube-derive's ``#[derive(CustomResource)]``: the resource class of a spec class.

    ``Foo = custom_resource(group=..., version=..., status=FooStatus)(FooSpec)``; ``kind``
    defaults to the spec's name without ``Spec``, ``plural`` to the lowercase kind + "s".
    The spec class is left as it is: a ``Model`` subclass or a plain attrs class (see
    ``CustomResource`` for what a plain one gives back). The class is named after the
    kind: bind it to that name (as pickle looks it up there). For a class type checkers
    accept in annotations, write
    ``class Foo(CustomResource[FooSpec, FooStatus], group=..., version=...)``.
    """
    localns = sys._getframe(1).f_locals

    def build(spec: Type[S]) -> Type[CustomResource[S, T]]:
        name = kind
        if name is None:
            base = getattr(spec, "__name__", "")
            if not base.endswith("Spec") or base == "Spec":
                raise UsageError(f"{base or spec!r}: give kind=..., or name the spec class "
                                 "<Kind>Spec")
            name = base[: -len("Spec")]

        def body(ns: Dict[str, Any]) -> None:
            ns.update(__module__=spec.__module__, __qualname__=name)
            ns[_LOCALNS] = localns

        options = dict(group=group, version=version, kind=name, plural=plural,
                       namespaced=namespaced, shortnames=shortnames, categories=categories,
                       printer_columns=printer_columns, scale=scale,
                       validations=validations, selectable_fields=selectable_fields,
                       deprecated=deprecated, deprecation_warning=deprecation_warning)
        base_class = CustomResource[spec, status]  # type: ignore[valid-type]
        made: Type[CustomResource[S, T]] = types.new_class(name, (base_class,), options, body)
        return made

    return build


# -- several versions ----------------------------------------------------------------------


def merge_crds(
    crds: Iterable[CustomResourceDefinition], *, storage: str
) -> CustomResourceDefinition:
    """One CRD serving every version of ``crds`` (same group, names and scope), with
    ``storage`` the version the server stores objects as.

    Without a conversion webhook the server converts between versions by changing
    ``apiVersion`` only, so keep the versions' schemas compatible.
    """
    from kubesync.models.apiextensions_v1 import CustomResourceDefinition

    bodies = [encode(c) for c in crds]
    if not bodies:
        raise UsageError("merge_crds needs at least one CRD")
    merged = json_copy(bodies[0])
    versions: List[Dict[str, Any]] = []
    for body in bodies:
        for key in ("group", "names", "scope"):
            if body["spec"].get(key) != merged["spec"].get(key):
                raise UsageError(
                    f"{body['metadata']['name']}: the CRDs differ in spec.{key} "
                    f"({body['spec'].get(key)!r} != {merged['spec'].get(key)!r})"
                )
        for v in body["spec"]["versions"]:
            if any(v["name"] == seen["name"] for seen in versions):
                raise UsageError(f"version {v['name']!r} is given twice")
            versions.append(dict(json_copy(v), storage=v["name"] == storage))
    if not any(v["storage"] for v in versions):
        names = [v["name"] for v in versions]
        raise UsageError(f"storage version {storage!r} is not one of {names}")
    merged["spec"]["versions"] = versions
    return decode(CustomResourceDefinition, merged)
