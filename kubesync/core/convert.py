"""The one converter: JSON <-> models, lazily and losslessly.

``decode`` wraps a mapping without converting anything; a field is converted on first
read (``lazy_getattr``, installed as ``Model.__getattr__``) and cached in its slot.
``encode`` walks the source mapping in order: unread fields and unknown keys go out as
they came, read fields are encoded from their current value, so decode -> encode is the
identity and every change, however deep, shows up.

Per class a plan (field names, JSON names, slots) is built on first use; per field a codec
is resolved from its annotation on first conversion. Types the Kubernetes models do not
use (enums, plain attrs classes in hand-written models) go through ``converter``, the one
cattrs converter, made by ``make_converter()`` on first use (importing cattrs costs
~15 ms, which ``import kubesync`` does not pay).
"""

from __future__ import annotations

import builtins
import datetime
import importlib
import re
import sys
import types
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    Callable,
    Dict,
    Generic,
    Iterator,
    List,
    Mapping,
    Optional,
    Tuple,
    Type,
    TypeVar,
    Union,
    get_args,
    get_origin,
    overload,
)

import attrs

from kubesync.core import model as _model
from kubesync.core.model import JSON_NAME, Model, TimeFormat
from kubesync.errors import DecodeError

if TYPE_CHECKING:
    import cattrs

    from kubesync.models.meta_v1 import ListMeta

__all__ = [
    "ObjectList",
    "configure_converter",
    "converter",
    "decode",
    "decode_list",
    "drop_field",
    "encode",
    "format_time",
    "make_converter",
    "parse_time",
    "validate",
]

K = TypeVar("K")
M = TypeVar("M", bound=Model)

_UTC = datetime.timezone.utc
_new = object.__new__

# Where a value sits, for error messages: the top-level class (or kind name), then one
# tuple per step: (parent, json name) for a field, (parent, index or key, None) for an item.
# Tuples, not strings: the path is only spelled out when an error is raised.
Loc = Any
# A field decoder: (JSON value, its location) -> Python value.
Decoder = Callable[[Any, Loc], Any]
Encoder = Callable[[Any], Any]


# -- time -------------------------------------------------------------------------------

_TIME_RE = re.compile(
    r"(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d:\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:?\d\d)?$"
)


