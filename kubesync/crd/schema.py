"""attrs model classes -> structural OpenAPI v3 schemas, as a CRD version carries them.

The server accepts only structural schemas (every node has a ``type``, unions are limited to
int-or-string, unknown data is opted into); see
https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema.
``schema_for`` walks a ``Model`` subclass with the same names and types
``kubesync.core.convert`` uses to read and write it, so what the schema admits is what the
class decodes. Field metadata (``field()``, or schema keywords put straight into
``attrs.field(metadata=...)``) and the attrs validators that have a schema form add
descriptions, defaults, bounds, lengths, patterns and the ``x-kubernetes-*`` extensions.
"""

from __future__ import annotations

import collections.abc
import datetime
import enum
import inspect
import re
import sys
import threading
import types
import weakref
from typing import (
    Annotated,
    Any,
    Callable,
    Dict,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
    cast,
    get_args,
    get_origin,
    get_type_hints,
)

import attrs

from kubesync.core import forkgate
from kubesync.core.convert import decode, encode, plan_of
from kubesync.core.dynamic import DynamicObject
from kubesync.core.model import JSON_NAME, Model, TimeFormat
from kubesync.errors import KubeError, UsageError

__all__ = [
    "SCHEMA",
    "Rule",
    "SchemaError",
    "field",
    "model_of",
    "schema_for",
    "to_model",
    "validations",
]

#: attrs field metadata key: a mapping merged last into the field's schema (any keyword).
SCHEMA = "kubesync.crd.schema"

_NONE = type(None)
# PEP 604 unions (``int | str``) exist from Python 3.10.
_UNION_TYPES: Tuple[Any, ...] = (Union, getattr(types, "UnionType", Union))
_LIST_ORIGINS = (list, collections.abc.Sequence, collections.abc.MutableSequence)
_DICT_ORIGINS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)
_SCALARS: Dict[Any, Dict[str, Any]] = {
    bool: {"type": "boolean"},
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    datetime.datetime: {"type": "string", "format": "date-time"},
}
_PRESERVE = "x-kubernetes-preserve-unknown-fields"
_INT_OR_STRING = "x-kubernetes-int-or-string"
_FACTORY: Any = type(attrs.Factory(list))  # attrs.Factory (its stubs type it as a function)
_LIST_TYPES = ("atomic", "set", "map")
_VALIDATIONS = "x-kubernetes-validations"
# The class attribute ``validations`` puts a class's rules under.
_CLASS_RULES = "__kubesync_validations__"
_RULE_REASONS = ("FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired",
                 "FieldValueDuplicate")
_MAP_TYPES = ("atomic", "granular")


class SchemaError(KubeError, TypeError):
    """A class or field that cannot be written as a structural schema, or decoded lazily."""


@attrs.frozen
class Rule:
    """One CEL validation rule (an ``x-kubernetes-validations`` entry) the server checks.

    ``rule`` is a CEL expression over ``self`` (the field's or object's value); naming
    ``oldSelf`` makes it a transition rule, checked on updates only (``optional_old_self``
    checks creates too, with ``oldSelf`` an optional). ``message`` (or a CEL
    ``message_expression``) is what a rejected write says; ``field_path`` (``.replicas``)
    points it at a field below; ``reason`` is one of FieldValueInvalid (the server's
    default), FieldValueForbidden, FieldValueRequired, FieldValueDuplicate. See
    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation-rules
    """

    rule: str
    message: Optional[str] = None
    message_expression: Optional[str] = None
    field_path: Optional[str] = None
    reason: Optional[str] = None
    optional_old_self: Optional[bool] = None

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.rule, str) or not self.rule.strip():
            raise UsageError(f"a validation rule needs a CEL expression, not {self.rule!r}")
        if self.reason is not None and self.reason not in _RULE_REASONS:
            raise UsageError(f"rule {self.rule!r}: reason is one of {_RULE_REASONS}, "
                             f"not {self.reason!r}")
        if self.field_path is not None and not self.field_path.startswith((".", "[")):
            raise UsageError(f"rule {self.rule!r}: field_path is a path from self such as "
                             f"'.spec.replicas', not {self.field_path!r}")

    @property
    def is_transition(self) -> bool:
        """Whether the rule compares with the old object (names ``oldSelf``)."""
        return re.search(r"\boldSelf\b", self.rule) is not None

    def to_dict(self) -> Dict[str, Any]:
        """The schema's JSON form (``rule``, ``messageExpression``, ``fieldPath``...)."""
        out: Dict[str, Any] = {"rule": self.rule}
        for key, value in (("message", self.message),
                           ("messageExpression", self.message_expression),
                           ("fieldPath", self.field_path), ("reason", self.reason),
                           ("optionalOldSelf", self.optional_old_self)):
            if value is not None:
                out[key] = value
        return out


