"""Clean up after local clusters whose test run was killed before it could stop them.

A cluster's folder is live while its ``owner.lock`` is locked (by the ``LocalCluster``
that made it) or its node's ``node.lock`` is (by a node still stopping): a lock goes with
the process that held it, whatever killed it, and cannot be mistaken for a reused pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import List, Optional

from kubesync.testing.cluster.hostres import release

#: Every cluster folder's name starts with this.
PREFIX = "kubesync-cluster-"
#: In a cluster folder: locked by its LocalCluster for the cluster's life.
OWNER_LOCK = "owner.lock"
_RESOURCES_FILE = "node-resources.json"
_NODE_LOCK = os.path.join("node", "node.lock")


def _held(path: Path) -> bool:
    """Whether another process holds ``path`` locked (a missing file is not held)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _release_node_resources(folder: Path) -> None:
    """What a node changed on the machine, as it wrote it down (our names only)."""
    try:
        res = json.loads((folder / _RESOURCES_FILE).read_text())
    except (OSError, ValueError):
        return
    sysctls = folder / "node" / "sysctls.json"
    release(str(res.get("bridge", "")), str(res.get("cgroup_root", "")), str(sysctls))


def sweep_stale_folders(base: Optional[str] = None) -> List[str]:
    """Remove folders of local clusters nobody holds any more (a killed run).

    Only real folders of ours (owned by this user, not a link) whose locks are free; a
    folder that had a node also gets its bridge, cgroups and kernel settings released.
    """
    base = base or tempfile.gettempdir()
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(base):
            if not entry.name.startswith(PREFIX) or not entry.is_dir(follow_symlinks=False):
                continue
            folder = Path(entry.path)
            if entry.stat(follow_symlinks=False).st_uid != os.geteuid():
                continue
            if not (folder / OWNER_LOCK).exists():
                continue  # not made by this version of LocalCluster: not ours to judge
            if _held(folder / OWNER_LOCK) or _held(folder / _NODE_LOCK):
                continue
            _release_node_resources(folder)
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(str(folder))
    return removed