def parse_time(text: str) -> datetime.datetime:
    """An RFC 3339 timestamp as a tz-aware datetime (no zone given means UTC)."""
    body = text[:-1] if text[-1:] in ("Z", "z") else text
    try:
        value = datetime.datetime.fromisoformat(body)
    except ValueError:
        # Python < 3.11 takes only 3 or 6 fraction digits; servers may send 1-9.
        m = _TIME_RE.match(text)
        if m is None:
            raise ValueError(f"not an RFC 3339 time: {text!r}") from None
        day, clock, fraction, zone = m.groups()
        micro = (fraction or "")[:6].ljust(6, "0")
        offset = "" if zone in (None, "Z", "z") else zone
        value = datetime.datetime.fromisoformat(f"{day}T{clock}.{micro}{offset}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=_UTC)
    return value


def format_time(value: datetime.datetime, micro: Optional[bool] = None) -> str:
    """RFC 3339 in UTC with ``Z``: seconds (``Time``) or microseconds (``MicroTime``).

    ``micro=None`` writes microseconds only when there are some. A naive datetime is
    taken as UTC.
    """
    if value.tzinfo is not None:
        value = value.astimezone(_UTC).replace(tzinfo=None)
    if micro is None:
        micro = value.microsecond != 0
    return value.isoformat(timespec="microseconds" if micro else "seconds") + "Z"


# -- errors -----------------------------------------------------------------------------


def _kind_name(root: Any) -> Optional[str]:
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
    return _kind_name(loc), "".join(reversed(parts)).lstrip(".")


def _error(loc: Loc, message: str) -> DecodeError:
    kind, path = location(loc)
    return DecodeError(message, kind=kind, path=path)


_TYPE_WORDS: Dict[type, str] = {
    dict: "object", list: "array", str: "string", bool: "boolean", int: "integer",
    float: "number", type(None): "null",
}


def _type_name(value: Any) -> str:
    return _TYPE_WORDS.get(type(value), type(value).__name__)


# -- codecs -----------------------------------------------------------------------------


def _decode_time(value: Any, loc: Loc) -> datetime.datetime:
    if isinstance(value, str):
        try:
            return parse_time(value)
        except ValueError:
            pass
    raise _error(loc, f"expected an RFC 3339 time, got {value!r}")


def _encoder_time(micro: Optional[bool]) -> Encoder:
    def enc(value: Any) -> Any:
        if isinstance(value, datetime.datetime):
            return format_time(value, micro)
        return value

    return enc


def _encode_any(value: Any) -> Any:
    # Any-typed fields (RawExtension, JSON) hold plain values, or a model a caller put in.
    return encode(value) if isinstance(value, (Model, _dynamic.DynamicObject)) else value


def _model_decoder(cls: type) -> Decoder:
    def dec(value: Any, loc: Loc) -> Any:
        if value.__class__ is not dict and not isinstance(value, dict):
            raise _error(loc, f"expected an object, got {_type_name(value)}")
        obj: Any = _new(cls)
        obj._kube_raw = value
        obj._kube_at = loc
        return obj

    return dec


def _dynamic_decoder(value: Any, loc: Loc) -> Any:
    if not isinstance(value, dict):
        raise _error(loc, f"expected an object, got {_type_name(value)}")
    return _dynamic.DynamicObject(value)


def _list_decoder(item: Decoder) -> Decoder:
    def dec(value: Any, loc: Loc) -> Any:
        if not isinstance(value, list):
            raise _error(loc, f"expected an array, got {_type_name(value)}")
        return [item(x, (loc, i, None)) for i, x in enumerate(value)]

    return dec


def _dict_decoder(item: Decoder) -> Decoder:
    def dec(value: Any, loc: Loc) -> Any:
        if not isinstance(value, dict):
            raise _error(loc, f"expected an object, got {_type_name(value)}")
        return {k: item(x, (loc, k, None)) for k, x in value.items()}

    return dec


def _list_encoder(item: Encoder) -> Encoder:
    return lambda value: [item(x) for x in value] if isinstance(value, list) else value


def _dict_encoder(item: Encoder) -> Encoder:
    return lambda value: (
        {k: item(x) for k, x in value.items()} if isinstance(value, dict) else value
    )


def _cattrs_decoder(tp: Any) -> Decoder:
    def dec(value: Any, loc: Loc) -> Any:
        try:
            return _get_converter().structure(value, tp)
        except Exception as e:  # cattrs raises many kinds; all mean "does not fit"
            raise _error(loc, f"does not fit {tp!r}: {e}") from e

    return dec


def _cattrs_encoder(tp: Any) -> Encoder:
    return lambda value: _get_converter().unstructure(value, tp)


_SCALARS: Dict[Any, Any] = {str: str, int: int, bool: bool, float: (int, float)}


@attrs.define(slots=True)
class Codec:
    """How one field type converts: decoder None means the JSON value is used as it is
    (after an isinstance ``check``); encoder None means the value is written as it is."""

    dec: Optional[Decoder] = None
    enc: Optional[Encoder] = None
    check: Any = None
    time: bool = False


#: ``Union[...]`` and, on Python 3.10+, the ``int | str`` form (``types.UnionType``).
_UNIONS: Tuple[Any, ...] = (Union,) + (
    (types.UnionType,) if hasattr(types, "UnionType") else ()
)


def _strip_optional(tp: Any) -> Any:
    if get_origin(tp) in _UNIONS:
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
        return Union[tuple(args)]
    return tp


def codec_for(tp: Any) -> Codec:
    """The codec of an annotation (Optional stripped)."""
    tp = _strip_optional(tp)
    origin = get_origin(tp)
    if origin is Annotated:
        base, *extras = get_args(tp)
        fmt = next((e for e in extras if isinstance(e, TimeFormat)), None)
        if fmt is not None:
            return Codec(_decode_time, _encoder_time(fmt.micro), time=True)
        return codec_for(base)
    if tp is Any or tp is object:
        return Codec(enc=_encode_any)
    if isinstance(tp, type) and origin is None:
        if issubclass(tp, Model):
            return Codec(_model_decoder(tp), encode)
        if issubclass(tp, _dynamic.DynamicObject):
            return Codec(_dynamic_decoder, encode)
        if tp is datetime.datetime:
            return Codec(_decode_time, _encoder_time(None), time=True)
        if tp in _SCALARS:
            return Codec(check=_SCALARS[tp])
    if origin in (list, List) or origin in _SEQUENCES:
        (item_type,) = get_args(tp) or (Any,)
        item = codec_for(item_type)
        if item.dec is None:
            return Codec(enc=None if item.enc is None else _list_encoder(item.enc), check=list)
        return Codec(_list_decoder(item.dec), _list_encoder(item.enc or _identity))
    if origin in (dict, Dict) or origin in _MAPPINGS:
        args = get_args(tp)
        item = codec_for(args[1] if len(args) == 2 else Any)
        if item.dec is None:
            return Codec(enc=None if item.enc is None else _dict_encoder(item.enc), check=dict)
        return Codec(_dict_decoder(item.dec), _dict_encoder(item.enc or _identity))
    if origin in _UNIONS:
        members = get_args(tp)
        if all(m in _SCALARS for m in members):  # IntOrString and the like
            return Codec(check=tuple(t for m in members for t in _flat(_SCALARS[m])))
    return Codec(_cattrs_decoder(tp), _cattrs_encoder(tp))


def _flat(check: Any) -> Tuple[type, ...]:
    return check if isinstance(check, tuple) else (check,)


def _identity(value: Any) -> Any:
    return value


def _abc_origins() -> Tuple[Tuple[Any, ...], Tuple[Any, ...]]:
    import collections.abc as abc

    return (abc.Sequence, abc.MutableSequence), (abc.Mapping, abc.MutableMapping)


_SEQUENCES, _MAPPINGS = _abc_origins()


# -- plans --------------------------------------------------------------------------------


class _Names(Mapping[str, Any]):
    """Where annotation strings are looked up: the declaring module (whose generated
    classes are built on demand), the special field types, then the models package."""

    def __init__(self, module: str):
        self.module = module

    def __getitem__(self, key: str) -> Any:
        mod = sys.modules.get(self.module)
        if mod is not None:
            try:
                return getattr(mod, key)
            except AttributeError:
                pass
        if key in _TYPE_NAMES:
            return _TYPE_NAMES[key]
        if key.isidentifier():
            try:
                return importlib.import_module(f"kubesync.models.{key}")
            except ImportError:
                pass
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


_TYPE_NAMES: Dict[str, Any] = {
    "Any": Any,
    "Dict": Dict,
    "List": List,
    "Optional": Optional,
    "Union": Union,
    "Time": _model.Time,
    "MicroTime": _model.MicroTime,
    "IntOrString": _model.IntOrString,
    "Quantity": _model.Quantity,
    "datetime": datetime.datetime,
}


class Field:
    """One model field in a plan: names, slot access, and its codec (resolved lazily)."""

    __slots__ = ("annotation", "check", "dec", "empty", "enc", "get", "json", "name", "owner",
                 "ready", "set", "time", "top", "type")

    def __init__(self, owner: type, name: str, json_name: str, slot: Any, annotation: Any,
                 empty: Optional[Callable[[], Any]] = None):
        self.owner = owner
        self.name = name
        self.json = json_name
        # The location of this field's value in a top-level object: made once, so decoding
        # metadata/spec/status of a LIST's items allocates nothing for error reporting.
        self.top = (owner, json_name)
        self.get = slot.__get__
        self.set = slot.__set__
        self.annotation = annotation
        # ABSENT_AS_EMPTY fields: what an absent value reads as (a new empty object).
        self.empty = empty
        self.ready = False
        self.type: Any = None
        self.dec: Optional[Decoder] = None
        self.enc: Optional[Encoder] = None
        self.check: Any = None
        self.time = False

    def resolve(self) -> None:
        """Evaluate the annotation and pick the codec (once; races are harmless)."""
        tp = self.annotation
        if isinstance(tp, str):
            declaring = next(
                (k for k in self.owner.__mro__ if self.name in vars(k).get("__annotations__", {})),
                self.owner,
            )
            namespace = {"__builtins__": builtins.__dict__}
            tp = eval(tp, namespace, _Names(declaring.__module__))  # our own annotation strings
        codec = codec_for(tp)
        self.type = tp
        self.dec, self.enc, self.check, self.time = codec.dec, codec.enc, codec.check, codec.time
        self.ready = True


class Plan:
    """The fields of one model class, by attribute and by JSON name."""

    __slots__ = ("by_attr", "by_json", "fields")

    def __init__(self, fields: List[Field]):
        self.fields = tuple(fields)
        self.by_attr = {f.name: f for f in fields}
        self.by_json = {f.json: f for f in fields}


_PLANS: Dict[type, Plan] = {}


def _camel(name: str) -> str:
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def plan_of(cls: type) -> Plan:
    """The plan of a model class, built on first use."""
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _make_plan(cls)
    return plan


def _make_plan(cls: type) -> Plan:
    if "__attrs_attrs__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: decorate Model subclasses with @attrs.define")
    fields = []
    for a in attrs.fields(cls):
        if a.name == "_kube_raw":
            continue
        slot = next((k.__dict__[a.name] for k in cls.__mro__ if a.name in k.__dict__), None)
        if not isinstance(slot, types.MemberDescriptorType):
            raise TypeError(f"{cls.__name__}: Model subclasses must be slotted (slots=True)")
        json_name = a.metadata.get(JSON_NAME) or _camel(a.name)
        empty = a.default.factory if a.metadata.get(_model.ABSENT_AS_EMPTY) else None
        fields.append(Field(cls, a.name, json_name, slot, a.type, empty))
    return Plan(fields)


