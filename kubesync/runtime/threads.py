"""How the runtime names and joins its threads: names unique in the process, and a join
that says which thread did not stop in time instead of returning quietly."""

from __future__ import annotations

import itertools
import logging
import threading
from typing import Optional

__all__ = ["join_thread", "unique_name"]

_counter = itertools.count(1)


def unique_name(prefix: str) -> str:
    """A thread name no other thread of this process gets: ``prefix`` and a number."""
    return f"{prefix}-{next(_counter)}"


def join_thread(thread: Optional[threading.Thread], timeout: Optional[float],
                logger: logging.Logger) -> bool:
    """Join ``thread`` for up to ``timeout`` seconds; one still alive after that is logged
    as a warning by name (it is a daemon, so it never blocks the process's exit).

    Returns whether it ended. The current thread is never joined (it cannot wait for
    itself): that returns False at once.
    """
    if thread is None:
        return True
    if thread is threading.current_thread():
        return False
    thread.join(timeout)
    if thread.is_alive():
        logger.warning("thread %s did not stop within %ss; left running (a daemon)",
                       thread.name, timeout)
        return False
    return True
