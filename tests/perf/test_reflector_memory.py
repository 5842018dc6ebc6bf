"""Memory regression test: the peak RSS of a reflector over 10,000 ConfigMaps that then
sees 5,000 updates must stay within 110% of the baseline kept in
``memory_baseline.json``.

The reflector runs in a child process of its own (``reflector_child.py``) and reports
its own peak RSS, so the test runner's memory and the API server's do not count. The
server is the in-process ``FakeApiServer``: seeding and updating 10,000 objects through
it takes seconds, where the local cluster's etcd-backed server needs minutes on a shared
machine; what is measured, the client side, is the same against either. Nothing here is
timed: every wait is on a condition, bounded.

After a change that moves memory on purpose, rewrite the baseline with
``KUBESYNC_UPDATE_MEMORY_BASELINE=1 python -m pytest tests/perf`` and commit it.
"""

from __future__ import annotations

import json
import os
import platform
import random
import string
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

from kubesync.testing.fake.server import FakeApiServer

HERE = Path(__file__).resolve().parent
BASELINE = HERE / "memory_baseline.json"
CHILD = HERE / "reflector_child.py"
ROOT = HERE.parent.parent
KEY = "reflector-10k-configmaps-5k-updates"
OBJECTS = 10_000
UPDATES = 5_000
ALLOWED = 1.10
NAMESPACE = "default"
CHILD_TIMEOUT = 300.0


def config_map(i: int, rng: random.Random) -> Dict[str, Any]:
    """The shape of the benchmark's objects: 8 data keys of 90 bytes, 2 labels, 1
    annotation (the server adds uid, timestamps and a managedFields entry)."""
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


def measure() -> Dict[str, int]:
    rng = random.Random(7)
    # History long enough that the watch never falls behind the updates (a 410 and a
    # relist would measure something else).
    with FakeApiServer(history=OBJECTS + UPDATES + 100) as fake:
        rt = fake.backend.registry.find("", "v1", "configmaps")
        assert rt is not None
        for i in range(OBJECTS):
            fake.backend.create(rt, NAMESPACE, config_map(i, rng), {}, "memory-test")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
        proc = subprocess.Popen(
            [sys.executable, str(CHILD), fake.kubeconfig_path, NAMESPACE, str(OBJECTS)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env)
        try:
            assert proc.stdout is not None and proc.stdin is not None
            line = proc.stdout.readline()  # ends when the child says so or exits
            if line.strip() != "synced":
                _, err = proc.communicate(timeout=CHILD_TIMEOUT)
                raise AssertionError(f"the reflector child did not sync: {line!r} {err}")
            last: Dict[str, Any] = {}
            for u in range(UPDATES):
                obj = config_map(u % OBJECTS, rng)  # same shape, new data values
                last = fake.backend.replace(rt, NAMESPACE, obj["metadata"]["name"], "", obj,
                                            {}, "memory-test")
            meta = last["metadata"]
            out, err = proc.communicate(f"{meta['name']} {meta['resourceVersion']}\n",
                                        timeout=CHILD_TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, f"the reflector child failed: {err}"
    result: Dict[str, int] = json.loads(out.strip().splitlines()[-1])
    assert result["objects"] == OBJECTS
    return result


def test_reflector_peak_rss_stays_within_110_percent_of_the_baseline() -> None:
    peak = measure()["peak_rss_kib"]
    if os.environ.get("KUBESYNC_UPDATE_MEMORY_BASELINE"):
        BASELINE.write_text(json.dumps({KEY: {
            "peak_rss_kib": peak, "objects": OBJECTS, "updates": UPDATES,
            "python": platform.python_version(), "machine": platform.machine(),
        }}, indent=2) + "\n", encoding="utf-8")
    baseline = json.loads(BASELINE.read_text(encoding="utf-8"))[KEY]["peak_rss_kib"]
    assert peak <= baseline * ALLOWED, (
        f"the reflector's peak RSS is {peak} KiB, above {ALLOWED:.0%} of the baseline "
        f"{baseline} KiB in {BASELINE.name} ({OBJECTS} ConfigMaps, {UPDATES} updates); "
        "if the growth is intended, rewrite the baseline (see this module's docstring)")
