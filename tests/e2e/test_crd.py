"""Custom resources against the real API server: CRDs built from attrs classes are accepted
and Established, objects round-trip, the schema is enforced, subresources and columns work."""

from __future__ import annotations

import datetime
import enum
import re
import secrets
import warnings
from typing import Any, Dict, Iterator, List, Literal, Optional, Union

import attrs
import pytest
from attrs.validators import deep_iterable, ge, le, matches_re, max_len

from kubesync import Api
from kubesync.client.features import Feature
from kubesync.core.convert import encode
from kubesync.core.params import Patch
from kubesync.core.request import ACCEPT_TABLE
from kubesync.crd import (
    CrdNotAccepted,
    CrdWaitTimeout,
    CustomResource,
    Model,
    PrinterColumn,
    ScaleSubresource,
    custom_resource,
    field,
    install,
    merge_crds,
    uninstall,
)
from kubesync.errors import BadRequest, Invalid, NotFound
from kubesync.models.apiextensions_v1 import CustomResourceDefinition
from kubesync.models.meta_v1 import LabelSelector
from tests.helpers import eventually, server_minor

pytestmark = pytest.mark.e2e

UTC = datetime.timezone.utc


class Tier(enum.Enum):
    GOLD = "gold"
    SILVER = "silver"


@attrs.define
class Port(Model):
    """A named port."""

    name: str = field(validator=max_len(15))
    port: int = field(validator=[ge(1), le(65535)])
    target: Union[int, str] = 80


@attrs.define
class Extra(Model):
    known: Optional[str] = None


@attrs.define
class WidgetSpec(Model):
    """A widget: one field of every kind the schema generator knows."""

    image: str = field(description="the image", validator=matches_re(r"[a-z0-9./:-]+"))
    replicas: int = field(default=1, validator=[ge(0), le(10)])
    ratio: float = 0.5
    enabled: bool = True
    tier: Tier = Tier.SILVER
    mode: Literal["fast", "safe"] = "safe"
    started: Optional[datetime.datetime] = None
    # (RUF009 does not know field() is attrs.field with metadata; a fresh value each time.)
    ports: List[Port] = field(factory=list, list_map_keys=["name"])
    tags: List[str] = field(factory=list, list_type="set",
                            validator=deep_iterable(max_len(20), max_len(5)))
    env: Dict[str, str] = attrs.Factory(dict)
    budget: Union[int, str] = "50%"
    config: Any = None
    extra: Optional[Extra] = field(default=None, preserve_unknown=True)
    selector: Optional[LabelSelector] = None


@attrs.define
class WidgetStatus(Model):
    replicas: int = 0
    selector: Optional[str] = None
    phase: Optional[str] = None
    observed: Optional[datetime.datetime] = None


@attrs.define
class GadgetSpec(Model):
    size: int


@attrs.define
class ThingSpec(Model):
    size: int
    color: Optional[str] = None


@attrs.define
class ThingSpecV2(Model):
    size: int
    color: Optional[str] = None
    shape: Optional[str] = None


@attrs.define
class PlainPort:
    port: int
    app_protocol: Optional[str] = None


@attrs.define
class PlainAppSpec:
    """An app from plain attrs classes, without a Model base."""

    image: str
    replicas: int = 1
    ports: List[PlainPort] = attrs.Factory(list)


@attrs.define
class PlainAppStatus:
    ready: Optional[int] = None


def widget_class(group: str) -> Any:
    return custom_resource(
        group=group, version="v1", status=WidgetStatus, shortnames=["wdg"],
        categories=["kubesync-test"],
        printer_columns=[PrinterColumn("Replicas", "integer", ".spec.replicas"),
                         PrinterColumn("Tier", "string", ".spec.tier"),
                         {"name": "Phase", "type": "string", "jsonPath": ".status.phase"}],
        scale=ScaleSubresource(label_selector_path=".status.selector"),
    )(WidgetSpec)


