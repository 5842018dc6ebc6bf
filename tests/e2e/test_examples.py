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


def _completed_job(api: Any, name: str, hours_ago: Any, condition: str = "Complete") -> None:
    """A Job marked finished ``hours_ago`` by writing its status (no kubelet runs pods)."""
    import datetime as dt

    from kubesync import Patch
    from kubesync.core.convert import format_time
    from kubesync.models.batch_v1 import Job, JobSpec
    from kubesync.models.core_v1 import Container, PodSpec, PodTemplateSpec
    from kubesync.models.meta_v1 import ObjectMeta

    api.create(Job(
        metadata=ObjectMeta(name=name),
        # parallelism 0: the job controller starts no pods for it.
        spec=JobSpec(parallelism=0, template=PodTemplateSpec(spec=PodSpec(
            restart_policy="Never", containers=[Container(name="main", image="busybox")]))),
    ))
    if hours_ago is None:
        return
    finished = format_time(dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=hours_ago))
    status = {"startTime": finished,
              "conditions": [{"type": condition, "status": "True",
                              "lastTransitionTime": finished}]}
    if condition == "Complete":
        status.update(completionTime=finished, succeeded=1)
    else:
        status.update(failed=1)
    api.patch_status(name, Patch.merge({"status": status}))


def test_cleanup_jobs_deletes_only_completed_jobs_older_than_the_cutoff(
        kube_cluster: Any, kube_client: Any, kube_namespace: str) -> None:
    from kubesync import Api
    from kubesync.models.batch_v1 import Job
    from kubesync.runtime.conditions import is_deleted
    from kubesync.runtime.wait import await_condition

    jobs = Api(kube_client, Job, kube_namespace)
    _completed_job(jobs, "old", hours_ago=5)
    _completed_job(jobs, "recent", hours_ago=0.2)
    _completed_job(jobs, "old-failed", hours_ago=5, condition="Failed")
    _completed_job(jobs, "running", hours_ago=None)
    names = {"old", "recent", "old-failed", "running"}
    old_uid = jobs.get("old").metadata.uid

    out = _run("cleanup_jobs.py", kube_cluster, "--namespace", kube_namespace, "--hours", "1",
               "--dry-run")
    assert out.splitlines() == [
        f"would delete {kube_namespace}/old (completed 5.0h ago)",
        "1 completed Job(s) older than 1h would be deleted (dry run)",
    ]
    assert {j.metadata.name for j in jobs.list()} == names

    out = _run("cleanup_jobs.py", kube_cluster, "--all-namespaces", "--hours", "1",
               "--dry-run")
    assert f"would delete {kube_namespace}/old (completed 5.0h ago)" in out.splitlines()
    assert {j.metadata.name for j in jobs.list()} == names

    out = _run("cleanup_jobs.py", kube_cluster, "--namespace", kube_namespace, "--hours", "1")
    assert out.splitlines() == [
        f"deleted {kube_namespace}/old (completed 5.0h ago)",
        "1 completed Job(s) older than 1h deleted",
    ]
    await_condition(jobs, "old", is_deleted(old_uid), timeout=30)
    assert {j.metadata.name for j in jobs.list()} == names - {"old"}


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
