"""DynamicObject: dict-backed objects of any kind, with typed metadata and exact round-trip."""

import copy
import json
import pickle

import pytest

from kubesync.core.convert import decode, encode
from kubesync.core.dynamic import DynamicObject
from kubesync.core.resource import ApiResource, resource_of
from kubesync.errors import DecodeError, UsageError
from kubesync.models.meta_v1 import ObjectMeta

WIDGETS = ApiResource("example.com", "v1", "Widget", "widgets", namespaced=True)


def widget():
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "ns", "labels": {"a": "b"}, "newMeta": 1},
        "spec": {"size": 3, "anything": {"goes": [1, 2]}},
        "status": {"ok": True},
    }


def test_round_trip_is_exact():
    obj = DynamicObject(widget())
    obj.metadata.name  # noqa: B018 - reading creates the typed view
    assert json.dumps(encode(obj)) == json.dumps(widget())


def test_typed_metadata_api_version_and_kind():
    obj = decode(DynamicObject, widget())
    assert isinstance(obj.metadata, ObjectMeta)
    assert obj.metadata.labels == {"a": "b"}
    assert (obj.api_version, obj.kind) == ("example.com/v1", "Widget")


def test_metadata_changes_are_merged_on_encode():
    obj = DynamicObject(widget())
    obj.metadata.labels["c"] = "d"
    obj.metadata.annotations = {"x": "y"}
    out = encode(obj)
    assert out["metadata"]["labels"] == {"a": "b", "c": "d"}
    assert out["metadata"]["annotations"] == {"x": "y"}
    assert out["metadata"]["newMeta"] == 1
    assert list(out) == list(widget())
    assert obj["metadata"]["annotations"] == {"x": "y"}


def test_item_access_for_the_rest():
    obj = DynamicObject(widget())
    assert obj["spec"]["size"] == 3
    obj["spec"]["size"] = 4
    obj["extra"] = [1]
    del obj["status"]
    out = obj.to_dict()
    assert out["spec"]["size"] == 4 and out["extra"] == [1] and "status" not in out
    assert "spec" in obj and "status" not in obj
    assert obj.get("nope") is None


def test_metadata_can_be_created_replaced_and_removed():
    obj = DynamicObject({"apiVersion": "v1", "kind": "Thing"})
    assert encode(obj) == {"apiVersion": "v1", "kind": "Thing"}  # an empty view adds nothing
    obj.metadata.name = "t"
    assert encode(obj)["metadata"] == {"name": "t"}
    obj.metadata = ObjectMeta(name="u")
    assert encode(obj)["metadata"] == {"name": "u"}
    del obj["metadata"]
    assert "metadata" not in encode(obj)
    obj["metadata"] = {"name": "v"}
    assert obj.metadata.name == "v"


def test_setting_api_version_and_kind():
    obj = DynamicObject()
    obj.api_version, obj.kind = "v1", "Thing"
    assert obj.to_dict() == {"apiVersion": "v1", "kind": "Thing"}
    obj.kind = None
    assert obj.to_dict() == {"apiVersion": "v1"}


def test_resource_is_carried_for_api_use():
    obj = DynamicObject(widget(), WIDGETS)
    assert resource_of(obj) is WIDGETS
    with pytest.raises(UsageError):
        resource_of(DynamicObject(widget()))


def test_bad_metadata_types_name_the_kind():
    obj = DynamicObject({"kind": "Widget", "metadata": {"labels": ["x"]}})
    with pytest.raises(DecodeError) as info:
        obj.metadata.labels  # noqa: B018
    assert (info.value.kind, info.value.path) == ("Widget", "metadata.labels")


def test_copies_and_pickles():
    obj = DynamicObject(widget(), WIDGETS)
    twin = copy.deepcopy(obj)
    twin["spec"]["size"] = 9
    twin.metadata.name = "other"
    assert obj["spec"]["size"] == 3 and obj.metadata.name == "w"
    again = pickle.loads(pickle.dumps(obj))
    assert again.to_dict() == widget() and again.api_resource == WIDGETS
    assert copy.copy(obj) == obj


def test_equality_and_mapping_behaviour():
    obj = DynamicObject(widget())
    assert obj == widget()
    assert dict(obj) == widget()
    assert len(obj) == len(widget())


def test_repr_and_html():
    obj = DynamicObject(widget())
    assert repr(obj) == "DynamicObject(example.com/v1 Widget ns/w)"
    assert "size: 3" in obj._repr_html_()
