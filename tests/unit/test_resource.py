"""ApiResource: the one URL builder, and resource_of."""

import attrs
import pytest

from kubesync.core.resource import ApiResource, resource_of
from kubesync.errors import UsageError

PODS = ApiResource("", "v1", "Pod", "pods", namespaced=True)
DEPLOYMENTS = ApiResource("apps", "v1", "Deployment", "deployments", namespaced=True)
NODES = ApiResource("", "v1", "Node", "nodes", namespaced=False)
CRDS = ApiResource("apiextensions.k8s.io", "v1", "CustomResourceDefinition",
                   "customresourcedefinitions", namespaced=False)


def test_core_group_lives_under_api_v1():
    assert PODS.url_path(namespace="ns") == "/api/v1/namespaces/ns/pods"
    assert PODS.api_version == "v1"


def test_other_groups_live_under_apis_group_version():
    assert DEPLOYMENTS.url_path(namespace="ns", name="web") == (
        "/apis/apps/v1/namespaces/ns/deployments/web"
    )
    assert DEPLOYMENTS.api_version == "apps/v1"


def test_namespaced_kind_without_namespace_is_all_namespaces():
    assert PODS.url_path() == "/api/v1/pods"
    assert DEPLOYMENTS.url_path() == "/apis/apps/v1/deployments"


def test_cluster_scoped_kinds_have_no_namespace_segment():
    assert NODES.url_path(name="n1") == "/api/v1/nodes/n1"
    assert CRDS.url_path() == "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def test_cluster_scoped_kind_refuses_a_namespace():
    with pytest.raises(UsageError, match="cluster-scoped"):
        NODES.url_path(namespace="ns")


def test_subresource_is_appended_after_the_name():
    assert PODS.url_path(namespace="ns", name="p", subresource="status") == (
        "/api/v1/namespaces/ns/pods/p/status"
    )
    assert DEPLOYMENTS.url_path(namespace="ns", name="d", subresource="scale") == (
        "/apis/apps/v1/namespaces/ns/deployments/d/scale"
    )
    assert NODES.url_path(name="n", subresource="proxy") == "/api/v1/nodes/n/proxy"


def test_subresource_needs_a_name():
    with pytest.raises(UsageError):
        PODS.url_path(namespace="ns", subresource="status")


def test_naming_a_namespaced_object_needs_a_namespace():
    with pytest.raises(UsageError, match="namespaced"):
        PODS.url_path(name="p")


def test_names_are_url_quoted():
    assert NODES.url_path(name="a/b c") == "/api/v1/nodes/a%2Fb%20c"
    assert PODS.url_path(namespace="n?s", name="p#1") == "/api/v1/namespaces/n%3Fs/pods/p%231"


@pytest.mark.parametrize("bad", ["", ".", ".."])
def test_empty_and_dot_names_are_refused(bad):
    with pytest.raises(UsageError):
        NODES.url_path(name=bad)
    with pytest.raises(UsageError):
        PODS.url_path(namespace=bad)


def test_api_resource_is_frozen_and_hashable():
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        PODS.plural = "x"  # type: ignore[misc]
    assert hash(PODS) == hash(ApiResource("", "v1", "Pod", "pods", namespaced=True))
    assert ApiResource("", "v1", "Pod", "pods", verbs=["get"]).verbs == ("get",)


def test_resource_of_reads_a_model_class_or_instance():
    from kubesync.models.apps_v1 import Deployment

    assert resource_of(Deployment) is Deployment.api_resource
    assert resource_of(Deployment()) is Deployment.api_resource
    assert resource_of(Deployment).url_path(namespace="x") == (
        "/apis/apps/v1/namespaces/x/deployments"
    )


def test_resource_of_refuses_non_resources():
    from kubesync.models.core_v1 import PodSpec

    with pytest.raises(UsageError, match="PodSpec"):
        resource_of(PodSpec)
    with pytest.raises(UsageError):
        resource_of(dict)
