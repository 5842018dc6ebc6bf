"""Schema generation: every type, validator, default and metadata key, and the errors."""

import collections.abc
import datetime
import enum
import re
import sys
from typing import Any, Dict, List, Literal, Mapping, Optional, Sequence, Set, Tuple, Union

import attrs
import pytest
from attrs import validators as v

from kubesync.core.convert import decode, encode
from kubesync.core.dynamic import DynamicObject
from kubesync.core.model import JSON_NAME, IntOrString, MicroTime, Time
from kubesync.crd import Model, SchemaError, field, schema_for
from kubesync.crd.schema import SCHEMA
from kubesync.errors import UsageError
from kubesync.models.meta_v1 import LabelSelector


def prop(annotation: Any, default: Any = attrs.NOTHING, **field_kwargs: Any) -> Dict[str, Any]:
    """The schema of a field ``x: annotation = field(default, **field_kwargs)``, with
    whether it is required under the key ``<required>``."""
    body = {"__annotations__": {"x": annotation},
            "x": field(default=default, **field_kwargs)}
    cls = attrs.define(type("C", (Model,), body))
    schema = schema_for(cls)
    out = dict(schema["properties"]["x"])
    out["<required>"] = "x" in schema.get("required", [])
    return out


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mixed(enum.Enum):
    A = "a"
    B = 2


# -- types --------------------------------------------------------------------------------


