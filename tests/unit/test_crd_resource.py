"""Resource classes from spec/status classes: both spellings, new(), crd(), merge_crds(),
and the errors for what cannot be a custom resource."""

import copy
import datetime
import pickle
from typing import Any, Dict, List, Optional

import attrs
import pytest

import kubesync
from kubesync import Api
from kubesync.core.convert import decode, encode
from kubesync.crd import (
    CustomResource,
    Model,
    PrinterColumn,
    ScaleSubresource,
    SchemaError,
    custom_resource,
    merge_crds,
)
from kubesync.errors import UsageError
from kubesync.models.apiextensions_v1 import CustomResourceDefinition
from kubesync.models.meta_v1 import ObjectMeta

UTC = datetime.timezone.utc


@attrs.define
class Port(Model):
    port: int
    name: Optional[str] = None


@attrs.define
class FooSpec(Model):
    """What a Foo should be."""

    image: str
    replicas: int = 1
    ports: List[Port] = attrs.Factory(list)


@attrs.define
class FooStatus(Model):
    ready: int = 0
    since: Optional[datetime.datetime] = None


class Foo(CustomResource[FooSpec, FooStatus], group="example.com", version="v1",
          shortnames=["fo"], categories=["all"],
          printer_columns=[PrinterColumn("Replicas", "integer", ".spec.replicas",
                                         description="wanted", priority=1),
                           {"name": "Ready", "type": "integer", "jsonPath": ".status.ready"}],
          scale=ScaleSubresource(label_selector_path=".status.selector")):
    """A Foo runs replicas of an image."""

    def describe(self) -> str:
        return f"{self.metadata.name}: {self.spec.image}"


Bar = custom_resource(group="example.com", version="v2", namespaced=False)(FooSpec)


def test_the_class_form_builds_the_resource_of_its_keywords() -> None:
    assert Foo.api_resource == kubesync.ApiResource(
        "example.com", "v1", "Foo", "foos", True,
        ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"),
        ("status", "scale"), ("fo",))
    assert Foo.__name__ == "Foo" and Foo.__module__ == __name__
    assert issubclass(Foo, Model) and issubclass(Foo, CustomResource)
    assert [a.name for a in attrs.fields(Foo)][1:] == [
        "api_version", "kind", "metadata", "spec", "status"]


def test_the_decorator_names_the_kind_after_the_spec_class() -> None:
    assert Bar.__name__ == "Foo"
    assert Bar.api_resource.kind == "Foo" and Bar.api_resource.plural == "foos"
    assert Bar.api_resource.namespaced is False and Bar.api_resource.subresources == ()
    assert Bar.__module__ == FooSpec.__module__
    named = custom_resource(group="example.com", version="v1", kind="Widget",
                            plural="widgetz")(FooSpec)
    assert (named.__name__, named.api_resource.plural) == ("Widget", "widgetz")
    assert kubesync.custom_resource is custom_resource


def test_the_decorator_needs_a_kind_when_the_spec_is_not_named_kind_spec() -> None:
    @attrs.define
    class Settings(Model):
        a: int = 0

    with pytest.raises(UsageError, match="give kind="):
        custom_resource(group="example.com", version="v1")(Settings)


def test_the_spec_class_is_left_as_it_was() -> None:
    spec = FooSpec("nginx")
    assert type(spec) is FooSpec and spec == FooSpec(image="nginx", replicas=1, ports=[])


def test_new_names_the_object_and_defaults_api_version_and_kind() -> None:
    foo = Foo.new("a", FooSpec("nginx", ports=[Port(80)]), namespace="ns")
    assert foo.metadata == ObjectMeta(name="a", namespace="ns") and foo.status is None
    assert encode(foo) == {"apiVersion": "example.com/v1", "kind": "Foo",
                           "metadata": {"name": "a", "namespace": "ns"},
                           "spec": {"image": "nginx", "replicas": 1,
                                    "ports": [{"port": 80}]}}
    assert Foo.new("b", FooSpec("x")).describe() == "b: x"


def test_new_refuses_a_wrong_spec_and_a_namespace_for_a_cluster_kind() -> None:
    with pytest.raises(UsageError, match=r"Foo\.new takes a FooSpec spec, not dict"):
        Foo.new("a", {"image": "nginx"})  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="cluster-scoped"):
        Bar.new("a", FooSpec("x"), namespace="ns")


