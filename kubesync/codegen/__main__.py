"""``python -m kubesync.codegen``: write typed model modules for CRDs.

    python -m kubesync.codegen SOURCE... [-o DIR] [--version V]... [--docs]
    python -m kubesync.codegen --from-cluster NAME... [--context C] [-o DIR]

SOURCE is a YAML/JSON file, a folder of them, or ``-`` for stdin. Without ``-o`` the one
module is printed (more than one needs a folder).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

from kubesync.codegen.generate import crds_from_cluster, generate, read_crds
from kubesync.errors import KubeError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m kubesync.codegen",
        description="Typed attrs models for CustomResourceDefinitions, one module per "
                    "version.")
    p.add_argument("sources", nargs="*", metavar="SOURCE",
                   help="a CRD file (YAML or JSON), a folder of them, or - for stdin")
    p.add_argument("--from-cluster", nargs="+", metavar="NAME", default=[],
                   help="read these CRDs (e.g. widgets.example.com) from the cluster of "
                        "the current kubeconfig")
    p.add_argument("--context", help="the kubeconfig context for --from-cluster")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="write the modules into this folder (made if missing)")
    p.add_argument("--version", action="append", dest="versions", metavar="V",
                   help="only these CRD versions (repeatable); default: every version")
    p.add_argument("--docs", action="store_true",
                   help="keep the schema's descriptions as docstrings and comments")
    return p


def _write(folder: Path, files: Dict[str, str]) -> None:
    """Each file replaced atomically, and only when its bytes change."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in sorted(files.items()):
        target = folder / name
        data = text.encode("utf-8")
        if target.exists() and target.read_bytes() == data:
            continue
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if not args.sources and not args.from_cluster:
        _parser().error("name a SOURCE or --from-cluster NAME")
    try:
        crds: List[Any] = []
        sources: List[Any] = [
            io.StringIO(sys.stdin.read()) if s == "-" else Path(s) for s in args.sources]
        if sources:
            crds += read_crds(*sources)
        if args.from_cluster:
            from kubesync.client.client import Client
            from kubesync.config.config import Config

            config = (Config.infer() if args.context is None
                      else Config.from_kubeconfig(context=args.context))
            with Client(config) as client:
                crds += crds_from_cluster(client, args.from_cluster)
        files = generate(crds, versions=args.versions, docs=args.docs)
    except KubeError as e:
        print(f"kubesync.codegen: {e}", file=sys.stderr)
        return 2
    if args.output:
        _write(Path(args.output), files)
        for name in sorted(files):
            print(Path(args.output) / name)
        return 0
    if len(files) > 1:
        print(f"kubesync.codegen: {len(files)} modules ({', '.join(sorted(files))}); "
              "name a folder with -o", file=sys.stderr)
        return 2
    sys.stdout.write(next(iter(files.values())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