@pytest.mark.parametrize(("annotation", "expected"), [
    (str, {"type": "string"}),
    (int, {"type": "integer"}),
    (float, {"type": "number"}),
    (bool, {"type": "boolean"}),
    (datetime.datetime, {"type": "string", "format": "date-time"}),
    (Time, {"type": "string", "format": "date-time"}),
    (MicroTime, {"type": "string", "format": "date-time"}),
    (Color, {"type": "string", "enum": ["red", "blue"]}),
    (Level, {"type": "integer", "enum": [1, 2]}),
    (Literal["a", "b"], {"type": "string", "enum": ["a", "b"]}),
    (Literal[1, 2, 3], {"type": "integer", "enum": [1, 2, 3]}),
    (Literal[True], {"type": "boolean", "enum": [True]}),
    (Union[int, str], {"x-kubernetes-int-or-string": True}),
    (Union[str, int], {"x-kubernetes-int-or-string": True}),
    (IntOrString, {"x-kubernetes-int-or-string": True}),
    (Any, {"x-kubernetes-preserve-unknown-fields": True}),
    (object, {"x-kubernetes-preserve-unknown-fields": True}),
    (DynamicObject, {"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
    (List[int], {"type": "array", "items": {"type": "integer"}}),
    (list, {"type": "array", "items": {"x-kubernetes-preserve-unknown-fields": True}}),
    (Sequence[str], {"type": "array", "items": {"type": "string"}}),
    (collections.abc.MutableSequence[str], {"type": "array", "items": {"type": "string"}}),
    (List[Optional[int]], {"type": "array", "items": {"type": "integer", "nullable": True}}),
    (List[List[str]], {"type": "array",
                       "items": {"type": "array", "items": {"type": "string"}}}),
    (Dict[str, int], {"type": "object", "additionalProperties": {"type": "integer"}}),
    (Mapping[str, Color], {"type": "object",
                           "additionalProperties": {"type": "string", "enum": ["red", "blue"]}}),
    (Dict[str, Any], {"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
    (dict, {"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
    (Dict[str, List[str]], {"type": "object", "additionalProperties": {
        "type": "array", "items": {"type": "string"}}}),
])
def test_each_supported_type_has_its_structural_schema(annotation: Any, expected: Any) -> None:
    got = prop(annotation)
    assert got.pop("<required>") is True
    assert got == expected


def test_pep604_unions_map_like_typing_unions() -> None:
    if sys.version_info < (3, 10):
        pytest.skip("X | Y needs Python 3.10")
    assert prop(eval("int | str")) == {"x-kubernetes-int-or-string": True, "<required>": True}
    assert prop(eval("int | None")) == {"type": "integer", "nullable": True,
                                        "<required>": False}


def test_optional_is_nullable_and_never_required() -> None:
    assert prop(Optional[int]) == {"type": "integer", "nullable": True, "<required>": False}
    assert prop(Optional[Union[int, str]]) == {
        "x-kubernetes-int-or-string": True, "nullable": True, "<required>": False}
    assert prop(Union[None, Color]) == {"type": "string", "enum": ["red", "blue"],
                                        "nullable": True, "<required>": False}


def test_required_means_no_default_and_not_optional() -> None:
    @attrs.define(kw_only=True)
    class C(Model):
        a: int
        b: int = 1
        c: Optional[int] = None
        d: Optional[int] = attrs.field()
        e: List[int] = attrs.Factory(list)

    assert schema_for(C)["required"] == ["a"]


@attrs.define
class Leaf(Model):
    """A leaf.

    With a second paragraph.
    """

    name: str
    weight: float = 1.0


@attrs.define
class Branch(Model):
    leaves: List[Leaf]
    best: Optional[Leaf] = None
    by_name: Dict[str, Leaf] = attrs.Factory(dict)


def test_nested_models_are_inlined_with_their_required_fields_and_docstring() -> None:
    leaf = {"type": "object", "description": "A leaf.\n\nWith a second paragraph.",
            "properties": {"name": {"type": "string"},
                           "weight": {"type": "number", "default": 1.0}},
            "required": ["name"]}
    assert schema_for(Branch) == {
        "type": "object",
        "properties": {
            "leaves": {"type": "array", "items": leaf},
            "best": {**leaf, "nullable": True},
            "byName": {"type": "object", "additionalProperties": leaf, "default": {}},
        },
        "required": ["leaves"],
    }


def test_generated_models_nest_by_their_own_field_types() -> None:
    got = prop(LabelSelector)
    assert got["type"] == "object" and "description" not in got
    assert got["properties"]["matchLabels"] == {
        "type": "object", "additionalProperties": {"type": "string"}, "nullable": True}
    expression = got["properties"]["matchExpressions"]["items"]
    assert expression["required"] == ["key", "operator"]


def test_json_names_are_the_converters_names() -> None:
    @attrs.define
    class C(Model):
        max_surge: int = 0
        class_: str = "a"
        odd: str = attrs.field(default="b", metadata={JSON_NAME: "$odd"})
        named: str = field(default="c", json_name="renamed")

    names = list(schema_for(C)["properties"])
    assert names == ["maxSurge", "class", "$odd", "renamed"]
    assert list(encode(C())) == names


def test_an_empty_model_is_an_object_without_properties() -> None:
    @attrs.define
    class Empty(Model):
        pass

    assert schema_for(Empty) == {"type": "object"}


# -- defaults -------------------------------------------------------------------------------


@pytest.mark.parametrize(("annotation", "default", "expected"), [
    (int, 3, 3),
    (float, 0.5, 0.5),
    (bool, False, False),
    (str, "x", "x"),
    (Color, Color.BLUE, "blue"),
    (Level, Level.HIGH, 2),
    (Union[int, str], "50%", "50%"),
    (List[int], attrs.Factory(list), []),
    (Dict[str, int], attrs.Factory(dict), {}),
])
def test_literal_and_empty_container_defaults_become_schema_defaults(
    annotation: Any, default: Any, expected: Any
) -> None:
    got = prop(annotation, default)
    assert got["default"] == expected and type(got["default"]) is type(expected)
    assert got["<required>"] is False


@pytest.mark.parametrize(("annotation", "default"), [
    (Optional[int], None),
    (List[int], attrs.Factory(lambda: [1])),
    (Optional[Leaf], attrs.Factory(lambda: Leaf("x"))),
    (Optional[datetime.datetime], datetime.datetime(2024, 1, 1)),
])
def test_other_defaults_are_left_out_of_the_schema(annotation: Any, default: Any) -> None:
    got = prop(annotation, default)
    assert "default" not in got and got["<required>"] is False


# -- validators -----------------------------------------------------------------------------


@pytest.mark.parametrize(("annotation", "validator", "expected"), [
    (int, v.ge(0), {"minimum": 0}),
    (int, v.gt(0), {"minimum": 0, "exclusiveMinimum": True}),
    (int, v.le(10), {"maximum": 10}),
    (float, v.lt(1.5), {"maximum": 1.5, "exclusiveMaximum": True}),
    (int, [v.ge(1), v.le(5)], {"minimum": 1, "maximum": 5}),
    (int, v.and_(v.ge(1), v.ge(3), v.gt(3)), {"minimum": 3, "exclusiveMinimum": True}),
    (int, v.and_(v.le(9), v.le(4)), {"maximum": 4}),
    (str, v.min_len(1), {"minLength": 1}),
    (str, v.max_len(63), {"maxLength": 63}),
    (List[str], [v.min_len(1), v.max_len(3)], {"minItems": 1, "maxItems": 3}),
    (Dict[str, str], v.max_len(2), {"maxProperties": 2}),
    (str, v.matches_re(r"[a-z]+"), {"pattern": "^(?:[a-z]+)$"}),
    (str, v.matches_re(r"[a-z]+", func=re.match), {"pattern": "^(?:[a-z]+)"}),
    (str, v.matches_re(r"[a-z]+", func=re.search), {"pattern": "[a-z]+"}),
    (str, v.matches_re(r"ab", flags=re.I | re.S, func=re.search), {"pattern": "(?is)ab"}),
    (str, v.matches_re(r"a b", flags=re.VERBOSE), {}),
    (str, v.in_(["a", "b"]), {"enum": ["a", "b"]}),
    (str, v.in_({"b", "a"}), {"enum": ["a", "b"]}),
    (Color, v.in_([Color.RED]), {"enum": ["red"]}),
    (str, v.in_("abc"), {}),
    (Optional[int], v.optional(v.ge(0)), {"minimum": 0}),
    (Optional[int], v.optional([v.ge(0), v.le(1)]), {"minimum": 0, "maximum": 1}),
    (int, v.instance_of(int), {}),
    (str, v.ge("a"), {}),
    (int, v.matches_re("x"), {}),
    (int, v.max_len(3), {}),
])
def test_validators_with_a_schema_form_constrain_the_node(
    annotation: Any, validator: Any, expected: Dict[str, Any]
) -> None:
    got = prop(annotation, validator=validator)
    base = prop(annotation)
    added = {k: got[k] for k in got if k not in base or base[k] != got[k]}
    assert added == expected


def test_deep_validators_reach_items_and_values() -> None:
    items = prop(List[int], validator=v.deep_iterable(v.ge(0), v.max_len(4)))
    assert items["maxItems"] == 4 and items["items"] == {"type": "integer", "minimum": 0}
    values = prop(Dict[str, str], validator=v.deep_mapping(
        v.instance_of(str), v.max_len(8), v.min_len(1)))
    assert values["minProperties"] == 1
    assert values["additionalProperties"] == {"type": "string", "maxLength": 8}


# -- metadata -------------------------------------------------------------------------------


def test_field_helper_writes_descriptions_and_kubernetes_extensions() -> None:
    assert prop(str, description="what it is")["description"] == "what it is"
    keyed = prop(List[Leaf], list_map_keys=["name"])  # type: ignore[arg-type]
    assert keyed["x-kubernetes-list-type"] == "map"
    assert keyed["x-kubernetes-list-map-keys"] == ["name"]
    assert prop(List[str], list_type="set")["x-kubernetes-list-type"] == "set"
    assert prop(Dict[str, str], map_type="atomic")["x-kubernetes-map-type"] == "atomic"
    kept = prop(Optional[Leaf], None, preserve_unknown=True)
    assert kept["x-kubernetes-preserve-unknown-fields"] is True and kept["type"] == "object"
    extra = prop(str, schema={"format": "hostname", "example": "a.example"})
    assert extra["format"] == "hostname" and extra["example"] == "a.example"


def test_field_helper_is_an_attrs_field_with_default_factory_and_validator() -> None:
    @attrs.define
    class C(Model):
        a: int = field(default=2, validator=v.ge(0))
        b: List[int] = field(factory=list)
        c: int = field(default=0, kw_only=True, converter=int)

    assert C().a == 2 and C().b == [] and C(c="5").c == 5  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        C(a=-1)


def test_int_or_string_metadata_replaces_the_type() -> None:
    got = prop(str, int_or_string=True)
    assert got["x-kubernetes-int-or-string"] is True and "type" not in got


def test_schema_keywords_in_plain_attrs_metadata_are_used_and_others_ignored() -> None:
    got = prop(List[str], metadata={
        "description": "d", "x-kubernetes-list-type": "set", "maxItems": 9,
        "other.library/key": 1, SCHEMA: {"minItems": 1}})
    assert got["description"] == "d" and got["x-kubernetes-list-type"] == "set"
    assert got["maxItems"] == 9 and got["minItems"] == 1 and "other.library/key" not in got


def test_field_helper_refuses_unknown_list_and_map_types() -> None:
    with pytest.raises(UsageError, match="list_type"):
        field(list_type="bag")
    with pytest.raises(UsageError, match="map_type"):
        field(map_type="deep")


def test_a_field_description_wins_over_its_class_docstring() -> None:
    assert prop(Leaf, description="the main leaf")["description"] == "the main leaf"


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("annotation", "message"), [
    (Tuple[int, int], r"C\.x: typing\.Tuple\[int, int\] has no schema"),
    (Set[str], r"C\.x: typing\.Set\[str\] has no schema"),
    (datetime.date, r"C\.x: date has no schema"),
    (bytes, r"C\.x: bytes has no schema"),
    (Union[int, float], r"C\.x: .* union a structural schema cannot express"),
    (Union[str, List[str]], r"C\.x: .* union"),
    (Dict[int, str], r"C\.x: .*key type must be str"),
    (List[Tuple[int]], r"C\.x\[\]: typing\.Tuple\[int\] has no schema"),
    (Dict[str, bytes], r"C\.x\{\}: bytes has no schema"),
    (Mixed, r"C\.x: the values of Mixed must all be strings"),
    (Literal["a", 1], r"C\.x: the values of .* must all be"),
    (Literal[1.5], r"C\.x: the values of .* must all be"),
])
def test_unsupported_annotations_name_the_class_and_field(annotation: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        prop(annotation)


def test_schema_errors_are_type_errors_and_kube_errors() -> None:
    from kubesync.errors import KubeError

    assert issubclass(SchemaError, TypeError) and issubclass(SchemaError, KubeError)


def test_a_plain_attrs_class_is_refused_with_the_fix() -> None:
    @attrs.define
    class Plain:
        a: int

    with pytest.raises(SchemaError, match=r"C\.x: .*Plain is an attrs class but not a "
                                          r"kubesync Model.*class Plain\(kubesync\.crd\.Model\)"):
        prop(Plain)


def test_frozen_and_dict_models_are_refused() -> None:
    @attrs.frozen
    class Frozen(Model):
        a: int

    @attrs.define(slots=False)
    class Loose(Model):
        a: int

    with pytest.raises(SchemaError, match="Frozen: frozen classes cannot be decoded lazily"):
        schema_for(Frozen)
    with pytest.raises(SchemaError, match="Loose: a Model subclass must be slotted"):
        schema_for(Loose)


@attrs.define
class Node(Model):
    children: List["Node"] = attrs.Factory(list)


def test_recursive_models_are_refused() -> None:
    with pytest.raises(SchemaError, match=r"Node\.children\[\]: Node -> Node is recursive"):
        schema_for(Node)


def test_a_class_used_twice_side_by_side_is_not_recursion() -> None:
    @attrs.define
    class Pair(Model):
        left: Leaf
        right: Leaf

    assert schema_for(Pair)["properties"]["left"] == schema_for(Pair)["properties"]["right"]


def test_an_unresolvable_annotation_names_the_field() -> None:
    @attrs.define
    class C(Model):
        a: "Missing"  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(SchemaError, match=r"C\.a: cannot resolve the annotation 'Missing'"):
        schema_for(C)


# -- decoding agrees with the schema --------------------------------------------------------


@attrs.define
class Everything(Model):
    when: datetime.datetime
    color: Color
    level: Level
    mode: Literal["a", "b"]
    target: Union[int, str]
    free: Any
    leaves: List[Leaf]
    weights: Dict[str, float]
    maybe: Optional[Leaf] = None


def test_what_the_schema_admits_decodes_into_the_annotated_types() -> None:
    data = {"when": "2024-05-01T10:00:00.5Z", "color": "blue", "level": 2, "mode": "b",
            "target": "50%", "free": {"a": [1, None]}, "leaves": [{"name": "x", "new": 1}],
            "weights": {"a": 1, "b": 0.5}, "future": True}
    obj = decode(Everything, data)
    assert obj.when == datetime.datetime(2024, 5, 1, 10, 0, 0, 500000,
                                         tzinfo=datetime.timezone.utc)
    assert obj.color is Color.BLUE and obj.level is Level.HIGH and obj.mode == "b"
    assert obj.leaves[0].name == "x" and obj.weights == {"a": 1, "b": 0.5}
    assert encode(obj) == data  # unknown fields ("new", "future") kept
