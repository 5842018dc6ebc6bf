"""Lazy, lossless JSON views: the machinery under every ``Model``.

``decode`` wraps a mapping without converting anything; a field is converted on first
read (``View.__getattr__``) and cached in its slot. ``encode`` walks the source mapping in
order: unread fields and unknown keys go out as they came, read fields are encoded from
their current value, so decode -> encode is the identity and every change, however deep,
shows up.

Per class a plan (field names, JSON names, slots) is built on first use; per field a codec
is resolved from its annotation on first conversion. Other object types take part by
converting themselves: a class with a ``_kube_decode(data, tp)`` classmethod and a
``_kube_encode()`` method (``DynamicObject``, ``ObjectList``). Everything else goes
through the cattrs converter (``kubesync.core.converter``).
"""

from __future__ import annotations

import builtins
import collections.abc
import datetime
import re
import sys
import types
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Literal,
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

from kubesync.core import fieldtypes
from kubesync.core import json as _json
from kubesync.core.converter import get_converter
from kubesync.core.fieldtypes import TimeFormat
from kubesync.core.forkgate import import_module
from kubesync.core.location import Loc, decode_error, expected, kind_name, type_name
from kubesync.core.time import format_time, parse_time
from kubesync.errors import DecodeError

__all__ = [
    "ABSENT_AS_EMPTY",
    "JSON_NAME",
    "Packed",
    "View",
    "codec_for",
    "decode",
    "drop_field",
    "encode",
    "filler",
    "list_filler",
    "model_repr",
    "pack_field",
    "plan_of",
    "share_strings",
    "validate",
]

K = TypeVar("K")
V = TypeVar("V", bound="View")

#: The attrs field metadata key holding a field's JSON name (when it is not the
#: camelCase of the attribute name).
JSON_NAME = "kubesync.json"

#: The attrs field metadata key marking a field that is never None: absent in the JSON it
#: reads as its (factory) default, and that default, left empty, is not written back.
#: An object's ``metadata``: the server always sends it, so it is typed as present.
ABSENT_AS_EMPTY = "kubesync.absent_as_empty"

_new = object.__new__


class Packed(bytes):
    """A field's JSON value kept as compact JSON bytes (``pack_field``): a few hundred
    bytes where the parsed tree of small dicts takes thousands. Read back by the field's
    first read and by ``encode``, so nothing outside this module ever sees one."""

    __slots__ = ()

    def unpack(self) -> Any:
        """The JSON value, parsed anew."""
        return _json.loads(bytes(self))  # a copy: orjson reads exact bytes only

# A field decoder: (JSON value, its location) -> Python value.
Decoder = Callable[[Any, Loc], Any]
Encoder = Callable[[Any], Any]


# -- codecs -----------------------------------------------------------------------------


def _decode_time(value: Any, loc: Loc) -> datetime.datetime:
    if isinstance(value, str):
        try:
            return parse_time(value)
        except ValueError:
            pass
    raise decode_error(loc, f"expected an RFC 3339 time, got {value!r}")


def _encoder_time(micro: Optional[bool]) -> Encoder:
    def enc(value: Any) -> Any:
        if isinstance(value, datetime.datetime):
            return format_time(value, micro)
        return value

    return enc


def _converts_itself(tp: Any) -> bool:
    return hasattr(tp, "_kube_decode") and hasattr(tp, "_kube_encode")


def _encode_any(value: Any) -> Any:
    # Any-typed fields (RawExtension, JSON) hold plain values, or an object a caller put in.
    return value._kube_encode() if _converts_itself(type(value)) else value


def _encode_self(value: Any) -> Any:
    return value._kube_encode()


def _view_decoder(cls: type) -> Decoder:
    def dec(value: Any, loc: Loc) -> Any:
        if value.__class__ is not dict and not isinstance(value, dict):
            raise decode_error(loc, f"expected an object, got {type_name(value)}")
        obj: Any = _new(cls)
        obj._kube_raw = value
        obj._kube_at = loc
        filler(cls, False)(obj, value)
        return obj

    return dec


def _object_decoder(tp: Any) -> Decoder:
    # A type that converts itself (DynamicObject): JSON objects only, errors located here.
    def dec(value: Any, loc: Loc) -> Any:
        if not isinstance(value, dict):
            raise decode_error(loc, f"expected an object, got {type_name(value)}")
        return tp._kube_decode(value, tp)

    return dec


def _list_decoder(item: Decoder) -> Decoder:
    def dec(value: Any, loc: Loc) -> Any:
        if not isinstance(value, list):
            raise decode_error(loc, f"expected an array, got {type_name(value)}")
        return [item(x, (loc, i, None)) for i, x in enumerate(value)]

    return dec


