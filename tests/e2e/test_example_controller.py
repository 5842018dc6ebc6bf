"""The configmapgen controller example, run as users run it: the demo, and a long-running
controller stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kubesync import Api
from kubesync.models.core_v1 import ConfigMap
from kubesync.runtime import await_condition

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "configmapgen_controller.py"
sys.path.insert(0, str(SCRIPT.parent))
import configmapgen_controller as example  # noqa: E402


def _env(kube_cluster: Any) -> dict:
    return dict(os.environ, KUBECONFIG=kube_cluster.kubeconfig_path, PYTHONUNBUFFERED="1")


def test_the_demo_shows_create_change_and_garbage_collection(kube_cluster: Any) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--demo"], env=_env(kube_cluster),
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines == [
        "created ConfigMapGenerator demo with content 'hello'",
        "ConfigMap demo has content 'hello'",
        "changed the generator: ConfigMap demo has content 'hello again'",
        "the generator's status names ConfigMap demo",
        "deleted the generator: ConfigMap demo was garbage-collected",
        "controller stopped; kubesync threads left: []",
    ]


def test_the_controller_runs_until_sigterm_and_stops_gracefully(
    kube_cluster: Any, kube_client: Any, kube_namespace: str
) -> None:
    proc = subprocess.Popen([sys.executable, str(SCRIPT)], env=_env(kube_cluster),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("controller running")
        gens = Api(kube_client, example.ConfigMapGenerator, namespace=kube_namespace)
        gens.create(example.ConfigMapGenerator.new(
            "sig", example.ConfigMapGeneratorSpec(content="x")))
        cms = Api(kube_client, ConfigMap, namespace=kube_namespace)
        await_condition(cms, "sig", lambda cm: cm is not None, timeout=60)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    assert out.strip() == "controller stopped"
