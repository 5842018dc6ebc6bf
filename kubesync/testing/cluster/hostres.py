"""What a node makes outside its folder, on the machine itself: a bridge and cgroups.

Both are named after the cluster, made by the node and removed by it on stop, or by the
next start's sweep after a killed run.
"""

from __future__ import annotations

import os
import subprocess
import sys

_CGROUP_BASE = "/sys/fs/cgroup"


def _ip(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["ip", *args], capture_output=True, check=False)


def make_bridge(name: str, address: str, prefix: int) -> None:
    """A bridge interface holding ``address``; the CNI bridge plugin adopts it."""
    for args in (("link", "add", name, "type", "bridge"),
                 ("addr", "add", f"{address}/{prefix}", "dev", name),
                 ("link", "set", name, "up")):
        done = _ip(*args)
        if done.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.decode(errors='replace')}")


def delete_bridge(name: str) -> None:
    _ip("link", "delete", name)


def make_cgroups(cgroup_root: str) -> None:
    """``cgroup_root`` in every mounted cgroup v1 hierarchy (the kubelet wants it there)."""
    for h in os.listdir(_CGROUP_BASE):
        path = os.path.join(_CGROUP_BASE, h)
        if os.path.isdir(path) and not os.path.islink(path) and os.path.ismount(path):
            os.makedirs(os.path.join(path, cgroup_root.strip("/")), exist_ok=True)


def remove_cgroups(cgroup_root: str) -> None:
    """Remove ``cgroup_root`` (and what is below it) from every cgroup v1 hierarchy."""
    base = _CGROUP_BASE
    rel = cgroup_root.strip("/")
    if not rel:
        return
    try:
        hierarchies = [os.path.join(base, h) for h in os.listdir(base)]
    except OSError:
        return
    for h in hierarchies:
        top = os.path.join(h, rel)
        if not os.path.isdir(top) or os.path.islink(h):
            continue
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
            try:
                os.rmdir(dirpath)
            except OSError as e:
                print(f"cannot remove cgroup {dirpath}: {e}", file=sys.stderr)
