"""Shared test helpers."""

from __future__ import annotations

import threading
import time
from typing import Callable


def eventually(cond: Callable[[], object], timeout: float = 60.0, what: str = "") -> None:
    """Wait until ``cond()`` is true, polling, for at most ``timeout`` seconds."""
    waiter = threading.Event()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        waiter.wait(0.02)
    raise AssertionError(f"not reached in {timeout}s: {what or cond}")
