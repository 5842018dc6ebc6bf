"""Workload 6: a reflector's initial sync of the seeded 10k ConfigMaps, against one plain
LIST of them with kubesync.

The reflector (``start_reflector``) lists page by page (500 a page, client-go's and
kube-rs's default) through the watcher, fills its store and swaps it in; timed from the
call to ``wait_until_ready()`` returning.
"""

from __future__ import annotations

import json
from typing import List

from bench.env import Env
from bench.measure import LOWER, Target, Variant, WorkloadResult, run_variants, timed

NAME = "reflector"
KUBESYNC, LIST = "kubesync reflector sync", "kubesync LIST (one call)"
SYNC_TIMEOUT = 300.0


def variants(env: Env) -> List[Variant]:
    from kubesync import Api
    from kubesync.models.core_v1 import ConfigMap
    from kubesync.runtime.reflector import drop_managed_fields, start_reflector

    client = env.kubesync_client()
    api = Api(client, ConfigMap, namespace=env.store_ns)

    def sync(transform: object = None) -> None:
        store = start_reflector(api, transform=transform)  # type: ignore[arg-type]
        try:
            if not store.wait_until_ready(SYNC_TIMEOUT):
                raise TimeoutError("the reflector did not sync")
        finally:
            store.stop()
        if len(store) != env.store_count:
            raise RuntimeError(f"the store holds {len(store)} objects")

    session = env.session()
    url = env.url(env.store_ns)
    return [
        Variant(LIST, lambda: timed(api.list), close=client.close),
        Variant(KUBESYNC, lambda: timed(sync)),
        Variant("kubesync reflector sync, managedFields dropped",
                lambda: timed(lambda: sync(drop_managed_fields))),
        Variant("kubesync list_all (pages of 500)", lambda: timed(lambda: list(api.list_all())),
                note="reference: the paging alone"),
        Variant("raw requests+json LIST", lambda: timed(
            lambda: json.loads(session.get(url).content)), close=session.close,
            note="reference"),
    ]


def run(env: Env, runs: int) -> WorkloadResult:
    return WorkloadResult(
        name=NAME,
        title=f"Reflector initial sync of {env.store_count} ConfigMaps vs one LIST",
        unit="s",
        better=LOWER,
        baseline=LIST,
        measurements=run_variants(variants(env), runs),
        targets=[Target(KUBESYNC, LIST, 1.2, "<= 1.2x one LIST")],
        notes=["Peers have no reflector/informer (the official client's Watch has no "
               "store; lightkube and kr8s neither), so they are not listed."],
    )