# -- lazy reads ---------------------------------------------------------------------------


def lazy_getattr(self: Any, name: str) -> Any:
    """``Model.__getattr__``: convert an unread field from the source mapping and cache it."""
    cls = self.__class__
    plan = _PLANS.get(cls) or plan_of(cls)
    f = plan.by_attr.get(name)
    if f is None:
        if name == "_kube_at" or name == "_kube_raw":
            return None
        raise AttributeError(f"{cls.__name__!r} object has no attribute {name!r}")
    raw = self._kube_raw
    value = None if raw is None else raw.get(f.json)
    if value is None and f.empty is not None and (raw is None or f.json not in raw):
        value = f.empty()
    elif value is not None:
        if not f.ready:
            f.resolve()
        if f.dec is not None:
            at = self._kube_at
            value = f.dec(value, f.top if at is None else (at, f.json))
        elif f.check is not None and not isinstance(value, f.check):
            at = self._kube_at
            raise _error(f.top if at is None else (at, f.json),
                         f"expected {_expected(f.check)}, got {_type_name(value)}")
    f.set(self, value)
    return value


def _expected(check: Any) -> str:
    return " or ".join(_TYPE_WORDS.get(t, t.__name__) for t in _flat(check))


# Installed here, where it is defined; model.py imports this module at its end, so any
# use of Model has it. setattr keeps mypy from seeing a __getattr__ (names stay checked).
setattr(Model, "__getattr__", lazy_getattr)  # noqa: B010


