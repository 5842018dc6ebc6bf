"""Finding the binaries and images of the local test cluster.

``scripts/install-test-cluster`` builds them into ``$KUBESYNC_CACHE/test-assets`` (default
``~/.cache/kubesync/test-assets``): one folder per Kubernetes version (``1.37.2/``,
``1.20.2/``) and ``node/`` for the node's container runtime, CNI plugins and images.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple, Union

import attrs

from kubesync.errors import KubeError

#: The env var naming a folder with the binaries (flat, or with one folder per version).
ASSETS_ENV = "KUBESYNC_TEST_ASSETS"
INSTALL_SCRIPT = "scripts/install-test-cluster"

#: The newest and the oldest Kubernetes the install script builds and the tests run on.
NEWEST = "1.37"
OLDEST = "1.20"
SUPPORTED = (NEWEST, OLDEST)

#: A control plane without a node.
BINARIES = ("etcd", "etcdctl", "kube-apiserver", "kube-controller-manager")
#: What a cluster with a node runs on top of that (same version).
NODE_K8S_BINARIES = ("kube-scheduler", "kubelet")
#: The node's container runtime, from the install script's ``node/`` folder.
RUNTIME_BINARIES = ("containerd", "containerd-shim-runc-v2", "ctr", "runc")
CNI_PLUGINS = ("bridge", "host-local", "loopback")
IMAGES = ("busybox", "pause")


class MissingBinaries(KubeError):
    """The local cluster's binaries are not installed where we look."""


def cache_folder() -> Path:
    base = os.environ.get("KUBESYNC_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "kubesync"
    )
    return Path(base) / "test-assets"


def _version_key(name: str) -> Tuple[int, ...]:
    return tuple(int(p) for p in name.split("."))


def version_folder(base: Path, version: str) -> Optional[Path]:
    """The newest ``base/X.Y.Z`` folder matching ``version`` ("1.37" or "1.37.2")."""
    if not re.fullmatch(r"\d+\.\d+(\.\d+)?", version):
        raise ValueError(f"a Kubernetes version looks like '1.37' or '1.37.2', not {version!r}")
    try:
        names = [e.name for e in os.scandir(base) if e.is_dir()]
    except OSError:
        return None
    matches = [n for n in names if re.fullmatch(r"\d+\.\d+\.\d+", n)
               and (n == version or n.startswith(version + "."))]
    return base / max(matches, key=_version_key) if matches else None


#: In a search path: look the binary up on PATH.
_ON_PATH = "PATH"


def _search_path(version: Optional[str]) -> List[Union[Path, str]]:
    env = os.environ.get(ASSETS_ENV)
    folders: List[Optional[Path]] = []
    if env:
        if version:
            folders.append(version_folder(Path(env), version))
        folders.append(Path(env))
    folders.append(version_folder(cache_folder(), version) if version else cache_folder())
    return [f for f in folders if f is not None] + [_ON_PATH]


def find_binaries(
    names: Iterable[str] = BINARIES, *, version: Optional[str] = None
) -> Dict[str, str]:
    """Each binary from $KUBESYNC_TEST_ASSETS, else the install script's cache, else PATH.

    With ``version``, the cache's folder for that version (and one in
    $KUBESYNC_TEST_ASSETS, if it has version folders) comes first.
    """
    found: Dict[str, str] = {}
    missing = []
    for name in names:
        path = None
        for folder in _search_path(version):
            if folder == _ON_PATH:
                path = shutil.which(name)
            else:
                candidate = Path(folder) / name
                if candidate.is_file() and os.access(candidate, os.X_OK):
                    path = str(candidate)
            if path:
                break
        if path:
            found[name] = path
        else:
            missing.append(name)
    if missing:
        env = os.environ.get(ASSETS_ENV)
        where = f"${ASSETS_ENV}={env}, " if env else f"${ASSETS_ENV} (unset), "
        cache = version_folder(cache_folder(), version) if version else None
        what = f" for Kubernetes {version}" if version else ""
        raise MissingBinaries(
            f"the local test cluster{what} needs {', '.join(missing)}; looked in {where}"
            f"{cache or cache_folder()} and PATH. Run `bash {INSTALL_SCRIPT}` from the "
            f"kubesync repository (it builds and caches them), set {ASSETS_ENV} to a folder "
            "that has them, or set KUBESYNC_TEST_KUBECONFIG to test against an existing "
            "cluster."
        )
    return found


@attrs.frozen
class NodeAssets:
    """The node's runtime: binaries, CNI plugin folder, and image tarballs by name."""

    binaries: Dict[str, str]
    cni_dir: str
    images: Dict[str, str]


def find_node_assets() -> NodeAssets:
    """The install script's ``node/`` folder ($KUBESYNC_TEST_ASSETS/node first)."""
    env = os.environ.get(ASSETS_ENV)
    candidates = ([Path(env) / "node"] if env else []) + [cache_folder() / "node"]
    for folder in candidates:
        bins = {b: str(folder / b) for b in RUNTIME_BINARIES}
        images = {i: str(folder / "images" / f"{i}.tar") for i in IMAGES}
        cni = folder / "cni"
        if (all(os.access(p, os.X_OK) for p in bins.values())
                and all(os.access(cni / p, os.X_OK) for p in CNI_PLUGINS)
                and all(os.path.isfile(p) for p in images.values())):
            return NodeAssets(binaries=bins, cni_dir=str(cni), images=images)
    raise MissingBinaries(
        "the local test cluster's node needs containerd, its runc shim, ctr, runc, the CNI "
        f"plugins ({', '.join(CNI_PLUGINS)}) and the test images; looked in "
        f"{', '.join(str(c) for c in candidates)}. Run `bash {INSTALL_SCRIPT} node`, or "
        "start the cluster with node=False."
    )
