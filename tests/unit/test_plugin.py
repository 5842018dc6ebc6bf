"""The pytest plugin, loaded into every pytest run of an installed kubesync, stays out of
the way of suites that never ask for a cluster."""

from __future__ import annotations

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
