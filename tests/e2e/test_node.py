"""Pod life on the local cluster's real node: pods run, log, complete, roll out, get evicted."""

from __future__ import annotations

import ipaddress
import threading
from typing import Any, Dict, List, Optional

import pytest

from kubesync import Api
from kubesync.models.apps_v1 import Deployment, DeploymentSpec
from kubesync.models.batch_v1 import Job, JobSpec
from kubesync.models.core_v1 import (
    ConfigMap,
    ConfigMapVolumeSource,
    Container,
    Pod,
    PodSpec,
    PodTemplateSpec,
    Volume,
    VolumeMount,
)
from kubesync.models.meta_v1 import LabelSelector, ObjectMeta
from kubesync.runtime.conditions import (
    is_deleted,
    is_deployment_rolled_out,
    is_job_completed,
    is_pod_running,
)
from kubesync.runtime.wait import await_condition
from kubesync.testing import TEST_IMAGE
from tests.helpers import eventually

pytestmark = [pytest.mark.e2e]
#: A pod on a warm node runs within a few seconds; a cold first one imports and unpacks.
RUN_TIMEOUT = 90


def _pod(name: str, script: str, **spec: Any) -> Pod:
    return Pod(
        metadata=ObjectMeta(name=name, labels={"app": name}),
        spec=PodSpec(
            containers=[Container(name="main", image=TEST_IMAGE, command=["sh", "-c", script])],
            termination_grace_period_seconds=1,
            **spec,
        ),
    )


#: A gate the test holds: a ConfigMap mounted at /gate, which the kubelet refreshes when
#: the ConfigMap changes; a container waits at it with GATE_WAIT.
GATE_WAIT = "until grep -q yes /gate/open; do sleep 0.2; done"


def _gate(kube_client: Any, namespace: str) -> Api[ConfigMap]:
    """Create the closed gate; ``_open(cms)`` opens it."""
    cms = Api(kube_client, ConfigMap, namespace=namespace)
    cms.create(ConfigMap(metadata=ObjectMeta(name="gate"), data={"open": "no"}))
    return cms


def _open(cms: Api[ConfigMap]) -> None:
    cms.patch("gate", _merge({"data": {"open": "yes"}}))


def _gate_volume() -> Volume:
    return Volume(name="gate", config_map=ConfigMapVolumeSource(name="gate"))


def _gate_mount() -> List[VolumeMount]:
    return [VolumeMount(name="gate", mount_path="/gate")]


def _template(app: str, script: str, restart: str) -> PodTemplateSpec:
    return PodTemplateSpec(
        metadata=ObjectMeta(labels={"app": app}),
        spec=PodSpec(
            restart_policy=restart,
            termination_grace_period_seconds=1,
            containers=[Container(name="main", image=TEST_IMAGE, command=["sh", "-c", script])],
        ),
    )


def test_version_reports_the_requested_kubernetes(kube_cluster: Any, kube_client: Any,
                                                  pytestconfig: pytest.Config) -> None:
    if not hasattr(kube_cluster, "server_version"):
        pytest.skip("an external cluster runs whatever version it runs")
    wanted = pytestconfig.getoption("kube_version")
    version = kube_client.request("GET", "/version")
    assert version["gitVersion"].startswith(f"v{wanted}.")
    assert f"{version['major']}.{version['minor']}" == wanted
    assert kube_cluster.server_version == version["gitVersion"]


@pytest.mark.kube_node
def test_the_node_is_ready_and_schedulable(kube_client: Any, kube_cluster: Any) -> None:
    node = kube_client.request("GET", f"/api/v1/nodes/{kube_cluster.node_name}")
    ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
    assert ready and ready[0]["status"] == "True"
    assert not node["spec"].get("unschedulable")
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://2.")
    assert node["status"]["nodeInfo"]["kubeletVersion"] == kube_cluster.server_version


