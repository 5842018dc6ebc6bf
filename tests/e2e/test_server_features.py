"""What the server offers, against the local cluster: aggregated discovery (counted),
server-side field validation, CEL rules and selectable fields of CRDs built from classes,
and the fallbacks an old (1.20) server gets."""

from __future__ import annotations

import logging
import warnings
from typing import Any, Iterator, List

import attrs
import pytest

from kubesync import Api, Client, Feature
from kubesync.client.discovery import Discovery
from kubesync.core.convert import decode
from kubesync.crd import CustomResource, Rule, field, install, merge_crds, uninstall, validations
from kubesync.errors import ApiError, BadRequest, FeatureUnavailable, Invalid, KubeWarning
from kubesync.models.core_v1 import ConfigMap
from kubesync.models.meta_v1 import ObjectMeta
from tests.helpers import eventually, served

pytestmark = pytest.mark.e2e


class _Requests(logging.Handler):
    """Counts the client's requests from its debug log (one line per response)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def requests_made() -> Iterator[List[str]]:
    handler = _Requests()
    logger = logging.getLogger("kubesync.client")
    old = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(old)


def test_discovery_counts_two_requests_when_aggregated_else_one_per_group_version(
    kube_client: Client, requests_made: List[str]
):
    discovery = Discovery(kube_client)
    resources = discovery.resources()
    assert {"pods", "deployments", "customresourcedefinitions"} <= {r.plural for r in resources}
    for name in ("deploy", "po", "crd", "leases.coordination.k8s.io", "apps/v1/deployments"):
        discovery.resolve(name)
    gets = [line for line in requests_made if line.startswith("GET ")]
    groups = len(discovery.groups)
    print(f"discovery: {len(gets)} requests for {groups} groups "
          f"({len(resources)} resources), aggregated={discovery.aggregated}")
    if kube_client.supports(Feature.AGGREGATED_DISCOVERY):
        assert discovery.aggregated
        assert len(gets) == 2, gets
    else:  # 1.20: the per-group path, one read per preferred group version
        assert not discovery.aggregated
        assert len(gets) == 2 + groups, gets


def test_the_client_shares_its_discovery_and_dynamic_apis_use_it(
    kube_client: Client, kube_namespace: str
):
    assert kube_client.discovery is kube_client.discovery
    cms = Api(kube_client, "cm", namespace=kube_namespace)
    cms.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dyn"}})
    assert cms.get("dyn").metadata.name == "dyn"


def test_server_version_is_read(kube_client: Client):
    v = kube_client.server_version()
    assert v.major == 1 and v.minor >= 20 and v.git_version.startswith("v1.")


def _cm_with_unknown_field(name: str) -> ConfigMap:
    # A typed object keeps fields its class does not know (as from a newer server).
    return decode(ConfigMap, {"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": name}, "data": {"a": "1"},
                              "dataa": {"typo": "x"}})


@pytest.mark.kube_min_version("1.25")
def test_a_strict_write_of_an_unknown_field_is_refused_naming_it(
    kube_client: Client, kube_namespace: str
):
    cms = Api(kube_client, ConfigMap, namespace=kube_namespace)
    with pytest.raises(BadRequest, match='unknown field "dataa"'):
        cms.create(_cm_with_unknown_field("strict"))
    with pytest.raises(ApiError, match=r"\.dataa: field not declared in schema"):
        cms.apply(_cm_with_unknown_field("strict"), field_manager="e2e")  # 500 from SSA
    assert cms.get_opt("strict") is None
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        cms.create(_cm_with_unknown_field("warned"), field_validation="Warn")
    assert any(issubclass(w.category, KubeWarning) and 'unknown field "dataa"' in str(w.message)
               for w in seen)
    assert cms.get("warned").data == {"a": "1"}


def test_an_old_server_takes_writes_with_the_strict_default(
    kube_client: Client, kube_namespace: str
):
    # 1.20 does not know fieldValidation and ignores it; a plain write must still work.
    cms = Api(kube_client, ConfigMap, namespace=kube_namespace)
    cms.create(ConfigMap(metadata=ObjectMeta(name="plain"), data={"a": "1"}))
    assert cms.get("plain").data == {"a": "1"}


# -- CRDs with CEL rules and a selectable field ------------------------------------------------

GROUP = "rules.e2e.kubesync.dev"


@validations(Rule("self.min <= self.max", message="min must not exceed max",
                  field_path=".min", reason="FieldValueInvalid"))
@attrs.define
class BoundsSpec:
    min: int = 0
    max: int = 10
    color: str = field(default="red", validations=[
        Rule("self == oldSelf", message="color is immutable")])
    size: int = field(default=1, validations=[
        Rule("self % 2 == 1", message="size must be odd")])


class Bounds(CustomResource[BoundsSpec, None], group=GROUP, version="v1", plural="bounds",
             selectable_fields=[".spec.color"]):
    """Bounds with three CEL rules, one a transition rule."""


class BoundsOld(CustomResource[BoundsSpec, None], group=GROUP, version="v1beta1",
                kind="Bounds", plural="bounds", selectable_fields=[".spec.color"],
                deprecated=True,
                deprecation_warning=f"{GROUP}/v1beta1 Bounds is going away; use v1"):
    """Bounds with three CEL rules, one a transition rule."""


@pytest.fixture(scope="module")
def bounds_crd(kube_client: Client) -> Iterator[Any]:
    crd = merge_crds([Bounds.crd(), BoundsOld.crd()], storage="v1")
    install(kube_client, crd)
    eventually(lambda: served(kube_client, f"/apis/{GROUP}/v1/bounds"), 30, "bounds served")
    eventually(lambda: served(kube_client, f"/apis/{GROUP}/v1beta1/bounds"), 30,
               "v1beta1 served")
    yield crd
    uninstall(kube_client, crd)


@pytest.mark.kube_min_version("1.31")
def test_each_cel_rule_rejects_with_its_message_and_field_path(
    kube_client: Client, kube_namespace: str, bounds_crd: Any
):
    api = Api(kube_client, Bounds, namespace=kube_namespace)
    with pytest.raises(Invalid) as info:
        api.create(Bounds.new("inverted", BoundsSpec(min=5, max=1)))
    text = str(info.value)
    assert "spec.min" in text and "min must not exceed max" in text, text
    assert [c.field for c in info.value.status.causes] == ["spec.min"]
    with pytest.raises(Invalid) as info:
        api.create(Bounds.new("even", BoundsSpec(size=2)))
    assert "spec.size" in str(info.value) and "size must be odd" in str(info.value)
    made = api.create(Bounds.new("red", BoundsSpec(color="red")))
    made.spec.color = "blue"
    with pytest.raises(Invalid) as info:  # the transition rule: only on update
        api.replace("red", made)
    assert "spec.color" in str(info.value) and "color is immutable" in str(info.value)


@pytest.mark.kube_min_version("1.31")
def test_a_field_selector_on_a_selectable_field_of_a_custom_resource(
    kube_client: Client, kube_namespace: str, bounds_crd: Any
):
    api = Api(kube_client, Bounds, namespace=kube_namespace)
    api.create(Bounds.new("a-red", BoundsSpec(color="red")))
    api.create(Bounds.new("a-blue", BoundsSpec(color="blue")))
    names = {b.metadata.name for b in api.list(field_selector="spec.color=blue").items}
    assert names == {"a-blue"}


@pytest.mark.kube_min_version("1.31")
def test_a_deprecated_version_warns_its_clients(
    kube_client: Client, kube_namespace: str, bounds_crd: Any
):
    # A client of its own: each client reports a warning text once, and the fixture's
    # readiness polls of v1beta1 already drew this one on the shared client.
    with Client(kube_client.config) as client, warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        Api(client, BoundsOld, namespace=kube_namespace).list()
    assert any("is going away; use v1" in str(w.message) for w in seen), seen


def test_an_old_server_refuses_rules_and_selectable_fields_before_writing(
    kube_client: Client
):
    if kube_client.supports(Feature.CRD_SELECTABLE_FIELDS):
        assert kube_client.supports(Feature.CRD_VALIDATION_RULES)
        return  # the tests above install the same CRD on this server
    with pytest.raises(FeatureUnavailable, match=r"needs Kubernetes 1\.2[58] or later"):
        install(kube_client, Bounds)
    from kubesync.models.apiextensions_v1 import CustomResourceDefinition

    assert Api(kube_client, CustomResourceDefinition).get_opt(
        f"bounds.{GROUP}") is None
