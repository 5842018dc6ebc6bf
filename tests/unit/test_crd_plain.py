"""Custom resources from plain attrs classes (no Model base), as kube-derive takes any
serde struct: the same schema, lazy decoding and lossless round trips as Model specs."""

from __future__ import annotations

import copy
import pickle
from typing import Dict, List, Optional

import attrs
import pytest

from kubesync.core.convert import decode, encode
from kubesync.core.model import Model
from kubesync.crd import CustomResource, SchemaError, custom_resource, field, schema_for
from kubesync.crd.schema import model_of


@attrs.define
class Port:
    port: int
    name: Optional[str] = None


@attrs.define
class WebSpec:
    """What a Web should be."""

    image: str = field(description="the image to run")
    replicas: int = attrs.field(default=1, validator=attrs.validators.ge(0))
    ports: List[Port] = attrs.Factory(list)
    by_name: Dict[str, Port] = attrs.Factory(dict)
    main: Optional[Port] = None


@attrs.define
class WebStatus:
    ready: int = 0


class Web(CustomResource[WebSpec, WebStatus], group="example.com", version="v1"):
    """A Web serves an image."""


# The same resource spelled with Model bases, to compare schemas with.
@attrs.define
class MPort(Model):
    port: int
    name: Optional[str] = None


@attrs.define
class MWebSpec(Model):
    """What a Web should be."""

    image: str = field(description="the image to run")
    replicas: int = attrs.field(default=1, validator=attrs.validators.ge(0))
    ports: List[MPort] = attrs.Factory(list)
    by_name: Dict[str, MPort] = attrs.Factory(dict)
    main: Optional[MPort] = None


def test_a_plain_spec_gives_the_schema_a_model_spec_gives() -> None:
    assert schema_for(WebSpec) == schema_for(MWebSpec)
    version = Web.crd().spec.versions[0]
    props = encode(version.schema)["openAPIV3Schema"]["properties"]
    assert props["spec"] == schema_for(MWebSpec)
    assert props["status"]["properties"] == {"ready": {"type": "integer", "default": 0}}


def test_the_decorator_takes_a_plain_spec_and_status() -> None:
    Other = custom_resource(group="example.com", version="v1", kind="Other",
                            status=WebStatus)(WebSpec)
    obj = Other.new("a", WebSpec("nginx"))
    assert encode(obj)["spec"] == {"image": "nginx", "replicas": 1, "ports": [],
                                   "byName": {}}


def test_the_plain_classes_are_left_as_they_were() -> None:
    assert not issubclass(WebSpec, Model) and not issubclass(Port, Model)
    assert [a.name for a in attrs.fields(WebSpec)] == [
        "image", "replicas", "ports", "by_name", "main"]
    assert model_of(WebSpec) is model_of(WebSpec) and issubclass(model_of(WebSpec), Model)
    assert model_of(MWebSpec) is MWebSpec


def test_new_and_the_constructor_take_plain_instances_nested_at_every_level() -> None:
    spec = WebSpec("nginx", ports=[Port(80, "http")], by_name={"m": Port(9090)},
                   main=Port(443))
    for web in (Web.new("a", spec, namespace="ns"), Web(spec=spec)):
        out = encode(web)["spec"]
        assert out == {"image": "nginx", "replicas": 1,
                       "ports": [{"port": 80, "name": "http"}],
                       "byName": {"m": {"port": 9090}}, "main": {"port": 443}}
    assert spec.ports == [Port(80, "http")]  # the caller's object is not changed


def test_what_was_read_equals_the_plain_instance_it_was_made_from() -> None:
    spec = WebSpec("nginx", ports=[Port(80)], main=Port(1))
    read = decode(Web, encode(Web.new("a", spec))).spec
    assert read == spec and spec == read and not (read != spec)
    assert read != WebSpec("other") and read != MWebSpec(image="nginx")


def test_setting_a_plain_instance_on_an_object_converts_it() -> None:
    web = Web.new("a", WebSpec("nginx"))
    web.spec.main = Port(8080)
    web.status = WebStatus(ready=2)
    out = encode(web)
    assert out["spec"]["main"] == {"port": 8080} and out["status"] == {"ready": 2}
    assert isinstance(web.spec.main, model_of(Port))


def test_objects_decode_lazily_and_keep_unknown_fields_at_every_level() -> None:
    data = {"apiVersion": "example.com/v1", "kind": "Web", "future": 1,
            "metadata": {"name": "a", "uid": "u"},
            "spec": {"image": "nginx", "ports": [{"port": 80, "later": True}],
                     "byName": {"m": {"port": 1, "x": 2}}, "new": [1]},
            "status": {"ready": 2, "why": "x"}}
    web = decode(Web, data)
    assert web.spec.image == "nginx" and web.spec.replicas is None  # absent: None
    assert web.spec.ports[0].port == 80 and web.spec.by_name["m"].port == 1
    assert type(web.spec) is model_of(WebSpec) and type(web.spec.main) is type(None)
    assert encode(web) == data
    web.spec.ports[0].port = 8080
    web.status.ready = 3
    out = encode(web)
    assert out["spec"]["ports"] == [{"port": 8080, "later": True}]
    assert out["spec"]["new"] == [1] and out["status"] == {"ready": 3, "why": "x"}


def test_objects_and_their_specs_copy_and_pickle() -> None:
    web = decode(Web, {"apiVersion": "example.com/v1", "kind": "Web",
                       "metadata": {"name": "a"}, "spec": {"image": "i", "extra": 1}})
    assert pickle.loads(pickle.dumps(web)) == web and copy.deepcopy(web) == web
    spec = pickle.loads(pickle.dumps(web.spec))
    assert type(spec) is model_of(WebSpec) and encode(spec) == {"image": "i", "extra": 1}


def test_the_validators_of_the_plain_class_still_run() -> None:
    with pytest.raises(ValueError, match="replicas"):
        Web.new("a", WebSpec("nginx")).spec.replicas = -1


def test_plain_classes_local_to_a_function_resolve() -> None:
    @attrs.define
    class Inner:
        n: int

    @attrs.define
    class LocalSpec:
        inner: Optional[Inner] = None

    Local = custom_resource(group="example.com", version="v1")(LocalSpec)
    assert encode(Local.new("a", LocalSpec(Inner(1))))["spec"] == {"inner": {"n": 1}}
    assert schema_for(LocalSpec, {"Inner": Inner})["properties"]["inner"]["required"] == ["n"]


@attrs.define
class Loop:
    again: Optional[Loop] = None


def test_a_recursive_plain_class_is_refused_naming_the_chain() -> None:
    with pytest.raises(SchemaError, match=r"^Loop\.spec: LoopSpec -> Loop -> Loop is recursive"):
        @attrs.define
        class LoopSpec:
            loop: Optional[Loop] = None

        custom_resource(group="example.com", version="v1")(LoopSpec)