def rules_json(rules: Sequence[Union[Rule, str]], where: str) -> List[Dict[str, Any]]:
    """``rules`` as ``x-kubernetes-validations`` entries (a bare string is a rule)."""
    if isinstance(rules, (str, Rule)):
        rules = [rules]
    out = []
    for r in rules:
        if isinstance(r, str):
            r = Rule(r)
        if not isinstance(r, Rule):
            raise UsageError(f"{where}: validations are Rule values or CEL strings, "
                             f"not {type(r).__name__}")
        out.append(r.to_dict())
    return out


def validations(*rules: Union[Rule, str]) -> Callable[[Any], Any]:
    """Class decorator: CEL rules on the object a class stands for (its ``self`` is the
    whole object), e.g. ``@validations(Rule("self.min <= self.max", message="..."))``
    above ``@attrs.define``. Rules of one field go in ``field(validations=...)``."""
    checked = rules_json(list(rules), "validations")

    def mark(cls: Any) -> Any:
        if not isinstance(cls, type):
            raise UsageError(f"validations decorates a class, not {cls!r}")
        setattr(cls, _CLASS_RULES, [*cls.__dict__.get(_CLASS_RULES, []), *checked])
        return cls

    return mark


def field(
    *,
    default: Any = attrs.NOTHING,
    factory: Any = None,
    validator: Any = None,
    converter: Any = None,
    kw_only: bool = False,
    description: Optional[str] = None,
    preserve_unknown: Optional[bool] = None,
    int_or_string: Optional[bool] = None,
    list_type: Optional[str] = None,
    list_map_keys: Optional[Sequence[str]] = None,
    map_type: Optional[str] = None,
    json_name: Optional[str] = None,
    schema: Optional[Mapping[str, Any]] = None,
    metadata: Optional[Mapping[str, Any]] = None,
    validations: Sequence[Union[Rule, str]] = (),
) -> Any:
    """``attrs.field`` with the schema facts a CRD needs, kept in the field's metadata.

    ``list_type`` is ``atomic``, ``set`` or ``map`` (``list_map_keys`` implies ``map``);
    ``map_type`` is ``atomic`` or ``granular``; ``json_name`` overrides the camelCase name;
    ``schema`` adds any other keyword (``format``, ``example``...); ``validations`` are
    CEL ``Rule`` values (or rule strings) checked by the server with ``self`` the field.
    """
    if list_map_keys is not None and list_type is None:
        list_type = "map"
    if list_type is not None and list_type not in _LIST_TYPES:
        raise UsageError(f"list_type is one of {_LIST_TYPES}, not {list_type!r}")
    if map_type is not None and map_type not in _MAP_TYPES:
        raise UsageError(f"map_type is one of {_MAP_TYPES}, not {map_type!r}")
    meta: Dict[str, Any] = dict(metadata or {})
    for key, value in (
        ("description", description),
        (_PRESERVE, preserve_unknown),
        (_INT_OR_STRING, int_or_string),
        ("x-kubernetes-list-type", list_type),
        ("x-kubernetes-list-map-keys", None if list_map_keys is None else list(list_map_keys)),
        ("x-kubernetes-map-type", map_type),
        (JSON_NAME, json_name),
        (SCHEMA, None if schema is None else dict(schema)),
        (_VALIDATIONS, rules_json(validations, "field") or None),
    ):
        if value is not None:
            meta[key] = value
    return attrs.field(default=default, factory=factory, validator=validator,
                       converter=converter, kw_only=kw_only, metadata=meta)


