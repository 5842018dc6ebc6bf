"""Round-trip of real objects: decode what the server serves, encode, get the same JSON.

The local server is Kubernetes 1.20, older than the 1.36 models: a check that decoding
is lenient and that nothing is dropped or added on the way back.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Dict, Iterator, List, Optional, Tuple

import attrs
import pytest

from kubesync.core.convert import decode, decode_list, encode, validate
from kubesync.core.dynamic import DynamicObject
from kubesync.core.model import Model
from kubesync.core.resource import ApiResource
from kubesync.crd.install import wait_established
from kubesync.models import model_for
from kubesync.models.meta_v1 import ObjectMeta
from tests.helpers import eventually, served, server_minor

pytestmark = [
    pytest.mark.e2e,
    # Listing every served version includes deprecated betas; their warnings are expected.
    pytest.mark.filterwarnings("ignore::kubesync.errors.KubeWarning"),
]

CONTAINER = {"name": "app", "image": "registry.invalid/app:1", "ports": [{"containerPort": 80}]}
POD_TEMPLATE = {"metadata": {"labels": {"app": "rt"}}, "spec": {"containers": [CONTAINER]}}


def sample_objects(ns: str, server: Tuple[int, int]) -> List[Tuple[str, Dict[str, Any]]]:
    """(collection path, body) of objects of many kinds, to give every list some data."""
    api, apps, batch = f"/api/v1/namespaces/{ns}", f"/apis/apps/v1/namespaces/{ns}", \
        f"/apis/batch/v1/namespaces/{ns}"
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}"
    selector = {"matchLabels": {"app": "rt"}}
    # CronJob and PodDisruptionBudget reached v1 in 1.21; their v1beta1 went in 1.25.
    cron_version = pdb_version = "v1" if server >= (1, 21) else "v1beta1"
    return [
        (f"{api}/configmaps", {"metadata": {"name": "rt-cm", "labels": {"a": "b"}},
                               "data": {"k": "v"}, "binaryData": {"b": "AAE="}}),
        (f"{api}/secrets", {"metadata": {"name": "rt-secret"}, "type": "Opaque",
                            "stringData": {"password": "x"}}),
        (f"{api}/services", {"metadata": {"name": "rt-svc"}, "spec": {
            "selector": {"app": "rt"}, "ports": [{"port": 80, "targetPort": "http"}]}}),
        (f"{api}/serviceaccounts", {"metadata": {"name": "rt-sa"}}),
        (f"{api}/persistentvolumeclaims", {"metadata": {"name": "rt-pvc"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
        (f"{api}/limitranges", {"metadata": {"name": "rt-limits"}, "spec": {"limits": [
            {"type": "Container", "default": {"cpu": "500m", "memory": "128Mi"}}]}}),
        (f"{api}/resourcequotas", {"metadata": {"name": "rt-quota"},
                                   "spec": {"hard": {"pods": "50"}}}),
        (f"{api}/podtemplates", {"metadata": {"name": "rt-pt"}, "template": POD_TEMPLATE}),
        (f"{api}/replicationcontrollers", {"metadata": {"name": "rt-rc"}, "spec": {
            "replicas": 1, "selector": {"app": "rt"}, "template": POD_TEMPLATE}}),
        (f"{api}/pods", {"metadata": {"name": "rt-pod"}, "spec": {
            "containers": [CONTAINER], "tolerations": [{"operator": "Exists"}]}}),
        (f"{apps}/deployments", {"metadata": {"name": "rt-deploy"}, "spec": {
            "replicas": 1, "selector": selector, "template": POD_TEMPLATE,
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}}}}),
        (f"{apps}/statefulsets", {"metadata": {"name": "rt-sts"}, "spec": {
            "serviceName": "rt-svc", "replicas": 1, "selector": selector,
            "template": POD_TEMPLATE}}),
        (f"{apps}/daemonsets", {"metadata": {"name": "rt-ds"}, "spec": {
            "selector": selector, "template": POD_TEMPLATE}}),
        (f"{batch}/jobs", {"metadata": {"name": "rt-job"}, "spec": {"template": {
            "spec": {"containers": [CONTAINER], "restartPolicy": "Never"}}}}),
        (f"/apis/batch/{cron_version}/namespaces/{ns}/cronjobs", {"metadata": {"name": "rt-cron"},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {
                "spec": {"containers": [CONTAINER], "restartPolicy": "Never"}}}}}}),
        (f"{rbac}/roles", {"metadata": {"name": "rt-role"}, "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}),
        (f"{rbac}/rolebindings", {"metadata": {"name": "rt-rb"}, "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "rt-role"},
            "subjects": [{"kind": "ServiceAccount", "name": "rt-sa", "namespace": ns}]}),
        (f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies", {
            "metadata": {"name": "rt-np"}, "spec": {"podSelector": {},
                                                     "policyTypes": ["Ingress"]}}),
        (f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses", {
            "metadata": {"name": "rt-ing"}, "spec": {"rules": [{"host": "rt.example.com",
             "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
                 "service": {"name": "rt-svc", "port": {"number": 80}}}}]}}]}}),
        (f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases", {
            "metadata": {"name": "rt-lease"}, "spec": {
                "holderIdentity": "me", "leaseDurationSeconds": 15,
                "renewTime": "2024-05-01T10:00:00.123456Z"}}),
        (f"/apis/events.k8s.io/v1/namespaces/{ns}/events", {
            "metadata": {"name": "rt-event"}, "eventTime": "2024-05-01T10:00:00.000001Z",
            "reportingController": "kubesync.dev/e2e", "reportingInstance": "e2e",
            "action": "Testing", "reason": "RoundTrip", "type": "Normal",
            "regarding": {"kind": "ConfigMap", "namespace": ns, "name": "rt-cm"}}),
        (f"/apis/autoscaling/v1/namespaces/{ns}/horizontalpodautoscalers", {
            "metadata": {"name": "rt-hpa"}, "spec": {"maxReplicas": 3, "scaleTargetRef": {
                "apiVersion": "apps/v1", "kind": "Deployment", "name": "rt-deploy"}}}),
        (f"/apis/policy/{pdb_version}/namespaces/{ns}/poddisruptionbudgets", {
            "metadata": {"name": "rt-pdb"}, "spec": {"minAvailable": 1, "selector": selector}}),
    ]


@pytest.fixture
def populated(kube_client: Any, kube_namespace: str) -> str:
    for path, body in sample_objects(kube_namespace, server_minor(kube_client)):
        kube_client.request("POST", path, body=body)
    # The controllers make ReplicaSets, Pods, ControllerRevisions and Endpoints from these:
    # wait for every derived kind, or fail (a round trip of fewer kinds proves less).
    ns = f"/namespaces/{kube_namespace}"

    def count(path: str) -> int:
        return len(kube_client.request("GET", path)["items"])

    derived = {
        f"/api/v1{ns}/pods": 4,  # the lone pod, and those of rc, deployment, job...
        f"/apis/apps/v1{ns}/replicasets": 1,
        f"/apis/apps/v1{ns}/controllerrevisions": 1,
        f"/api/v1{ns}/endpoints": 1,
    }
    for path, least in derived.items():
        eventually(lambda: count(path) >= least, timeout=120,  # noqa: B023 - called at once
                   what=f"at least {least} objects at {path}")
    return kube_namespace


def listable_resources(client: Any) -> Iterator[Tuple[str, str, Dict[str, Any]]]:
    """(group/version, list path, APIResource) of every listable resource served."""
    versions = [("v1", "/api/v1")]
    for group in client.request("GET", "/apis")["groups"]:
        for v in group["versions"]:
            versions.append((v["groupVersion"], f"/apis/{v['groupVersion']}"))
    for gv, base in versions:
        for r in client.request("GET", base)["resources"]:
            if "/" not in r["name"] and "list" in r.get("verbs", []):
                yield gv, f"{base}/{r['name']}", r


def check_round_trip(cls: Any, item: Dict[str, Any]) -> Optional[str]:
    """None if decode -> (read everything) -> encode gives back ``item`` exactly."""
    expected = json.dumps(item)
    obj = decode(cls, item)
    if cls is not DynamicObject:
        validate(obj)
    else:
        obj.metadata.name  # noqa: B018 - the typed view is created and merged back
    out = encode(obj)
    if json.dumps(out) != expected:
        return f"{json.dumps(out)[:300]}\n  != {expected[:300]}"
    return None


def test_every_served_object_round_trips_through_its_model(kube_client: Any, populated: str):
    failures = []
    with_models, objects = set(), 0
    for gv, path, resource in listable_resources(kube_client):
        cls = model_for(gv, resource["kind"])
        data = kube_client.request("GET", path)
        for item in decode_list(DynamicObject, data):
            raw = item.to_dict()
            objects += 1
            try:
                problem = check_round_trip(cls or DynamicObject, raw)
            except Exception as e:  # collect all, report together
                problem = f"{type(e).__name__}: {e}"
            if problem:
                failures.append(f"{gv} {resource['kind']} {raw['metadata'].get('name')}: "
                                f"{problem}")
        if cls is not None:
            with_models.add(f"{gv} {resource['kind']}")
    assert not failures, "\n".join(failures[:20])
    # The test is only worth something if it covered a lot: most built-in kinds the
    # server has data for must have gone through a model.
    assert len(with_models) >= 40, sorted(with_models)
    assert objects >= 100
    for kind in ("v1 Pod", "apps/v1 Deployment", "apps/v1 ReplicaSet", "batch/v1 Job",
                 "apps/v1 ControllerRevision", "v1 Service", "v1 Endpoints",
                 "rbac.authorization.k8s.io/v1 ClusterRole", "coordination.k8s.io/v1 Lease"):
        assert kind in with_models


def test_single_objects_round_trip_with_kind_and_api_version(kube_client: Any, populated: str):
    for path, body in sample_objects(populated, server_minor(kube_client)):
        got = kube_client.request("GET", f"{path}/{body['metadata']['name']}")
        cls = model_for(got["apiVersion"], got["kind"]) or DynamicObject
        assert check_round_trip(cls, got) is None, path


def strip_volatile(obj: Dict[str, Any]) -> Dict[str, Any]:
    """The object without what every write changes (resourceVersion, managedFields)."""
    meta = {k: v for k, v in obj["metadata"].items()
            if k not in ("resourceVersion", "managedFields")}
    return {**obj, "metadata": meta}


@pytest.mark.parametrize("kind", ["ConfigMap", "Service", "Deployment", "Role"])
def test_get_then_replace_leaves_built_in_objects_unchanged(
        kube_client: Any, populated: str, kind: str):
    path, body = next((p, b) for p, b in sample_objects(populated, server_minor(kube_client))
                      if p.endswith({"ConfigMap": "/configmaps", "Service": "/services",
                                     "Deployment": "/deployments", "Role": "/roles"}[kind]))
    url = f"{path}/{body['metadata']['name']}"
    before = kube_client.request("GET", url)
    obj = decode(model_for(before["apiVersion"], before["kind"]), before)
    kube_client.request("PUT", url, body=encode(obj))
    assert strip_volatile(kube_client.request("GET", url)) == strip_volatile(before)


# -- a custom resource with fields the model lacks -------------------------------------------

GROUP = "roundtrip.e2e.kubesync.dev"


@attrs.define(slots=True, kw_only=True)
class WidgetSpec(Model):
    size: Optional[int] = None


@attrs.define(slots=True, kw_only=True)
class Widget(Model):
    """A hand-written model that knows only spec.size of the widgets."""

    api_resource: ClassVar[ApiResource] = ApiResource(GROUP, "v1", "Widget", "widgets")
    api_version: Optional[str] = None
    kind: Optional[str] = None
    metadata: Optional[ObjectMeta] = None
    spec: Optional[WidgetSpec] = None


def widget_crd() -> Dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                      "listKind": "WidgetList"},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                             "properties": {"size": {"type": "integer"}}},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                }}},
            }],
        },
    }


@pytest.fixture(scope="module")
def widgets(kube_client: Any) -> Iterator[ApiResource]:
    crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    kube_client.request("POST", crd_path, body=widget_crd())
    try:
        wait_established(kube_client, f"widgets.{GROUP}", timeout=60)
        # Established; the new kind's handler may still answer 404 for a moment.
        eventually(lambda: served(kube_client, Widget.api_resource.url_path()), timeout=30,
                   what="the widgets API served")
        yield Widget.api_resource
    finally:
        kube_client.request("DELETE", f"{crd_path}/widgets.{GROUP}")


def widget_body(name: str) -> Dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": name, "labels": {"team": "a"}, "annotations": {"note": "n"}},
        "spec": {"size": 3, "color": "blue", "parts": [{"id": 1, "extra": {"deep": True}}],
                 "nested": {"a": {"b": [1, 2, None]}}},
    }


def test_custom_resource_fields_the_model_lacks_survive_get_then_replace(
        kube_client: Any, kube_namespace: str, widgets: ApiResource):
    collection = widgets.url_path(namespace=kube_namespace)
    kube_client.request("POST", collection, body=widget_body("w1"))
    url = widgets.url_path(namespace=kube_namespace, name="w1")
    before = kube_client.request("GET", url)

    w = decode(Widget, before)
    assert w.spec.size == 3 and w.metadata.labels == {"team": "a"}
    assert encode(w) == before
    kube_client.request("PUT", url, body=encode(w))
    assert strip_volatile(kube_client.request("GET", url)) == strip_volatile(before)


def test_custom_resource_changes_keep_unknown_fields(
        kube_client: Any, kube_namespace: str, widgets: ApiResource):
    kube_client.request("POST", widgets.url_path(namespace=kube_namespace),
                        body=widget_body("w2"))
    url = widgets.url_path(namespace=kube_namespace, name="w2")
    w = decode(Widget, kube_client.request("GET", url))
    w.spec.size = 5
    w.metadata.labels["team"] = "b"
    after = kube_client.request("PUT", url, body=encode(w))
    assert after["spec"] == {**widget_body("w2")["spec"], "size": 5}
    assert after["metadata"]["labels"] == {"team": "b"}
    assert after["metadata"]["annotations"] == {"note": "n"}


def test_custom_resource_as_dynamic_object_round_trips(
        kube_client: Any, kube_namespace: str, widgets: ApiResource):
    kube_client.request("POST", widgets.url_path(namespace=kube_namespace),
                        body=widget_body("w3"))
    url = widgets.url_path(namespace=kube_namespace, name="w3")
    before = kube_client.request("GET", url)
    obj = DynamicObject(before, widgets)
    obj.metadata.annotations["seen"] = "yes"
    obj["spec"]["size"] = 7
    after = kube_client.request("PUT", url, body=encode(obj))
    assert after["metadata"]["annotations"] == {"note": "n", "seen": "yes"}
    assert after["spec"]["color"] == "blue" and after["spec"]["size"] == 7
    listed = decode_list(Widget, kube_client.request("GET", widgets.url_path(
        namespace=kube_namespace)))
    assert [x.metadata.name for x in listed] == ["w3"]
