"""Finding the binaries of the local test cluster."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from kubesync.errors import KubeError

#: The env var naming a folder with the binaries.
ASSETS_ENV = "KUBESYNC_TEST_ASSETS"
#: Where scripts/install-test-cluster puts them (its KUBESYNC_CACHE default).
INSTALL_SCRIPT = "scripts/install-test-cluster"

BINARIES = ("etcd", "etcdctl", "kube-apiserver", "kube-controller-manager")


class MissingBinaries(KubeError):
    """The local cluster's binaries are not installed where we look."""


def cache_folder() -> Path:
    base = os.environ.get("KUBESYNC_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "kubesync"
    )
    return Path(base) / "test-assets"


def _search_path() -> List[Optional[Path]]:
    env = os.environ.get(ASSETS_ENV)
    return [Path(env) if env else None, cache_folder(), None]


def find_binaries(names: Iterable[str] = BINARIES) -> Dict[str, str]:
    """Each binary from $KUBESYNC_TEST_ASSETS, else the install script's cache, else PATH."""
    found: Dict[str, str] = {}
    missing = []
    env = os.environ.get(ASSETS_ENV)
    for name in names:
        path = None
        for folder in _search_path():
            if folder is None:
                path = shutil.which(name)
            else:
                candidate = folder / name
                if candidate.is_file() and os.access(candidate, os.X_OK):
                    path = str(candidate)
            if path:
                break
        if path:
            found[name] = path
        else:
            missing.append(name)
    if missing:
        where = f"${ASSETS_ENV}={env}, " if env else f"${ASSETS_ENV} (unset), "
        raise MissingBinaries(
            f"the local test cluster needs {', '.join(missing)}; looked in {where}"
            f"{cache_folder()} and PATH. Run `bash {INSTALL_SCRIPT}` from the kubesync "
            f"repository (it builds and caches them), set {ASSETS_ENV} to a folder that has "
            "them, or set KUBESYNC_TEST_KUBECONFIG to test against an existing cluster."
        )
    return found
