"""Shared test helpers."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Tuple


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
