"""Decoded objects get their plain fields (and a top-level object its model fields) in
their slots when made: same values, same round trip, errors still on their own read."""

from __future__ import annotations

import copy
import threading
from typing import Any, Dict, List

import pytest

from kubesync.core.convert import decode, decode_list, encode, plan_of
from kubesync.errors import DecodeError
from kubesync.models.core_v1 import ConfigMap, Pod


def pod_json() -> Dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns", "labels": {"a": "b"},
                     "creationTimestamp": "2024-01-02T03:04:05Z",
                     "managedFields": [{"manager": "m", "operation": "Update"}],
                     "futureMetaField": {"x": 1}},
        "spec": {"containers": [{"name": "c", "image": "i", "futureContainerField": 1}],
                 "nodeName": "n1", "futureSpecField": [1, 2]},
        "status": {"phase": "Running"},
        "futureTopField": "kept",
    }


def in_slot(obj: Any, name: str) -> Any:
    """The slot's value without going through a first read (AttributeError if empty)."""
    return plan_of(type(obj)).by_attr[name].get(obj)


def test_plain_fields_and_metadata_are_in_their_slots_as_the_very_source_values() -> None:
    raw = {"items": [{"metadata": {"name": "a", "labels": {"k": "v"}}, "data": {"x": "1"}}],
           "metadata": {}}
    (cm,) = decode_list(ConfigMap, raw).items
    item = raw["items"][0]
    assert in_slot(cm, "data") is item["data"]
    meta = in_slot(cm, "metadata")
    assert in_slot(meta, "name") == "a" and in_slot(meta, "labels") is item["metadata"]["labels"]


def test_converted_and_nested_model_fields_stay_lazy() -> None:
    pod = decode(Pod, pod_json())
    meta, spec = in_slot(pod, "metadata"), in_slot(pod, "spec")
    for obj, name in ((meta, "creation_timestamp"), (meta, "managed_fields"),
                      (spec, "containers")):
        with pytest.raises(AttributeError):
            in_slot(obj, name)
    assert pod.metadata.creation_timestamp is not None
    assert pod.spec.containers[0].name == "c"


def test_a_wrong_type_is_left_for_its_own_read_to_report() -> None:
    cm = decode(ConfigMap, {"metadata": {"name": "a"}, "data": 5})
    assert cm.metadata.name == "a"  # the rest of the object reads
    with pytest.raises(DecodeError, match="data"):
        cm.data  # noqa: B018


def test_round_trip_keeps_every_field_read_or_not() -> None:
    source = pod_json()
    assert encode(decode(Pod, copy.deepcopy(source))) == source
    pod = decode(Pod, copy.deepcopy(source))
    pod.metadata.labels["a"] = "changed"
    pod.spec.node_name = "n2"
    out = encode(pod)
    assert out["metadata"]["labels"] == {"a": "changed"}
    assert out["spec"]["nodeName"] == "n2"
    assert out["futureTopField"] == "kept"
    assert out["metadata"]["futureMetaField"] == {"x": 1}
    assert out["spec"]["containers"][0]["futureContainerField"] == 1
    assert list(out) == list(source)


