"""Seed the cluster: ConfigMaps shaped as in PERF-NOTES, created by a pool of threads.

Each ConfigMap has 8 data keys of ~90 bytes, 2 labels and 1 annotation; the server adds
one managedFields entry. Raw ``requests`` (not kubesync) so that seeding does not depend
on what is measured, and one field manager throughout so every object keeps exactly one
managedFields entry, also after the watch workload's updates.
"""

from __future__ import annotations

import json
import random
import string
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List

from bench.env import Env

#: Creating is server-bound; 16 connections keep a 2-core apiserver busy without queueing.
THREADS = 16
DATA_KEYS = 8
VALUE_LEN = 90
#: The one field manager of every write the seed and the updates make.
FIELD_MANAGER = "kubesync-bench"


def _value(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits, k=VALUE_LEN))


def config_map(i: int, rng: random.Random) -> Dict[str, Any]:
    """The ``i``-th seed ConfigMap as JSON."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"cm-{i:05d}",
            "labels": {"app": "kubesync-bench", "shard": f"s{i % 16}"},
            "annotations": {"bench.kubesync.io/note": f"seeded object number {i:05d} of the run"},
        },
        "data": {f"key-{k}": _value(rng) for k in range(DATA_KEYS)},
    }


def _ensure_namespace(env: Env, name: str) -> None:
    s = env.session()
    r = s.post(f"{env.server}/api/v1/namespaces", json={
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    if r.status_code not in (201, 409):
        r.raise_for_status()


def count(env: Env, namespace: str) -> int:
    """How many ConfigMaps ``namespace`` holds (a metadata-only LIST)."""
    s = env.session()
    r = s.get(env.url(namespace), params={"limit": 1})
    r.raise_for_status()
    meta = r.json()["metadata"]
    return len(r.json()["items"]) + int(meta.get("remainingItemCount") or 0)


def _run_parallel(env: Env, jobs: List[Any], fn: Any) -> None:
    session = env.session(pool=THREADS)
    with ThreadPoolExecutor(THREADS, thread_name_prefix="bench-seed") as pool:
        for r in pool.map(lambda job: fn(session, job), jobs):
            if r.status_code >= 300 and r.status_code != 409:
                raise RuntimeError(f"seeding failed: {r.status_code} {r.text[:300]}")


def seed(env: Env, namespace: str, n: int) -> float:
    """Fill ``namespace`` with ``n`` ConfigMaps (those present are kept); seconds taken."""
    started = time.perf_counter()
    _ensure_namespace(env, namespace)
    if count(env, namespace) >= n:
        return 0.0
    rng = random.Random(n)
    bodies = [config_map(i, rng) for i in range(n)]
    url = env.url(namespace)
    params = {"fieldManager": FIELD_MANAGER}
    _run_parallel(env, bodies, lambda s, body: s.post(url, json=body, params=params))
    return time.perf_counter() - started


def update_all(env: Env, namespace: str, n: int, round_: int) -> float:
    """Change one data value of each of the ``n`` ConfigMaps (same length); seconds taken."""
    started = time.perf_counter()
    rng = random.Random(round_)
    params = {"fieldManager": FIELD_MANAGER}
    headers = {"Content-Type": "application/merge-patch+json"}
    jobs = [(f"cm-{i:05d}", _value(rng)) for i in range(n)]

    def patch(s: Any, job: Any) -> Any:
        name, value = job
        body = json.dumps({"data": {"key-0": value}})
        return s.patch(env.url(namespace, name=name), data=body, params=params,
                       headers=headers)

    _run_parallel(env, jobs, patch)
    return time.perf_counter() - started
