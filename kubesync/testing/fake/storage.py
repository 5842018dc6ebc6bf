"""The fake's memory: objects by key, one global resourceVersion counter, and a bounded
history of changes that watches and consistent paging read.

Stored objects are never changed in place: every write stores a new dict, so an event or
a served list can hold a reference without copying. Callers hold ``lock`` across a
read-modify-write (the backend does); ``lock`` is also the condition watches wait on.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Deque, Dict, Iterator, List, NamedTuple, Optional, Tuple

#: (group, plural): one collection. Versions of a group share it, as they share etcd.
Collection = Tuple[str, str]
#: (group, plural, namespace or "", name)
Key = Tuple[str, str, str, str]

#: Events kept for watches and paging; older resourceVersions answer 410 Gone. A real
#: server's watch cache holds the last few minutes; a test needs far fewer.
DEFAULT_HISTORY = 10_000


class Event(NamedTuple):
    """One change: its resourceVersion, what changed, the object after and before."""

    rv: int
    key: Key
    type: str  # ADDED, MODIFIED, DELETED
    obj: Dict[str, Any]
    prev: Optional[Dict[str, Any]]


class TooOld(Exception):
    """The asked resourceVersion is older than the history keeps (answer 410 Gone)."""


class Storage:
    """Thread-safe store of JSON objects with change history; see the module doc."""

    def __init__(self, history: int = DEFAULT_HISTORY) -> None:
        self.lock = threading.Condition(threading.RLock())
        # Invariants (under lock): _rv is the newest resourceVersion handed out; every
        # event in _events has floor < rv <= _rv; events older than _floor are gone.
        self._rv = 1
        self._floor = 1
        self._objects: Dict[Key, Dict[str, Any]] = {}
        self._events: Deque[Event] = deque(maxlen=history)

    @property
    def resource_version(self) -> int:
        with self.lock:
            return self._rv

    def next_rv(self) -> int:
        """A new resourceVersion (the caller writes with it at once)."""
        with self.lock:
            self._rv += 1
            return self._rv

    def get(self, key: Key) -> Optional[Dict[str, Any]]:
        with self.lock:
            return self._objects.get(key)

    def items(self, collection: Collection, namespace: Optional[str] = None
              ) -> List[Dict[str, Any]]:
        """The collection's objects (in one namespace, or all), sorted by namespace, name."""
        with self.lock:
            keys = sorted(k for k in self._objects if k[:2] == collection
                          and (namespace is None or k[2] == namespace))
            return [self._objects[k] for k in keys]

    def all_items(self) -> Iterator[Tuple[Key, Dict[str, Any]]]:
        with self.lock:
            return iter(list(self._objects.items()))

    def put(self, key: Key, obj: Dict[str, Any], rv: int) -> None:
        """Store ``obj`` (its metadata.resourceVersion already ``rv``) and record it."""
        with self.lock:
            prev = self._objects.get(key)
            self._objects[key] = obj
            self._record(Event(rv, key, "ADDED" if prev is None else "MODIFIED", obj, prev))

    def remove(self, key: Key, obj: Dict[str, Any], rv: int) -> None:
        """Forget ``key``; ``obj`` is its last state, at ``rv`` (the DELETED event)."""
        with self.lock:
            prev = self._objects.pop(key)
            self._record(Event(rv, key, "DELETED", obj, prev))

    def _record(self, event: Event) -> None:
        if len(self._events) == self._events.maxlen:
            self._floor = self._events[0].rv
        self._events.append(event)
        self.lock.notify_all()

    def compact(self) -> int:
        """Forget all history: any older resourceVersion now answers 410. The current one."""
        with self.lock:
            self._events.clear()
            self._floor = self._rv
            self.lock.notify_all()
            return self._rv

    def events_after(self, rv: int, collection: Collection) -> List[Event]:
        """The collection's changes newer than ``rv``; ``TooOld`` if some are forgotten."""
        with self.lock:
            if rv < self._floor:
                raise TooOld(rv)
            return [e for e in self._events if e.rv > rv and e.key[:2] == collection]

    def snapshot(self, rv: int, collection: Collection, namespace: Optional[str]
                 ) -> List[Dict[str, Any]]:
        """The collection as it was at ``rv`` (consistent paging, ``Exact`` lists)."""
        with self.lock:
            if rv < self._floor:
                raise TooOld(rv)
            state = {k: v for k, v in self._objects.items() if k[:2] == collection
                     and (namespace is None or k[2] == namespace)}
            for e in reversed(self._events):  # undo what came after rv, newest first
                if e.rv <= rv:
                    break
                if e.key[:2] != collection or (namespace is not None and e.key[2] != namespace):
                    continue
                if e.prev is None:
                    state.pop(e.key, None)
                else:
                    state[e.key] = e.prev
            return [state[k] for k in sorted(state)]
