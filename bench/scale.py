"""Workload ``scale``: a reflector over 100,000 ConfigMaps, and its steady state.

Each variant runs in a fresh process (``python -m bench.scale VARIANT ...``), so its peak
RSS is its own: the VmHWM of that process, and what it holds once synced (RSS
after a full collection, minus its RSS before the first request).

- Sync: the reflector until ``wait_until_ready()`` (a streaming list where the server
  offers one, 1.34+; then forced to paged LISTs; then with managedFields dropped), next
  to one kubesync LIST of all of them and one raw ``requests`` + ``json.loads`` LIST.
- Steady state: with a reflector synced, this process patches ConfigMaps at a fixed rate
  (``UPDATE_RATE`` a second, each carrying its send time); the child reports its CPU
  seconds per event received and the lag from the patch being sent to the event
  reaching the store (median and 99th percentile), and how many events it got.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List

log = logging.getLogger("bench")

NAME = "scale"
COUNT = 100_000
UPDATE_RATE = 1000  # patches a second
UPDATE_SECONDS = 10
SYNC_TIMEOUT = 900.0

STREAMING, PAGED, DROPPED = ("kubesync reflector (streaming list)",
                             "kubesync reflector (paged LIST)",
                             "kubesync reflector, managedFields dropped")
LIST, RAW = "kubesync LIST (one call)", "raw requests+json LIST"
CHILD_VARIANTS = {STREAMING: "streaming", PAGED: "paged", DROPPED: "dropped",
                  LIST: "list", RAW: "raw"}


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak() -> int:
    """This process's peak RSS in bytes: VmHWM, which is its own. Not ``ru_maxrss``:
    Linux keeps that across exec, so a child spawned by a large parent (this bench, after
    seeding) reported the parent's peak whenever its own was lower."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # not Linux


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# -- the child ----------------------------------------------------------------------------


def child(mode: str, kubeconfig: str, namespace: str) -> None:
    """One variant in this fresh process; prints one JSON line (two for a reflector)."""
    import gc

    from kubesync import Api, Client, Config
    from kubesync.models.core_v1 import ConfigMap
    from kubesync.runtime.reflector import drop_managed_fields, start_reflector
    from kubesync.runtime.watcher import InitialList, WatcherConfig

    client = Client(Config.from_kubeconfig(kubeconfig))
    api = Api(client, ConfigMap, namespace=namespace)
    before = _rss()
    started = time.perf_counter()
    if mode in ("list", "raw"):
        kept: Any  # held while its memory is measured
        if mode == "list":
            kept = api.list().items
            # read, as a user does (lazy models decode on first read)
            assert all(cm.metadata.name for cm in kept)
        else:
            from bench.env import Env

            env = Env.from_kubeconfig(kubeconfig)
            kept = json.loads(env.session().get(env.url(namespace)).content)["items"]
        took = time.perf_counter() - started
        gc.collect()
        print(json.dumps({"seconds": took, "objects": len(kept), "peak": _peak(),
                          "held": _rss() - before}), flush=True)
        return
    lags: List[float] = []
    events = 0

    def measure(cm: Any) -> Any:  # on the watcher thread, as each event reaches the store
        nonlocal events
        sent = (cm.data or {}).get("sent")
        if sent is not None:
            events += 1
            lags.append(time.time() - float(sent))
        return drop_managed_fields(cm) if mode == "dropped" else cm

    initial = InitialList.LIST if mode == "paged" else InitialList.AUTO
    store = start_reflector(api, WatcherConfig(initial_list=initial), transform=measure)
    try:
        if not store.wait_until_ready(SYNC_TIMEOUT):
            raise SystemExit(f"the reflector did not sync in {SYNC_TIMEOUT:g} s")
        took = time.perf_counter() - started
        gc.collect()
        print(json.dumps({"seconds": took, "objects": len(store), "peak": _peak(),
                          "held": _rss() - before}), flush=True)
        lags.clear()
        events = 0
        sys.stdin.readline()  # the parent starts its updates
        cpu0 = _cpu()
        sys.stdin.readline()  # the parent's updates are done and acknowledged by the server
        deadline = time.monotonic() + 60
        want = int(os.environ.get("BENCH_SCALE_EXPECT", "0"))
        while events < want and time.monotonic() < deadline:
            time.sleep(0.05)  # the benchmark polls its own counter until the events are in
        cpu = _cpu() - cpu0
        got = sorted(lags)
        print(json.dumps({
            "events": events, "cpu_per_event": cpu / events if events else None,
            "lag_p50": statistics.median(got) if got else None,
            "lag_p99": got[int(len(got) * 0.99) - 1] if got else None}), flush=True)
    finally:
        store.stop()
        client.close()


# -- the parent ---------------------------------------------------------------------------


def _spawn(env: Any, variant: str, namespace: str, expect: int = 0) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "bench.scale", CHILD_VARIANTS[variant], env.kubeconfig,
           namespace]
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, BENCH_SCALE_EXPECT=str(expect)),
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _line(proc: subprocess.Popen, what: str) -> Dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(30)
        raise RuntimeError(f"{what}: the child ended (exit {proc.returncode}) without a result")
    result: Dict[str, Any] = json.loads(line)
    return result


