"""Keep ``os.fork`` from splitting work that a child cannot finish or undo.

A fork copies only the thread that forks. If another thread is in the middle of certain
work at that moment, the child inherits it half done, for good:
- inside OpenSSL (a TLS handshake, building a context, loading a certificate), the
  locks OpenSSL holds for it, its global ones too, stay locked: the child's first
  handshake, or even ``ssl.SSLContext()``, hangs;
- importing a module, the module stays in ``sys.modules`` half executed: every name
  defined after the point reached is missing in the child ("partially initialized
  module"), so a model class cannot be built there;
- holding a lock (building a model class), it stays locked.
Measured under ``gunicorn --preload``, whose master starts a reflector and forks at once:
workers that hung in their first request, and one whose store dropped every event.

So such work runs inside ``guarded()``: a fork waits for the guarded work in progress to
end (at most ``FORK_WAIT`` seconds) and new guarded work waits for the fork. Reads and
writes on a TLS connection already open are not guarded: they take no lock a child could
need, and a watch blocks in them for minutes.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Callable, Dict, Iterator

__all__ = ["FORK_WAIT", "guarded", "import_module", "renew_in_child"]

log = logging.getLogger("kubesync.fork")

#: How long a fork waits for guarded work; then it goes on, and says so. Guarded work is
#: short (a handshake waiting on the network holds no OpenSSL lock meanwhile).
FORK_WAIT = 5.0

_gate = threading.Condition(threading.Lock())
_inside = 0
_forking = False
_mine = threading.local()  # how deep this thread is in guarded blocks


@contextmanager
def guarded() -> Iterator[None]:
    """A block a fork must not split: it waits while a fork is under way, and a fork
    waits for it. Re-entrant in a thread (an import may build classes that import)."""
    global _inside
    depth = getattr(_mine, "depth", 0)
    if depth:
        _mine.depth = depth + 1
        try:
            yield
        finally:
            _mine.depth = depth
        return
    gate = _gate
    with gate:
        while _forking:
            gate.wait()
        _inside += 1
    _mine.depth = 1
    try:
        yield
    finally:
        _mine.depth = 0
        with _gate:  # not ``gate``: a child forked from inside this block has a new one
            _inside -= 1
            if not _inside:
                _gate.notify_all()


def import_module(name: str) -> ModuleType:
    """``importlib.import_module``, guarded when the module is not loaded yet (a fork
    must not leave it half executed in the child)."""
    module = sys.modules.get(name)
    if module is not None and not getattr(getattr(module, "__spec__", None),
                                          "_initializing", False):
        return module
    with guarded():
        return importlib.import_module(name)


def renew_in_child(namespace: Dict[str, Any], name: str, make: Callable[[], Any]) -> None:
    """In every forked child, ``namespace[name] = make()`` at once: for a module's lock,
    which a thread of the parent may have held at the fork."""
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=lambda: namespace.__setitem__(name, make()))


def _before_fork() -> None:
    global _forking
    with _gate:
        _forking = True
        if getattr(_mine, "depth", 0):
            return  # the forking thread itself is inside: waiting would wait for itself
        if not _gate.wait_for(lambda: not _inside, FORK_WAIT):
            log.warning("forking while %d guarded block(s) of other threads (TLS "
                        "handshakes, imports) went on for %.0fs: the child may hang in them",
                        _inside, FORK_WAIT)


def _after_fork_in_parent() -> None:
    global _forking
    with _gate:
        _forking = False
        _gate.notify_all()


def _after_fork_in_child() -> None:
    global _gate, _inside, _forking
    _gate = threading.Condition(threading.Lock())  # the threads that were inside are gone
    _inside = getattr(_mine, "depth", 0) and 1  # the forking thread's own block, if any
    _forking = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
