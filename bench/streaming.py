"""A reflector's initial sync of 10k ConfigMaps: paged LIST+WATCH against a streaming
list (WatchList), time and peak Python memory, on a 1.37 local cluster.

Run it alone (it starts its own cluster): ``python -m bench.streaming [--count N]``.
Peak memory is tracemalloc's peak during the sync minus what was allocated before it;
"held" is what is still allocated when the store is ready (the store itself): peak minus
held is what the strategy needs on the way. Each sync uses a fresh Client, so nothing is
shared between runs. Prints a table; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Tuple

from bench.seed import config_map

NAMESPACE = "bench-streaming"


def _seed(client: Any, count: int) -> None:
    from kubesync import Api
    from kubesync.models.core_v1 import ConfigMap

    client.request("POST", "/api/v1/namespaces", body={
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    rng = random.Random(7)
    bodies = [config_map(i, rng) for i in range(count)]
    path = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda b: client.request("POST", path, body=b), bodies))
    assert len(Api(client, ConfigMap, NAMESPACE).list().items) == count


def _sync(config_path: str, strategy: str, count: int) -> Tuple[float, float, float]:
    from kubesync import Api, Client
    from kubesync.config import Config
    from kubesync.models.core_v1 import ConfigMap
    from kubesync.runtime.reflector import start_reflector
    from kubesync.runtime.watcher import WatcherConfig

    client = Client(Config.from_kubeconfig(config_path))
    api = Api(client, ConfigMap, NAMESPACE)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    store = start_reflector(api, WatcherConfig(initial_list=strategy), shared=False)
    try:
        if not store.wait_until_ready(300):
            raise TimeoutError("the reflector did not sync")
        took = time.perf_counter() - started
        held, peak = (m - base for m in tracemalloc.get_traced_memory())
        if len(store) != count:
            raise RuntimeError(f"the store holds {len(store)} objects, not {count}")
    finally:
        tracemalloc.stop()
        store.stop()
        client.close()
    return took, peak / 2**20, held / 2**20


def main() -> None:
    from kubesync import Client
    from kubesync.config import Config
    from kubesync.runtime.watcher import InitialList
    from kubesync.testing.cluster import LocalCluster

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with LocalCluster(version="1.37", node=False, controller_manager=False) as cluster:
        admin = Client(Config.from_kubeconfig(cluster.kubeconfig_path))
        _seed(admin, args.count)
        results: Dict[str, List[Tuple[float, float, float]]] = {}
        for _ in range(args.runs):  # interleaved, so drift hits both alike
            for strategy in (InitialList.LIST, InitialList.STREAMING):
                results.setdefault(strategy, []).append(
                    _sync(cluster.kubeconfig_path, strategy, args.count))
        print(f"initial sync of {args.count} ConfigMaps on {cluster.server_version}, "
              f"median of {args.runs}")
        print(f"{'strategy':<12} {'time s':>8} {'peak MiB':>9} {'held MiB':>9}")
        for strategy, runs in results.items():
            t, m, h = (statistics.median(r[i] for r in runs) for i in range(3))
            print(f"{strategy:<12} {t:>8.2f} {m:>9.1f} {h:>9.1f}")


if __name__ == "__main__":
    main()