def _dict_decoder(item: Decoder) -> Decoder:
    def dec(value: Any, loc: Loc) -> Any:
        if not isinstance(value, dict):
            raise decode_error(loc, f"expected an object, got {type_name(value)}")
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
            return get_converter().structure(value, tp)
        except Exception as e:  # cattrs raises many kinds; all mean "does not fit"
            raise decode_error(loc, f"does not fit {tp!r}: {e}") from e

    return dec


def _cattrs_encoder(tp: Any) -> Encoder:
    return lambda value: get_converter().unstructure(value, tp)


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
_SEQUENCES = (list, List, collections.abc.Sequence, collections.abc.MutableSequence)
_MAPPINGS = (dict, Dict, collections.abc.Mapping, collections.abc.MutableMapping)


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
    if origin is Literal:
        # An enum: checked for its JSON type only, so a value a newer server adds still
        # reads (and goes back unchanged) instead of failing the whole object.
        return Codec(check=tuple({type(v) for v in get_args(tp)}))
    if isinstance(tp, type) and origin is None:
        if issubclass(tp, View):
            return Codec(_view_decoder(tp), _encode_view)
        if _converts_itself(tp):
            return Codec(_object_decoder(tp), _encode_self)
        if tp is datetime.datetime:
            return Codec(_decode_time, _encoder_time(None), time=True)
        if tp in _SCALARS:
            return Codec(check=_SCALARS[tp])
    if origin in _SEQUENCES:
        (item_type,) = get_args(tp) or (Any,)
        return _list_codec(codec_for(item_type))
    if origin in _MAPPINGS:
        args = get_args(tp)
        return _dict_codec(codec_for(args[1] if len(args) == 2 else Any))
    if origin in _UNIONS:
        members = get_args(tp)
        if all(m in _SCALARS for m in members):  # IntOrString and the like
            return Codec(check=tuple(t for m in members for t in _flat(_SCALARS[m])))
    return Codec(_cattrs_decoder(tp), _cattrs_encoder(tp))


def _list_codec(item: Codec) -> Codec:
    """The codec of a list of ``item``s."""
    if item.dec is None:
        return Codec(enc=None if item.enc is None else _list_encoder(item.enc), check=list)
    return Codec(_list_decoder(item.dec), _list_encoder(item.enc or _identity))


def _dict_codec(item: Codec) -> Codec:
    """The codec of a map of string keys to ``item``s."""
    if item.dec is None:
        return Codec(enc=None if item.enc is None else _dict_encoder(item.enc), check=dict)
    return Codec(_dict_decoder(item.dec), _dict_encoder(item.enc or _identity))


def _flat(check: Any) -> Tuple[type, ...]:
    return check if isinstance(check, tuple) else (check,)


def _identity(value: Any) -> Any:
    return value


# -- plans --------------------------------------------------------------------------------


class _Names(Mapping[str, Any]):
    """Where annotation strings are looked up: the declaring module (whose generated
    classes are built on demand), the special field types, then the models package (by
    module name, as the generated annotations spell ``meta_v1.ObjectMeta``)."""

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
        if key.isidentifier() and key not in builtins.__dict__:  # str: no import to try
            try:
                return import_module(f"kubesync.models.{key}")  # fork-safe
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
    "Literal": Literal,
    "Optional": Optional,
    "Union": Union,
    "Time": fieldtypes.Time,
    "MicroTime": fieldtypes.MicroTime,
    "IntOrString": fieldtypes.IntOrString,
    "Quantity": fieldtypes.Quantity,
    "datetime": datetime.datetime,
}


class Field:
    """One model field in a plan: names, slot access, and its codec (resolved lazily)."""

    __slots__ = ("_type", "annotation", "check", "dec", "empty", "enc", "get", "json", "name",
                 "owner", "ready", "set", "time", "top")

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
        self._type: Any = _UNEVALUATED
        self.dec: Optional[Decoder] = None
        self.enc: Optional[Encoder] = None
        self.check: Any = None
        self.time = False

    @property
    def type(self) -> Any:
        """The annotation, evaluated (on first use)."""
        tp = self._type
        if tp is _UNEVALUATED:
            tp = self._type = self._evaluate()
        return tp

    def _evaluate(self) -> Any:
        tp = self.annotation
        if isinstance(tp, str):
            tp = _evaluate(tp, self._module())
        return tp

    def _module(self) -> str:
        """The module of the class that declares the field (a subclass may inherit it)."""
        declaring = next(
            (k for k in self.owner.__mro__ if self.name in vars(k).get("__annotations__", {})),
            self.owner,
        )
        return str(declaring.__module__)

    def resolve(self) -> None:
        """Pick the codec (once; races are harmless). A generated model's plain annotation
        (``Optional[str]``, ``Dict[str, str]``...) has its codec looked up from the string;
        any other is evaluated first."""
        tp = self.annotation
        codec = None
        if isinstance(tp, str) and self.owner.__module__.startswith(_GENERATED):
            codec = quick_codec(tp)
        if codec is None:
            codec = codec_for(self.type)
        self.dec, self.enc, self.check, self.time = codec.dec, codec.enc, codec.check, codec.time
        self.ready = True


