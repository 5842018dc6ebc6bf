"""CPU instructions of the CPU-bound rows, counted with valgrind's callgrind.

Wall time on a shared 2-core machine drifts 10-20% run to run; instruction counts do not
(they repeat to well under 1%), so the decode and startup targets are checked on them.
Every count is of a fresh process (``python -m bench.child`` or ``python -c``), one per
client, and the fixed part is subtracted:

- **decode**: the same LIST body, decoded and every item's name, labels and data read.
  ``Ir(N=1) - Ir(N=0)`` is the first decode in a fresh process (what a script pays:
  imports done, the body in memory, classes built on first use counted); the JSON also
  has ``Ir(N=2) - Ir(N=1)``, a second, warm decode.
- **startup**: ``python -c "import X; build a client from the kubeconfig"`` minus
  ``python -c pass`` (the interpreter alone).

Python has no callgrind client request to switch counting on and off around a block,
so subtraction it is. Without valgrind (``apt-get install valgrind``) the rows are n/a.

Copies are counted as the machine does them. On x86 glibc copies (and fills) blocks of a
few KiB to a few MiB with ``rep movsb`` (``rep stosb``): one instruction that the CPU runs
at memory speed, but callgrind counts each byte it moves as one instruction, about 10x
what the vector loop glibc uses for other sizes counts (100 copies of 256 KiB: 26.3 M
against 2.75 M). Each copy of a 7.6 MB body made in 256 KiB parts would count about 7.5 M
instructions more than one copy of it whole, for well under a millisecond of real work.
So every count runs with glibc told not to use the string instructions
(``GLIBC_TUNABLES``, ``REP_TUNABLES`` below), for every client and baseline alike; other
platforms ignore it.

String hashes are seeded per process, and the seed moves dict layouts and probe lengths:
unseeded, the same count varies by about 0.35% (1 M of a 281 M decode) from run to run.
Every count runs with ``PYTHONHASHSEED=0`` (``HASH_SEED``), unless one is set, so that a
count repeats exactly and a change of 0.1% shows.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence

from bench import peers
from bench.env import Env
from bench.measure import LOWER, Measurement, Target, WorkloadResult
from bench.startup import NEEDS, SNIPPETS

NAME = "instructions"
KUBESYNC, JSON, LIGHTKUBE = "kubesync", "json.loads", peers.LIGHTKUBE
#: The decode rows, as bench.child names them.
DECODERS = ("kubesync", "kubesync (in parts)", "json.loads", "orjson.loads", peers.LIGHTKUBE,
            peers.OFFICIAL)
DECODER_NEEDS = {"orjson.loads": "orjson", peers.LIGHTKUBE: "lightkube",
                 peers.OFFICIAL: "kubernetes"}
_COLLECTED = re.compile(rb"Collected : (\d+)")
_ROOT = str(Path(__file__).resolve().parent.parent)
#: glibc's thresholds above which copies and fills use ``rep movsb``/``rep stosb``, set
#: past any size (see the module's docstring).
REP_TUNABLES = ("glibc.cpu.x86_rep_movsb_threshold=2147483647:"
                "glibc.cpu.x86_rep_stosb_threshold=2147483647")
#: The string hash seed every count runs with, unless ``PYTHONHASHSEED`` is set.
HASH_SEED = "0"


def valgrind() -> Optional[str]:
    return shutil.which("valgrind")


def count(argv: Sequence[str]) -> int:
    """Instructions (callgrind's Ir) that running ``argv`` executes, child processes not
    followed."""
    vg = valgrind()
    assert vg is not None
    tunables = ":".join(t for t in (os.environ.get("GLIBC_TUNABLES"), REP_TUNABLES) if t)
    env = dict(os.environ, PYTHONWARNINGS="ignore", GLIBC_TUNABLES=tunables,
               PYTHONHASHSEED=os.environ.get("PYTHONHASHSEED") or HASH_SEED,
               PYTHONPATH=os.pathsep.join(p for p in (_ROOT, os.environ.get("PYTHONPATH"))
                                          if p))
    proc = subprocess.run([vg, "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
                          capture_output=True, timeout=1800, env=env, check=False)
    m = _COLLECTED.search(proc.stderr)
    if proc.returncode != 0 or m is None:
        raise RuntimeError(proc.stderr.decode(errors="replace")[-500:])
    return int(m.group(1))


def _missing(needs: Optional[str]) -> Optional[str]:
    if needs is None:
        return None
    try:
        __import__(needs)
    except ImportError:
        return f"{needs} {peers.INSTALL_HINT}"
    return None


def decode_counts(body_path: str) -> List[Measurement]:
    """Per decoder: [cold, warm] instructions of decode + read (see the module doc)."""
    out = []
    for name in DECODERS:
        why = _missing(DECODER_NEEDS.get(name))
        if why is not None:
            out.append(Measurement(name, na=why))
            continue
        argv = [sys.executable, "-m", "bench.child", "decode", name, body_path]
        try:
            n0, n1, n2 = (count([*argv, str(n)]) for n in (0, 1, 2))
        except Exception as e:
            out.append(Measurement(name, na=f"failed: {e}"[:300]))
            continue
        out.append(Measurement(name, [float(n1 - n0)],
                               note=f"warm second decode {(n2 - n1) / 1e6:.0f} M; "
                                    f"process with imports {n0 / 1e6:.0f} M"))
    return out


def startup_counts(kubeconfig: str) -> List[Measurement]:
    """Per client: instructions of import + client from the kubeconfig, interpreter
    start subtracted."""
    base = count([sys.executable, "-c", "pass"])
    out = []
    for name, snippet in SNIPPETS.items():
        if name == "python -c pass":
            continue
        why = _missing(NEEDS.get(name))
        if why is not None:
            out.append(Measurement(name, na=why))
            continue
        try:
            n = count([sys.executable, "-c", f"P = {kubeconfig!r}\n{snippet}"])
        except Exception as e:
            out.append(Measurement(name, na=f"failed: {e}"[:300]))
            continue
        note = f"whole process {n / 1e6:.0f} M, interpreter alone {base / 1e6:.0f} M"
        if name == peers.KR8S:
            note += "; makes one request while building"
        out.append(Measurement(name, [float(n - base)], note=note))
    return out


def run(env: Env, runs: int) -> List[WorkloadResult]:
    """Two results: decode + read, and import + client (one count each: they repeat)."""
    if valgrind() is None:
        why = "valgrind not installed (apt-get install valgrind)"
        decode_ms = [Measurement(n, na=why) for n in DECODERS]
        startup_ms = [Measurement(n, na=why) for n in SNIPPETS if n != "python -c pass"]
        size = 0
    else:
        session = env.session()
        body = session.get(env.url(env.list_ns),
                           headers={"Accept-Encoding": "identity"}).content
        session.close()
        size = len(body)
        with tempfile.TemporaryDirectory(prefix="kubesync-bench-") as d:
            path = os.path.join(d, "body.json")
            with open(path, "wb") as f:
                f.write(body)
            decode_ms = decode_counts(path)
        startup_ms = startup_counts(env.kubeconfig)
    decode = WorkloadResult(
        name="decode-ir",
        title=f"Decode + read, instructions: the LIST body of {env.list_count} ConfigMaps, "
              "a fresh process each",
        unit="instructions",
        better=LOWER,
        baseline=JSON,
        measurements=decode_ms,
        targets=[Target(KUBESYNC, LIGHTKUBE, 1.0, "<= lightkube"),
                 Target(KUBESYNC, JSON, 0.65, "<= 0.65x json.loads")],
        notes=[f"callgrind Ir of the first decode in a fresh process ({size / 1e6:.2f} MB "
               "body; imports and reading the file subtracted).",
               "kubesync decodes the body whole; 'kubesync (in parts)' as Api.list "
               "reads an answer, in 256 KiB parts as they arrive, each part's items "
               "parsed and made into objects then, so that the work overlaps the "
               "transfer (the LIST rows).",
               "Counted with glibc's rep movsb/stosb off, for every client (callgrind "
               "counts each byte they move as an instruction)."],
    )
    startup = WorkloadResult(
        name="startup-ir",
        title="Import + client from a kubeconfig, instructions (interpreter start "
              "subtracted)",
        unit="instructions",
        better=LOWER,
        baseline=LIGHTKUBE,
        measurements=startup_ms,
        targets=[Target(KUBESYNC, LIGHTKUBE, 1.0, "<= lightkube")],
        notes=["callgrind Ir of `python -c` importing the client and building it, minus "
               "`python -c pass`."],
    )
    return [decode, startup]

