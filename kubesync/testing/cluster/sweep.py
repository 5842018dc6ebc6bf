"""Clean up after local clusters whose test run was killed before it could stop them."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import List, Optional

from kubesync.testing.cluster.hostres import delete_bridge, remove_cgroups
from kubesync.testing.cluster.procs import pid_alive

#: Every cluster folder's name starts with this.
PREFIX = "kubesync-cluster-"
_RESOURCES_FILE = "node-resources.json"


def _release_node_resources(folder: Path) -> None:
    """The bridge and cgroups a node made outside its folder, as it wrote them down."""
    try:
        res = json.loads((folder / _RESOURCES_FILE).read_text())
    except (OSError, ValueError):
        return
    bridge, cgroup_root = res.get("bridge"), res.get("cgroup_root")
    if isinstance(bridge, str) and bridge.startswith("ks-"):
        delete_bridge(bridge)
    if isinstance(cgroup_root, str) and cgroup_root.startswith("/kubesync-"):
        remove_cgroups(cgroup_root)


def sweep_stale_folders(base: Optional[str] = None) -> List[str]:
    """Remove folders of local clusters whose owning process is gone (a killed run).

    A folder whose cluster had a node also has its bridge and cgroups removed.
    """
    base = base or tempfile.gettempdir()
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(base):
            if not entry.name.startswith(PREFIX) or not entry.is_dir():
                continue
            try:
                owner = int((Path(entry.path) / "owner.pid").read_text().strip())
            except (OSError, ValueError):
                owner = -1
            if owner > 0 and pid_alive(owner):
                continue
            _release_node_resources(Path(entry.path))
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed
