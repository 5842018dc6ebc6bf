"""Pod subresources on the local cluster's node: a debug (ephemeral) container added to a
running pod, an in-place resize, and the generic subresource calls."""

from __future__ import annotations

from typing import Any, Optional

import pytest

from kubesync import Api, Client, Feature
from kubesync.errors import FeatureUnavailable
from kubesync.models.core_v1 import (
    Container,
    EphemeralContainer,
    Pod,
    PodSpec,
    ResourceRequirements,
)
from kubesync.models.meta_v1 import ObjectMeta
from kubesync.runtime.conditions import is_pod_running
from kubesync.runtime.wait import await_condition
from kubesync.testing import TEST_IMAGE
from tests.helpers import eventually

pytestmark = [pytest.mark.e2e]
RUN_TIMEOUT = 90


def _running_pod(pods: Api[Pod], name: str, **container: Any) -> Pod:
    pods.create(Pod(
        metadata=ObjectMeta(name=name),
        spec=PodSpec(containers=[Container(name="main", image=TEST_IMAGE,
                                           command=["sh", "-c", "sleep 3600"], **container)],
                     termination_grace_period_seconds=1),
    ))
    return await_condition(pods, name, is_pod_running(), timeout=RUN_TIMEOUT)


def _debugger_state(pods: Api[Pod], name: str) -> Optional[Any]:
    status = pods.get(name).status
    for s in (status.ephemeral_container_statuses or []) if status else []:
        if s.name == "debugger":
            return s.state
    return None


@pytest.mark.kube_node
@pytest.mark.kube_min_version("1.25")
def test_a_debug_container_joins_a_running_pod_and_runs_a_command(
    kube_client: Client, kube_namespace: str
):
    pods = Api(kube_client, Pod, namespace=kube_namespace)
    _running_pod(pods, "target")
    # As `kubectl debug --target=main` then `exec`: the debug container shares main's
    # process namespace, so a command run in it sees main's `sleep 3600`.
    pod = pods.add_ephemeral_container("target", EphemeralContainer(
        name="debugger", image=TEST_IMAGE, target_container_name="main",
        command=["sh", "-c", "echo debug-ok; sleep 7200"]))
    assert [c.name for c in pod.spec.ephemeral_containers] == ["debugger"]
    eventually(lambda: getattr(_debugger_state(pods, "target"), "running", None) is not None,
               RUN_TIMEOUT, "the debug container running")
    eventually(lambda: "debug-ok" in pods.logs("target", container="debugger"), 30,
               "the debug container's output")
    seen = pods.exec("target", ["ps"], container="debugger", timeout=60, check=True)
    assert b"sleep 3600" in seen.stdout
    raw = pods.get_subresource("target", "ephemeralcontainers")
    assert raw.kind == "Pod" and raw["spec"]["ephemeralContainers"][0]["name"] == "debugger"


@pytest.mark.kube_node
@pytest.mark.kube_min_version("1.33")
def test_a_running_pod_is_resized_in_place(kube_client: Client, kube_namespace: str):
    pods = Api(kube_client, Pod, namespace=kube_namespace)
    before = _running_pod(pods, "sized", resources=ResourceRequirements(
        requests={"cpu": "100m", "memory": "32Mi"}, limits={"cpu": "200m", "memory": "64Mi"}))
    started = before.status.container_statuses[0].container_id
    pods.resize("sized", {"main": ResourceRequirements(
        requests={"cpu": "150m", "memory": "32Mi"}, limits={"cpu": "300m", "memory": "64Mi"})})

    def applied() -> bool:
        status = pods.get("sized").status.container_statuses[0]
        return status.resources is not None and status.resources.limits.get("cpu") == "300m"

    eventually(applied, RUN_TIMEOUT, "the kubelet applying the new limits")
    after = pods.get("sized")
    assert after.spec.containers[0].resources.requests["cpu"] == "150m"
    assert after.status.container_statuses[0].container_id == started  # not restarted


def test_pod_subresources_refuse_clearly_where_the_server_lacks_them(
    kube_client: Client, kube_namespace: str
):
    pods = Api(kube_client, Pod, namespace=kube_namespace)
    if kube_client.supports(Feature.POD_RESIZE):
        assert kube_client.supports(Feature.EPHEMERAL_CONTAINERS)
        return  # the tests above use both on this server
    with pytest.raises(FeatureUnavailable, match=r"resizing a pod in place needs Kubernetes 1\.33"):
        pods.resize("any", {"main": {"limits": {"cpu": "1"}}})
    if not kube_client.supports(Feature.EPHEMERAL_CONTAINERS):
        with pytest.raises(FeatureUnavailable, match="ephemeral container needs Kubernetes"):
            pods.add_ephemeral_container("any", {"name": "d", "image": TEST_IMAGE})