def test_two_threads_reading_one_object_first_time_see_the_same_values() -> None:
    pod = decode(Pod, pod_json())
    gate = threading.Barrier(2, timeout=10)
    seen: List[Any] = []
    lock = threading.Lock()

    def read() -> None:
        gate.wait()
        got = (pod.metadata.name, pod.metadata.creation_timestamp,
               [c.name for c in pod.spec.containers], pod.status.phase)
        with lock:
            seen.append(got)

    threads = [threading.Thread(target=read, name=f"reader-{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(seen) == 2 and seen[0] == seen[1]
    assert seen[0][0] == "p" and seen[0][2] == ["c"]
    assert encode(pod) == pod_json()


def test_values_of_another_class_than_the_fields_are_read_and_checked_on_first_read() -> None:
    class Name(str):
        pass

    raw = {"metadata": {"name": Name("a"), "generation": True, "labels": None,
                        "namespace": "ns"}, "data": {"k": "v"}}
    cm = decode(ConfigMap, raw)
    meta = in_slot(cm, "metadata")
    assert in_slot(meta, "namespace") == "ns"  # the exact class: filled
    for name in ("name", "generation", "labels"):  # the rest waits for its own read
        with pytest.raises(AttributeError):
            in_slot(meta, name)
    assert cm.metadata.name == "a" and cm.metadata.generation is True
    assert cm.metadata.labels is None
    assert encode(cm) == raw


def test_a_class_with_its_own_setattr_is_filled_through_its_slots() -> None:
    import attrs

    from kubesync.core.model import Model

    @attrs.define(slots=True, kw_only=True, repr=False)
    class Hooked(Model):
        name: str = attrs.field(default="", on_setattr=attrs.setters.validate,
                                validator=attrs.validators.instance_of(str))

    obj = decode(Hooked, {"name": "a", "other": 1})
    assert in_slot(obj, "name") == "a"
    assert encode(obj) == {"name": "a", "other": 1}


def test_a_list_builds_its_list_metadata_on_first_read_only() -> None:
    from kubesync.models.meta_v1 import ListMeta

    raw = {"metadata": {"resourceVersion": "7", "continue": "c", "remainingItemCount": 3},
           "items": [{"metadata": {"name": "a"}}]}
    lst = decode_list(ConfigMap, raw)
    # The properties read the JSON: no ListMeta is made for them.
    assert (lst.resource_version, lst.continue_, lst.remaining_item_count) == ("7", "c", 3)
    assert lst._metadata is raw["metadata"]
    same = decode_list(ConfigMap, copy.deepcopy(raw))
    assert isinstance(same.metadata, ListMeta) and same.metadata.resource_version == "7"
    assert lst == same and same == lst  # one as JSON, one as ListMeta: still equal
    other = decode_list(ConfigMap, {**raw, "metadata": {"resourceVersion": "8"}})
    assert lst != other
    assert encode(lst) == raw


def test_a_list_metadata_field_of_the_wrong_type_is_reported_on_read() -> None:
    lst = decode_list(ConfigMap, {"metadata": {"resourceVersion": 7}, "items": []})
    with pytest.raises(DecodeError, match="resourceVersion"):
        lst.resource_version  # noqa: B018
    with pytest.raises(DecodeError, match="metadata"):
        decode_list(ConfigMap, {"metadata": [1], "items": []})


@pytest.mark.parametrize("annotation", [
    "str", "Optional[Dict[str, str]]", "List[meta_v1.OwnerReference]",
    "Optional[Union[int, str]]", "Dict[str,List[int]]", "Optional[Time]", "Quantity",
    "meta_v1.ObjectMeta",
])
def test_annotations_are_resolved_without_eval_as_eval_would(annotation: str) -> None:
    from kubesync.core import lazy

    names = lazy._Names("kubesync.models.core_v1")
    assert lazy._parse(annotation, names) == eval(annotation, {}, names)


@pytest.mark.parametrize("annotation", ["Literal['a']", "int | str", "List[", "a b", "Nope"])
def test_other_annotations_are_left_to_eval(annotation: str) -> None:
    from kubesync.core import lazy

    assert lazy._parse(annotation, lazy._Names("kubesync.models.core_v1")) is None


def test_a_list_item_that_is_not_an_object_is_named_by_its_index() -> None:
    with pytest.raises(DecodeError) as info:
        decode_list(ConfigMap, {"items": [{"metadata": {"name": "a"}}, {}, "x"]})
    assert info.value.path == "items[2]" and "string" in str(info.value)
    with pytest.raises(DecodeError) as info:  # the first item, which keys are taken from
        decode_list(ConfigMap, {"items": [["a"], {}]})
    assert info.value.path == "items[0]" and "array" in str(info.value)
    assert decode_list(ConfigMap, {"items": []}).items == []


def test_plain_annotations_of_every_generated_field_get_the_codec_evaluating_gives() -> None:
    import importlib
    import pkgutil

    import kubesync.models
    from kubesync.core import lazy

    sample = decode(ConfigMap, {"metadata": {"name": "x"}})
    samples = {list: [sample, 1], dict: {"a": sample}, None: sample}
    quick = total = 0
    for info in pkgutil.iter_modules(kubesync.models.__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"kubesync.models.{info.name}")
        for name in mod.__all__:
            for f in plan_of(getattr(mod, name)).fields:
                total += 1
                got = lazy.quick_codec(f.annotation)
                if got is None:
                    continue
                quick += 1
                want = lazy.codec_for(f.type)
                where = f"{info.name}.{name}.{f.name}: {f.annotation}"
                assert want.dec is None and got.dec is None, where
                assert (got.check, got.time) == (want.check, want.time), where
                assert (got.enc is None) == (want.enc is None), where
                if got.enc is not None:
                    value = samples[got.check]
                    assert got.enc(value) == want.enc(value), where  # type: ignore[misc]
    assert quick > total / 2  # most fields: scalars, lists and maps of them


@pytest.mark.parametrize("annotation", [
    "meta_v1.ObjectMeta", "Optional[Time]", "List[meta_v1.OwnerReference]", "List[str",
    "Dict[str, List[meta_v1.ObjectMeta]]", "Optional[Union[int, str]]", "Literal['a']",
])
def test_other_annotations_are_evaluated_for_their_codec(annotation: str) -> None:
    from kubesync.core import lazy

    assert lazy.quick_codec(annotation) is None


def test_a_field_of_two_json_types_is_filled_with_either_and_not_with_a_third() -> None:
    from kubesync.models.policy_v1 import PodDisruptionBudget

    raw = {"metadata": {"name": "p"},
           "spec": {"maxUnavailable": 1, "minAvailable": "50%", "unhealthyPodEvictionPolicy": 2}}
    (pdb,) = decode_list(PodDisruptionBudget, {"items": [raw]}).items
    spec = in_slot(pdb, "spec")
    assert in_slot(spec, "max_unavailable") == 1 and in_slot(spec, "min_available") == "50%"
    with pytest.raises(AttributeError):  # an int where a str goes: left for its read
        in_slot(spec, "unhealthy_pod_eviction_policy")
    with pytest.raises(DecodeError, match="unhealthyPodEvictionPolicy"):
        spec.unhealthy_pod_eviction_policy  # noqa: B018
    assert encode(pdb) == raw


def test_a_list_filler_looks_keys_up_by_the_parsers_own_key_objects() -> None:
    import attrs

    from kubesync.core import json as kjson
    from kubesync.core.lazy import list_filler
    from kubesync.core.model import Model

    @attrs.define(slots=True, kw_only=True, repr=False)
    class Fresh(Model):  # its filler is made here, from the parser's keys of now
        display_name: str = ""
        weight: int = 0

    keys = [v for v in list_filler(Fresh).__globals__["V"] if isinstance(v, str)]
    items = kjson.loads(kjson.dumps([{"displayName": "a", "weight": 1}]))
    assert sorted(keys) == ["displayName", "weight"]
    if kjson.BACKEND == "orjson":  # its key cache hands out these very strings
        assert {id(k) for k in keys} == {id(k) for k in items[0]}
    (obj,) = decode_list(Fresh, {"items": items}).items
    assert in_slot(obj, "display_name") == "a" and in_slot(obj, "weight") == 1


def test_a_list_filler_takes_the_key_strings_of_its_first_item() -> None:
    from kubesync.core.lazy import list_filler

    name, data = "".join(["na", "me"]), "".join(["da", "ta"])  # new objects, equal keys
    raws = [{"metadata": {name: "a"}, data: {"x": "1"}}, {"metadata": {"name": "b"}}]
    a, b = decode_list(ConfigMap, {"items": raws}).items
    keys = list_filler(ConfigMap).__globals__["V"]
    assert any(k is name for k in keys) and any(k is data for k in keys)
    assert in_slot(in_slot(a, "metadata"), "name") == "a" and in_slot(a, "data") == {"x": "1"}
    assert in_slot(in_slot(b, "metadata"), "name") == "b"
    assert encode(a) == raws[0] and encode(b) == raws[1]


def test_keys_equal_but_not_identical_to_the_filler_s_fill_alike() -> None:
    def fresh(text: str) -> str:
        return "".join(list(text))  # a new string object, equal to the key

    first = {"metadata": {"name": "a"}, "data": {"x": "1"}}  # the keys the filler takes
    second = {"metadata": {fresh("name"): "b", fresh("labels"): {"k": "v"}},
              fresh("data"): {"y": "2"}}
    a, b = decode_list(ConfigMap, {"items": [first, second]}).items
    meta = in_slot(b, "metadata")
    assert in_slot(meta, "name") == "b" and in_slot(meta, "labels") == {"k": "v"}
    assert in_slot(b, "data") == {"y": "2"} and in_slot(in_slot(a, "metadata"), "name") == "a"
    assert encode(a) == first and encode(b) == second


def test_a_key_or_mapping_that_only_reports_str_or_dict_is_not_taken_as_one() -> None:
    from unittest import mock

    from kubesync.core.lazy import list_filler

    class Liar(str):
        __hash__ = str.__hash__

        @property  # type: ignore[misc]
        def __class__(self) -> type:
            return str

    liar = Liar("binaryData")
    decode_list(ConfigMap, {"items": [{liar: {}}]})
    assert not any(k is liar for k in list_filler(ConfigMap).__globals__["V"])
    odd = {"items": [{"metadata": mock.Mock(spec=dict), "data": {"x": "1"}}]}
    (cm,) = decode_list(ConfigMap, odd).items  # decodes; the metadata waits for its read
    assert cm.data == {"x": "1"}
    with pytest.raises(AttributeError):
        in_slot(cm, "metadata")


def test_a_value_reporting_the_fields_class_is_left_for_its_first_read() -> None:
    from unittest import mock

    name = mock.Mock(spec=str)  # reports str as its __class__, as isinstance sees it
    for cm in (decode(ConfigMap, {"metadata": {"name": name}}),
               decode_list(ConfigMap, {"items": [{"metadata": {"name": name}}]}).items[0]):
        meta = in_slot(cm, "metadata")
        with pytest.raises(AttributeError):  # not exactly a str: not filled
            in_slot(meta, "name")
        assert cm.metadata.name is name  # the first read's isinstance takes it


def test_a_builtin_list_item_leaves_api_version_kind_and_self_link_to_their_read() -> None:
    item = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "selfLink": "/api/v1/x"}, "data": {"k": "v"}}
    bare = {"metadata": {"name": "b"}}
    a, b = decode_list(ConfigMap, {"items": [copy.deepcopy(item), bare]}).items
    meta = in_slot(a, "metadata")
    for obj, name in ((a, "api_version"), (a, "kind"), (meta, "self_link")):
        with pytest.raises(AttributeError):  # not filled: the server does not send them
            in_slot(obj, name)
    assert in_slot(meta, "name") == "a" and in_slot(a, "data") == {"k": "v"}
    # Present, they read as they came; absent, as None; and both go back unchanged.
    assert (a.api_version, a.kind, a.metadata.self_link) == ("v1", "ConfigMap", "/api/v1/x")
    assert (b.api_version, b.kind, b.metadata.self_link) == (None, None, None)
    assert encode(a) == item and encode(b) == bare