@pytest.mark.kube_node
def test_a_busybox_pod_runs_gets_an_ip_and_its_logs_are_read(
    kube_client: Any, kube_namespace: str, kube_cluster: Any
) -> None:
    pods = Api(kube_client, Pod, namespace=kube_namespace)
    pods.create(_pod("hello", "echo one; echo two; echo three; exec sleep 3600"))
    running = await_condition(pods, "hello", is_pod_running(), timeout=RUN_TIMEOUT)
    assert running is not None and running.status is not None
    assert running.spec is not None and running.spec.node_name == kube_cluster.node_name
    ip = ipaddress.ip_address(running.status.pod_ip or "")
    assert ip in ipaddress.ip_network(kube_cluster.pod_subnet)
    # The kubelet serves the log; it is written as the container runs.
    eventually(lambda: pods.logs("hello") == "one\ntwo\nthree\n", RUN_TIMEOUT, "three lines")
    assert pods.logs("hello", tail_lines=1) == "three\n"
    assert pods.logs("hello", since_seconds=3600) == "one\ntwo\nthree\n"
    stamped = pods.logs("hello", timestamps=True).splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["one", "two", "three"]


@pytest.mark.kube_node
def test_following_a_log_yields_lines_as_the_container_writes_them(
    kube_client: Any, kube_namespace: str
) -> None:
    cms = _gate(kube_client, kube_namespace)
    pods = Api(kube_client, Pod, namespace=kube_namespace)
    # The container writes a line, then waits until the test opens the gate.
    pod = _pod("talker", f"echo first; {GATE_WAIT}; echo second; exec sleep 3600",
               volumes=[_gate_volume()])
    assert pod.spec is not None
    pod.spec.containers[0].volume_mounts = _gate_mount()
    pods.create(pod)
    await_condition(pods, "talker", is_pod_running(), timeout=RUN_TIMEOUT)
    seen: List[str] = []
    got_first = threading.Event()
    done = threading.Event()

    failed: List[BaseException] = []

    def follow() -> None:
        try:
            for line in pods.logs("talker", follow=True):
                seen.append(line)
                if line == "first":
                    got_first.set()
                if line == "second":
                    return
        except BaseException as e:  # reported by the test, not lost in the thread
            failed.append(e)
            got_first.set()
        finally:
            done.set()

    reader = threading.Thread(target=follow, name="test-log-follow", daemon=True)
    reader.start()
    assert got_first.wait(RUN_TIMEOUT)
    assert not failed, failed
    assert seen == ["first"]  # the container holds at the gate
    _open(cms)
    assert done.wait(RUN_TIMEOUT), f"no second line after the gate opened: {seen}"
    reader.join(10)
    assert not reader.is_alive() and not failed, failed
    assert seen == ["first", "second"]


@pytest.mark.kube_node
def test_a_job_runs_to_completion(kube_client: Any, kube_namespace: str) -> None:
    jobs = Api(kube_client, Job, namespace=kube_namespace)
    jobs.create(Job(metadata=ObjectMeta(name="count"),
                    spec=JobSpec(completions=2, parallelism=2, backoff_limit=0,
                                 template=_template("count", "echo done", "Never"))))
    done = await_condition(jobs, "count", is_job_completed(), timeout=RUN_TIMEOUT)
    assert done is not None and done.status is not None
    assert done.status.succeeded == 2 and done.status.completion_time is not None
    pods = Api(kube_client, Pod, namespace=kube_namespace)
    ran = pods.list(label_selector="job-name=count").items
    assert len(ran) == 2
    assert {p.status.phase for p in ran if p.status} == {"Succeeded"}
    assert all(pods.logs(p.metadata.name) == "done\n" for p in ran if p.metadata)


