"""Webhooks against the real API server: it calls our WebhookServer on loopback (URL client
config, our test CA) to validate, mutate and convert, and acts on the answers."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Iterator

import attrs
import pytest

from kubesync import Api
from kubesync.core.params import Patch
from kubesync.crd import CustomResource, Model, install, merge_crds, uninstall
from kubesync.errors import ApiError, NotFound
from kubesync.models.admissionregistration_v1 import (
    MutatingWebhookConfiguration,
    ValidatingWebhookConfiguration,
)
from kubesync.models.core_v1 import ConfigMap, Namespace
from kubesync.models.meta_v1 import ObjectMeta
from kubesync.testing.pki import make_ca, make_serving_cert
from kubesync.webhook import (
    AdmissionRequest,
    AdmissionResponse,
    AdmissionWebhooks,
    Conversions,
    Endpoint,
    WebhookApp,
    WebhookServer,
    conversion_webhook,
    mutating_webhook_configuration,
    namespace_selector,
    validating_webhook_configuration,
)
from tests.helpers import eventually, served

pytestmark = pytest.mark.e2e

FORBIDDEN = "password"
DENIAL = "ConfigMaps may not hold a password; use a Secret"
LABEL = "webhook.kubesync.test/mutated"
GROUP = "webhooks.e2e.kubesync.test"
NAME_LABEL = "kubernetes.io/metadata.name"


@attrs.define
class WidgetSpecV1(Model):
    host: str
    port: int


@attrs.define
class WidgetSpecV2(Model):
    address: str


class WidgetV1(CustomResource[WidgetSpecV1, None], group=GROUP, version="v1", kind="Widget"):
    """A widget, v1: host and port apart."""


class WidgetV2(CustomResource[WidgetSpecV2, None], group=GROUP, version="v2", kind="Widget"):
    """A widget, v2: one address."""


hooks = AdmissionWebhooks()
conversions = Conversions()


@hooks.validating(ConfigMap, operations=["CREATE", "UPDATE"])
def no_passwords(req: AdmissionRequest[ConfigMap]) -> AdmissionResponse:
    cm = req.object
    if cm is not None and FORBIDDEN in (cm.data or {}):
        return req.deny(DENIAL)
    return req.allow()


@hooks.mutating(ConfigMap, operations=["CREATE"])
def add_label(req: AdmissionRequest[ConfigMap]) -> None:
    cm = req.object
    assert cm is not None
    cm.metadata = cm.metadata or ObjectMeta()
    cm.metadata.labels = dict(cm.metadata.labels or {}, **{LABEL: "yes"})


@conversions.register(WidgetV1, WidgetV2)
def up(old: WidgetV1) -> WidgetV2:
    return WidgetV2(metadata=old.metadata,
                    spec=WidgetSpecV2(address=f"{old.spec.host}:{old.spec.port}"))


@conversions.register(WidgetV2, WidgetV1)
def down(new: WidgetV2) -> WidgetV1:
    host, _, port = new.spec.address.rpartition(":")
    return WidgetV1(metadata=new.metadata, spec=WidgetSpecV1(host=host, port=int(port)))


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    folder: Path = tmp_path_factory.mktemp("webhook-pki")
    ca = make_ca(folder, "webhook-ca", "kubesync-webhook-test-ca")
    cert = make_serving_cert(folder, "webhook", ca, ["IP:127.0.0.1"])
    server = WebhookServer(WebhookApp(hooks, conversions), cert_file=cert.cert,
                           key_file=cert.key, host="127.0.0.1", port=0)
    with server:
        yield Endpoint.url(f"https://127.0.0.1:{server.port}", ca=ca.cert)
    assert server.stop() is True


@pytest.fixture
def admission(kube_client: Any, kube_namespace: str, endpoint: Endpoint) -> Iterator[str]:
    """Both configurations, scoped to the test's namespace; deleted after the test."""
    suffix = secrets.token_hex(3)
    # The API server sets this label on every namespace from 1.21 on; on older servers
    # (1.20) the test sets it, as an operator of such a cluster would.
    namespaces = Api(kube_client, Namespace)
    if NAME_LABEL not in (namespaces.get(kube_namespace).metadata.labels or {}):
        namespaces.patch(kube_namespace, Patch.merge(
            {"metadata": {"labels": {NAME_LABEL: kube_namespace}}}))
    selector = namespace_selector(kube_namespace)
    vwc = validating_webhook_configuration(f"validate-{suffix}.kubesync.test", hooks, endpoint,
                                           namespace_selector=selector)
    mwc = mutating_webhook_configuration(f"mutate-{suffix}.kubesync.test", hooks, endpoint,
                                         namespace_selector=selector)
    vapi = Api(kube_client, ValidatingWebhookConfiguration)
    mapi = Api(kube_client, MutatingWebhookConfiguration)
    vapi.create(vwc)
    mapi.create(mwc)
    try:
        yield kube_namespace
    finally:
        for api, obj in ((vapi, vwc), (mapi, mwc)):
            try:
                api.delete(obj.metadata.name)
            except NotFound:
                pass


