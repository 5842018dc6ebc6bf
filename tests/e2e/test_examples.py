"""Every example in examples/ runs against the cluster, as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import eventually

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(script: str, kube_cluster: Any, *args: str, timeout: float = 120) -> str:
    env = dict(os.environ, KUBECONFIG=kube_cluster.kubeconfig_path)
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args], env=env, capture_output=True,
        text=True, timeout=timeout, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_configmaps_example_creates_lists_and_deletes(kube_cluster: Any) -> None:
    out = _run("configmaps.py", kube_cluster)
    assert "created default/kubesync-hello" in out
    assert "kubesync-hello: ['greeting']" in out
    assert "still there: False" in out


# -- helpers for the examples below ----------------------------------------------------------


def _import_example(name: str) -> Any:
    """An example script as a module (examples/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- flask_app.py ----------------------------------------------------------------------------


def _deployment(name: str, image: str) -> Any:
    from kubesync.models.apps_v1 import Deployment, DeploymentSpec
    from kubesync.models.core_v1 import Container, PodSpec, PodTemplateSpec
    from kubesync.models.meta_v1 import LabelSelector, ObjectMeta

    labels = {"app": name}
    return Deployment(
        metadata=ObjectMeta(name=name),
        spec=DeploymentSpec(
            selector=LabelSelector(match_labels=labels),
            template=PodTemplateSpec(
                metadata=ObjectMeta(labels=labels),
                spec=PodSpec(containers=[Container(name="main", image=image)]),
            ),
        ),
    )


def test_flask_app_serves_deployment_images_from_its_reflector(
        kube_client: Any, kube_namespace: str) -> None:
    from kubesync import Api, Patch
    from kubesync.models.apps_v1 import Deployment

    app = _import_example("flask_app").create_app(kube_client)
    store = app.extensions["deployments"]
    web = app.test_client()
    try:
        deployments = Api(kube_client, Deployment, kube_namespace)
        deployments.create(_deployment("shop", "registry.local:5000/shop:1.4.2"))

        def served(version: str) -> Any:
            return [e for e in web.get("/versions").get_json()
                    if e["namespace"] == kube_namespace and e["version"] == version]

        eventually(lambda: served("1.4.2"), timeout=30, what="the app serving shop 1.4.2")
        assert served("1.4.2") == [
            {"namespace": kube_namespace, "name": "shop", "container": "main",
             "image": "registry.local:5000/shop:1.4.2", "version": "1.4.2"}]
        assert web.get("/").get_json() == web.get("/versions").get_json()

        deployments.patch("shop", Patch.strategic({"spec": {"template": {"spec": {
            "containers": [{"name": "main", "image": "registry.local:5000/shop:1.5.0"}]}}}}))
        eventually(lambda: served("1.5.0"), timeout=30, what="the app serving shop 1.5.0")

        one = web.get(f"/versions/{kube_namespace}/shop")
        assert one.status_code == 200 and one.get_json()[0]["version"] == "1.5.0"
        assert web.get(f"/versions/{kube_namespace}/nothing").status_code == 404
        health = web.get("/health")
        assert health.status_code == 200 and health.get_json()["ready"] is True
    finally:
        store.stop()


# -- cleanup_jobs.py -------------------------------------------------------------------------


def _job(api: Any, name: str, script: str) -> None:
    """A real Job: one pod on the node runs ``script`` once."""
    from kubesync.models.batch_v1 import Job, JobSpec
    from kubesync.models.core_v1 import Container, PodSpec, PodTemplateSpec
    from kubesync.models.meta_v1 import ObjectMeta
    from kubesync.testing import TEST_IMAGE

    api.create(Job(
        metadata=ObjectMeta(name=name),
        spec=JobSpec(backoff_limit=0, template=PodTemplateSpec(spec=PodSpec(
            restart_policy="Never", termination_grace_period_seconds=1,
            containers=[Container(name="main", image=TEST_IMAGE,
                                  command=["sh", "-c", script])]))),
    ))


@pytest.mark.kube_node
def test_cleanup_jobs_deletes_only_completed_jobs_older_than_the_cutoff(
        kube_cluster: Any, kube_client: Any, kube_namespace: str) -> None:
    from kubesync import Api
    from kubesync.models.batch_v1 import Job
    from kubesync.models.core_v1 import Pod
    from kubesync.runtime.conditions import find_condition, is_deleted
    from kubesync.runtime.wait import await_condition

    jobs = Api(kube_client, Job, kube_namespace)
    _job(jobs, "done", "echo ok")
    _job(jobs, "failed", "exit 3")
    _job(jobs, "running", "exec sleep 3600")
    names = {"done", "failed", "running"}
    await_condition(jobs, "done", lambda j: j is not None and j.status is not None
                    and j.status.completion_time is not None, timeout=120)
    await_condition(jobs, "failed", lambda j: j is not None
                    and find_condition(j, "Failed") is not None, timeout=120)
    done_uid = jobs.get("done").metadata.uid

    # Completed seconds ago: younger than an hour, so nothing goes.
    out = _run("cleanup_jobs.py", kube_cluster, "--namespace", kube_namespace, "--hours", "1")
    assert out.splitlines() == ["0 completed Job(s) older than 1h deleted"]

    out = _run("cleanup_jobs.py", kube_cluster, "--namespace", kube_namespace, "--hours", "0",
               "--dry-run")
    assert out.splitlines() == [
        f"would delete {kube_namespace}/done (completed 0.0h ago)",
        "1 completed Job(s) older than 0h would be deleted (dry run)",
    ]
    out = _run("cleanup_jobs.py", kube_cluster, "--all-namespaces", "--hours", "0",
               "--dry-run")
    assert f"would delete {kube_namespace}/done (completed 0.0h ago)" in out.splitlines()
    assert {j.metadata.name for j in jobs.list()} == names

    out = _run("cleanup_jobs.py", kube_cluster, "--namespace", kube_namespace, "--hours", "0")
    assert out.splitlines() == [
        f"deleted {kube_namespace}/done (completed 0.0h ago)",
        "1 completed Job(s) older than 0h deleted",
    ]
    await_condition(jobs, "done", is_deleted(done_uid), timeout=30)
    assert {j.metadata.name for j in jobs.list()} == names - {"done"}
    # Background propagation: the Job's pod goes with it, the others' pods stay.
    pods = Api(kube_client, Pod, kube_namespace)
    eventually(lambda: not pods.list(label_selector="job-name=done").items, 60,
               "the deleted Job's pod is gone")
    assert pods.list(label_selector="job-name=failed").items


# -- notebook.ipynb --------------------------------------------------------------------------


def test_notebook_runs_headless_and_shows_tables_yaml_and_a_store(
        kube_cluster: Any, kube_client: Any, kube_namespace: str,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    from kubesync import Api
    from kubesync.models.core_v1 import ConfigMap

    # The kernel inherits this process's environment.
    monkeypatch.setenv("KUBECONFIG", kube_cluster.kubeconfig_path)
    monkeypatch.setenv("KUBESYNC_NOTEBOOK_NAMESPACE", kube_namespace)
    nb = nbformat.read(EXAMPLES / "notebook.ipynb", as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    def outputs(i: int, mime: str) -> str:
        found = []
        for out in nb.cells[i].outputs:
            if out.get("output_type") == "stream":
                found.append(out["text"] if mime == "text/plain" else "")
            else:
                found.append(str(out.get("data", {}).get(mime, "")))
        return "".join(found)

    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    _, namespaces, _, applied, store, updated, deleted, dumped, _ = code
    assert "<table>" in outputs(namespaces, "text/html")
    assert f"<td>{kube_namespace}</td>" in outputs(namespaces, "text/html")
    assert "name: notebook-demo-1" in outputs(applied, "text/html")
    assert "<caption>Store of ConfigMap: 2 (ready)</caption>" in outputs(store, "text/html")
    assert "hello again" in outputs(updated, "text/plain")
    assert "notebook-demo-2 is gone" in outputs(deleted, "text/plain")
    assert "kind: ConfigMap" in outputs(dumped, "text/plain")
    assert "managedFields" not in outputs(dumped, "text/plain")
    assert Api(kube_client, ConfigMap, kube_namespace).list(
        label_selector={"app": "notebook-demo"}).items == []