def test_a_builtin_list_items_wrong_kind_or_self_link_is_reported_on_its_read() -> None:
    raw = {"kind": 5, "metadata": {"name": "a", "selfLink": ["x"]}}
    (cm,) = decode_list(ConfigMap, {"items": [raw]}).items
    assert cm.metadata.name == "a"
    with pytest.raises(DecodeError, match="kind"):
        cm.kind  # noqa: B018
    with pytest.raises(DecodeError, match="selfLink"):
        cm.metadata.self_link  # noqa: B018


def test_one_object_and_a_custom_kinds_list_items_fill_api_version_and_kind() -> None:
    import attrs

    from kubesync.core.model import Model

    @attrs.define(slots=True, kw_only=True, repr=False)
    class Custom(Model):  # a custom resource's list items carry apiVersion and kind
        api_version: str = ""
        kind: str = ""

    raw = {"apiVersion": "example.com/v1", "kind": "Custom"}
    (custom,) = decode_list(Custom, {"items": [dict(raw)]}).items
    assert (in_slot(custom, "api_version"), in_slot(custom, "kind")) == (
        "example.com/v1", "Custom")
    got = decode(ConfigMap, {"apiVersion": "v1", "kind": "ConfigMap"})  # a GET, an event
    assert (in_slot(got, "api_version"), in_slot(got, "kind")) == ("v1", "ConfigMap")
