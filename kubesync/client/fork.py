"""What a forked child redoes before it touches what it inherited from its parent.

``os.fork`` (gunicorn's workers, multiprocessing's ``fork`` start method) copies every
object but only the thread that forked. Two things then go wrong without help: the child
shares the parent's open TLS connections (two processes writing one TLS stream corrupt it
for both), and locks held by the parent's other threads stay locked forever in the child
(OpenSSL's too: a context's trust store and key are locked during a handshake, so the
child's client builds its own context).
Objects that care ``register`` here; in the child, right after the fork and while it has
a single thread, each one's ``_after_fork_in_child()`` runs, so no lock is contended.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from typing import Any

__all__ = ["generation", "register"]

log = logging.getLogger("kubesync.fork")

_lock = threading.Lock()
_live: weakref.WeakSet[Any] = weakref.WeakSet()
_generation = 0


def register(obj: Any) -> None:
    """Call ``obj._after_fork_in_child()`` in every forked child while ``obj`` lives."""
    with _lock:
        _live.add(obj)


def generation() -> int:
    """How many forks lie between this process and the one that imported kubesync."""
    return _generation


def _in_child() -> None:
    global _lock, _generation
    _lock = threading.Lock()  # the parent may have held it at the fork
    _generation += 1
    for obj in list(_live):
        try:
            obj._after_fork_in_child()
        except Exception:  # one broken object must not leave the others shared
            log.exception("after a fork: resetting %r failed", obj)


if hasattr(os, "register_at_fork"):  # not on Windows, which cannot fork
    os.register_at_fork(after_in_child=_in_child)