def schema_for(
    cls: type, localns: Optional[Mapping[str, Any]] = None, *, where: Optional[str] = None
) -> Dict[str, Any]:
    """The object schema of a ``Model`` subclass (its nested classes inlined).

    ``localns`` resolves string annotations naming classes local to a function. Raises
    ``SchemaError`` naming the class and field that cannot be expressed (``where`` names
    ``cls`` itself in that message).
    """
    return _Walker(localns).model(model_of(cls, localns), where or _name(cls))


# -- plain attrs classes --------------------------------------------------------------------

# Plain attrs class -> the Model subclass built from it. Weak keys: a class that goes away
# (a test's local class) takes its model with it.
_MODELS: weakref.WeakKeyDictionary[type, type] = weakref.WeakKeyDictionary()
_MODELS_LOCK = threading.RLock()
forkgate.renew_in_child(globals(), "_MODELS_LOCK", threading.RLock)


def model_of(cls: Any, localns: Optional[Mapping[str, Any]] = None) -> Any:
    """The ``Model`` subclass that stands for ``cls``: ``cls`` itself if it is one.

    For a plain attrs class (``@attrs.define class FooSpec: ...``), as kube-derive takes
    any serde struct: a Model subclass with the same name, fields, defaults, validators
    and metadata, built once, with every plain attrs class in its field types replaced
    the same way. Objects decode into it lazily and keep the fields the class does not
    know, which a plain class cannot. Anything else is returned as it is (the schema walk
    then says why it is refused).
    """
    if not isinstance(cls, type) or issubclass(cls, Model) or not attrs.has(cls):
        return cls
    with _MODELS_LOCK:
        made = _MODELS.get(cls)
        if made is None:
            made = _build_model(cls, localns, [])
    return made


def to_model(value: Any) -> Any:
    """``value`` with each instance of a plain attrs class ``model_of`` has seen (also in
    lists and dicts) replaced by the equal instance of its Model."""
    made = _MODELS.get(type(value))
    if made is not None:
        return made(**{a.alias: to_model(getattr(value, a.name))
                       for a in attrs.fields(type(value)) if a.init})
    if isinstance(value, list):
        return [to_model(v) for v in value]
    if isinstance(value, dict):
        return {k: to_model(v) for k, v in value.items()}
    return value


def _decode_model_of(source: type, data: Any) -> Any:
    return decode(model_of(source), data)


def _reduce_model_of(self: Any) -> Tuple[Any, ...]:
    # Pickle finds a class by module and name, which are the plain class's: rebuild from it.
    return (_decode_model_of, (self._kube_source, encode(self)))


