"""Resource classes whose annotations are strings (``from __future__ import annotations``):
resolved when the resource is declared, at module level and inside functions."""

from __future__ import annotations

import datetime
import sys
from typing import Dict, List, Optional, Union

import attrs
import pytest

from kubesync.core.convert import decode, encode
from kubesync.crd import CustomResource, Model, SchemaError, custom_resource, schema_for


@attrs.define
class Volume(Model):
    size: Union[int, str]
    when: Optional[datetime.datetime] = None


@attrs.define
class DiskSpec(Model):
    volumes: List[Volume]
    labels: Dict[str, str] = attrs.Factory(dict)


@attrs.define
class DiskStatus(Model):
    bound: bool = False


class Disk(CustomResource[DiskSpec, DiskStatus], group="example.com", version="v1"):
    pass


def test_module_level_string_annotations_resolve_to_types() -> None:
    assert attrs.fields(DiskSpec).volumes.type == List[Volume]
    assert attrs.fields(Volume).size.type == Union[int, str]
    spec = schema_for(DiskSpec)
    assert spec["properties"]["volumes"]["items"]["properties"]["size"] == {
        "x-kubernetes-int-or-string": True}


def test_module_level_string_annotations_round_trip() -> None:
    data = {"apiVersion": "example.com/v1", "kind": "Disk", "metadata": {"name": "d"},
            "spec": {"volumes": [{"size": "10Gi", "when": "2024-01-01T00:00:00Z"},
                                 {"size": 5}]},
            "status": {"bound": True}}
    disk = decode(Disk, data)
    assert disk.spec.volumes[0].size == "10Gi" and disk.spec.volumes[1].size == 5
    assert disk.spec.volumes[0].when == datetime.datetime(2024, 1, 1,
                                                          tzinfo=datetime.timezone.utc)
    assert disk.status.bound is True and encode(disk) == data


def test_classes_local_to_a_function_resolve_in_the_class_form() -> None:
    @attrs.define
    class Part(Model):
        count: int

    @attrs.define
    class KitSpec(Model):
        parts: List[Part]
        main: Optional[Part] = None

    class Kit(CustomResource[KitSpec, None], group="example.com", version="v1"):
        pass

    kit = decode(Kit, {"spec": {"parts": [{"count": 2}], "main": {"count": 1}}})
    assert kit.spec.parts == [Part(2)] and kit.spec.main == Part(1)
    items = Kit.crd().spec.versions[0].schema.open_api_v3_schema.properties["spec"]
    assert encode(items)["properties"]["parts"]["items"]["required"] == ["count"]


def test_classes_local_to_a_function_resolve_in_the_decorator_form() -> None:
    @attrs.define
    class Part(Model):
        count: int

    @attrs.define
    class KitSpec(Model):
        parts: List[Part]

    @attrs.define
    class KitStatus(Model):
        last: Optional[Part] = None

    kit_class = custom_resource(group="example.com", version="v1", status=KitStatus)(KitSpec)
    kit = decode(kit_class, {"spec": {"parts": [{"count": 2}]},
                             "status": {"last": {"count": 3}}})
    assert kit.spec.parts == [Part(2)] and kit.status.last == Part(3)


@pytest.mark.skipif(sys.version_info < (3, 10), reason="X | Y needs Python 3.10")
def test_pep604_unions_in_string_annotations_decode_like_typing_unions() -> None:
    @attrs.define
    class PortSpec(Model):
        target: int | str
        name: str | None = None

    port = custom_resource(group="example.com", version="v1")(PortSpec)
    assert attrs.fields(PortSpec).target.type == Union[int, str]
    obj = decode(port, {"spec": {"target": "http", "name": "web"}})
    assert obj.spec.target == "http" and obj.spec.name == "web"
    assert decode(port, {"spec": {"target": 80}}).spec.target == 80


def test_a_name_defined_after_the_resource_is_reported_with_its_field() -> None:
    @attrs.define
    class EarlySpec(Model):
        late: Later  # noqa: F821  (defined too late on purpose)

    with pytest.raises(SchemaError, match=r"EarlySpec\.late: cannot resolve the annotation "
                                          r"'Later'.*define the classes it names before"):
        custom_resource(group="example.com", version="v1")(EarlySpec)
