"""Shared test helpers."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, Tuple


def eventually(cond: Callable[[], object], timeout: float = 60.0, what: str = "") -> None:
    """Wait until ``cond()`` is true, polling, for at most ``timeout`` seconds."""
    waiter = threading.Event()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        waiter.wait(0.02)
    raise AssertionError(f"not reached in {timeout}s: {what or cond}")


def served(client: Any, path: str) -> bool:
    """Whether the API server answers GET ``path`` (a new CRD's kind is Established a
    moment before its handler and discovery serve it)."""
    from kubesync.errors import NotFound

    try:
        client.request("GET", path)
    except NotFound:
        return False
    return True


def server_minor(client: Any) -> Tuple[int, int]:
    """The API server's (major, minor) version, e.g. (1, 37)."""
    version = client.request("GET", "/version")
    return int(version["major"]), int(str(version["minor"]).rstrip("+"))


def file_tree(root: Any) -> Dict[str, Tuple[str, object, int]]:
    """Everything below the folder ``root``, by relative path: its kind, its content
    (bytes, or a symlink's target) and its permission bits (0 for symlinks)."""
    import os
    import stat
    from pathlib import Path

    out: Dict[str, Tuple[str, object, int]] = {}
    for path in sorted(Path(root).rglob("*")):
        st = path.lstat()
        rel = path.relative_to(root).as_posix()
        if stat.S_ISLNK(st.st_mode):
            out[rel] = ("link", os.readlink(path), 0)
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = ("dir", None, stat.S_IMODE(st.st_mode))
        else:
            out[rel] = ("file", path.read_bytes(), stat.S_IMODE(st.st_mode))
    return out


def create_when_admitted(api: Any, obj: Any, timeout: float = 30.0) -> None:
    """Create ``obj``, retrying while a new namespace refuses it: Pods are Forbidden
    until the namespace's default ServiceAccount exists."""
    from kubesync.errors import Forbidden

    def created() -> bool:
        try:
            api.create(obj)
        except Forbidden:
            return False
        return True

    eventually(created, timeout=timeout, what=f"{obj.metadata.name} is admitted")