@pytest.mark.kube_node
def test_a_two_replica_deployment_rolls_out_and_rolls_again(
    kube_client: Any, kube_namespace: str
) -> None:
    deps = Api(kube_client, Deployment, namespace=kube_namespace)
    deps.create(Deployment(
        metadata=ObjectMeta(name="web"),
        spec=DeploymentSpec(replicas=2, selector=LabelSelector(match_labels={"app": "web"}),
                            template=_template("web", "exec httpd -f -p 8080", "Always")),
    ))
    first = await_condition(deps, "web", is_deployment_rolled_out(), timeout=RUN_TIMEOUT)
    assert first is not None and first.status is not None
    assert first.status.ready_replicas == 2
    pods = Api(kube_client, Pod, namespace=kube_namespace)
    before = {p.metadata.name for p in pods.list(label_selector="app=web").items if p.metadata}
    assert len(before) == 2
    # A template change is a new ReplicaSet: the rollout replaces both pods.
    deps.patch("web", _merge({"spec": {"template": {"metadata": {"annotations": {"v": "2"}}}}}))
    await_condition(deps, "web", is_deployment_rolled_out(), timeout=RUN_TIMEOUT)

    def replaced() -> bool:
        now = [p for p in pods.list(label_selector="app=web").items
               if p.metadata and p.metadata.deletion_timestamp is None]
        return len(now) == 2 and not ({p.metadata.name for p in now if p.metadata} & before)

    eventually(replaced, RUN_TIMEOUT, "both pods replaced")


@pytest.mark.kube_node
def test_eviction_deletes_a_running_pod(kube_client: Any, kube_namespace: str) -> None:
    pods = Api(kube_client, Pod, namespace=kube_namespace)
    pods.create(_pod("ev", "exec sleep 3600"))
    running = await_condition(pods, "ev", is_pod_running(), timeout=RUN_TIMEOUT)
    assert running is not None and running.metadata is not None
    status = pods.evict("ev")
    assert status.status == "Success"
    await_condition(pods, "ev", is_deleted(running.metadata.uid or ""), timeout=RUN_TIMEOUT)


@pytest.mark.kube_node
def test_is_pod_running_holds_only_once_the_pod_runs(
    kube_client: Any, kube_namespace: str
) -> None:
    cms = _gate(kube_client, kube_namespace)
    pods = Api(kube_client, Pod, namespace=kube_namespace)
    # An init container holds the pod in Pending until the test opens the gate.
    pod = _pod("slow", "exec sleep 3600", volumes=[_gate_volume()])
    assert pod.spec is not None
    pod.spec.init_containers = [Container(
        name="wait", image=TEST_IMAGE, command=["sh", "-c", GATE_WAIT],
        volume_mounts=_gate_mount())]
    pods.create(pod)
    running = is_pod_running()

    def init_running() -> bool:
        st = pods.get("slow").status
        inits = (st.init_container_statuses or []) if st else []
        return bool(inits and inits[0].state and inits[0].state.running)

    eventually(init_running, RUN_TIMEOUT, "the init container running")
    held = pods.get("slow")
    assert held.status is not None and held.status.phase == "Pending"
    assert not running(held)
    _open(cms)
    done = await_condition(pods, "slow", running, timeout=RUN_TIMEOUT)
    assert done is not None and done.status is not None and done.status.phase == "Running"
    statuses = done.status.container_statuses or []
    assert [s.name for s in statuses] == ["main"]


@pytest.mark.kube_node
def test_pods_get_a_projected_service_account_token(
    kube_client: Any, kube_namespace: str
) -> None:
    pods = Api(kube_client, Pod, namespace=kube_namespace)
    path = "/var/run/secrets/kubernetes.io/serviceaccount"
    pods.create(_pod("sa", f"cat {path}/namespace; echo; wc -c < {path}/token; "
                           "exec sleep 3600", restart_policy="Never"))
    running = await_condition(pods, "sa", is_pod_running(), timeout=RUN_TIMEOUT)
    assert running is not None and running.spec is not None
    assert running.spec.service_account_name == "default"
    volumes = [v for v in running.spec.volumes or [] if v.projected is not None]
    assert volumes, "the ServiceAccount admission plugin adds a projected token volume"

    def logged() -> Optional[List[str]]:
        lines = pods.logs("sa").split()
        return lines if len(lines) == 2 else None

    eventually(logged, RUN_TIMEOUT, "namespace and token size logged")
    namespace, size = pods.logs("sa").split()
    assert namespace == kube_namespace and int(size) > 100


def _merge(body: Dict[str, Any]) -> Any:
    from kubesync.core.params import Patch

    return Patch.merge(body)