# -- public API ---------------------------------------------------------------------------


@overload
def decode(cls: Type[M], data: Any) -> M: ...


@overload
def decode(cls: Type[K], data: Any) -> K: ...


def decode(cls: Any, data: Any) -> Any:
    """Decode one object of JSON (a dict) as ``cls``. Nothing is converted until read."""
    if isinstance(cls, type) and issubclass(cls, Model):
        if data.__class__ is not dict:
            if not isinstance(data, Mapping):
                raise DecodeError(f"expected an object, got {_type_name(data)}",
                                  kind=_kind_name(cls))
            data = dict(data)
        resource = getattr(cls, "api_resource", None)
        kind = data.get("kind")
        if resource is not None and kind is not None and kind != resource.kind:
            raise DecodeError(f"the object is a {kind}", kind=resource.kind)
        obj = _new(cls)
        obj._kube_raw = data
        obj._kube_at = None
        return obj
    if isinstance(cls, type) and issubclass(cls, _dynamic.DynamicObject):
        return cls(data)
    return _get_converter().structure(data, cls)


def decode_list(cls: Type[K], data: Any) -> ObjectList[K]:
    """Decode a list response (``{"items": [...], "metadata": {...}}``); items are lazy."""
    if not isinstance(data, Mapping):
        raise DecodeError(f"expected a list object, got {_type_name(data)}",
                          kind=_kind_name(cls))
    raw_items = data.get("items") or []
    if not isinstance(raw_items, list):
        raise DecodeError(f"expected an array, got {_type_name(raw_items)}",
                          kind=_kind_name(cls), path="items")
    items: List[Any] = []
    append = items.append
    if isinstance(cls, type) and issubclass(cls, Model):
        for i, raw in enumerate(raw_items):
            if raw.__class__ is not dict:
                raise DecodeError(f"expected an object, got {_type_name(raw)}",
                                  kind=_kind_name(cls), path=f"items[{i}]")
            obj: Any = _new(cls)
            obj._kube_raw = raw
            obj._kube_at = None
            append(obj)
    else:
        for raw in raw_items:
            append(decode(cls, raw))
    from kubesync.models.meta_v1 import ListMeta

    metadata = decode(ListMeta, data.get("metadata") or {})
    return ObjectList(items, metadata, data.get("apiVersion"), data.get("kind"))


