"""Every example in examples/ runs against the cluster, as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

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
