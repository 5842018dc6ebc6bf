"""Workload 1b (diagnostic): the client's own share of workload 1, without the server.

The same LIST body (the bytes the server sent for the seeded ConfigMaps) is decoded
in-process by each client's decode path, and every item's name, labels and data read.
No network and no server CPU in the timing, so the per-object cost of each model layer
shows with much less noise than in the end-to-end LIST. lightkube and the official
client are driven through their (semi-internal) decode functions; if those move, the
row turns n/a.
"""

from __future__ import annotations

import json
from typing import Any, List

from bench import peers
from bench.env import Env, kubesync_json_backend, with_stdlib_json
from bench.listing import touch_dicts, touch_models
from bench.measure import LOWER, Variant, WorkloadResult, run_variants, timed

NAME = "decode"
RAW = "raw json.loads"


def variants(env: Env, body: bytes) -> List[Variant]:
    from kubesync.core import json as ks_json
    from kubesync.core.convert import decode_list
    from kubesync.models.core_v1 import ConfigMap

    def kubesync() -> float:
        # What Api.list does after the transfer: Client.request's loads, then decode_list.
        return timed(lambda: touch_models(decode_list(ConfigMap, ks_json.loads(body)).items))

    out = [Variant("kubesync", kubesync, note=f"JSON backend: {kubesync_json_backend()}")]
    if kubesync_json_backend() != "json":
        out.append(Variant("kubesync, stdlib json", with_stdlib_json(kubesync),
                           note="reference: the fallback where orjson is missing"))
    out.append(Variant(RAW, lambda: timed(lambda: touch_dicts(json.loads(body)["items"]))))
    try:
        import orjson
    except ImportError:
        pass
    else:
        out.append(Variant("raw orjson.loads",
                           lambda: timed(lambda: touch_dicts(orjson.loads(body)["items"]))))

    try:
        from lightkube.core import decoders
        from lightkube.resources.core_v1 import ConfigMap as LkConfigMap
    except ImportError:
        out.append(Variant(peers.LIGHTKUBE, na=f"lightkube {peers.INSTALL_HINT}"))
    else:
        out.append(Variant(peers.LIGHTKUBE, lambda: timed(
            lambda: touch_models(decoders.decode_list(body, LkConfigMap)[2])),
            note="lightkube.core.decoders.decode_list (msgspec, from bytes)"))

    official, why = peers.official_api(env)
    if official is None:
        out.append(Variant(peers.OFFICIAL, na=why))
    else:
        text = body.decode()

        def official_decode() -> Any:
            lst = official.api_client.deserialize(text, "V1ConfigMapList", "application/json")
            return touch_models(lst.items)

        out.append(Variant(peers.OFFICIAL, lambda: timed(official_decode),
                           note="ApiClient.deserialize", close=official.api_client.close))
    return out


def run(env: Env, runs: int) -> WorkloadResult:
    session = env.session()
    # Uncompressed: only the decode is timed here, and the bytes are the same either way.
    body = session.get(env.url(env.list_ns), headers={"Accept-Encoding": "identity"}).content
    session.close()
    return WorkloadResult(
        name=NAME,
        title=f"Decode-only (no server): the LIST body of {env.list_count} ConfigMaps, "
              "every item read",
        unit="s",
        better=LOWER,
        baseline=RAW,
        measurements=run_variants(variants(env, body), runs),
        targets=[],
        notes=[f"Diagnostic for the list workload: the same {len(body) / 1e6:.2f} MB body, "
               "decoded in-process by each client; no target of its own."],
    )