def test_objects_decode_lazily_and_keep_unknown_fields_at_every_level() -> None:
    data = {"apiVersion": "example.com/v1", "kind": "Foo", "future": 1,
            "metadata": {"name": "a", "uid": "u"},
            "spec": {"image": "nginx", "ports": [{"port": 80, "later": True}], "new": [1]},
            "status": {"ready": 2, "since": "2024-05-01T10:00:00Z", "why": "x"}}
    foo = decode(Foo, data)
    assert type(foo.spec) is FooSpec and type(foo.spec.ports[0]) is Port
    assert foo.status.since == datetime.datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert encode(foo) == data
    foo.spec.ports[0].port = 8080
    foo.status.ready = 3
    out = encode(foo)
    assert out["spec"]["ports"] == [{"port": 8080, "later": True}]
    assert out["status"] == {"ready": 3, "since": "2024-05-01T10:00:00Z", "why": "x"}


def test_a_decoded_object_of_another_kind_is_refused() -> None:
    with pytest.raises(kubesync.DecodeError, match="the object is a Bar"):
        decode(Foo, {"kind": "Bar"})


def test_objects_copy_pickle_and_compare_like_models() -> None:
    foo = Foo.new("a", FooSpec("nginx"), namespace="ns")
    assert copy.deepcopy(foo) == foo and copy.deepcopy(foo) is not foo
    assert pickle.loads(pickle.dumps(foo)) == foo
    assert repr(foo).startswith("Foo(api_version='example.com/v1'")


def test_api_takes_the_resource_class() -> None:
    api = Api(object(), Foo, namespace="ns")  # type: ignore[arg-type]
    assert api.resource is Foo.api_resource and api.model is Foo
    assert api.resource.url_path("ns", "a", "status") == (
        "/apis/example.com/v1/namespaces/ns/foos/a/status")


# -- the CRD --------------------------------------------------------------------------------


def crd_json(kind: Any) -> Dict[str, Any]:
    crd = kind.crd()
    assert isinstance(crd, CustomResourceDefinition)
    return encode(crd)  # type: ignore[no-any-return]


def test_crd_names_scope_and_the_one_version() -> None:
    crd = crd_json(Foo)
    assert crd["metadata"] == {"name": "foos.example.com"}
    assert crd["spec"]["group"] == "example.com" and crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"] == {"kind": "Foo", "listKind": "FooList", "plural": "foos",
                                    "singular": "foo", "shortNames": ["fo"],
                                    "categories": ["all"]}
    (version,) = crd["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1", True, True)
    assert crd_json(Bar)["spec"]["scope"] == "Cluster"


def test_crd_subresources_and_printer_columns() -> None:
    (version,) = crd_json(Foo)["spec"]["versions"]
    assert version["subresources"] == {"status": {}, "scale": {
        "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector"}}
    assert version["additionalPrinterColumns"] == [
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas",
         "description": "wanted", "priority": 1},
        {"name": "Ready", "type": "integer", "jsonPath": ".status.ready"}]
    (plain,) = crd_json(Bar)["spec"]["versions"]
    assert "subresources" not in plain and "additionalPrinterColumns" not in plain


def test_crd_root_schema_requires_spec_and_allows_no_status() -> None:
    root = crd_json(Foo)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert root["type"] == "object" and root["required"] == ["spec"]
    assert root["description"] == "A Foo runs replicas of an image."
    assert root["properties"]["spec"]["description"] == "What a Foo should be."
    assert root["properties"]["spec"]["required"] == ["image"]
    assert root["properties"]["status"]["nullable"] is True
    bar_root = crd_json(Bar)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert list(bar_root["properties"]) == ["spec"] and "description" not in bar_root


def test_crd_is_a_fresh_model_each_call() -> None:
    first = Foo.crd()
    first.spec.versions[0].schema.open_api_v3_schema.properties["spec"].type = "string"
    first.spec.names.plural = "changed"
    assert crd_json(Foo)["spec"]["names"]["plural"] == "foos"
    assert crd_json(Foo)["spec"]["versions"][0]["schema"]["openAPIV3Schema"][
        "properties"]["spec"]["type"] == "object"


def test_printer_columns_and_scale_are_checked() -> None:
    with pytest.raises(ValueError, match="type"):
        PrinterColumn("X", "float", ".spec.x")
    for bad in ({"name": "X", "type": "string"}, {"name": "X", "type": "list", "jsonPath": "."}):
        with pytest.raises(UsageError, match="printer column"):
            custom_resource(group="example.com", version="v1", printer_columns=[bad])(FooSpec)
    with pytest.raises(UsageError, match="scale"):
        custom_resource(group="example.com", version="v1",
                        scale={"specReplicasPath": ".spec.replicas"})(FooSpec)
    with pytest.raises(UsageError, match="shortnames is a list"):
        custom_resource(group="example.com", version="v1", shortnames="fo")(FooSpec)
    with pytest.raises(UsageError, match="group must be a non-empty string"):
        custom_resource(group="", version="v1")(FooSpec)