_UNEVALUATED: Any = object()

#: The codecs of the plain annotation leaves a generated model spells (see
#: ``quick_codec``), as ``codec_for`` makes them from the evaluated types.
_QUICK_LEAVES: Dict[str, Codec] = {
    **{tp.__name__: Codec(check=_SCALARS[tp]) for tp in _SCALARS},
    "Quantity": Codec(check=_SCALARS[str]),  # fieldtypes.Quantity is str
    "IntOrString": Codec(check=_flat(_SCALARS[int]) + _flat(_SCALARS[str])),  # int | str
    "Any": Codec(enc=_encode_any),
}


def quick_codec(annotation: str) -> Optional[Codec]:
    """The codec of a plain annotation string (scalars, ``Any``, and ``List``, ``Dict``
    and ``Optional`` of them, as the generated models spell them) without evaluating it,
    the same codec ``codec_for`` picks for the evaluated type; None for any other. The
    typing subscripts an evaluation makes cost about 200,000 instructions per field on
    first use, which a fresh process's first decode pays for every field it fills."""
    if annotation.startswith("Optional[") and annotation.endswith("]"):
        annotation = annotation[9:-1]
    leaf = _QUICK_LEAVES.get(annotation)
    if leaf is not None:
        return leaf
    if annotation.endswith("]"):  # the items have no decoder either (see the leaves)
        if annotation.startswith("List["):
            item = quick_codec(annotation[5:-1])
            return None if item is None else _list_codec(item)
        if annotation.startswith("Dict[str, "):
            item = quick_codec(annotation[10:-1])
            return None if item is None else _dict_codec(item)
    return None


#: Evaluated annotation strings of the generated models, by (module, string): a
#: generated module spells a few dozen distinct ones ("Optional[str]") over hundreds of
#: fields, and each ``eval`` compiles its string first. Only theirs: a name in a user's
#: module can be rebound (a class redefined in a notebook cell), a generated one cannot.
_EVALUATED: Dict[Tuple[str, str], Any] = {}
_GENERATED = "kubesync.models."


def _evaluate(annotation: str, module: str) -> Any:
    key = (module, annotation)
    tp = _EVALUATED.get(key)
    if tp is None:
        names = _Names(module)
        tp = _parse(annotation, names)
        if tp is None:
            namespace = {"__builtins__": builtins.__dict__}
            tp = eval(annotation, namespace, names)  # our own annotation strings
        if module.startswith(_GENERATED):
            _EVALUATED[key] = tp
    return tp


_TOKEN = re.compile(r"\s*(?:([A-Za-z_][\w.]*)|([\[\],]))")


def _parse(annotation: str, names: _Names) -> Any:
    """An annotation of names, dotted names and subscripts (``Optional[Dict[str, str]]``,
    ``meta_v1.ObjectMeta``) evaluated without ``eval``, which compiles its string first:
    names are looked up as ``eval`` would (``names``, then builtins). None for anything
    else (a string literal, an operator, a name not found), which ``eval`` then does."""
    tokens: List[str] = []
    pos = 0
    while pos < len(annotation):
        m = _TOKEN.match(annotation, pos)  # a match takes at least one token
        if m is None:
            return None if annotation[pos:].strip() else _build(tokens, names)
        tokens.append(m.group(1) or m.group(2))
        pos = m.end()
    return _build(tokens, names)


def _build(tokens: List[str], names: _Names) -> Any:
    tokens.reverse()
    try:
        tp = _term(tokens, names)
    except (LookupError, AttributeError, TypeError):
        return None
    return None if tokens else tp


def _term(tokens: List[str], names: _Names) -> Any:
    """One name, maybe subscripted; pops what it reads (``tokens`` is reversed)."""
    head, *attrs_ = tokens.pop().split(".")
    if not head.isidentifier():
        raise LookupError(head)
    try:
        value = names[head]
    except KeyError:
        value = builtins.__dict__[head]
    for a in attrs_:
        value = getattr(value, a)
    if tokens and tokens[-1] == "[":
        tokens.pop()
        args = [_term(tokens, names)]
        while tokens.pop() == ",":
            args.append(_term(tokens, names))
        value = value[args[0] if len(args) == 1 else tuple(args)]
    return value


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
        empty = a.default.factory if a.metadata.get(ABSENT_AS_EMPTY) else None
        fields.append(Field(cls, a.name, json_name, slot, a.type, empty))
    return Plan(fields)


# -- filling at decode -------------------------------------------------------------------

# A decoded object's fields whose JSON value is used as it is (strings, numbers, maps and
# lists of them: no decoder, at most a type check) are put in their slots when the object
# is made, before anyone else can see it; so is, for a top-level object, each present
# field that is itself a model (metadata, spec, status), filled the same way one level
# down. A first read of those is then a plain slot read instead of a failed one plus
# ``__getattr__`` (an AttributeError built and caught, a Python call: about 7000
# instructions each). Nothing is converted or copied: a filled slot holds the very value
# of the source mapping, which ``encode`` writes back as it came. A value of the wrong
# type is left unfilled, so its error still comes on its own first read.

