"""The ready conditions of await_condition, on decoded objects."""

from __future__ import annotations

from typing import Any, Dict

from kubesync.core.convert import decode
from kubesync.models.apiextensions_v1 import CustomResourceDefinition
from kubesync.models.apps_v1 import Deployment
from kubesync.models.batch_v1 import Job
from kubesync.models.core_v1 import Pod
from kubesync.runtime.conditions import (
    is_crd_established,
    is_deleted,
    is_deployment_rolled_out,
    is_job_completed,
    is_pod_running,
)


def _cond(ctype: str, status: str = "True") -> Dict[str, Any]:
    return {"type": ctype, "status": status}


def test_is_deleted_by_uid_absent_or_replaced() -> None:
    cond = is_deleted("u1")
    pod = decode(Pod, {"metadata": {"name": "p", "uid": "u1"}})
    assert not cond(pod)
    assert cond(None)
    assert cond(decode(Pod, {"metadata": {"name": "p", "uid": "u2"}}))  # a new object


def test_is_pod_running() -> None:
    assert is_pod_running()(decode(Pod, {"status": {"phase": "Running"}}))
    assert not is_pod_running()(decode(Pod, {"status": {"phase": "Pending"}}))
    assert not is_pod_running()(None)


def test_is_job_completed_and_crd_established_read_true_conditions() -> None:
    assert is_job_completed()(decode(Job, {"status": {"conditions": [_cond("Complete")]}}))
    assert not is_job_completed()(decode(Job, {"status": {"conditions": [
        _cond("Complete", "False"), _cond("Failed")]}}))
    assert not is_job_completed()(decode(Job, {}))
    crd = {"status": {"conditions": [_cond("NamesAccepted"), _cond("Established")]}}
    assert is_crd_established()(decode(CustomResourceDefinition, crd))


def _deploy(gen: int, observed: int, replicas: int, updated: int, available: int) -> Deployment:
    return decode(Deployment, {
        "metadata": {"generation": gen}, "spec": {"replicas": replicas},
        "status": {"observedGeneration": observed, "replicas": replicas,
                   "updatedReplicas": updated, "availableReplicas": available}})


def test_is_deployment_rolled_out_needs_the_latest_generation_and_all_replicas() -> None:
    cond = is_deployment_rolled_out()
    assert cond(_deploy(2, 2, 3, 3, 3))
    assert not cond(_deploy(3, 2, 3, 3, 3))  # the controller has not seen the new spec
    assert not cond(_deploy(2, 2, 3, 2, 3))  # one replica still old
    assert not cond(_deploy(2, 2, 3, 3, 2))  # one not available
    assert not cond(None)