@pytest.fixture
def group(kube_client: Any) -> Iterator[str]:
    """A group of its own (CRDs are cluster-scoped); its CRDs are deleted afterwards."""
    name = f"t{secrets.token_hex(4)}.kubesync.test"
    yield name
    crds = Api(kube_client, CustomResourceDefinition)
    mine = [crd for crd in crds.list().items if crd.spec.group == name]
    for crd in mine:  # all deletions first: the server finalizes them side by side
        uninstall(kube_client, crd, wait=False)
    stuck = []
    for crd in mine:
        try:
            uninstall(kube_client, crd, timeout=90)
        except CrdWaitTimeout:
            stuck.append(crd.metadata.name)
    for crd_name in stuck:
        # Seen in CI (1 run in about 10): the deletion of a CRD of a group whose other
        # CRD had its names refused waited past 60 s on the server's cleanup finalizer.
        # The group has no objects left, so drop the finalizer, as kubectl users do,
        # rather than leave the CRD to the next test file.
        crds.patch(crd_name, Patch.merge({"metadata": {"finalizers": None}}))
        eventually(lambda n=crd_name: crds.get_opt(n) is None, 30,
                   f"CRD {crd_name} gone once its finalizer was dropped")
    if stuck:  # the test itself passed; say so in the summary rather than fail it
        warnings.warn(f"CRD deletion waited past 90 s on the server's finalizer: {stuck}",
                      stacklevel=1)


@pytest.fixture
def widgets(kube_client: Any, kube_namespace: str, group: str) -> Api[Any]:
    widget = widget_class(group)
    install(kube_client, widget, timeout=60)
    return Api(kube_client, widget, namespace=kube_namespace)


def full_spec() -> WidgetSpec:
    return WidgetSpec(
        image="nginx:1.25", replicas=3, ratio=1.25, enabled=False, tier=Tier.GOLD,
        mode="fast", started=datetime.datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC),
        ports=[Port("http", 80, target="web"), Port("https", 443, target=8443)],
        tags=["a", "b"], env={"LOG": "debug"}, budget=2,
        config={"nested": [1, "two", {"three": None}], "flag": True},
        extra=Extra(known="k"), selector=LabelSelector(match_labels={"app": "w"}),
    )


def test_crds_of_representative_specs_are_accepted_and_established(
    kube_client: Any, group: str
) -> None:
    widget = widget_class(group)
    gadget = custom_resource(group=group, version="v1", namespaced=False)(GadgetSpec)

    class Thing(CustomResource[ThingSpec, None], group=group, version="v1"):
        """A thing without status."""

    for kind in (widget, gadget, Thing):
        crd = install(kube_client, kind, timeout=60)
        established = [c for c in crd.status.conditions if c.type == "Established"]
        assert established and established[0].status == "True"
        assert crd.status.accepted_names.plural == kind.api_resource.plural
    assert crd.spec.versions[0].schema.open_api_v3_schema.description == "A thing without status."
    gadgets = Api(kube_client, gadget)
    made = gadgets.create(gadget.new("g", GadgetSpec(size=4)))
    assert made.metadata.namespace is None and gadgets.get("g").spec == GadgetSpec(size=4)


def test_objects_round_trip_datetimes_enums_nested_int_or_string_and_free_data(
    widgets: Api[Any], kube_namespace: str
) -> None:
    kind = widgets.model
    spec = full_spec()
    created = widgets.create(kind.new("full", spec, namespace=kube_namespace))
    got = widgets.get("full")
    assert created.spec == spec and got.spec == spec
    assert got.spec.started == datetime.datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert got.spec.tier is Tier.GOLD and got.spec.ports[0].target == "web"
    assert got.spec.ports[1].target == 8443 and got.spec.budget == 2
    assert got.spec.config == {"nested": [1, "two", {"three": None}], "flag": True}
    assert got.api_version == f"{kind.api_resource.group}/v1" and got.kind == "Widget"


def test_server_fills_schema_defaults_of_fields_written_without_them(
    kube_client: Any, kube_namespace: str, widgets: Api[Any]
) -> None:
    raw = Api(kube_client, widgets.resource, namespace=kube_namespace)
    raw.create({"metadata": {"name": "bare"}, "spec": {"image": "nginx",
                                                       "ports": [{"name": "p", "port": 1}]}})
    got = widgets.get("bare")
    assert got.spec == WidgetSpec(image="nginx", ports=[Port("p", 1)])
    assert encode(got.spec)["tier"] == "silver" and encode(got.spec)["budget"] == "50%"