# -- several versions -----------------------------------------------------------------------


@attrs.define
class FooSpecV2(Model):
    image: str
    replicas: int = 1
    command: Optional[List[str]] = None


FooV2 = custom_resource(group="example.com", version="v2", kind="Foo", status=FooStatus,
                        shortnames=["fo"], categories=["all"])(FooSpecV2)


def test_merge_crds_serves_every_version_and_stores_one() -> None:
    merged = encode(merge_crds([Foo.crd(), FooV2.crd()], storage="v2"))
    versions = merged["spec"]["versions"]
    assert [(v["name"], v["served"], v["storage"]) for v in versions] == [
        ("v1", True, False), ("v2", True, True)]
    assert versions[1]["schema"] == crd_json(FooV2)["spec"]["versions"][0]["schema"]
    assert merged["metadata"] == {"name": "foos.example.com"}
    assert merged["spec"]["names"] == crd_json(Foo)["spec"]["names"]


def test_merge_crds_refuses_what_cannot_be_one_crd() -> None:
    with pytest.raises(UsageError, match="storage version 'v3' is not one of"):
        merge_crds([Foo.crd(), FooV2.crd()], storage="v3")
    with pytest.raises(UsageError, match="given twice"):
        merge_crds([Foo.crd(), Foo.crd()], storage="v1")
    cluster = custom_resource(group="example.com", version="v3", kind="Foo", namespaced=False,
                              shortnames=["fo"], categories=["all"])(FooSpec)
    with pytest.raises(UsageError, match=r"differ in spec\.scope"):
        merge_crds([FooV2.crd(), cluster.crd()], storage="v2")
    other = custom_resource(group="example.org", version="v2", kind="Foo")(FooSpecV2)
    with pytest.raises(UsageError, match=r"differ in spec\.group"):
        merge_crds([Foo.crd(), other.crd()], storage="v2")
    with pytest.raises(UsageError, match="at least one"):
        merge_crds([], storage="v1")


# -- what cannot be a custom resource -------------------------------------------------------


def test_the_class_form_needs_spec_and_status_types() -> None:
    with pytest.raises(SchemaError, match=r"Baz: name the spec and status classes"):
        class Baz(CustomResource, group="example.com", version="v1"):  # type: ignore[type-arg]
            pass


def test_an_unknown_class_keyword_is_named() -> None:
    with pytest.raises(UsageError, match=r"Baz: unknown option\(s\) \['plurals'\]; the "
                                         r"options are \['group', 'version', 'kind', 'plural'"):
        class Baz(CustomResource[FooSpec, None], group="example.com", version="v1",
                  plurals="bazes"):
            pass


def test_a_resource_class_declares_no_fields_of_its_own() -> None:
    with pytest.raises(SchemaError, match=r"Baz: a custom resource's fields are metadata, "
                                          r"spec and status; declare \['extra'\]"):
        class Baz(CustomResource[FooSpec, None], group="example.com", version="v1"):
            extra: int = 0


def test_a_spec_that_is_no_attrs_class_names_the_resource_and_field() -> None:
    @attrs.define
    class PlainSpec:
        a: int

    # A plain attrs spec is taken (tests/unit/test_crd_plain.py); a dict is not.
    assert custom_resource(group="example.com", version="v1")(PlainSpec).crd()
    with pytest.raises(SchemaError, match=r"Baz\.status: .*dict is not a kubesync Model"):
        class Baz(CustomResource[FooSpec, dict], group="example.com", version="v1"):
            pass


def test_a_bad_field_deep_in_the_spec_names_its_class_and_field() -> None:
    @attrs.define
    class Inner(Model):
        pair: tuple

    @attrs.define
    class OuterSpec(Model):
        inner: Optional[Inner] = None

    with pytest.raises(SchemaError, match=r"^Inner\.pair: tuple has no schema"):
        custom_resource(group="example.com", version="v1")(OuterSpec)


def test_a_plain_model_or_the_base_is_no_resource() -> None:
    with pytest.raises(UsageError, match="not a custom resource class"):
        CustomResource.crd()
    with pytest.raises(kubesync.KubeError, match="no api_resource"):
        Api(object(), FooSpec)  # type: ignore[arg-type]