Filler = Callable[[Any, Dict[str, Any]], None]
_FILLERS: Dict[Tuple[type, bool], Filler] = {}
#: A model-typed field a top-level filler fills: JSON name, attribute, slot setter, the
#: model class, its location.
_ModelField = Tuple[str, str, Callable[[Any, Any], None], type, Loc]

#: The plain fields of nested (not top-level) classes, for top-level fillers to inline.
_INLINE: Dict[type, Dict[str, Tuple[str, Any]]] = {}

#: Names an annotation string may use for its field to be resolved when a filler is made:
#: none of them names a model class, so resolving builds no class (a model-typed field of
#: a nested object stays lazy, and its class is built on its first read).
_PLAIN_NAMES = frozenset({"str", "int", "bool", "float", "Any", "Dict", "List", "Optional",
                          "Union", "Quantity", "IntOrString", "Time", "MicroTime"})
_PUNCTUATION = str.maketrans("[],", "   ")


def _plain(annotation: Any) -> bool:
    return not isinstance(annotation, str) or all(
        n in _PLAIN_NAMES for n in annotation.translate(_PUNCTUATION).split())


def filler(cls: type, top: bool) -> Filler:
    """``fill(obj, raw)`` for new objects of ``cls``: puts the fields taken as they are
    (and, for a top-level object, its model-typed fields) in their slots. Made once per
    class."""
    fn = _FILLERS.get((cls, top))
    if fn is None:
        fn = _FILLERS.setdefault((cls, top), _make_filler(cls, top))
    return fn


def _fields_to_fill(cls: type, top: bool) -> Tuple[Dict[str, Tuple[str, Any]],
                                                   List[_ModelField]]:
    """The fields a filler fills: plain ones by JSON name (attribute, type check), and for
    a top-level object its model-typed ones."""
    plain: Dict[str, Tuple[str, Any]] = {}
    models: List[_ModelField] = []
    for f in plan_of(cls).fields:
        if not f.ready:
            if not (top or _plain(f.annotation)):
                continue
            try:
                f.resolve()
            except Exception:  # the field's own first read raises it, where it belongs
                continue
        if f.dec is None:
            plain[f.json] = (f.name, object if f.check is None else f.check)
        elif top:
            tp = _strip_optional(f.type)
            if isinstance(tp, type) and issubclass(tp, View):
                models.append((f.json, f.name, f.set, tp, f.top))
    return plain, models


def _make_filler(cls: type, top: bool) -> Filler:
    plain, models = _fields_to_fill(cls, top)
    if _sets_slots_plainly(cls):
        return _compiled_filler(cls, plain, models)
    # A class with a __setattr__ of its own (attrs on_setattr hooks): the slots are set
    # directly, as a first read sets them.
    get = plain.get
    by_attr = plan_of(cls).by_attr

    def put(obj: Any, name: str, value: Any) -> None:
        by_attr[name].set(obj, value)

    def fill(obj: Any, raw: Dict[str, Any]) -> None:
        for key, value in raw.items():
            entry = get(key)
            if entry is not None and isinstance(value, entry[1]):
                put(obj, entry[0], value)

    if not models:
        return fill
    fill_models = [(key, put_model, model, loc, filler(model, False))
                   for key, _, put_model, model, loc in models]

    def fill_top(obj: Any, raw: Dict[str, Any]) -> None:
        for key, value in raw.items():
            entry = get(key)
            if entry is not None and isinstance(value, entry[1]):
                put(obj, entry[0], value)
        for key, put_model, model, loc, fill_model in fill_models:
            value = raw.get(key)
            if value.__class__ is dict:
                sub: Any = _new(model)
                sub._kube_raw = value
                sub._kube_at = loc
                fill_model(sub, value)
                put_model(obj, sub)

    return fill_top


def _sets_slots_plainly(cls: type) -> bool:
    """No ``__setattr__`` of its own: ``obj.attr = v`` in generated code stores the slot."""
    return getattr(cls, "__setattr__", None) is object.__setattr__


def _nested_plain(cls: type) -> Dict[str, Tuple[str, Any]]:
    """The plain fields of ``cls`` as a nested object, to inline in a top-level filler."""
    plain = _INLINE.get(cls)
    if plain is None:
        plain = _INLINE.setdefault(cls, _fields_to_fill(cls, False)[0])
    return plain


