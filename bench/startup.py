"""Workload 5: a fresh process that imports the client and builds it from a kubeconfig.

Each run is one ``python -c`` subprocess, timed from spawn to exit (what a CLI script
or a cron job pays before its first call). No request is made, except by kr8s, whose
``kr8s.api()`` asks the server for its version while building.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from typing import List

from bench import peers
from bench.env import Env
from bench.measure import LOWER, Target, Variant, WorkloadResult, run_variants

NAME = "startup"
KUBESYNC, OFFICIAL = "kubesync", peers.OFFICIAL

SNIPPETS = {
    KUBESYNC: "import kubesync; kubesync.Client(kubesync.Config.from_kubeconfig(P))",
    OFFICIAL: "import kubernetes; kubernetes.config.load_kube_config(config_file=P); "
              "kubernetes.client.CoreV1Api()",
    peers.LIGHTKUBE: "import lightkube; lightkube.Client(lightkube.KubeConfig.from_file(P))",
    peers.KR8S: "import warnings; warnings.simplefilter('ignore'); import kr8s; "
                "kr8s.api(kubeconfig=P)",
    "python -c pass": "pass",
}
NEEDS = {OFFICIAL: "kubernetes", peers.LIGHTKUBE: "lightkube", peers.KR8S: "kr8s"}


def _process(code: str) -> float:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120,
                          env=dict(os.environ, PYTHONWARNINGS="ignore"), check=False)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode(errors="replace")[-500:])
    return took


def variants(env: Env) -> List[Variant]:
    out = []
    for name, snippet in SNIPPETS.items():
        module = NEEDS.get(name)
        if module is not None:
            try:
                __import__(module)  # only to know it is there; the child imports it again
            except ImportError:
                out.append(Variant(name, na=f"{module} {peers.INSTALL_HINT}"))
                continue
        code = f"P = {env.kubeconfig!r}\n{snippet}"
        note = "reference: the interpreter alone" if name == "python -c pass" else ""
        if name == peers.KR8S:
            note = "makes one request (the server version) while building"
        out.append(Variant(name, functools.partial(_process, code), note=note))
    return out


def run(env: Env, runs: int) -> WorkloadResult:
    return WorkloadResult(
        name=NAME,
        title="Fresh process: import + build a client from a kubeconfig",
        unit="s",
        better=LOWER,
        baseline=OFFICIAL,
        measurements=run_variants(variants(env), runs, warmup=2),
        targets=[Target(KUBESYNC, OFFICIAL, 0.5, "<= 0.5x official")],
        notes=["Wall time of `python -c` from spawn to exit, interpreter start included."],
    )
