"""Workload 3: memory held per object by a store of the seeded 10k ConfigMaps.

Measured with ``tracemalloc``: traced bytes still allocated once the store is filled and
everything else (response bodies, pages, threads) is released, over the object count.
Every variant keeps its objects the same way, in a dict keyed by (namespace, name), which
is what a kubesync ``Store`` holds too. kubesync's store is filled by its reflector
(paged LIST through the watcher), as an application fills it.
"""

from __future__ import annotations

import gc
import json
import tracemalloc
import warnings
from typing import Any, Callable, Dict, List, Tuple

from bench import peers
from bench.env import Env, kubesync_json_backend, with_stdlib_json
from bench.measure import LOWER, Target, Variant, WorkloadResult, run_variants

NAME = "memory"
KUBESYNC = "kubesync Store, managedFields dropped"
KUBESYNC_FULL = "kubesync Store, as served"
KUBESYNC_STD = "kubesync Store, managedFields dropped, stdlib json"
RAW = "raw json dicts"
#: How long the reflector may take to fill the store before the run is failed.
SYNC_TIMEOUT = 300.0


def per_object(build: Callable[[], Any], count: int) -> float:
    """Bytes per object that ``build()``'s result keeps allocated."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        held = build()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    if len(held) != count:
        raise RuntimeError(f"the store holds {len(held)} objects, not {count}")
    del held
    return (after - before) / count


def variants(env: Env) -> List[Variant]:
    ns, count = env.store_ns, env.store_count
    url = env.url(ns)
    out: List[Variant] = []

    from kubesync import Api
    from kubesync.models.core_v1 import ConfigMap
    from kubesync.runtime.reflector import drop_managed_fields, start_reflector

    client = env.kubesync_client()
    api = Api(client, ConfigMap, namespace=ns)

    def kubesync_store(transform: Any) -> Any:
        store = start_reflector(api, transform=transform)
        try:
            if not store.wait_until_ready(SYNC_TIMEOUT):
                raise TimeoutError("the reflector did not sync")
        finally:
            store.stop()
        return store

    backend = kubesync_json_backend()
    note = f"reflector, JSON backend {backend}"

    def dropped() -> float:
        return per_object(lambda: kubesync_store(drop_managed_fields), count)

    out.append(Variant(KUBESYNC, dropped, note=note, close=client.close))
    if backend != "json":
        out.append(Variant(KUBESYNC_STD, with_stdlib_json(dropped),
                           note="reference: the fallback where orjson is missing"))
    out.append(Variant(KUBESYNC_FULL, lambda: per_object(lambda: kubesync_store(None), count),
                       note=note))

    session = env.session()

    def raw(strip: bool) -> Dict[Tuple[str, str], Any]:
        items = json.loads(session.get(url).content)["items"]
        store = {}
        for o in items:
            meta = o["metadata"]
            if strip:
                meta.pop("managedFields", None)
            store[(meta["namespace"], meta["name"])] = o
        return store

    out.append(Variant(RAW, lambda: per_object(lambda: raw(False), count),
                       close=session.close))
    out.append(Variant("raw json dicts, managedFields dropped",
                       lambda: per_object(lambda: raw(True), count)))

    official, why = peers.official_api(env)
    if official is None:
        out.append(Variant(peers.OFFICIAL, na=why))
    else:
        def official_store() -> Dict[Tuple[str, str], Any]:
            items = official.list_namespaced_config_map(ns).items
            return {(o.metadata.namespace, o.metadata.name): o for o in items}

        out.append(Variant(peers.OFFICIAL, lambda: per_object(official_store, count),
                           close=official.api_client.close))

    lk, why = peers.lightkube_client(env)
    if lk is None:
        out.append(Variant(peers.LIGHTKUBE, na=why))
    else:
        from lightkube.resources.core_v1 import ConfigMap as LkConfigMap

        def lightkube_store() -> Dict[Tuple[str, str], Any]:
            return {(o.metadata.namespace, o.metadata.name): o
                    for o in lk.list(LkConfigMap, namespace=ns)}

        out.append(Variant(peers.LIGHTKUBE, lambda: per_object(lightkube_store, count),
                           close=lk.close))

    k8, why = peers.kr8s_api(env)
    if k8 is None:
        out.append(Variant(peers.KR8S, na=why))
    else:
        def kr8s_store() -> Dict[Tuple[str, str], Any]:
            return {(o.namespace, o.name): o for o in k8.get("configmaps", namespace=ns)}

        out.append(Variant(peers.KR8S, lambda: per_object(kr8s_store, count)))
    return out


def run(env: Env, runs: int) -> WorkloadResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kr8s warns that 1.20 is older than it supports
        measurements = run_variants(variants(env), runs)
    return WorkloadResult(
        name=NAME,
        title=f"Store memory per object, {env.store_count} ConfigMaps (tracemalloc)",
        unit="bytes/object",
        better=LOWER,
        baseline=RAW,
        measurements=measurements,
        targets=[
            Target(KUBESYNC, RAW, 1.0, "<= raw dicts"),
            Target(KUBESYNC, peers.OFFICIAL, 0.5, "<= 0.5x official"),
            # Issue 21, target 4.
            Target(KUBESYNC, RAW, 0.5, "<= 0.5x raw dicts"),
            Target(KUBESYNC_FULL, RAW, 0.9, "<= 0.9x raw dicts"),
            Target(KUBESYNC_FULL, peers.LIGHTKUBE, 1.0, "<= lightkube"),
        ],
        notes=["Objects kept in a dict keyed by (namespace, name) in every variant; "
               "kubesync's through start_reflector (pages of 500)."],
    )