def test_preserved_unknown_fields_are_kept_and_others_pruned(
    kube_client: Any, kube_namespace: str, widgets: Api[Any]
) -> None:
    raw = Api(kube_client, widgets.resource, namespace=kube_namespace)
    body = {"metadata": {"name": "u"}, "spec": {
        "image": "nginx", "notInSchema": 1, "extra": {"known": "k", "later": {"x": [1]}}}}
    if kube_client.supports(Feature.FIELD_VALIDATION):  # 1.20 ignores fieldValidation
        with pytest.raises(BadRequest, match=r'unknown field "spec\.notInSchema"'):
            raw.create(body)  # strict by default: refused, naming the field
    raw.create(body, field_validation="Ignore")  # pruned, as before 1.25
    got = widgets.get("u")
    assert got.spec.extra.known == "k"
    assert encode(got.spec)["extra"] == {"known": "k", "later": {"x": [1]}}
    assert "notInSchema" not in encode(got.spec)
    # The typed object writes the preserved unknown field back unchanged, and strict
    # validation accepts it: the server knows what it sent.
    got.spec.replicas = 2
    replaced = widgets.replace("u", got)
    assert encode(replaced.spec)["extra"]["later"] == {"x": [1]}


@pytest.mark.parametrize(("change", "field_path"), [
    ({"replicas": "three"}, "spec.replicas"),
    ({"replicas": 11}, "spec.replicas"),
    ({"replicas": -1}, "spec.replicas"),
    ({"image": None}, "spec.image"),
    ({"image": "Not An Image"}, "spec.image"),
    ({"tier": "bronze"}, "spec.tier"),
    ({"ratio": "high"}, "spec.ratio"),
    ({"started": "yesterday"}, "spec.started"),
    ({"ports": [{"name": "p", "port": 70000}]}, "spec.ports[0].port"),
    ({"ports": [{"port": 80}]}, "spec.ports[0].name"),
    ({"tags": ["a" * 21]}, "spec.tags[0]"),
    ({"tags": list("abcdef")}, "spec.tags"),
    ({"budget": 1.5}, "spec.budget"),
])
def test_objects_breaking_the_schema_are_invalid_naming_the_field(
    kube_client: Any, kube_namespace: str, widgets: Api[Any], change: Dict[str, Any],
    field_path: str,
) -> None:
    spec = {"image": "nginx", **change}
    spec = {k: v for k, v in spec.items() if v is not None}
    raw = Api(kube_client, widgets.resource, namespace=kube_namespace)
    with pytest.raises(Invalid) as info:
        raw.create({"metadata": {"name": "bad"}, "spec": spec})
    fields = [c.field for c in info.value.causes]
    if server_minor(kube_client) <= (1, 20):
        # 1.20 names an array item's field without the item's index (1.37 has it).
        field_path = re.sub(r"\[\d+\]", "", field_path)
    assert field_path in fields, (fields, str(info.value))
    assert field_path in str(info.value)


def test_an_object_without_spec_is_invalid(
    kube_client: Any, kube_namespace: str, widgets: Api[Any]
) -> None:
    raw = Api(kube_client, widgets.resource, namespace=kube_namespace)
    with pytest.raises(Invalid) as info:
        raw.create({"metadata": {"name": "nospec"}})
    assert "spec" in [c.field for c in info.value.causes]


def test_status_subresource_ignores_spec_and_the_object_ignores_status(
    widgets: Api[Any], kube_namespace: str
) -> None:
    kind = widgets.model
    created = widgets.create(kind.new("s", WidgetSpec(image="nginx", replicas=2),
                                      namespace=kube_namespace))
    obj = widgets.get("s")
    obj.spec.replicas = 5
    obj.status = WidgetStatus(replicas=2, phase="Running",
                              observed=datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))
    after_status = widgets.replace_status("s", obj)
    assert after_status.status == obj.status and after_status.spec.replicas == 2
    assert after_status.metadata.generation == created.metadata.generation
    obj = widgets.get("s")
    obj.spec.replicas = 3
    obj.status.phase = "Lost"
    after_spec = widgets.replace("s", obj)
    assert after_spec.spec.replicas == 3 and after_spec.status.phase == "Running"
    assert after_spec.metadata.generation == created.metadata.generation + 1
    assert widgets.get("s").status.observed == datetime.datetime(2024, 1, 2, 3, 4, 5,
                                                                 tzinfo=UTC)


