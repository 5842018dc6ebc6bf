"""Workload 1: one LIST of the seeded ConfigMaps, decoded, every item's name, labels and
data read (as a script or a web handler would use them).

Every variant makes one GET of the whole collection (no paging) except kr8s, which
always pages 100 at a time (its ``get`` has no option to turn that off).
"""

from __future__ import annotations

import json
import warnings
from typing import Any, Callable, List, Optional

from bench import peers
from bench.child import touch_dicts, touch_models
from bench.env import Env, kubesync_json_backend, with_stdlib_json
from bench.measure import LOWER, Target, Variant, WorkloadResult, run_variants, timed

NAME = "list"
KUBESYNC, RAW = "kubesync", "raw requests+json"
#: kubesync on its fallback decoder (where orjson, a dependency, has no wheel).
KUBESYNC_STD = "kubesync, stdlib json"


def variants(env: Env) -> List[Variant]:
    """The LIST variants over ``env.list_ns``."""
    out: List[Variant] = []
    ns = env.list_ns

    from kubesync import Api
    from kubesync.models.core_v1 import ConfigMap

    client = env.kubesync_client()
    api = Api(client, ConfigMap, namespace=ns)

    def kubesync_list() -> float:
        return timed(lambda: touch_models(api.list().items))

    backend = kubesync_json_backend()
    out.append(Variant(KUBESYNC, kubesync_list, close=client.close,
                       note=f"JSON backend: {backend}"))
    if backend != "json":
        out.append(Variant(KUBESYNC_STD, with_stdlib_json(kubesync_list),
                           note="reference: the fallback where orjson is missing"))

    session = env.session()
    url = env.url(ns)

    def raw() -> None:
        touch_dicts(json.loads(session.get(url).content)["items"])

    out.append(Variant(RAW, lambda: timed(raw), close=session.close))

    try:
        import orjson
    except ImportError:
        pass
    else:
        def raw_orjson() -> None:
            touch_dicts(orjson.loads(session.get(url).content)["items"])

        out.append(Variant("raw requests+orjson", lambda: timed(raw_orjson),
                           note="reference: what the JSON decoder alone is worth"))

    def body_only() -> None:
        len(session.get(url).content)

    out.append(Variant("GET only (no decode)", lambda: timed(body_only),
                       note="reference: the server and transfer share"))

    identity = {"Accept-Encoding": "identity"}

    def raw_identity() -> None:
        touch_dicts(json.loads(session.get(url, headers=identity).content)["items"])

    out.append(Variant("raw requests+json, no gzip", lambda: timed(raw_identity),
                       note="reference: on loopback, gzip costs more than it saves; the "
                            "official client does not ask for it"))

    official, why = peers.official_api(env)
    out.append(_peer(peers.OFFICIAL, why, lambda: touch_models(
        official.list_namespaced_config_map(ns).items),
        close=official.api_client.close if official is not None else None))

    lk, why = peers.lightkube_client(env)
    if lk is not None:
        from lightkube.resources.core_v1 import ConfigMap as LkConfigMap

        out.append(Variant(peers.LIGHTKUBE, lambda: timed(
            lambda: touch_models(lk.list(LkConfigMap, namespace=ns))), close=lk.close))
    else:
        out.append(Variant(peers.LIGHTKUBE, na=why))

    k8, why = peers.kr8s_api(env)

    def kr8s_list() -> None:
        n = 0
        for o in k8.get("configmaps", namespace=ns):
            n += len(o.name) + len(o.labels) + len(o.raw["data"])

    out.append(_peer(peers.KR8S, why, kr8s_list,
                     note="pages 100 objects per request; objects are python-box Boxes"))
    return out


def _peer(name: str, why: Any, fn: Callable[[], Any], note: str = "",
          close: Optional[Callable[[], None]] = None) -> Variant:
    if why is not None:
        return Variant(name, na=why)
    return Variant(name, lambda: timed(fn), note=note, close=close)


def run(env: Env, runs: int) -> WorkloadResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kr8s warns that 1.20 is older than it supports
        measurements = run_variants(variants(env), runs)
    return WorkloadResult(
        name=NAME,
        title=f"LIST {env.list_count} ConfigMaps, decoded, every item's name/labels/data read",
        unit="s",
        better=LOWER,
        baseline=RAW,
        measurements=measurements,
        targets=[
            Target(KUBESYNC, RAW, 1.1, "<= 1.1x raw"),
            Target(KUBESYNC, peers.LIGHTKUBE, 1.0, "<= lightkube"),
        ],
        notes=["One GET of the namespace's collection per run (kr8s: 100 per page), "
               "compressed as each client negotiates by default: gzip for kubesync, raw "
               "requests, lightkube and kr8s; none for the official client.",
               "The `decode` workload times the same body decoded in-process, without the "
               "server's share and its noise."],
    )
