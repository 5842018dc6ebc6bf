"""Workload 2: watch ingest, events per second from a watch stream into a store.

Set-up, chosen so that every variant reads the very same stream at full speed: the
workload notes the collection's resourceVersion, then changes each of the seeded
ConfigMaps once (one data value, same length). Each run then watches from that old
resourceVersion, and the API server replays the stored MODIFIED events from its watch
cache as fast as the client reads them; the run ends at the last one. Timed: from opening
the watch to the last event in the store.

kubesync goes through its whole runtime path: a ``Watcher`` thread (``step()`` state
machine) whose sink is a ``StoreWriter``. Its initial LIST is answered locally with an
empty list at the old resourceVersion (``ReplayApi``), so the watcher goes straight to
watching from there, as it does after any relist. The raw baseline is a loop over
``requests``' ``iter_lines`` with ``json.loads`` into a dict keyed by (namespace, name).
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from typing import Any, Dict, List, Optional, Tuple

from bench import peers, seed
from bench.env import Env, kubesync_json_backend, with_stdlib_json
from bench.measure import HIGHER, Target, Variant, WorkloadResult, run_variants

NAME = "watch"
KUBESYNC, RAW = "kubesync Watcher -> Store", "raw requests+json"
KUBESYNC_STD = "kubesync Watcher -> Store, stdlib json"
#: Longest a replay may take before the run is declared failed (bounded, never hangs).
REPLAY_TIMEOUT = 120.0


class ReplayError(RuntimeError):
    """The server did not replay every update (its watch cache moved on)."""


def _check(n: int, want: int, what: str) -> None:
    if n != want:
        raise ReplayError(f"{what}: {n} of {want} events replayed")


def variants(env: Env, rv0: str) -> List[Variant]:
    """Every variant reads ``env.list_count`` MODIFIED events from ``rv0``."""
    want = env.list_count
    ns = env.list_ns
    out: List[Variant] = []

    from kubesync import Api
    from kubesync.core.convert import decode_list
    from kubesync.models.core_v1 import ConfigMap
    from kubesync.runtime.store import StoreWriter
    from kubesync.runtime.watcher import Apply, InitialList, Watcher, WatcherConfig

    class ReplayApi(Api[ConfigMap]):
        """An Api whose LIST is an empty list at ``rv0``: the watcher then watches from
        ``rv0``, receiving the updates as a replay."""

        def list(self, **kw: Any) -> Any:
            return decode_list(ConfigMap, {"items": [], "metadata": {"resourceVersion": rv0}})

    client = env.kubesync_client()
    replay_api = ReplayApi(client, ConfigMap, namespace=ns)

    def kubesync_watcher() -> float:
        writer: StoreWriter[ConfigMap] = StoreWriter()
        done = threading.Event()
        seen = [0]

        def sink(ev: Any) -> None:
            writer.apply_event(ev)
            if isinstance(ev, Apply):
                seen[0] += 1
                if seen[0] == want:
                    done.set()

        # LIST, not the streaming default: the replay is the watch from the empty list's
        # resourceVersion (a streaming list would bring the current objects instead).
        w = Watcher(replay_api, WatcherConfig(initial_list=InitialList.LIST), sink=sink)
        started = time.perf_counter()
        w.start()
        finished = done.wait(REPLAY_TIMEOUT)
        took = time.perf_counter() - started
        w.stop()
        if not finished:
            raise ReplayError(f"{KUBESYNC}: {seen[0]} of {want} events in {took:.0f} s")
        _check(len(writer.store), want, KUBESYNC + " store size")
        return want / took

    backend = kubesync_json_backend()
    out.append(Variant(KUBESYNC, kubesync_watcher, close=client.close,
                       note=f"JSON backend: {backend}"))
    if backend != "json":
        out.append(Variant(KUBESYNC_STD, with_stdlib_json(kubesync_watcher),
                           note="reference: the fallback where orjson is missing"))

    api = Api(client, ConfigMap, namespace=ns)

    def kubesync_stream() -> float:
        store: Dict[Tuple[Optional[str], Optional[str]], Any] = {}
        n = 0
        started = time.perf_counter()
        with api.watch(resource_version=rv0, timeout_seconds=int(REPLAY_TIMEOUT)) as stream:
            for ev in stream:
                meta = ev.object.metadata
                store[(meta.namespace, meta.name)] = ev.object
                n += 1
                if n == want:
                    break
        took = time.perf_counter() - started
        _check(n, want, "kubesync Api.watch")
        return want / took

    out.append(Variant("kubesync Api.watch -> dict", kubesync_stream,
                       note="reference: the stream alone, without the watcher thread"))

    session = env.session()
    url = env.url(ns)
    params = {"watch": "1", "resourceVersion": rv0, "timeoutSeconds": str(int(REPLAY_TIMEOUT))}

    def raw() -> float:
        store: Dict[Tuple[str, str], Any] = {}
        n = 0
        started = time.perf_counter()
        with session.get(url, params=params, stream=True, timeout=REPLAY_TIMEOUT) as r:
            r.raise_for_status()
            # chunk_size=None: each HTTP chunk as it comes (the server flushes per event
            # when idle, several events per chunk when busy).
            for line in r.iter_lines(chunk_size=None):
                if not line:
                    continue
                obj = json.loads(line)["object"]
                meta = obj["metadata"]
                store[(meta["namespace"], meta["name"])] = obj
                n += 1
                if n == want:
                    break
        took = time.perf_counter() - started
        _check(n, want, RAW)
        return want / took

    out.append(Variant(RAW, raw, close=session.close))

    official, why = peers.official_api(env)
    if official is None:
        out.append(Variant(peers.OFFICIAL, na=why))
    else:
        import kubernetes

        def official_watch() -> float:
            store: Dict[Tuple[str, str], Any] = {}
            n = 0
            w = kubernetes.watch.Watch()
            started = time.perf_counter()
            for ev in w.stream(official.list_namespaced_config_map, ns, resource_version=rv0,
                               timeout_seconds=int(REPLAY_TIMEOUT)):
                obj = ev["object"]
                store[(obj.metadata.namespace, obj.metadata.name)] = obj
                n += 1
                if n == want:
                    break
            took = time.perf_counter() - started
            w.stop()
            _check(n, want, peers.OFFICIAL)
            return want / took

        out.append(Variant(peers.OFFICIAL, official_watch,
                           close=official.api_client.close))

    lk, why = peers.lightkube_client(env)
    if lk is None:
        out.append(Variant(peers.LIGHTKUBE, na=why))
    else:
        from lightkube.resources.core_v1 import ConfigMap as LkConfigMap

        def lightkube_watch() -> float:
            store: Dict[Tuple[Optional[str], str], Any] = {}
            n = 0
            started = time.perf_counter()
            events = lk.watch(LkConfigMap, namespace=ns, resource_version=rv0,
                              server_timeout=int(REPLAY_TIMEOUT))
            for _etype, obj in events:
                store[(obj.metadata.namespace, obj.metadata.name)] = obj
                n += 1
                if n == want:
                    break
            events.close()
            took = time.perf_counter() - started
            _check(n, want, peers.LIGHTKUBE)
            return want / took

        out.append(Variant(peers.LIGHTKUBE, lightkube_watch, close=lk.close))

    k8, why = peers.kr8s_api(env)
    if k8 is None:
        out.append(Variant(peers.KR8S, na=why))
    else:
        def kr8s_watch() -> float:
            store: Dict[Tuple[str, str], Any] = {}
            n = 0
            started = time.perf_counter()
            events = k8.watch("configmaps", namespace=ns, since=rv0)
            for _etype, obj in events:
                store[(obj.namespace, obj.name)] = obj
                n += 1
                if n == want:
                    break
            events.close()
            took = time.perf_counter() - started
            _check(n, want, peers.KR8S)
            return want / took

        out.append(Variant(peers.KR8S, kr8s_watch))
    return out


def prepare(env: Env) -> Tuple[str, float]:
    """Note the resourceVersion, then update every seeded ConfigMap once."""
    session = env.session()
    r = session.get(env.url(env.list_ns), params={"limit": "1"})
    r.raise_for_status()
    rv0 = r.json()["metadata"]["resourceVersion"]
    took = seed.update_all(env, env.list_ns, env.list_count, round_=int(rv0))
    return rv0, took


def run(env: Env, runs: int) -> WorkloadResult:
    rv0, took = prepare(env)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kr8s warns that 1.20 is older than it supports
        measurements = run_variants(variants(env, rv0), runs)
    return WorkloadResult(
        name=NAME,
        title=f"Watch ingest: {env.list_count} MODIFIED events replayed into a store",
        unit="events/s",
        better=HIGHER,
        baseline=RAW,
        measurements=measurements,
        targets=[Target(KUBESYNC, RAW, 0.8, ">= 0.8x raw"),
                 # Issue 21, target 3.
                 Target(KUBESYNC, RAW, 1.0, ">= raw"),
                 Target(KUBESYNC, peers.LIGHTKUBE, 1.0, ">= lightkube")],
        notes=[
            f"Replay of {env.list_count} updates from resourceVersion {rv0} (made in "
            f"{took:.1f} s before the runs) out of the API server's watch cache; timed from "
            "opening the watch to the last event stored.",
        ],
    )