def _build_model(cls: type, localns: Optional[Mapping[str, Any]], building: List[type]) -> type:
    if cls in building:
        chain = " -> ".join(_name(c) for c in [*building, cls])
        raise SchemaError(f"{chain} is recursive, which a structural schema cannot say; "
                          "type the recursive field as Any")
    building.append(cls)
    annotations: Dict[str, Any] = {}
    body: Dict[str, Any] = {
        "__module__": cls.__module__, "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__, "__annotations__": annotations,
        "__reduce__": _reduce_model_of, "_kube_source": cls,
    }
    for a in attrs.fields(cls):
        given = _normalize(_resolve(cls, a, localns))
        tp = _map_types(given, lambda t: _model_type(t, localns, building))
        annotations[a.name] = tp
        converter = a.converter
        if tp is not given:  # it holds plain attrs classes: take their instances too
            converter = to_model if converter is None else attrs.converters.pipe(
                converter, to_model)
        body[a.name] = attrs.field(
            default=a.default, validator=a.validator, converter=converter, eq=a.eq,
            repr=a.repr, init=a.init, metadata=a.metadata, alias=a.alias)
    building.pop()
    made: Any = attrs.define(slots=True, kw_only=True, repr=False)(
        type(cls.__name__, (Model,), body))
    fields_equal = made.__eq__

    def __eq__(self: Any, other: Any) -> Any:
        # Equal to an instance of the plain class with the same values, as users compare
        # what they read (the Model) with what they wrote (the plain class).
        return fields_equal(self, to_model(other))

    made.__eq__ = __eq__
    _MODELS[cls] = made
    return cast(type, made)


def _model_type(tp: Any, localns: Optional[Mapping[str, Any]], building: List[type]) -> Any:
    if isinstance(tp, type) and not issubclass(tp, Model) and attrs.has(tp):
        made = _MODELS.get(tp)
        return made if made is not None else _build_model(tp, localns, building)
    return tp


# -- annotations ------------------------------------------------------------------------


def prepare_model(cls: Any, where: str, localns: Optional[Mapping[str, Any]] = None) -> None:
    """Check that ``cls`` can be decoded lazily, and resolve its annotations in place.

    String annotations (``from __future__ import annotations``) are evaluated now, with
    ``localns`` for function-local classes, and ``X | Y`` becomes ``typing.Union`` (which
    the converter reads), so decoding never meets a name it cannot resolve later.
    """
    if not (isinstance(cls, type) and issubclass(cls, Model) and attrs.has(cls)):
        name = _name(cls)
        what = "an attrs class but not" if isinstance(cls, type) and attrs.has(cls) else "not"
        raise SchemaError(
            f"{where}: {name} is {what} a kubesync Model subclass; declare it as "
            f"`@attrs.define class {getattr(cls, '__name__', name)}(kubesync.crd.Model)` so "
            "it decodes lazily and keeps the fields it does not know"
        )
    if _is_generated(cls):
        return
    name = _name(cls)
    if "__slots__" not in cls.__dict__:
        raise SchemaError(f"{name}: a Model subclass must be slotted (@attrs.define)")
    probe: Any = object.__new__(cls)
    try:
        probe._kube_raw = None
    except attrs.exceptions.FrozenInstanceError:
        raise SchemaError(
            f"{name}: frozen classes cannot be decoded lazily (a field is filled on first "
            "read); use @attrs.define"
        ) from None
    for a in attrs.fields(cls):
        if a.name == "_kube_raw":
            continue
        resolved = _normalize(_resolve(cls, a, localns))
        if resolved is not a.type:
            # What attrs.resolve_types does: the field keeps its resolved type.
            object.__setattr__(a, "type", resolved)


def _is_generated(cls: type) -> bool:
    return cls.__module__.startswith("kubesync.models.")


class _Annotations:
    __annotations__: Dict[str, Any]


def _resolve(cls: type, a: Any, localns: Optional[Mapping[str, Any]]) -> Any:
    if a.type is None:
        raise SchemaError(f"{_name(cls)}.{a.name}: the field has no type annotation")
    declaring = next((k for k in cls.__mro__ if a.name in vars(k).get("__annotations__", {})),
                     cls)
    module = sys.modules.get(declaring.__module__)
    holder = _Annotations()
    holder.__annotations__ = {a.name: a.type}
    try:
        return get_type_hints(holder, vars(module) if module else {}, dict(localns or {}),
                              include_extras=True)[a.name]
    except Exception as e:  # NameError, or TypeError for `X | Y` before Python 3.10
        raise SchemaError(
            f"{_name(cls)}.{a.name}: cannot resolve the annotation {a.type!r} ({e}); "
            "define the classes it names before this one, and use typing.Optional/Union "
            "on Python < 3.10"
        ) from None