def encode(obj: Any) -> Any:
    """The JSON form (dicts, lists, str...) of a model, ``DynamicObject`` or ``ObjectList``.

    For a decoded object: keys in their original order, unread and unknown fields as they
    came (shared, not copied), read fields from their current value; ``None`` omits a key.
    """
    if isinstance(obj, Model):
        return _encode_model(obj)
    if isinstance(obj, _dynamic.DynamicObject):
        return obj.to_dict()
    if isinstance(obj, ObjectList):
        return obj.to_dict()
    return _get_converter().unstructure(obj)


def _encode_value(f: Field, value: Any, raw_value: Any) -> Any:
    if not f.ready:
        f.resolve()
    enc = f.enc
    if enc is None:
        return value
    out = enc(value)
    if f.time and out != raw_value and isinstance(raw_value, str):
        # An unchanged time read from an unusual spelling (+00:00, nanoseconds) keeps it.
        try:
            if parse_time(raw_value) == value:
                return raw_value
        except ValueError:
            pass
    return out


def _encode_model(obj: Any) -> Dict[str, Any]:
    plan = plan_of(obj.__class__)
    raw = obj._kube_raw
    out: Dict[str, Any] = {}
    if raw:
        by_json = plan.by_json
        for key, raw_value in raw.items():
            f = by_json.get(key)
            if f is None:
                out[key] = raw_value
                continue
            try:
                value = f.get(obj)
            except AttributeError:  # never read: as it came
                out[key] = raw_value
                continue
            if value is None:
                if raw_value is None:  # read, unchanged null (e.g. creationTimestamp: null)
                    out[key] = None
            elif value is raw_value:
                out[key] = value
            else:
                out[key] = _encode_value(f, value, raw_value)
    for f in plan.fields:
        if raw and f.json in raw:
            continue
        try:
            value = f.get(obj)
        except AttributeError:
            continue
        if value is not None:
            encoded = _encode_value(f, value, None)
            if f.empty is None or encoded != {}:  # an empty default stays absent
                out[f.json] = encoded
    return out


def validate(obj: M) -> M:
    """Convert every field now, deeply, checking types: errors raise ``DecodeError`` here
    instead of on first read. Returns ``obj``."""
    _validate_model(obj)
    return obj


def _validate_model(obj: Any) -> None:
    for f in plan_of(obj.__class__).fields:
        value = getattr(obj, f.name)
        if value is None:
            continue
        if not f.ready:
            f.resolve()
        at = obj._kube_at
        _validate_value(value, f.type, f.top if at is None else (at, f.json))


def _validate_value(value: Any, tp: Any, loc: Loc) -> None:
    if value is None:
        return
    tp = _strip_optional(tp)
    if get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    origin = get_origin(tp)
    if isinstance(value, Model):
        _validate_model(value)
        return
    if tp is Any or tp is object or isinstance(value, _dynamic.DynamicObject):
        return
    if origin in (list, List) or origin in _SEQUENCES:
        if not isinstance(value, list):
            raise _error(loc, f"expected an array, got {_type_name(value)}")
        (item_type,) = get_args(tp) or (Any,)
        for i, x in enumerate(value):
            _validate_value(x, item_type, (loc, i, None))
        return
    if origin in (dict, Dict) or origin in _MAPPINGS:
        if not isinstance(value, dict):
            raise _error(loc, f"expected an object, got {_type_name(value)}")
        args = get_args(tp)
        for k, x in value.items():
            _validate_value(x, args[1] if len(args) == 2 else Any, (loc, k, None))
        return
    if isinstance(tp, type) and issubclass(tp, Model):
        raise _error(loc, f"expected an object, got {_type_name(value)}")
    check = codec_for(tp).check
    if check is not None and not isinstance(value, check):
        raise _error(loc, f"expected {_expected(check)}, got {_type_name(value)}")


