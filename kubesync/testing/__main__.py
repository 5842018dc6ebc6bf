"""``python -m kubesync.testing [COMMAND...]``: run COMMAND against a fresh local cluster.

COMMAND gets ``KUBECONFIG`` pointing at the cluster; the cluster stops when it ends and
the exit code is passed on. Without a command the cluster runs until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
from typing import List, Optional

from kubesync.testing.cluster import LocalCluster


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubesync.testing", description=__doc__)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run")
    args = parser.parse_args(argv)
    command = [c for c in args.command if c != "--"] if args.command[:1] == ["--"] else args.command
    with LocalCluster() as cluster:
        print(f"local cluster at {cluster.server}; KUBECONFIG={cluster.kubeconfig_path}",
              file=sys.stderr, flush=True)
        if not command:
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                return 0
        env = dict(os.environ, KUBECONFIG=cluster.kubeconfig_path)
        try:
            return subprocess.call(command, env=env)
        except KeyboardInterrupt:
            return 130


if __name__ == "__main__":
    sys.exit(main())
