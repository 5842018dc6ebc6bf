"""Forks against the real cluster: gunicorn --preload workers that each see changes made
after start and stop cleanly, and a forked child that exits without deleting the cluster."""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import pytest

from kubesync import Api
from kubesync.models.apps_v1 import Deployment
from tests.e2e.test_examples import _deployment
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> Tuple[int, Optional[str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers.get("X-Process-Id"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("X-Process-Id"), e.read()
    except OSError:
        return 0, None, b""


def test_gunicorn_preload_workers_each_see_a_change_made_after_start_and_stop_cleanly(
    kube_cluster: Any, kube_client: Any, kube_namespace: str
) -> None:
    pytest.importorskip("gunicorn")
    port = _free_port()
    env = dict(os.environ, KUBECONFIG=kube_cluster.kubeconfig_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "2", "--preload", "-b", f"127.0.0.1:{port}",
         "--graceful-timeout", "30", "examples.flask_app:create_app()"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: _get(f"{base}/health")[0] == 200, 120, "gunicorn serves")
        api = Api(kube_client, Deployment, namespace=kube_namespace)
        api.create(_deployment("late", "example.test/app:v7"))  # after every worker forked
        answered: Dict[str, bytes] = {}
        codes: Dict[Optional[str], Dict[int, int]] = {}

        def every_worker_sees_it() -> bool:
            code, pid, body = _get(f"{base}/versions/{kube_namespace}/late")
            seen = codes.setdefault(pid, {})
            seen[code] = seen.get(code, 0) + 1
            if code == 200 and pid is not None:
                answered[pid] = body
            return len(answered) >= 2

        try:
            eventually(every_worker_sees_it, 120, "both workers answer with the new Deployment")
        except AssertionError:
            proc.kill()
            out, _ = proc.communicate()
            raise AssertionError(
                f"only workers {sorted(answered)} answered with the new Deployment (status "
                f"codes by worker: {codes}); gunicorn said:\n"
                + out.decode(errors="replace")[-4000:]) from None
        assert all(b'"version":"v7"' in b.replace(b" ", b"") for b in answered.values())
        assert str(proc.pid) not in answered  # workers answered, not the master
        code, _, body = _get(f"{base}/kube/readyz")
        assert code == 200 and b"[+]store deployments ok" in body
    finally:
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    took = time.monotonic() - started
    assert proc.returncode == 0, out.decode(errors="replace")
    assert took < 5.0, f"gunicorn took {took:.1f}s to stop"


def test_a_client_and_a_reflector_used_in_a_forked_child_leave_the_parents_working(
    kube_client: Any, kube_namespace: str
) -> None:
    from kubesync.models.core_v1 import ConfigMap
    from kubesync.models.meta_v1 import ObjectMeta
    from kubesync.runtime.reflector import start_reflector
    from tests.unit.test_fork import in_child

    api = Api(kube_client, ConfigMap, namespace=kube_namespace)
    store = start_reflector(api)
    assert store.wait_until_ready(30)
    api.create(ConfigMap(metadata=ObjectMeta(name="before-fork")))
    eventually(lambda: store.get("before-fork", kube_namespace) is not None, 30, "parent sees it")

    def child() -> None:
        for _ in range(5):
            kube_client.request("GET", "/version")
        assert store.wait_until_ready(30)  # its own reflector, its own list
        api.create(ConfigMap(metadata=ObjectMeta(name="from-child")))
        eventually(lambda: store.get("from-child", kube_namespace) is not None, 30, "child")
        store.stop()

    in_child(child, timeout=90)
    for _ in range(5):  # the parent's pooled TLS connections were never shared
        assert kube_client.request("GET", "/version")["major"]
    eventually(lambda: store.get("from-child", kube_namespace) is not None, 30,
               "the parent's watch still runs")
    store.stop()


def test_a_forked_child_exiting_normally_leaves_the_parents_cluster(
    kube_cluster: Any, kube_client: Any
) -> None:
    folder = getattr(kube_cluster, "dir", None)
    if folder is None:
        pytest.skip("an external cluster: no local folder to protect")
    pid = os.fork()
    if pid == 0:  # what a normal interpreter exit runs, then leave without pytest's teardown
        status = 0
        try:
            atexit._run_exitfuncs()
        except BaseException:
            status = 1
        os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert Path(folder).is_dir()
    assert kube_client.request("GET", "/version")["major"]