def drop_field(obj: Any, name: str) -> None:
    """Forget field ``name`` of a model for good: unset, and removed from the source mapping
    (which it may share with its parent) so the memory is released. For caches that strip
    objects on the way in, e.g. ``drop_field(pod.metadata, "managed_fields")``."""
    f = plan_of(obj.__class__).by_attr.get(name)
    if f is None:
        raise AttributeError(f"{obj.__class__.__name__!r} has no field {name!r}")
    raw = obj._kube_raw
    if raw:
        raw.pop(f.json, None)
    f.set(obj, None)


def model_repr(obj: Any) -> str:
    """``Kind(field=value, ...)`` with the fields that are not None (reads them)."""
    parts = []
    for f in plan_of(obj.__class__).fields:
        value = getattr(obj, f.name)
        if value is not None:
            parts.append(f"{f.name}={value!r}")
    return f"{obj.__class__.__name__}({', '.join(parts)})"


def json_copy(data: Any) -> Any:
    """A deep copy of JSON-native data (through the JSON codec: faster than deepcopy)."""
    try:
        from kubesync.core.json import dumps, loads
    except ImportError:  # pragma: no cover - the client's json helper not present
        import json

        return json.loads(json.dumps(data))
    return loads(dumps(data))


# -- ObjectList -----------------------------------------------------------------------------


@attrs.define(slots=True, repr=False)
class ObjectList(Generic[K]):
    """The answer of a LIST: ``items`` and the list ``metadata`` (resourceVersion, continue).

    Iterating, ``len()`` and indexing go to ``items``.
    """

    items: List[K]
    metadata: ListMeta
    api_version: Optional[str] = None
    kind: Optional[str] = None

    @property
    def resource_version(self) -> Optional[str]:
        """The list's resourceVersion: watch from here to see every later change."""
        return self.metadata.resource_version

    @property
    def continue_(self) -> Optional[str]:
        """The token of the next page, or None on the last one."""
        return self.metadata.continue_ or None

    @property
    def remaining_item_count(self) -> Optional[int]:
        """How many items the following pages hold (an estimate; often absent)."""
        return self.metadata.remaining_item_count

    def __iter__(self) -> Iterator[K]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> K:
        return self.items[index]

    def __repr__(self) -> str:
        rv = self.resource_version
        return f"<ObjectList {self.kind or ''} items={len(self.items)} resourceVersion={rv!r}>"

    def to_dict(self) -> Dict[str, Any]:
        """The JSON form, as the server writes a list."""
        out: Dict[str, Any] = {}
        if self.kind is not None:
            out["kind"] = self.kind
        if self.api_version is not None:
            out["apiVersion"] = self.api_version
        out["metadata"] = encode(self.metadata)
        out["items"] = [encode(item) for item in self.items]
        return out

    def _repr_html_(self) -> str:
        from kubesync.core.display import list_html

        return list_html(self)


# -- the cattrs converter -----------------------------------------------------------------


def _is_model_type(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, (Model, _dynamic.DynamicObject))


def _is_object_list(tp: Any) -> bool:
    return get_origin(tp) is ObjectList or tp is ObjectList


def configure_converter(c: cattrs.Converter) -> None:
    """Teach a cattrs converter our models, DynamicObject, ObjectList and datetimes."""
    c.register_structure_hook_factory(_is_model_type, lambda cls: lambda v, t: decode(t, v))
    c.register_unstructure_hook_factory(_is_model_type, lambda cls: encode)

    def list_hook(cls: Any) -> Callable[[Any, Any], Any]:
        (item,) = get_args(cls) or (Any,)
        return lambda v, t: decode_list(item, v)

    c.register_structure_hook_factory(_is_object_list, list_hook)
    c.register_unstructure_hook_factory(_is_object_list, lambda cls: encode)
    c.register_structure_hook(datetime.datetime, lambda v, t: parse_time(v))
    c.register_unstructure_hook(datetime.datetime, format_time)


def make_converter() -> cattrs.Converter:
    """A new cattrs converter configured like ours (never cattrs' global one)."""
    import cattrs

    c = cattrs.Converter()
    configure_converter(c)
    return c


_converter: Optional[cattrs.Converter] = None


def _get_converter() -> cattrs.Converter:
    global _converter
    if _converter is None:
        _converter = make_converter()
    return _converter


if TYPE_CHECKING:
    converter: cattrs.Converter
else:

    def __getattr__(name: str) -> Any:
        if name == "converter":
            return _get_converter()
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Bottom import: dynamic needs this module's functions; referenced as _dynamic.X at call time.
from kubesync.core import dynamic as _dynamic  # noqa: E402