def _updates(env: Any, namespace: str, count: int) -> int:
    """Patch ConfigMaps at UPDATE_RATE a second for UPDATE_SECONDS; how many succeeded."""
    from bench.seed import FIELD_MANAGER

    total = UPDATE_RATE * UPDATE_SECONDS
    session = env.session(pool=16)
    headers = {"Content-Type": "application/merge-patch+json"}
    start = time.monotonic()
    ok = 0
    lock = threading.Lock()

    def one(i: int) -> None:
        nonlocal ok
        due = start + i / UPDATE_RATE
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)  # pacing the load generator
        body = json.dumps({"data": {"sent": repr(time.time())}})
        r = session.patch(env.url(namespace, name=f"cm-{i % count:05d}"), data=body,
                          params={"fieldManager": FIELD_MANAGER}, headers=headers)
        if r.status_code == 200:
            with lock:
                ok += 1

    with ThreadPoolExecutor(16, thread_name_prefix="bench-scale-update") as pool:
        list(pool.map(one, range(total)))
    elapsed = time.monotonic() - start
    log.info("scale: %d patches in %.1f s (%.0f/s)", ok, elapsed, ok / elapsed)
    session.close()
    return ok


def run(env: Any, runs: int) -> List[Any]:
    from bench import seed
    from bench.measure import LOWER, Measurement, WorkloadResult

    count = COUNT // (10 if env.quick else 1)
    namespace = f"bench-scale-{count}"
    log.info("seeding %d ConfigMaps into %s", count, namespace)
    log.info("seeded in %.1f s", seed.seed(env, namespace, count))
    runs = min(runs, 2)  # each run lists 100k objects five times
    sync: Dict[str, List[float]] = {v: [] for v in CHILD_VARIANTS}
    peak: Dict[str, List[float]] = {v: [] for v in CHILD_VARIANTS}
    held: Dict[str, List[float]] = {v: [] for v in CHILD_VARIANTS}
    steady: Dict[str, Dict[str, List[float]]] = {}
    rates: List[float] = []
    for _ in range(runs):
        for variant in CHILD_VARIANTS:
            reflector = variant in (STREAMING, PAGED, DROPPED)
            proc = _spawn(env, variant, namespace,
                          expect=UPDATE_RATE * UPDATE_SECONDS if reflector else 0)
            try:
                first = _line(proc, variant)
                if first["objects"] != count:
                    raise RuntimeError(f"{variant}: {first['objects']} objects, not {count}")
                sync[variant].append(first["seconds"])
                peak[variant].append(first["peak"] / 2**20)
                held[variant].append(first["held"] / 2**20)
                if reflector and variant != DROPPED:
                    assert proc.stdin is not None
                    proc.stdin.write("go\n")
                    proc.stdin.flush()
                    started = time.monotonic()
                    done = _updates(env, namespace, count)
                    rates.append(done / (time.monotonic() - started))
                    proc.stdin.write("done\n")
                    proc.stdin.flush()
                    second = _line(proc, variant)
                    s = steady.setdefault(variant, {"cpu": [], "p50": [], "p99": [],
                                                    "events": []})
                    s["cpu"].append(second["cpu_per_event"] * 1e6)
                    s["p50"].append(second["lag_p50"] * 1e3)
                    s["p99"].append(second["lag_p99"] * 1e3)
                    s["events"].append(second["events"])
            finally:
                if proc.stdin is not None:
                    proc.stdin.close()
                proc.wait(120)

    def measurements(values: Dict[str, List[float]]) -> List[Measurement]:
        return [Measurement(v, values[v]) for v in CHILD_VARIANTS]

    rate = f"{statistics.median(rates):.0f}" if rates else "n/a"
    base = [f"{count} ConfigMaps (~1.5 KB of JSON each); each variant in a fresh process; "
            f"medians of {runs} run(s)."]
    results = [
        WorkloadResult(NAME, f"Scale: sync of {count} ConfigMaps", "s", LOWER, LIST,
                       measurements(sync), [], base),
        WorkloadResult(f"{NAME}-peak", f"Scale: peak RSS syncing {count} ConfigMaps", "MiB",
                       LOWER, RAW, measurements(peak), [], base),
        WorkloadResult(f"{NAME}-held", f"Scale: memory held once synced, {count} ConfigMaps",
                       "MiB", LOWER, RAW, measurements(held), [], base),
    ]
    for label, key, unit in (("CPU per event", "cpu", "us"), ("store lag p50", "p50", "ms"),
                             ("store lag p99", "p99", "ms")):
        rows = [Measurement(v, steady[v][key]) for v in (STREAMING, PAGED) if v in steady]
        results.append(WorkloadResult(
            f"{NAME}-{key}", f"Scale: steady state, {label}, {count} objects cached", unit,
            LOWER, STREAMING, rows, [],
            [*base, f"{UPDATE_RATE}/s patches asked for {UPDATE_SECONDS} s; {rate}/s done "
                    "(the 2-core apiserver's own limit when lower); events received: "
                    + ", ".join(f"{v}: {steady[v]['events']}" for v in steady)]))
    return results


if __name__ == "__main__":
    child(*sys.argv[1:4])
