"""Pause Python's cyclic garbage collector while a large JSON answer is decoded.

Decoding a LIST of thousands of objects allocates hundreds of thousands of dicts and
lists; each 700 allocations trigger a generation-0 collection that walks them, and the
older generations follow. None of it can be a reference cycle, so collecting then is pure
cost: measured on a 5000-object LIST, about 28% of the whole call.
Reference counting still frees everything as usual; only cycle detection waits.

The pause is process-wide, so it is counted: overlapping pauses from several threads end
when the last one does, and the collector is re-enabled only if it was enabled when the
first began.

When a pause that allocated many objects ends, the young objects are handed to the
oldest generation at once (an unfreeze of a freeze: two list splices) instead of staying
young: otherwise the first allocation after the pause starts a young collection that
walks every dict of the body, and the next ones walk it again on its way up (measured on
a 5000-object LIST and reading every item: 9% of the decode and read). The body is
long-lived data by then (a LIST's items, a cache's objects); only a full collection looks
at it again, as it would have after surviving two young ones. Young objects of other
threads go along; a cycle among them is freed by the next full collection. A process
that froze objects itself (``gc.freeze()`` before forking workers) keeps them frozen:
then nothing is promoted.

A store being filled calls ``promote_young()`` per new object: ``StoreWriter`` for each
object of a list (paged, or streamed one watch event at a time) and for each watch event
that takes the store past the most objects it has held. When a young collection is near,
the young generation is handed to the oldest one in the same way, so the objects of the
cache being built are not walked by young and middle collections on their way up, and the
full collections that a heap growing by a quarter triggers do not run for each quarter.
The collector stays on throughout (a streamed list waits on the network between events;
no pause may span that). Churn at a size the store had before (Events: created, expired)
promotes nothing, so a busy watch does not keep the process's young collections from
running; what growth promotes is bounded by the cache's size. Measured on 5000
ConfigMaps streamed into a store: 58% of the time was cyclic collection before.

Once the process has frozen objects of its own, nothing is promoted for its lifetime
(checking for frozen objects costs a walk of them, so it is not repeated per object).

A child forked while another thread of its parent was inside a pause would inherit the
collector switched off for good (that thread does not exist in the child to end the
pause), so the child ends every pause it inherited.
"""

from __future__ import annotations

import gc
import os
import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["LARGE_BODY", "gc_paused", "promote_young"]

#: Bodies from this size up are decoded with the collector paused; smaller ones allocate
#: too little for it to matter (a 7 MB LIST is the case this is for).
LARGE_BODY = 256 * 1024

#: How many young objects a pause must leave behind for them to be promoted at its end:
#: more than one young collection's worth (the default threshold is 700); fewer cost
#: little to walk.
_PROMOTE_FROM = 1000

#: ``promote_young()`` splices once the young generation holds this share of the
#: threshold that starts a young collection.
_PROMOTE_SHARE = 0.75

_lock = threading.Lock()
_depth = 0
_we_disabled = False
#: The process froze objects itself (``gc.freeze()``): promoting would unfreeze them.
_app_froze = False


def _promote() -> bool:
    """Young objects -> the oldest generation (two list splices); False, doing nothing,
    when the process keeps frozen objects of its own."""
    global _app_froze
    if _app_froze or gc.get_freeze_count():  # O(1) while nothing is frozen
        _app_froze = True
        return False
    gc.freeze()
    gc.unfreeze()
    return True


@contextmanager
def gc_paused() -> Iterator[None]:
    """Within the block, no cyclic collection runs (counted across threads)."""
    global _depth, _we_disabled
    with _lock:
        if _depth == 0:
            _we_disabled = gc.isenabled()
            if _we_disabled:
                gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _we_disabled:
                _we_disabled = False
                if gc.get_count()[0] >= _PROMOTE_FROM:
                    _promote()
                gc.enable()


def promote_young() -> None:
    """The young objects are long-lived (just put in a cache that is growing: a list, or a
    store past its largest size): if a young collection is near, hand them to the oldest
    generation instead. O(1)."""
    young, threshold = gc.get_count()[0], gc.get_threshold()[0]
    if young >= threshold * _PROMOTE_SHARE and threshold and gc.isenabled():
        _promote()


def _after_fork_in_child() -> None:
    global _lock, _depth, _we_disabled
    _lock = threading.Lock()  # a parent's thread may have held it at the fork
    if _depth:  # pauses of threads the child does not have: end them
        _depth = 0
        if _we_disabled:
            _we_disabled = False
            gc.enable()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