def _normalize(tp: Any) -> Any:
    """``tp`` with every ``X | Y`` in it rewritten as ``typing.Union[X, Y]``."""
    return _map_types(tp, lambda t: t)


def _map_types(tp: Any, leaf: Callable[[Any], Any]) -> Any:
    """``tp`` rebuilt with ``leaf`` applied to each type in it (``X | Y`` as ``Union``)."""
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is Literal:
        return tp
    if not args:
        return leaf(tp)
    new = tuple(_map_types(a, leaf) for a in (args[:1] if _is_annotated(tp) else args))
    if origin in _UNION_TYPES:
        return Union[new]
    if all(x is y for x, y in zip(new, args)):
        return tp
    if _is_annotated(tp):
        return Annotated[(new[0], *tp.__metadata__)]
    return tp.copy_with(new) if hasattr(tp, "copy_with") else origin[new]


def _is_annotated(tp: Any) -> bool:
    return hasattr(tp, "__metadata__")


# -- the walk -----------------------------------------------------------------------------


def _schema_keys() -> frozenset:
    from kubesync.models.apiextensions_v1 import JSONSchemaProps

    return frozenset(plan_of(JSONSchemaProps).by_json)


class _Walker:
    """One schema build: the classes being expanded (to refuse recursion) and localns."""

    def __init__(self, localns: Optional[Mapping[str, Any]]):
        self.localns = localns
        self.expanding: List[type] = []
        self.keys = _schema_keys()

    def model(self, cls: Any, where: str) -> Dict[str, Any]:
        prepare_model(cls, where, self.localns)
        if cls in self.expanding:
            chain = " -> ".join(_name(c) for c in [*self.expanding, cls])
            raise SchemaError(
                f"{where}: {chain} is recursive, which a structural schema cannot say; "
                "type the recursive field as Any"
            )
        self.expanding.append(cls)
        try:
            return self._object(cls)
        finally:
            self.expanding.pop()

    def _object(self, cls: Any) -> Dict[str, Any]:
        out: Dict[str, Any] = {"type": "object"}
        doc = None if _is_generated(cls) else cls.__dict__.get("__doc__")
        if doc:
            out["description"] = inspect.cleandoc(doc)
        properties: Dict[str, Any] = {}
        required: List[str] = []
        attributes = {a.name: a for a in attrs.fields(cls)}
        for f in plan_of(cls).fields:
            a = attributes[f.name]
            if not f.ready:
                f.resolve()
            where = f"{_name(cls)}.{f.name}"
            node, optional = self.value(f.type, where)
            if optional:
                node["nullable"] = True
            default = _json_default(a.default)
            if default is not None:
                node["default"] = default
            if a.validator is not None:
                _apply_validator(node, a.validator)
            self._apply_metadata(node, a.metadata, where)
            properties[f.json] = node
            if a.default is attrs.NOTHING and not optional:
                required.append(f.json)
        if properties:
            out["properties"] = properties
        if required:
            out["required"] = required
        source = cls.__dict__.get("_kube_source", cls)  # a plain class's rules stay on it
        rules = source.__dict__.get(_CLASS_RULES) or cls.__dict__.get(_CLASS_RULES)
        if rules:
            out[_VALIDATIONS] = [dict(r) for r in rules]
        return out

    def value(self, tp: Any, where: str) -> Tuple[Dict[str, Any], bool]:
        """The schema of one annotation, and whether it admits None (is Optional)."""
        optional = False
        if get_origin(tp) in _UNION_TYPES and _NONE in get_args(tp):
            optional = True
            rest = tuple(a for a in get_args(tp) if a is not _NONE)
            tp = rest[0] if len(rest) == 1 else Union[rest]
        return self._value(tp, where), optional

    def _value(self, tp: Any, where: str) -> Dict[str, Any]:
        if _is_annotated(tp):
            if any(isinstance(m, TimeFormat) for m in tp.__metadata__):
                return {"type": "string", "format": "date-time"}
            return self._value(get_args(tp)[0], where)
        supertype = getattr(tp, "__supertype__", None)  # typing.NewType
        if supertype is not None:
            return self._value(supertype, where)
        if tp is Any or tp is object:
            return {_PRESERVE: True}
        origin = get_origin(tp)
        args = get_args(tp)
        if tp is list or tp is dict:  # unparameterized: items or values of any kind
            return self._value(List[Any] if tp is list else Dict[str, Any], where)
        if isinstance(tp, type) and origin is None:
            if issubclass(tp, enum.Enum):
                return _enum([m.value for m in tp], where, _name(tp))
            if tp in _SCALARS:
                return dict(_SCALARS[tp])
            if issubclass(tp, DynamicObject):
                return {"type": "object", _PRESERVE: True}
            if attrs.has(tp):
                return self.model(tp, where)
        if origin is Literal:
            return _enum(list(args), where, repr(tp))
        if origin in _UNION_TYPES:
            if set(args) == {int, str}:
                return {_INT_OR_STRING: True}
            raise SchemaError(
                f"{where}: {_name(tp)} is a union a structural schema cannot express (only "
                "Optional[X] and Union[int, str]); use one type, or Any"
            )
        if origin in _LIST_ORIGINS:
            item = args[0] if args else Any
            node, optional = self.value(item, f"{where}[]")
            if optional:
                node["nullable"] = True
            return {"type": "array", "items": node}
        if origin in _DICT_ORIGINS:
            key, item = args if len(args) == 2 else (str, Any)
            if key is not str:
                raise SchemaError(f"{where}: {_name(tp)}: JSON object keys are strings, "
                                  "so the key type must be str")
            if item is Any or item is object:
                return {"type": "object", _PRESERVE: True}
            node, optional = self.value(item, f"{where}{{}}")
            if optional:
                node["nullable"] = True
            return {"type": "object", "additionalProperties": node}
        raise SchemaError(
            f"{where}: {_name(tp)} has no schema; use str, int, float, bool, datetime, an "
            "Enum or Literal, Optional, List, Dict[str, X], Union[int, str], Any or a Model "
            "subclass"
        )

    def _apply_metadata(self, node: Dict[str, Any], metadata: Mapping[str, Any],
                        where: str) -> None:
        for key, value in metadata.items():
            if key in self.keys:
                node[key] = value
        extra = metadata.get(SCHEMA)
        if extra is not None:
            if not isinstance(extra, Mapping):
                raise SchemaError(f"{where}: metadata[{SCHEMA!r}] must be a mapping")
            node.update(extra)
        if node.get(_INT_OR_STRING):
            # int-or-string nodes carry no type: the extension stands for it.
            node.pop("type", None)
            node.pop("format", None)