def test_scale_subresource_reads_and_writes_the_replica_paths(
    widgets: Api[Any], kube_namespace: str
) -> None:
    kind = widgets.model
    widgets.create(kind.new("sc", WidgetSpec(image="nginx", replicas=2),
                            namespace=kube_namespace))
    obj = widgets.get("sc")
    obj.status = WidgetStatus(replicas=2, selector="app=sc")
    widgets.replace_status("sc", obj)
    scale = widgets.get_scale("sc")
    assert scale.spec.replicas == 2
    assert scale.status.replicas == 2 and scale.status.selector == "app=sc"
    widgets.patch_scale("sc", Patch.merge({"spec": {"replicas": 4}}))
    assert widgets.get("sc").spec.replicas == 4


def test_printer_columns_appear_in_the_table_output(
    kube_client: Any, widgets: Api[Any], kube_namespace: str
) -> None:
    kind = widgets.model
    widgets.create(kind.new("t", WidgetSpec(image="nginx", replicas=7, tier=Tier.GOLD),
                            namespace=kube_namespace))
    obj = widgets.get("t")
    obj.status = WidgetStatus(phase="Ready")
    widgets.replace_status("t", obj)
    path = widgets.resource.url_path(namespace=kube_namespace)
    table = kube_client.request("GET", path, headers={"Accept": ACCEPT_TABLE})
    assert table["kind"] == "Table"
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert columns[:4] == ["Name", "Replicas", "Tier", "Phase"]
    assert table["rows"][0]["cells"][:4] == ["t", 7, "gold", "Ready"]


def test_versions_merged_into_one_crd_serve_the_same_objects(
    kube_client: Any, kube_namespace: str, group: str
) -> None:
    thing_v1 = custom_resource(group=group, version="v1", kind="Thing")(ThingSpec)
    thing_v2 = custom_resource(group=group, version="v2", kind="Thing")(ThingSpecV2)
    crd = install(kube_client, merge_crds([thing_v1.crd(), thing_v2.crd()], storage="v2"))
    assert [(v.name, v.storage) for v in crd.spec.versions] == [("v1", False), ("v2", True)]
    Api(kube_client, thing_v1, namespace=kube_namespace).create(
        thing_v1.new("t", ThingSpec(size=3, color="red")))
    got = Api(kube_client, thing_v2, namespace=kube_namespace).get("t")
    assert got.api_version == f"{group}/v2" and got.spec == ThingSpecV2(size=3, color="red")
    stored = Api(kube_client, CustomResourceDefinition).get(crd.metadata.name)
    assert stored.status.stored_versions == ["v2"]


def test_install_again_is_a_no_op_and_uninstall_removes_the_api(
    kube_client: Any, group: str
) -> None:
    gadget = custom_resource(group=group, version="v1", namespaced=False)(GadgetSpec)
    first = install(kube_client, gadget)
    again = install(kube_client, gadget)
    assert again.metadata.uid == first.metadata.uid
    assert again.metadata.generation == first.metadata.generation
    uninstall(kube_client, gadget, timeout=60)
    assert Api(kube_client, CustomResourceDefinition).get_opt(first.metadata.name) is None
    with pytest.raises(NotFound):
        Api(kube_client, gadget).list()


def test_install_raises_when_the_server_refuses_the_names(kube_client: Any, group: str) -> None:
    install(kube_client, custom_resource(group=group, version="v1")(GadgetSpec))
    clash = custom_resource(group=group, version="v1", kind="Gizmo",
                            shortnames=["gadgets"])(GadgetSpec)
    with pytest.raises(CrdNotAccepted, match="gadgets"):
        install(kube_client, clash, timeout=60)


def test_plain_attrs_classes_make_a_resource_that_round_trips(
    kube_client: Any, kube_namespace: str, group: str
) -> None:
    app = custom_resource(group=group, version="v1", status=PlainAppStatus)(PlainAppSpec)
    install(kube_client, app, timeout=60)
    apps = Api(kube_client, app, namespace=kube_namespace)
    spec = PlainAppSpec(image="nginx", ports=[PlainPort(80, app_protocol="http")])
    created = apps.create(app.new("a", spec, namespace=kube_namespace))
    got = apps.get("a")
    assert created.spec == spec and got.spec == spec
    assert encode(got)["spec"]["ports"] == [{"port": 80, "appProtocol": "http"}]
    got.spec.replicas = 2
    got.spec.ports = [*got.spec.ports, PlainPort(443)]
    replaced = apps.replace("a", got)
    assert replaced.spec == PlainAppSpec("nginx", 2, [PlainPort(80, "http"), PlainPort(443)])
    replaced.status = PlainAppStatus(ready=1)
    assert apps.replace_status("a", replaced).status == PlainAppStatus(ready=1)
