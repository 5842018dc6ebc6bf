"""Workload 1c: the LIST of workload 1, in a fresh process per client per run.

As a cron job or a one-off script sees it: every run spawns ``python -m bench.child list``
for each client, which imports it, builds it from the kubeconfig and makes one LIST of the
same namespace on the same server; only the LIST and the reads are timed (inside the
child), so the interpreter's start and the imports are not, but a cold heap, classes
built on first use and the first connection are. Runs are interleaved across clients.
"""

from __future__ import annotations

import ast
import functools
import os
import subprocess
import sys
from pathlib import Path
from typing import List

from bench import peers
from bench.env import Env
from bench.measure import LOWER, Target, Variant, WorkloadResult, run_variants

NAME = "fresh"
KUBESYNC, RAW = "kubesync", "raw requests+json"
NEEDS = {peers.LIGHTKUBE: "lightkube", peers.OFFICIAL: "kubernetes"}
_ROOT = str(Path(__file__).resolve().parent.parent)


def _child(variant: str, kubeconfig: str, namespace: str) -> float:
    env = dict(os.environ, PYTHONWARNINGS="ignore",
               PYTHONPATH=os.pathsep.join(p for p in (_ROOT, os.environ.get("PYTHONPATH"))
                                          if p))
    proc = subprocess.run(
        [sys.executable, "-m", "bench.child", "list", variant, kubeconfig, namespace],
        capture_output=True, timeout=300, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode(errors="replace")[-500:])
    return float(ast.literal_eval(proc.stdout.decode().strip().splitlines()[-1])["seconds"])


def variants(env: Env) -> List[Variant]:
    out = []
    for name in (KUBESYNC, RAW, peers.LIGHTKUBE, peers.OFFICIAL):
        module = NEEDS.get(name)
        if module is not None:
            try:
                __import__(module)
            except ImportError:
                out.append(Variant(name, na=f"{module} {peers.INSTALL_HINT}"))
                continue
        out.append(Variant(name, functools.partial(_child, name, env.kubeconfig, env.list_ns)))
    return out


def run(env: Env, runs: int) -> WorkloadResult:
    return WorkloadResult(
        name=NAME,
        title=f"LIST {env.list_count} ConfigMaps + read, a fresh process per client per run",
        unit="s",
        better=LOWER,
        baseline=RAW,
        measurements=run_variants(variants(env), runs),
        targets=[Target(KUBESYNC, RAW, 0.9, "<= 0.9x raw"),
                 Target(KUBESYNC, peers.LIGHTKUBE, 1.0, "<= lightkube")],
        notes=["Timed inside each child: one LIST and every item's name/labels/data read, "
               "after the client's imports and construction (not timed)."],
    )
