"""The pytest plugin, loaded into every pytest run of an installed kubesync, stays out of
the way of suites that never ask for a cluster."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_a_suite_without_cluster_fixtures_keeps_default_sigterm(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text(
        "import signal\n"
        "def test_sigterm_untouched():\n"
        "    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
    # The plugin was loaded (its marker is registered), it just did nothing.
    markers = subprocess.run(
        [sys.executable, "-m", "pytest", "--markers", "-p", "no:cacheprovider"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False,
    )
    assert "e2e: needs a Kubernetes API server" in markers.stdout


_MARKED = (
    "import pytest\n"
    "def test_plain():\n    pass\n"
    "@pytest.mark.kube_node\ndef test_needs_node():\n    pass\n"
    "@pytest.mark.kube_min_version('1.30')\ndef test_needs_new():\n    pass\n"
    "@pytest.mark.kube_node\n@pytest.mark.kube_min_version('1.30')\n"
    "def test_needs_both():\n    pass\n"
)


def _run_marked(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_marked.py").write_text(_MARKED)
    env = {k: v for k, v in os.environ.items()
           if k not in ("KUBESYNC_TEST_KUBECONFIG", "KUBESYNC_TEST_VERSION", "KUBESYNC_TEST_NODE")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False, env=env,
    )


def test_tests_the_cluster_cannot_serve_are_deselected_and_counted(tmp_path: Path) -> None:
    proc = _run_marked(tmp_path, "--kube-version", "1.20", "--no-kube-node")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed, 3 deselected" in proc.stdout
    assert ("kubesync: deselected on Kubernetes 1.20 without a node: "
            "2 need Kubernetes >= 1.30, 1 need a node") in proc.stdout


def test_the_newest_cluster_with_a_node_runs_every_marked_test(tmp_path: Path) -> None:
    proc = _run_marked(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 passed" in proc.stdout and "deselected" not in proc.stdout


def test_an_external_cluster_deselects_nothing(tmp_path: Path) -> None:
    (tmp_path / "test_marked.py").write_text(_MARKED)
    env = dict(os.environ, KUBESYNC_TEST_KUBECONFIG=str(tmp_path / "kubeconfig"))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-kube-node",
         str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False, env=env,
    )
    assert "4 passed" in proc.stdout, proc.stdout + proc.stderr
