"""Memory regression test: the peak RSS of a reflector over 10,000 ConfigMaps that then
sees 5,000 updates must stay within 110% of the baseline kept in
``tests/perf/memory_baseline.json``.

Against the local cluster (the session's, through ``kube_cluster``): it takes 15,000
writes from 16 threads in well under a minute. The reflector runs in a child process of
its own (``tests/perf/reflector_child.py``) and reports its own peak RSS, counted from
after its imports, so the test runner's memory does not count. Nothing here is timed:
every wait is on a condition, bounded.

After a change that moves memory on purpose, rewrite the baseline with
``KUBESYNC_UPDATE_MEMORY_BASELINE=1 python -m pytest tests/e2e/test_reflector_memory.py``
and commit it.
"""

from __future__ import annotations

import json
import os
import platform
import random
import string
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict

import pytest

from kubesync.client.client import Client
from tests.helpers import server_minor

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent.parent
BASELINE = ROOT / "tests" / "perf" / "memory_baseline.json"
CHILD = ROOT / "tests" / "perf" / "reflector_child.py"
KEY = "reflector-10k-configmaps-5k-updates"
OBJECTS = 10_000
UPDATES = 5_000
ALLOWED = 1.10
THREADS = 16
#: The test's objects only (the namespace also holds kube-root-ca.crt).
SELECTOR = "app=kubesync-memory-test"
CHILD_TIMEOUT = 300.0


def config_map(i: int, rng: random.Random) -> Dict[str, Any]:
    """The benchmark's shape: 8 data keys of 90 bytes, 2 labels, 1 annotation (the server
    adds uid, timestamps and a managedFields entry)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"cm-{i:05d}",
            "labels": {"app": "kubesync-memory-test", "shard": f"s{i % 16}"},
            "annotations": {"test.kubesync.io/note": f"object number {i:05d}"},
        },
        "data": {f"key-{k}": "".join(rng.choices(string.ascii_letters, k=90))
                 for k in range(8)},
    }


def measure(client: Client, kubeconfig: str, namespace: str) -> Dict[str, int]:
    rng = random.Random(7)
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    bodies = [config_map(i, rng) for i in range(OBJECTS)]
    with ThreadPoolExecutor(THREADS, thread_name_prefix="memory-test-seed") as pool:
        list(pool.map(lambda b: client.request("POST", path, body=b), bodies))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), kubeconfig, namespace, SELECTOR, str(OBJECTS)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # ends when the child says so or exits
        if line.strip() != "synced":
            _, err = proc.communicate(timeout=CHILD_TIMEOUT)
            raise AssertionError(f"the reflector child did not sync: {line!r} {err}")
        updates = [config_map(u % OBJECTS, rng) for u in range(UPDATES)]  # new data values

        def update(body: Dict[str, Any]) -> Any:
            return client.request("PUT", f"{path}/{body['metadata']['name']}", body=body)

        with ThreadPoolExecutor(THREADS, thread_name_prefix="memory-test-update") as pool:
            list(pool.map(update, updates[:-1]))
        last = update(updates[-1])["metadata"]  # after all others: the last event
        out, err = proc.communicate(f"{last['name']} {last['resourceVersion']}\n",
                                    timeout=CHILD_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        client.request("DELETE", path)
    assert proc.returncode == 0, f"the reflector child failed: {err}"
    result: Dict[str, int] = json.loads(out.strip().splitlines()[-1])
    assert result["objects"] == OBJECTS
    return result


def test_reflector_peak_rss_stays_within_110_percent_of_the_baseline(
        kube_cluster: Any, kube_client: Client, kube_namespace: str) -> None:
    # A baseline per server version: a server with streaming lists (1.34+) syncs without
    # holding a whole LIST, an older one pages, which peaks higher.
    key = "{}@{}.{}".format(KEY, *server_minor(kube_client))
    peak = measure(kube_client, kube_cluster.kubeconfig_path, kube_namespace)["peak_rss_kib"]
    recorded = json.loads(BASELINE.read_text(encoding="utf-8")) if BASELINE.exists() else {}
    if os.environ.get("KUBESYNC_UPDATE_MEMORY_BASELINE"):
        recorded[key] = {"peak_rss_kib": peak, "objects": OBJECTS, "updates": UPDATES,
                         "python": platform.python_version(), "machine": platform.machine()}
        BASELINE.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n",
                            encoding="utf-8")
    assert key in recorded, f"{BASELINE.name} has no baseline for {key}"
    baseline = recorded[key]["peak_rss_kib"]
    assert peak <= baseline * ALLOWED, (
        f"the reflector's peak RSS is {peak} KiB, above {ALLOWED:.0%} of the baseline "
        f"{baseline} KiB in {BASELINE.name} ({OBJECTS} ConfigMaps, {UPDATES} updates); "
        "if the growth is intended, rewrite the baseline (see this module's docstring)")
