"""What one fresh benchmark process does: ``python -m bench.child MODE VARIANT ARGS...``.

Run by the ``instructions`` and ``fresh`` workloads, once per client per run, so each
client pays what a cron job or a fresh script pays (cold caches, classes built on first
use, a small heap) rather than what a long-lived process does. Imports nothing of
``bench`` beyond this file, so that its own imports do not count against anyone.

Modes:

- ``decode VARIANT BODY N``: read the LIST body from the file BODY, then N times decode
  it with VARIANT's decoder and read every item's name, labels and data. Counted under
  callgrind with N=0 and N=1 (and N=2): the difference is the decode and read alone.
- ``list VARIANT KUBECONFIG NAMESPACE``: build VARIANT's client, make one LIST of the
  namespace's ConfigMaps, read every item; prints the seconds the LIST and read took.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Dict, List

DECODERS = ("kubesync", "kubesync (in parts)", "json.loads", "orjson.loads", "lightkube",
            "kubernetes")
LISTERS = ("kubesync", "raw requests+json", "lightkube", "kubernetes")


def touch_dicts(items: List[Any]) -> int:
    """Read every item's name, labels and data, as JSON dicts."""
    n = 0
    for o in items:
        meta = o["metadata"]
        n += len(meta["name"]) + len(meta["labels"]) + len(o["data"])
    return n


def touch_models(items: Any) -> int:
    """Read every item's name, labels and data, as model attributes."""
    n = 0
    for o in items:
        meta = o.metadata
        n += len(meta.name) + len(meta.labels) + len(o.data)
    return n


def in_parts(body: bytes) -> List[bytes]:
    """``body`` cut as an uncompressed answer arrives (``inflate.BLOCK`` a read)."""
    from kubesync.client.inflate import BLOCK

    return [body[i:i + BLOCK] for i in range(0, len(body), BLOCK)]


def decoder(variant: str) -> Callable[[Any], int]:
    """VARIANT's decode + read of a LIST body, its imports done."""
    if variant == "kubesync":
        from kubesync.client.gcpause import LARGE_BODY, gc_paused
        from kubesync.core import json as ks_json
        from kubesync.core.convert import decode_list
        from kubesync.models.core_v1 import ConfigMap

        def kubesync_decode(body: bytes) -> int:
            # As Api.list does after the transfer: Client.request decodes a large body
            # with the cyclic GC paused, Api._list wraps the items paused too.
            if len(body) < LARGE_BODY:
                data = ks_json.loads(body)
            else:
                with gc_paused():
                    data = ks_json.loads(body)
            with gc_paused():
                items = decode_list(ConfigMap, data).items
            return touch_models(items)

        return kubesync_decode
    if variant == "kubesync (in parts)":
        from kubesync.client.gcpause import gc_paused
        from kubesync.core.convert import decode_list
        from kubesync.core.jsonstream import BodyDecoder
        from kubesync.core.objectlist import item_converter
        from kubesync.models.core_v1 import ConfigMap

        def kubesync_parts(parts: List[bytes]) -> int:
            # As Api.list reads an answer: in parts as they arrive (here BLOCK-sized
            # ones, as an uncompressed answer comes; an inflated gzip one comes in larger
            # parts), each parsed and its items made with the collector paused.
            decoder, converter = BodyDecoder(), item_converter(ConfigMap)
            assert converter is not None
            for part in parts:
                with gc_paused():
                    decoder.feed(part)
                    converter.take(decoder.items)
            with gc_paused():
                data = decoder.result()
                converter.finish(data, decoder.items)
                items = decode_list(ConfigMap, data, converter=converter).items
            return touch_models(items)

        return kubesync_parts  # takes in_parts(body)
    if variant == "json.loads":
        import json

        return lambda body: touch_dicts(json.loads(body)["items"])
    if variant == "orjson.loads":
        import orjson

        return lambda body: touch_dicts(orjson.loads(body)["items"])
    if variant == "lightkube":
        from lightkube.core import decoders
        from lightkube.resources.core_v1 import ConfigMap as LkConfigMap

        return lambda body: touch_models(decoders.decode_list(body, LkConfigMap)[2])
    if variant == "kubernetes":
        import kubernetes

        api = kubernetes.client.ApiClient()
        return lambda body: touch_models(
            api.deserialize(body.decode(), "V1ConfigMapList", "application/json").items)
    raise SystemExit(f"unknown decoder {variant!r}; choose from {', '.join(DECODERS)}")


def lister(variant: str, kubeconfig: str, namespace: str) -> Callable[[], int]:
    """VARIANT's client, built; calling the result makes the LIST and reads every item."""
    if variant == "kubesync":
        import kubesync
        from kubesync.models.core_v1 import ConfigMap

        client = kubesync.Client(kubesync.Config.from_kubeconfig(kubeconfig))
        api = kubesync.Api(client, ConfigMap, namespace=namespace)
        return lambda: touch_models(api.list().items)
    if variant == "raw requests+json":
        import json

        import requests
        import yaml

        with open(kubeconfig) as f:
            doc = yaml.safe_load(f)
        ctx = next(c["context"] for c in doc["contexts"] if c["name"] == doc["current-context"])
        cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in doc["users"] if u["name"] == ctx["user"])
        s = requests.Session()
        s.trust_env = False
        s.verify = cluster["certificate-authority"]
        s.cert = (user["client-certificate"], user["client-key"])
        url = f"{cluster['server']}/api/v1/namespaces/{namespace}/configmaps"
        return lambda: touch_dicts(json.loads(s.get(url).content)["items"])
    if variant == "lightkube":
        import lightkube
        from lightkube.resources.core_v1 import ConfigMap as LkConfigMap

        lk = lightkube.Client(lightkube.KubeConfig.from_file(kubeconfig), trust_env=False)
        return lambda: touch_models(lk.list(LkConfigMap, namespace=namespace))
    if variant == "kubernetes":
        import kubernetes

        core = kubernetes.client.CoreV1Api(
            kubernetes.config.new_client_from_config(config_file=kubeconfig))
        return lambda: touch_models(core.list_namespaced_config_map(namespace).items)
    raise SystemExit(f"unknown lister {variant!r}; choose from {', '.join(LISTERS)}")


def main(argv: List[str]) -> int:
    mode, variant, *rest = argv
    if mode == "decode":
        path, n = rest
        fn = decoder(variant)
        with open(path, "rb") as f:
            body: Any = f.read()
        if variant == "kubesync (in parts)":  # cut before the counted decodes, as received
            body = in_parts(body)
        for _ in range(int(n)):
            fn(body)
        return 0
    if mode == "list":
        kubeconfig, namespace = rest
        call = lister(variant, kubeconfig, namespace)
        started = time.perf_counter()
        call()
        took = time.perf_counter() - started
        out: Dict[str, float] = {"seconds": took}
        print(repr(out))
        return 0
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