def _compiled_filler(cls: type, plain: Dict[str, Tuple[str, Any]],
                     models: List[_ModelField]) -> Filler:
    """The filler of a class without a ``__setattr__`` of its own, as straight-line code:
    per field a ``key in raw`` (no call; all an absent field costs), then ``raw[key]``,
    an exact type check (``type(v) is T``; ``v.__class__`` would save a few dozen
    instructions but run a property of the value's own, and let through an object that
    reports another class) and a plain attribute store, which the interpreter runs as a
    slot store. The filler of a model-typed field (``metadata``) is inlined when it is
    straight-line code too, so a top-level object is one Python call.
    A value of another class (a bool for an int, a str subclass) stays for its first read,
    which checks and converts it as before. Names come from the class's own fields (attrs
    attribute names, identifiers); JSON names are string literals, and everything else is
    one of the filler's globals (``_Locals``)."""
    env = _Locals(unpack=False)
    body = _fill_body(cls, plain, models, env, "    ")
    fn: Filler = _compile(cls, "filler", "fill", "obj, raw", body, env)
    return fn


class _Locals:
    """The values a generated filler uses, each bound to a short name.

    With ``unpack`` (a list filler: one call per LIST, a loop over its items) the filler
    first unpacks them all into its locals, so the loop reads each as a local (the
    cheapest load; a global costs about 20 instructions more per use, and the loop uses
    dozens per item), JSON keys included, as the parser's own key strings
    (``json.parsed_keys``, one parse of them all): orjson hands out one cached string
    per short key, so looking a parsed mapping up by it matches by identity instead of
    comparing the characters (about 60 instructions less per present field).

    Without (the filler of one object, called per object) the values are the filler's
    globals and JSON keys are string literals: the unpacking would cost every call, and
    the names it lists cost ``compile`` about 1,400 instructions per character, more
    than they save in a process that decodes a few objects each of many kinds."""

    __slots__ = ("_keys", "_names", "unpack", "values")

    def __init__(self, unpack: bool) -> None:
        self.unpack = unpack
        self.values: Dict[str, Any] = {"new": _new, "type": type, "dict": dict}
        self._names: Dict[Tuple[str, int], str] = {}  # (prefix, id of the value) -> name
        self._keys: Dict[str, str] = {}  # JSON key -> name

    def name(self, value: Any, prefix: str) -> str:
        """The local name of ``value`` (a type, a class, a location): one per distinct
        value."""
        key = (prefix, id(value))
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = f"{prefix}{len(self.values)}"
            self.values[name] = value
        return name

    def key(self, json_name: str) -> str:
        """The JSON key ``json_name`` as code: its local name, or a string literal."""
        if not self.unpack:
            return repr(json_name)
        name = self._keys.get(json_name)
        if name is None:
            name = self._keys[json_name] = f"K{len(self.values)}"
            self.values[name] = json_name
        return name

    def parse_keys(self) -> None:
        """Makes the JSON keys among ``values`` the parser's own strings."""
        parsed = _json.parsed_keys(self._keys)
        for key, name in self._keys.items():
            self.values[name] = parsed.get(key, key)

    def key_positions(self) -> Dict[str, int]:
        """Each JSON key's index among ``values``."""
        index = {name: i for i, name in enumerate(self.values)}
        return {key: index[name] for key, name in self._keys.items()}


def _fill_body(cls: type, plain: Dict[str, Tuple[str, Any]], models: List[_ModelField],
               env: _Locals, indent: str, skip: Tuple[Any, Any] = ((), ())) -> List[str]:
    """The statements that fill ``obj`` from ``raw``; the JSON keys in ``skip`` (of the
    object, of its model fields) are left to their first read."""
    lines: List[str] = []
    own, nested = skip
    _emit_plain(lines, env, cls, _without(plain, own), "obj", "raw", indent)
    for key, attr, _, model, loc in models:
        _check_identifier(cls, attr)
        k = env.key(key)
        lines += [f"{indent}if {k} in raw and type(m := raw[{k}]) is dict:",
                  f"{indent}    sub = new({env.name(model, 'M')})",
                  f"{indent}    sub._kube_raw = m",
                  f"{indent}    sub._kube_at = {env.name(loc, 'L')}"]
        if _sets_slots_plainly(model):
            _emit_plain(lines, env, model, _without(_nested_plain(model), nested), "sub", "m",
                        indent + "    ")
        else:
            lines.append(f"{indent}    {env.name(filler(model, False), 'F')}(sub, m)")
        lines.append(f"{indent}    obj.{attr} = sub")
    return lines or [f"{indent}pass"]


def _without(plain: Dict[str, Tuple[str, Any]], keys: Any) -> Dict[str, Tuple[str, Any]]:
    return {k: v for k, v in plain.items() if k not in keys} if keys else plain


