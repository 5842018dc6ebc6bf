"""Discovery against the local cluster: every name form resolves, CRDs included."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import pytest

from kubesync.client.discovery import Discovery
from kubesync.crd.install import wait_established
from kubesync.errors import NotFound, UsageError
from kubesync.models import model_for
from tests.helpers import eventually, served

pytestmark = pytest.mark.e2e

GROUP = "discovery.e2e.kubesync.dev"


@pytest.fixture(scope="module")
def discovery(kube_client: Any) -> Discovery:
    return Discovery(kube_client)


@pytest.mark.parametrize(
    "name",
    ["deploy", "deployments", "Deployment", "deployment", "deployment.apps",
     "deployments.v1.apps", "apps/v1/deployments", "apps/deployments"],
)
def test_every_form_resolves_against_the_server(discovery: Discovery, name: str):
    r = discovery.resolve(name)
    assert (r.group, r.version, r.kind, r.plural, r.namespaced) == (
        "apps", "v1", "Deployment", "deployments", True)
    assert {"scale", "status"} <= set(r.subresources)
    assert "deploy" in r.short_names and "watch" in r.verbs


@pytest.mark.parametrize(
    ("name", "kind", "group"),
    [("po", "Pod", ""), ("svc", "Service", ""), ("cm", "ConfigMap", ""), ("ns", "Namespace", ""),
     ("v1/nodes", "Node", ""), ("clusterroles.rbac.authorization.k8s.io", "ClusterRole",
                               "rbac.authorization.k8s.io"),
     ("crd", "CustomResourceDefinition", "apiextensions.k8s.io"), ("events", "Event", ""),
     ("lease", "Lease", "coordination.k8s.io")],
)
def test_common_names(discovery: Discovery, name: str, kind: str, group: str):
    r = discovery.resolve(name)
    assert (r.kind, r.group) == (kind, group)


def test_resources_agree_with_the_models(discovery: Discovery):
    # What the generator read from the 1.36 spec matches what a 1.20 server reports,
    # for kinds both know: plural and scope.
    checked = 0
    for r in discovery.resources():
        cls = model_for(r.api_version, r.kind)
        if cls is not None and getattr(cls, "api_resource", None) is not None:
            assert (cls.api_resource.plural, cls.api_resource.namespaced) == (
                r.plural, r.namespaced), r.kind
            checked += 1
    assert checked >= 40
    assert not discovery.failures


def test_ambiguous_names_are_reported(kube_client: Any) -> None:
    # Two groups serving the same plural: which one is meant must be said.
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    groups = [f"a.{GROUP}", f"b.{GROUP}"]
    try:
        for group in groups:
            kube_client.request("POST", path, body={
                "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": f"doubles.{group}"},
                "spec": {"group": group, "scope": "Namespaced",
                         "names": {"plural": "doubles", "kind": "Double"},
                         "versions": [{"name": "v1", "served": True, "storage": True,
                                       "schema": {"openAPIV3Schema": {"type": "object"}}}]},
            })
        for group in groups:
            wait_established(kube_client, f"doubles.{group}", timeout=60)
            eventually(lambda g=group: served(kube_client, f"/apis/{g}/v1"), timeout=30,
                       what=f"{group} in discovery")
        discovery = Discovery(kube_client)
        with pytest.raises(UsageError, match="ambiguous"):
            discovery.resolve("doubles")
        assert discovery.resolve(f"doubles.b.{GROUP}").group == f"b.{GROUP}"
    finally:
        for group in groups:
            with contextlib.suppress(NotFound):
                kube_client.request("DELETE", f"{path}/doubles.{group}")


@pytest.fixture
def create_doohickeys_crd(kube_client: Any) -> Iterator[Callable[[], None]]:
    """Calling it creates a cluster-scoped CRD and waits until it is served. Its plural
    is used by no other test file: a CRD another file leaves behind while its deletion
    is pending would make a shared one ambiguous here."""
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    created = []

    def create() -> None:
        kube_client.request("POST", path, body={
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"doohickeys.{GROUP}"},
            "spec": {"group": GROUP, "scope": "Cluster",
                     "names": {"plural": "doohickeys", "singular": "doohickey", "kind": "Doohickey",
                               "shortNames": ["dhk"]},
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                         "openAPIV3Schema": {"type": "object",
                                             "x-kubernetes-preserve-unknown-fields": True}},
                         "subresources": {"status": {}}}]},
        })
        created.append(True)
        wait_established(kube_client, f"doohickeys.{GROUP}", timeout=60)
        eventually(lambda: served(kube_client, f"/apis/{GROUP}/v1"), timeout=30,
                   what="the doohickeys group in discovery")

    yield create
    if created:
        kube_client.request("DELETE", f"{path}/doohickeys.{GROUP}")


def _resolves(d: Discovery, name: str) -> bool:
    try:
        d.resolve(name)
    except UsageError:
        return False
    return True


def test_custom_resources_resolve_after_refresh(
        kube_client: Any, create_doohickeys_crd: Callable[[], None]):
    d = Discovery(kube_client)
    with pytest.raises(UsageError, match="no resource"):
        d.resolve("dhk")
    create_doohickeys_crd()
    # The miss in the cached answer reads the server again by itself (the new kind may
    # take a moment to reach discovery after the CRD is Established).
    eventually(lambda: _resolves(d, "dhk"), 30, "dhk resolved after a refresh on a miss")
    d.refresh()
    for name in ("dhk", "doohickeys", "Doohickey", f"doohickey.{GROUP}", f"{GROUP}/v1/doohickeys"):
        r = d.resolve(name)
        assert (r.group, r.kind, r.namespaced, r.subresources) == (
            GROUP, "Doohickey", False, ("status",))
