"""What a node changes outside its folder, on the machine itself, and how it is undone.

A bridge and a cgroup subtree, both named after the cluster; and the kernel settings the
kubelet sets at start (``protectKernelDefaults`` off) and the CNI bridge plugin turns on
(IP forwarding), saved first. The node undoes all of it on stop; after a killed run
``LocalCluster`` or the next start's sweep does, from the records in the folder.

Standard library only: the node's PID 1 imports this before anything else.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Dict

_CGROUP_BASE = "/sys/fs/cgroup"
#: The names a node gives what it makes; nothing else is ever removed.
BRIDGE_NAME = re.compile(r"ks-[0-9a-f]{8}")
CGROUP_ROOT = re.compile(r"/kubesync-[0-9a-f]{8}")
#: What the kubelet (kernel tunables it wants) and the CNI bridge (forwarding) change.
SYSCTLS = (
    "kernel.panic", "kernel.panic_on_oops", "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes", "vm.overcommit_memory", "vm.panic_on_oom",
    "net.ipv4.ip_forward",
)


def _sysctl_path(name: str) -> str:
    return "/proc/sys/" + name.replace(".", "/")


def save_sysctls(path: str) -> None:
    """Write the current values of :data:`SYSCTLS` to ``path`` (once: never overwritten)."""
    if os.path.exists(path):
        return
    values: Dict[str, str] = {}
    for name in SYSCTLS:
        try:
            with open(_sysctl_path(name)) as f:
                values[name] = f.read().strip()
        except OSError:
            continue
    with open(path + ".tmp", "w") as f:
        json.dump(values, f)
    os.replace(path + ".tmp", path)


def restore_sysctls(path: str) -> None:
    """Put back what :func:`save_sysctls` wrote down (only names it knows)."""
    try:
        with open(path) as f:
            values = json.load(f)
    except (OSError, ValueError):
        return
    for name, value in values.items():
        if name in SYSCTLS and isinstance(value, str):
            try:
                with open(_sysctl_path(name), "w") as f:
                    f.write(value)
            except OSError as e:
                print(f"cannot restore {name}={value}: {e}", file=sys.stderr)


def release(bridge: str, cgroup_root: str, sysctls: str) -> None:
    """Undo everything the node changed on the machine; safe to repeat."""
    if BRIDGE_NAME.fullmatch(bridge):
        delete_bridge(bridge)
    if CGROUP_ROOT.fullmatch(cgroup_root):
        remove_cgroups(cgroup_root)
    restore_sysctls(sysctls)


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