def _compile(cls: type, what: str, fn: str, params: str, body: List[str],
             env: _Locals, prologue: Tuple[str, ...] = ()) -> Any:
    """The function ``fn(params)`` with ``body``, the names of ``env`` its globals or, to
    unpack, unpacked into its locals from one tuple after ``prologue``. (Positional
    defaults would cost nothing per call, but a parameter list with defaults is about
    five times dearer for ``compile`` to parse: it tries the list several ways.)"""
    if env.unpack:
        env.parse_keys()
        names = ", ".join(env.values)
        source = "\n".join([f"def {fn}({params}):", *prologue, f"    {names}, = V",
                            *body]) + "\n"
        namespace = {"V": tuple(env.values.values())}
    else:
        source = "\n".join([f"def {fn}({params}):", *body]) + "\n"
        namespace = dict(env.values)
    code = compile(source, f"<kubesync {what} of {cls.__qualname__}>", "exec")
    exec(code, namespace)  # our own generated source, from field names only
    return namespace[fn]


#: A LIST's items -> new top-level objects: see ``list_filler``.
ListFiller = Callable[[List[Any]], List[Any]]
_LIST_FILLERS: Dict[type, ListFiller] = {}


def list_filler(cls: type) -> ListFiller:
    """``fill_list(items)``: a new top-level object of ``cls`` per item, filled as
    ``filler(cls, True)`` fills; a ``DecodeError`` naming the first item that is not a
    JSON object. For a class without a ``__setattr__`` of its own, one loop of
    straight-line code (no Python call per item). Made once per class, on first use."""
    fn = _LIST_FILLERS.get(cls)
    if fn is None:
        fn = _LIST_FILLERS.setdefault(cls, _make_list_filler(cls))
    return fn


#: JSON keys the API server does not send in a LIST's items, which a list filler leaves
#: to their first read rather than look each up in every item (about 220 instructions
#: per item and key, 3.5 M for a LIST of 5000 ConfigMaps): an item's ``apiVersion`` and
#: ``kind`` for the built-in kinds (a typed list's items omit them; a custom resource's
#: carry them), and ``metadata.selfLink``, which servers stopped setting in 1.20. A read
#: gives the same value either way; one of these when present costs its first read
#: about 7,000 instructions instead of 300.
_NOT_IN_BUILTIN_ITEMS = frozenset({"apiVersion", "kind"})
_NOT_IN_ITEM_MODELS = frozenset({"selfLink"})


def _list_skip(cls: type) -> Tuple[Any, Any]:
    own = _NOT_IN_BUILTIN_ITEMS if str(cls.__module__).startswith(_GENERATED) else ()
    return own, _NOT_IN_ITEM_MODELS


def _make_list_filler(cls: type) -> ListFiller:
    if not _sets_slots_plainly(cls):
        fill = filler(cls, True)

        def fill_each(raws: List[Any]) -> List[Any]:
            items = []
            for raw in raws:
                if raw.__class__ is not dict:
                    _not_an_object(cls, raws, raw)
                obj: Any = _new(cls)
                obj._kube_raw = raw
                obj._kube_at = None
                fill(obj, raw)
                items.append(obj)
            return items

        return fill_each
    plain, models = _fields_to_fill(cls, True)
    env = _Locals(unpack=True)
    c = env.name(cls, "C")
    # Before the keys are unpacked, so that this call gets them (and names nothing the
    # unpacking binds: those are the function's locals, unbound until then).
    renew = ("    if raws:", "        RENEW(raws[0])")
    body = ["    items = []",
            "    append = items.append",
            "    for raw in raws:",
            "        if type(raw) is not dict:",
            f"            {env.name(_not_an_object, 'E')}({c}, raws, raw)",
            f"        obj = new({c})",
            "        obj._kube_raw = raw",
            "        obj._kube_at = None",
            *_fill_body(cls, plain, models, env, "        ", _list_skip(cls)),
            "        append(obj)",
            "    return items"]
    fn: ListFiller = _compile(cls, "list filler", "fill_list", "raws", body, env, renew)
    inlined = tuple(key for key, _, _, model, _ in models if _sets_slots_plainly(model))
    fn.__globals__["RENEW"] = _Renewal(fn.__globals__, env.key_positions(), inlined)
    return fn


class _Renewal:
    """Keeps a list filler's keys the parser's current ones. orjson's key cache gives a
    key a new string object once another key has taken its place, and a filler made
    before that would compare characters again. So each LIST call first takes the key
    strings of its first item, and of that item's inlined model fields (``metadata``),
    for the ones that have changed: one dict lookup per key there. Only exact ``str``
    keys of exact ``dict`` mappings are taken (``type``, not ``__class__``, which a
    value can fake): they are equal to the ones they replace and hash and compare as
    strings do, so every later lookup finds the same entries."""

    __slots__ = ("namespace", "nested", "positions")

    def __init__(self, namespace: Dict[str, Any], positions: Dict[str, int],
                 nested: Tuple[str, ...]):
        self.namespace = namespace
        self.positions = positions
        self.nested = nested

    def __call__(self, item: Any) -> None:
        if type(item) is not dict:
            return  # the filler's loop reports it
        values = self.namespace["V"]
        positions = self.positions
        fresh: Optional[List[Any]] = None
        for mapping in (item, *[item.get(key) for key in self.nested]):
            if type(mapping) is not dict:
                continue
            for key in tuple(mapping):  # a snapshot: another thread may change it
                i = positions.get(key) if type(key) is str else None
                if i is not None and values[i] is not key:
                    if fresh is None:
                        fresh = list(values)
                    fresh[i] = key
        if fresh is not None:
            self.namespace["V"] = tuple(fresh)  # one store: a concurrent call sees either


