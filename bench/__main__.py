"""``python -m bench``: start a local cluster, seed it, run the workloads, report.

    python -m bench                   # everything, medians of 5 runs
    python -m bench --only list,watch --runs 9
    python -m bench --quick           # a smoke run: fewer objects, one run
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional
from urllib.parse import urlsplit

from bench import (
    controller,
    decode,
    fresh,
    instructions,
    listing,
    memory,
    peers,
    podexec,
    podsetup,
    portforward,
    reflector,
    results,
    scale,
    seed,
    startup,
    watch,
)
from bench.env import Env, load_average
from bench.measure import WorkloadResult

log = logging.getLogger("bench")

#: In the issue's order. The watch workload changes the seeded objects, so it runs after
#: the LIST one; all share one seed.
WORKLOADS = {
    listing.NAME: listing,
    decode.NAME: decode,
    fresh.NAME: fresh,
    instructions.NAME: instructions,
    watch.NAME: watch,
    memory.NAME: memory,
    controller.NAME: controller,
    startup.NAME: startup,
    reflector.NAME: reflector,
    podexec.NAME: podexec,
    portforward.NAME: portforward,
    scale.NAME: scale,
}
#: These talk to a pod, so the cluster gets a node (and its controller manager).
NODE_WORKLOADS = {podexec.NAME, portforward.NAME}
#: Only run when asked for by name: seeding 100k objects takes minutes.
OPT_IN = {scale.NAME}
#: Which seeded namespace each workload reads ("list": 5000 objects; "store": 10k).
SEEDS = {"list": "list", "decode": "list", "fresh": "list", "instructions": "list",
         "watch": "list", "controller": "list", "memory": "store",
         "reflector": "store", "startup": None, "exec": None, "portforward": None, "scale": None}
DEFAULT_OUT = Path(__file__).resolve().parent / "results"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=None,
                   help="measured runs per variant; the report shows medians (default 5)")
    p.add_argument("--only", default="",
                   help=f"comma-separated workloads to run, of: {', '.join(WORKLOADS)}")
    p.add_argument("--out", default=str(DEFAULT_OUT),
                   help="folder for results.json and chart.png (default bench/results/)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: a tenth of the objects, 1 run unless --runs is given")
    p.add_argument("--kubeconfig", default=None,
                   help="use this already running loopback cluster instead of starting one")
    p.add_argument("-v", "--verbose", action="store_true", help="log every run")
    args = p.parse_args(argv)
    if args.runs is None:
        args.runs = 1 if args.quick else 5
    if args.runs < 1:
        p.error("--runs must be at least 1")
    names = [n.strip() for n in args.only.split(",") if n.strip()] or [
        n for n in WORKLOADS if n not in OPT_IN]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        p.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    args.names = [n for n in WORKLOADS if n in names]
    return args


@contextlib.contextmanager
def cluster(kubeconfig: Optional[str], *, node: bool = False) -> Iterator[str]:
    """The kubeconfig of a cluster to measure: the given one, or a fresh LocalCluster
    (with a node when a workload needs pods)."""
    if kubeconfig is not None:
        yield kubeconfig
        return
    from kubesync.testing import LocalCluster

    if node:
        log.info("starting the local cluster with a node (pods run)")
        with LocalCluster(node=True) as c:
            yield c.kubeconfig_path
        return
    log.info("starting the local cluster (etcd + kube-apiserver on loopback, no node)")
    # No controller manager: nothing else writes ConfigMaps while we measure.
    with LocalCluster(controller_manager=False, node=False) as c:
        yield c.kubeconfig_path


def _git_commit() -> Optional[str]:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=Path(__file__).resolve().parent, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def meta(env: Env, args: argparse.Namespace) -> Dict[str, Any]:
    """What the numbers depend on: versions, machine, load, server."""
    from kubesync import __version__
    from kubesync.core import json as ks_json

    server: Optional[str] = None
    try:
        server = env.session().get(f"{env.server}/version", timeout=10).json()["gitVersion"]
    except Exception:  # only for the record
        log.debug("no server version", exc_info=True)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "runs": args.runs,
        "quick": args.quick,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "kube_apiserver": server,
        "kubesync": __version__,
        "kubesync_commit": _git_commit(),
        "kubesync_json_backend": ks_json.BACKEND,
        "peers": {d: peers.version_of(d) for d in ("kubernetes", "lightkube", "kr8s",
                                                   "requests", "orjson")},
        "objects": {"list": env.list_count, "store": env.store_count},
        "load_average_start": load_average(),
    }


def compile_bytecode() -> int:
    """Write kubesync's bytecode, as ``pip install`` does for a wheel: the peers are
    measured from site-packages, compiled when installed. A checkout (an editable
    install) has none for modules nobody imported with bytecode writing on (it is off
    under ``PYTHONDONTWRITEBYTECODE``), so every fresh process would compile them again:
    import + client took 1,158 M instructions so, 751 M compiled. Returns how many files
    were out of date."""
    import compileall
    import importlib.util

    import kubesync

    root = Path(kubesync.__file__).resolve().parent
    stale = 0
    for source in root.rglob("*.py"):
        cached = Path(importlib.util.cache_from_source(str(source)))
        if not cached.exists() or cached.stat().st_mtime < source.stat().st_mtime:
            stale += 1
    compileall.compile_dir(str(root), quiet=1)
    return stale


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    log.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    log.info("bytecode: %d kubesync module(s) were out of date; compiled as an install "
             "would", compile_bytecode())
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    scale = 10 if args.quick else 1
    done: List[WorkloadResult] = []
    with cluster(args.kubeconfig, node=bool(NODE_WORKLOADS & set(args.names))) as kubeconfig:
        env = Env.from_kubeconfig(kubeconfig, quick=args.quick)
        if urlsplit(env.server).hostname not in LOOPBACK:
            log.error("refusing %s: the benchmarks write thousands of objects; loopback "
                      "clusters only", env.server)
            return 2
        env.list_count //= scale
        env.store_count //= scale
        info = meta(env, args)
        needed = {SEEDS[n] for n in args.names}
        for which in sorted(w for w in needed if w is not None):
            ns, n = ((env.list_ns, env.list_count) if which == "list"
                     else (env.store_ns, env.store_count))
            log.info("seeding %d ConfigMaps into %s", n, ns)
            took = seed.seed(env, ns, n)
            log.info("seeded %s in %.1f s", ns, took)
        for name in args.names:
            log.info("workload %s: %d run(s) per variant", name, args.runs)
            started = time.perf_counter()
            result = WORKLOADS[name].run(env, args.runs)
            done.extend(result if isinstance(result, list) else [result])
            log.info("workload %s took %.1f s", name, time.perf_counter() - started)
        info["load_average_end"] = load_average()
        if NODE_WORKLOADS & set(args.names):
            podsetup.delete(env)
    text = results.table(done)
    print()
    print(text)
    print()
    results.write_json(str(out_dir / "results.json"), info, done)
    subtitle = f"({info['date'][:10]}, {args.runs} runs, Python {info['python']})"
    (out_dir / "table.md").write_text(text + "\n")
    wrote = [out_dir / "results.json", out_dir / "table.md"]
    if results.write_chart(str(out_dir / "chart.png"), done, subtitle):
        wrote.append(out_dir / "chart.png")
    else:
        print("note: no chart (matplotlib is missing: pip install -e '.[bench]')")
    print("wrote " + ", ".join(str(p) for p in wrote))
    la = info["load_average_end"]
    if la and la[0] > (os.cpu_count() or 1):
        print(f"note: load average {la[0]:.1f} on {os.cpu_count()} CPUs during the run: "
              "other processes competed; rerun for steadier numbers.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
