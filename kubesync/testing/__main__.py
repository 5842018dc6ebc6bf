"""``python -m kubesync.testing [--version V] [--no-node] [COMMAND...]``.

Runs COMMAND against a fresh local cluster: Kubernetes V (default the newest, 1.37; 1.20
is the oldest), with one node that runs pods unless ``--no-node``. COMMAND gets
``KUBECONFIG`` pointing at the cluster; the cluster stops when it ends and the exit code
is passed on. Without a command the cluster runs until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
from typing import List, Optional

from kubesync.testing.assets import NEWEST
from kubesync.testing.cluster import LocalCluster


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kubesync.testing", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", default=NEWEST,
                        help=f"the Kubernetes version (default {NEWEST})")
    parser.add_argument("--no-node", dest="node", action="store_false",
                        help="a control plane alone: no node, no pod runs")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    with LocalCluster(version=args.version, node=args.node) as cluster:
        node = f", node {cluster.node_name}" if cluster.node_name else ", no node"
        print(f"local cluster {cluster.server_version} at {cluster.server}{node}; "
              f"KUBECONFIG={cluster.kubeconfig_path}", file=sys.stderr, flush=True)
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