def _name(tp: Any) -> str:
    """A class's name for messages: its qualified name without a function's ``<locals>``."""
    if isinstance(tp, type):
        return tp.__qualname__.rpartition("<locals>.")[2]
    return repr(tp)


def _enum(values: List[Any], where: str, what: str) -> Dict[str, Any]:
    kinds = {_json_type(v) for v in values}
    if len(kinds) != 1 or None in kinds:
        raise SchemaError(f"{where}: the values of {what} must all be strings, all integers "
                          f"or all booleans (got {values!r})")
    return {"type": kinds.pop(), "enum": list(values)}


def _json_type(value: Any) -> Optional[str]:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, str):
        return "string"
    return None


def _json_default(value: Any) -> Any:
    # Literal defaults, and the empty list/dict of Factory(list)/Factory(dict): the server
    # applies them to objects written without the field, so a field typed List[str] reads
    # as a list, not None. Other factories may build anything (or have effects): skipped.
    if value is attrs.NOTHING:
        return None
    if isinstance(value, _FACTORY):
        if not value.takes_self and value.factory in (list, dict):
            return value.factory()
        return None
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, (bool, int, float, str)):
        return value
    return None


# -- validators -----------------------------------------------------------------------------

# attrs keeps its validator classes private; these names are stable since attrs 22.1. A
# validator not listed here still runs in Python, it just has no schema form.
_BOUNDS = {">=": ("minimum", False), ">": ("minimum", True),
           "<=": ("maximum", False), "<": ("maximum", True)}