def _forbidden(name: str) -> ConfigMap:
    return ConfigMap(metadata=ObjectMeta(name=name), data={FORBIDDEN: "hunter2"})


def _denied_by_us(cms: Api[ConfigMap]) -> bool:
    # The API server starts calling a new configuration's webhook once its informer has it.
    try:
        cms.create(_forbidden(f"probe-{secrets.token_hex(3)}"), dry_run=True)
    except ApiError as e:
        return DENIAL in str(e)
    return False


def test_validating_webhook_denies_a_configmap_with_a_forbidden_key(
        kube_client: Any, admission: str) -> None:
    cms = Api(kube_client, ConfigMap, namespace=admission)
    eventually(lambda: _denied_by_us(cms), 30, "the validating webhook in effect")
    with pytest.raises(ApiError) as info:
        cms.create(_forbidden("secretive"))
    assert DENIAL in str(info.value)
    assert cms.get_opt("secretive") is None
    cms.create(ConfigMap(metadata=ObjectMeta(name="harmless"), data={"colour": "blue"}))
    assert cms.get("harmless").data == {"colour": "blue"}


def test_mutating_webhook_adds_a_label_to_the_created_object(
        kube_client: Any, admission: str) -> None:
    cms = Api(kube_client, ConfigMap, namespace=admission)
    eventually(lambda: _denied_by_us(cms), 30, "the webhooks in effect")

    def labelled() -> bool:
        probe = cms.create(ConfigMap(metadata=ObjectMeta(name=f"p-{secrets.token_hex(3)}")),
                           dry_run=True)
        return (probe.metadata.labels or {}).get(LABEL) == "yes"

    eventually(labelled, 30, "the mutating webhook in effect")
    created = cms.create(ConfigMap(metadata=ObjectMeta(name="plain", labels={"a": "b"}),
                                   data={"k": "v"}))
    assert created.metadata.labels == {"a": "b", LABEL: "yes"}
    assert cms.get("plain").metadata.labels == {"a": "b", LABEL: "yes"}


@pytest.fixture
def widgets(kube_client: Any, endpoint: Endpoint) -> Iterator[None]:
    crd = conversion_webhook(merge_crds([WidgetV1.crd(), WidgetV2.crd()], storage="v1"),
                             endpoint)
    install(kube_client, crd)
    try:
        yield
    finally:
        uninstall(kube_client, crd)


def test_conversion_webhook_converts_between_v1_and_v2(
        kube_client: Any, kube_namespace: str, widgets: None) -> None:
    v1 = Api(kube_client, WidgetV1, namespace=kube_namespace)
    v2 = Api(kube_client, WidgetV2, namespace=kube_namespace)
    for path in (f"/apis/{GROUP}/v1/widgets", f"/apis/{GROUP}/v2/widgets"):
        eventually(lambda p=path: served(kube_client, p), 30, f"{path} served")
    v1.create(WidgetV1.new("from-v1", WidgetSpecV1(host="db.example", port=5432)))
    assert v2.get("from-v1").spec.address == "db.example:5432"
    v2.create(WidgetV2.new("from-v2", WidgetSpecV2(address="cache.example:6379")))
    back = v1.get("from-v2")
    assert (back.spec.host, back.spec.port) == ("cache.example", 6379)
    assert {w.spec.address for w in v2.list()} == {"db.example:5432", "cache.example:6379"}