def _not_an_object(cls: type, raws: List[Any], raw: Any) -> None:
    index = next(i for i, x in enumerate(raws) if x is raw)
    raise DecodeError(f"expected an object, got {type_name(raw)}", kind=kind_name(cls),
                      path=f"items[{index}]")


def _check_identifier(cls: type, attr: str) -> None:
    if not attr.isidentifier():  # cannot happen for attrs fields; stay safe anyway
        raise ValueError(f"{cls.__name__}: field name {attr!r} is not an identifier")


def _emit_plain(lines: List[str], env: _Locals, cls: type,
                plain: Dict[str, Tuple[str, Any]], obj: str, raw: str, indent: str) -> None:
    # One line per field: ``if K in raw and type(v := raw[K]) is T: obj.attr = v``.
    # The same bytecode as four lines and blocks, but a quarter less for ``compile`` to
    # parse (a fresh process compiles each filler once: about 0.8 M instructions saved).
    for key, (attr, check) in plain.items():
        _check_identifier(cls, attr)
        k = env.key(key)
        if check is object:
            test = f"(v := {raw}[{k}]) is not None"
        else:
            names = [env.name(t, "T") for t in (check if isinstance(check, tuple) else (check,))]
            if len(names) == 1:
                test = f"type(v := {raw}[{k}]) is {names[0]}"
            else:
                test = f"(t := type(v := {raw}[{k}])) is " + " or t is ".join(names)
                test = f"({test})"
        lines.append(f"{indent}if {k} in {raw} and {test}: {obj}.{attr} = v")


# -- lazy reads ---------------------------------------------------------------------------


def lazy_getattr(self: Any, name: str) -> Any:
    """``View.__getattr__``: convert an unread field from the source mapping and cache it."""
    cls = self.__class__
    plan = _PLANS.get(cls) or plan_of(cls)
    f = plan.by_attr.get(name)
    if f is None:
        if name == "_kube_at" or name == "_kube_raw":
            return None
        raise AttributeError(f"{cls.__name__!r} object has no attribute {name!r}")
    raw = self._kube_raw
    value = None if raw is None else raw.get(f.json)
    if value.__class__ is Packed:
        value = value.unpack()
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
            raise decode_error(f.top if at is None else (at, f.json),
                               f"expected {expected(f.check)}, got {type_name(value)}")
    f.set(self, value)
    return value


class View:
    """The base of ``Model``: a slotted object whose unread fields convert on first read.

    Instances made by ``decode`` hold their source mapping in ``_kube_raw`` (an attrs
    field of ``Model``) and their place in the top-level object in ``_kube_at``.
    """

    # A plain slot, not an attrs field: bookkeeping, not data. None for a top-level object,
    # else the location (see kubesync.core.location) for error messages.
    __slots__ = ("_kube_at",)
    _kube_at: Any

    if not TYPE_CHECKING:  # hidden from mypy, so that attribute names stay checked
        __getattr__ = lazy_getattr

    @classmethod
    def _kube_decode(cls: Type[V], data: Any, tp: Any = None) -> V:
        return decode(cls, data)

    def _kube_encode(self) -> Dict[str, Any]:
        return _encode_view(self)


# -- decode and encode --------------------------------------------------------------------


@overload
def decode(cls: Type[V], data: Any) -> V: ...


@overload
def decode(cls: Type[K], data: Any) -> K: ...


def decode(cls: Any, data: Any) -> Any:
    """Decode one object of JSON (a dict) as ``cls``. Nothing is converted until read."""
    if isinstance(cls, type) and issubclass(cls, View):
        if data.__class__ is not dict:
            if not isinstance(data, Mapping):
                raise DecodeError(f"expected an object, got {type_name(data)}",
                                  kind=kind_name(cls))
            data = dict(data)
        resource = getattr(cls, "api_resource", None)
        kind = data.get("kind")
        if resource is not None and kind is not None and kind != resource.kind:
            raise DecodeError(f"the object is a {kind}", kind=resource.kind)
        obj: Any = _new(cls)
        obj._kube_raw = data
        obj._kube_at = None
        filler(cls, True)(obj, data)
        return obj
    decoder = getattr(cls, "_kube_decode", None)
    if decoder is not None:
        return decoder(data, cls)
    return get_converter().structure(data, cls)


def encode(obj: Any) -> Any:
    """The JSON form (dicts, lists, str...) of a model, ``DynamicObject`` or ``ObjectList``.

    For a decoded object: keys in their original order, unread and unknown fields as they
    came (shared, not copied), read fields from their current value; ``None`` omits a key.
    """
    if isinstance(obj, View):
        return _encode_view(obj)
    if _converts_itself(type(obj)):
        return obj._kube_encode()
    return get_converter().unstructure(obj)


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