_LENGTH_KEYS = {"string": ("minLength", "maxLength"), "array": ("minItems", "maxItems"),
                "object": ("minProperties", "maxProperties")}
_RE_FLAGS = ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"))


def _apply_validator(node: Dict[str, Any], v: Any) -> None:
    if isinstance(v, (list, tuple)):
        for one in v:
            _apply_validator(node, one)
        return
    kind = type(v).__name__
    if kind == "_AndValidator":
        _apply_validator(node, list(v._validators))
    elif kind == "_OptionalValidator":
        _apply_validator(node, v.validator)
    elif kind == "_DeepIterable":
        if v.iterable_validator is not None:
            _apply_validator(node, v.iterable_validator)
        if "items" in node:
            _apply_validator(node["items"], v.member_validator)
    elif kind == "_DeepMapping":
        if v.mapping_validator is not None:
            _apply_validator(node, v.mapping_validator)
        if isinstance(node.get("additionalProperties"), dict):
            _apply_validator(node["additionalProperties"], v.value_validator)
    elif kind == "_NumberValidator" and node.get("type") in ("integer", "number"):
        key, exclusive = _BOUNDS[v.compare_op]
        _tighten(node, key, v.bound, exclusive)
    elif kind in ("_MinLengthValidator", "_MaxLengthValidator"):
        keys = _LENGTH_KEYS.get(node.get("type", ""))
        if keys is not None:
            if kind == "_MinLengthValidator":
                node[keys[0]] = max(v.min_length, node.get(keys[0], 0))
            else:
                node[keys[1]] = min(v.max_length, node.get(keys[1], v.max_length))
    elif kind == "_MatchesReValidator" and node.get("type") == "string":
        pattern = _pattern(v.pattern, v.match_func)
        if pattern is not None:
            node["pattern"] = pattern
    elif kind == "_InValidator" and not isinstance(v.options, str):
        options = [o.value if isinstance(o, enum.Enum) else o for o in v.options]
        # attrs >= 24 keeps the options as a tuple and the given set aside.
        if isinstance(getattr(v, "_original_options", v.options), (set, frozenset)):
            options.sort(key=repr)  # a set has no order: make the schema reproducible
        node["enum"] = options


def _tighten(node: Dict[str, Any], key: str, bound: Any, exclusive: bool) -> None:
    flag = "exclusiveMinimum" if key == "minimum" else "exclusiveMaximum"
    old = node.get(key)
    if old is not None:
        stricter = bound > old if key == "minimum" else bound < old
        if not stricter and not (bound == old and exclusive):
            return
    node[key] = bound
    if exclusive:
        node[flag] = True
    else:
        node.pop(flag, None)


def _pattern(compiled: Any, match_func: Any) -> Optional[str]:
    """A Python regex as the server's (RE2, unanchored) pattern, anchored as attrs matches."""
    text = compiled.pattern
    if compiled.flags & re.VERBOSE:
        return None  # whitespace and comments mean something else to RE2: no schema form
    how = getattr(match_func, "__name__", "fullmatch")
    if how == "fullmatch":
        text = f"^(?:{text})$"
    elif how == "match":
        text = f"^(?:{text})"
    flags = "".join(letter for flag, letter in _RE_FLAGS if compiled.flags & flag)
    return f"(?{flags}){text}" if flags else text