def _encode_view(obj: Any) -> Dict[str, Any]:
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
                out[key] = (raw_value if raw_value.__class__ is not Packed
                            else raw_value.unpack())
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


# -- checks and edits ---------------------------------------------------------------------


def validate(obj: V) -> V:
    """Convert every field now, deeply, checking types: errors raise ``DecodeError`` here
    instead of on first read. Returns ``obj``."""
    _validate_view(obj)
    return obj


def _validate_view(obj: Any) -> None:
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
    if isinstance(value, View):
        _validate_view(value)
        return
    if tp is Any or tp is object or _converts_itself(type(value)):
        return
    if origin in _SEQUENCES:
        if not isinstance(value, list):
            raise decode_error(loc, f"expected an array, got {type_name(value)}")
        (item_type,) = get_args(tp) or (Any,)
        for i, x in enumerate(value):
            _validate_value(x, item_type, (loc, i, None))
        return
    if origin in _MAPPINGS:
        if not isinstance(value, dict):
            raise decode_error(loc, f"expected an object, got {type_name(value)}")
        args = get_args(tp)
        for k, x in value.items():
            _validate_value(x, args[1] if len(args) == 2 else Any, (loc, k, None))
        return
    if isinstance(tp, type) and issubclass(tp, View):
        raise decode_error(loc, f"expected an object, got {type_name(value)}")
    check = codec_for(tp).check
    if check is not None and not isinstance(value, check):
        raise decode_error(loc, f"expected {expected(check)}, got {type_name(value)}")


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


def pack_field(obj: Any, name: str) -> bool:
    """Keep field ``name`` of a model, while it is unread, as compact JSON bytes in the
    source mapping instead of a tree of dicts and lists; its first read and ``encode``
    parse it back, so what reads and writes see is unchanged (lossless). For caches of
    objects whose bulky fields are rarely read: ``metadata.managedFields`` is half of a
    small object's memory as parsed and a fifth of that packed. A field already read keeps
    its value in the slot, which reads and ``encode`` use first, so packing it is harmless
    but frees nothing. True when packed; False when absent, already packed or not
    JSON-encodable."""
    f = plan_of(obj.__class__).by_attr.get(name)
    if f is None:
        raise AttributeError(f"{obj.__class__.__name__!r} has no field {name!r}")
    raw = obj._kube_raw
    value = None if not raw else raw.get(f.json)
    if value is None or value.__class__ is Packed:
        return False
    try:
        data = _json.dumps(value)
    except (TypeError, ValueError, OverflowError):  # e.g. an int beyond 64 bits for orjson
        return False
    raw[f.json] = Packed(data)
    return True


def share_strings(obj: Any, *names: str, pool: Dict[str, str]) -> None:
    """Replace the strings of the fields ``names`` of a model as the source mapping holds
    them (a string, or the string values of a map or list) by the equal string already in
    ``pool`` (adding those it lacks), in the slot too when it holds the same value: equal
    values, so nothing a read or ``encode`` gives changes, but a cache of many objects keeps
    one copy of each repeated string (a namespace, a label value) instead of one per
    object. Maps and lists change in place. A value set after decoding, a packed or a
    non-string value is left as it is; a name the model lacks raises AttributeError.

    ``pool`` is the caller's to bound (``sys.intern`` is not used: on Python 3.12 an
    interned string is never freed, and label values can be unique)."""
    by_attr = (_PLANS.get(obj.__class__) or plan_of(obj.__class__)).by_attr
    raw = obj._kube_raw
    share = pool.setdefault
    for name in names:
        f = by_attr.get(name)
        if f is None:
            raise AttributeError(f"{obj.__class__.__name__!r} has no field {name!r}")
        value = raw.get(f.json) if raw else None
        if value is None:
            continue
        cls = value.__class__
        if cls is str:
            shared = raw[f.json] = share(value, value)
            try:
                if f.get(obj) is value:  # filled or read, unchanged
                    f.set(obj, shared)
            except AttributeError:  # unread
                pass
        elif cls is dict:
            # A snapshot: a user changing the map meanwhile (which they must not) cannot
            # make this raise and the store lose the event.
            for k, v in tuple(value.items()):
                if v.__class__ is str:
                    value[k] = share(v, v)
        elif cls is list:
            for i, v in enumerate(tuple(value)):
                if v.__class__ is str:
                    value[i] = share(v, v)


def model_repr(obj: Any) -> str:
    """``Kind(field=value, ...)`` with the fields that are not None (reads them)."""
    parts = []
    for f in plan_of(obj.__class__).fields:
        value = getattr(obj, f.name)
        if value is not None:
            parts.append(f"{f.name}={value!r}")
    return f"{obj.__class__.__name__}({', '.join(parts)})"
