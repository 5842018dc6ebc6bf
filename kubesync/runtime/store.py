"""``Store``: a thread-safe cache of objects keyed by ``ObjectRef``, with indexes.

Readers call ``get``/``list``/``by_index`` from any thread; one ``StoreWriter`` (the
reflector) applies watcher events. A relist is built aside and swapped in at
``InitDone`` in one step: readers never see half a list, and objects deleted while the
watch was down disappear.

Objects in the store are shared between readers: do not modify them. ``private_copy()``
gives one you may change (as client-go's informer caches ask, and kube-rs enforces).
"""

from __future__ import annotations

import copy
import threading
from typing import (
    Any,
    Callable,
    Dict,
    Generic,
    Hashable,
    Iterable,
    List,
    Optional,
    Set,
    Tuple,
    TypeVar,
    Union,
)

from kubesync.client import fork
from kubesync.client.gcpause import promote_young
from kubesync.core.lazy import View, pack_field, share_strings
from kubesync.core.objectref import ObjectRef
from kubesync.errors import KubeError, UsageError
from kubesync.runtime.watcher import Apply, Delete, Init, InitApply, InitDone

__all__ = ["ForkedStoreError", "Store", "StoreStopped", "StoreWriter", "object_key",
           "pack_managed_fields", "private_copy", "share_common_strings"]

K = TypeVar("K")
Key = ObjectRef
IndexFn = Callable[[Any], Iterable[Hashable]]


class StoreStopped(KubeError):
    """The store's writer stopped before the first complete list: it will never be ready.

    ``__cause__`` is the writer's last error, if it had one (e.g. ``Forbidden``).
    """


class ForkedStoreError(KubeError):
    """A store filled by a thread of the parent process was used in a forked child, where
    that thread does not exist; nothing restarts it there (a controller's store)."""


def object_key(obj: Any) -> ObjectRef:
    """The store's key of an object: its ``ObjectRef`` (namespace None if cluster-scoped)."""
    return ObjectRef.of(obj)


def private_copy(obj: K) -> K:
    """A deep copy of a (possibly shared) object, safe to change (models copy via JSON)."""
    return copy.deepcopy(obj)


class Store(Generic[K]):
    """The read side. Thread-safe; one lock, held only to read or swap references.

    Keys are ``ObjectRef(name, namespace)``. Index functions run outside the lock (they are
    user code). ``last_error`` is the writer's latest failure since its last complete list
    (say, ``Forbidden``), so an app can tell why the store is not ready.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: Dict[Key, K] = {}
        self._indexers: Dict[str, IndexFn] = {}
        self._indices: Dict[str, Dict[Hashable, Set[Key]]] = {}
        self._values: Dict[str, Dict[Key, Tuple[Hashable, ...]]] = {}
        self._version = 0
        self._ready = threading.Event()
        self._stopper: Optional[Callable[[], None]] = None
        # Readiness and the writer's end, for wait_until_ready(); guarded by its own lock so
        # waiters never hold the read lock.
        self._state = threading.Condition(threading.Lock())
        self._writer_gone = False
        self._last_error: Optional[BaseException] = None
        # Set in a forked child for a store whose reflector can start again there; the
        # first read then starts it (see _after_fork_in_child).
        self._restarter: Optional[Callable[[], None]] = None
        self._restart_pending = False

    # -- reads ----------------------------------------------------------------------------

    def get(self, name: Union[str, ObjectRef], namespace: Optional[str] = None) -> Optional[K]:
        """The object named ``name`` (or by an ``ObjectRef``), or None.

        Shared: do not modify it (see ``private_copy``).
        """
        key = name if isinstance(name, ObjectRef) else ObjectRef(name, namespace or None)
        with self._lock:
            self._resume_after_fork()
            return self._items.get(key)

    def list(self) -> List[K]:
        """A snapshot of every object (a new list; the objects are shared)."""
        self._resume_after_fork()
        with self._lock:
            return list(self._items.values())

    def keys(self) -> List[Key]:
        self._resume_after_fork()
        with self._lock:
            return list(self._items)

    def __len__(self) -> int:
        self._resume_after_fork()
        with self._lock:
            return len(self._items)

    def __contains__(self, key: object) -> bool:
        self._resume_after_fork()
        with self._lock:
            return key in self._items

    def __iter__(self) -> Any:
        return iter(self.list())

    def by_index(self, index: str, value: Hashable) -> List[K]:
        """Objects whose index function gave ``value``."""
        self._resume_after_fork()
        with self._lock:
            if index not in self._indexers:
                raise UsageError(f"no index named {index!r}; add it with add_index()")
            keys = self._indices[index].get(value, ())
            return [self._items[k] for k in keys if k in self._items]

    @property
    def is_ready(self) -> bool:
        """True once the first complete list is in."""
        self._resume_after_fork()
        return self._ready.is_set()

    @property
    def last_error(self) -> Optional[BaseException]:
        """The writer's latest error since its last complete list, or None."""
        self._resume_after_fork()
        with self._state:
            return self._last_error

    def wait_until_ready(self, timeout: Optional[float] = None) -> bool:
        """Block until the first complete list is in; False after ``timeout`` seconds.

        Raises ``StoreStopped`` at once if the writer stopped before that (nothing would
        ever make the store ready), naming its last error.
        """
        self._resume_after_fork()
        with self._state:
            self._state.wait_for(lambda: self._ready.is_set() or self._writer_gone, timeout)
            if self._ready.is_set():
                return True
            if self._writer_gone:
                error = self._last_error
                why = f"; its last error: {error}" if error is not None else ""
                raise StoreStopped(
                    f"the store's writer stopped before its first complete list{why}"
                ) from error
            return False

    def add_index(self, name: str, fn: IndexFn) -> None:
        """Index objects by ``fn(obj)`` (an iterable of hashable values)."""
        while True:
            with self._lock:
                if name in self._indexers:
                    raise UsageError(f"an index named {name!r} exists already")
                version, items = self._version, dict(self._items)
            values = {k: tuple(fn(o)) for k, o in items.items()}
            index: Dict[Hashable, Set[Key]] = {}
            for k, vals in values.items():
                for v in vals:
                    index.setdefault(v, set()).add(k)
            with self._lock:
                if version != self._version:
                    continue  # the writer moved on while we computed: again
                self._indexers[name] = fn
                self._indices[name] = index
                self._values[name] = values
                return

    def stop(self) -> None:
        """Stop the background reflector that fills this store, if it has one.

        In a forked child whose reflector has not started again yet, this only ends the
        store there: the parent's watch and its socket are left alone.
        """
        with self._state:
            inherited, self._restart_pending = self._restart_pending, False
        if inherited:
            self._close()
        elif self._stopper is not None:
            self._stopper()

    # -- forks ----------------------------------------------------------------------------

    def _filled_in_background(self, restart: Optional[Callable[[], None]]) -> None:
        """A thread of this process fills the store; after a fork ``restart()`` starts a
        new one in the child (None: the store refuses there, loudly, unless a reflector
        sharing it can restart)."""
        if restart is not None:
            self._restarter = restart
        fork.register(self)

    def _after_fork_in_child(self) -> None:
        # Single-threaded here: replace locks the parent's threads may have held, and
        # stop claiming freshness: the thread that kept the objects current is gone.
        self._lock = threading.Lock()
        self._state = threading.Condition(threading.Lock())
        self._ready = threading.Event()
        if self._writer_gone:
            return
        if self._restarter is not None:
            self._restart_pending = True
            return
        self._writer_gone = True
        self._last_error = ForkedStoreError(
            "this store was filled by a thread of the parent process, which does not exist "
            "after the fork; create (or start) what fills it in the child, e.g. in the "
            "worker's app factory or gunicorn's post_fork hook"
        )

    def _resume_after_fork(self) -> None:
        """On first use in a forked child: start the reflector again (it relists; until
        that list is in, the store is not ready and keeps the parent's last view)."""
        if not self._restart_pending:
            return
        with self._state:
            if not self._restart_pending:
                return
            self._restart_pending = False
        assert self._restarter is not None
        self._restarter()

    def _set_error(self, error: Optional[BaseException]) -> None:
        with self._state:
            self._last_error = error

    def _close(self) -> None:
        """The writer is gone: waiters for readiness stop waiting."""
        with self._state:
            self._writer_gone = True
            self._state.notify_all()

    def __repr__(self) -> str:
        return f"<Store {len(self)} objects{'' if self.is_ready else ', not ready'}>"

    def _repr_html_(self) -> str:
        from kubesync.display import store_html

        return store_html(self)

    # -- writes (StoreWriter's) ------------------------------------------------------------

    def _index_values(self, obj: Any) -> Dict[str, Tuple[Hashable, ...]]:
        with self._lock:
            indexers = dict(self._indexers)
        return {name: tuple(fn(obj)) for name, fn in indexers.items()}

    def _put(self, key: Key, obj: K, values: Dict[str, Tuple[Hashable, ...]]) -> int:
        """Store ``obj``; how many objects the store holds then."""
        with self._lock:
            self._version += 1
            self._unindex_locked(key)
            self._items[key] = obj
            for name, vals in values.items():
                if name in self._indices:
                    self._values[name][key] = vals
                    for v in vals:
                        self._indices[name].setdefault(v, set()).add(key)
            return len(self._items)

    def _remove(self, key: Key) -> None:
        with self._lock:
            self._version += 1
            self._unindex_locked(key)
            self._items.pop(key, None)

    def _unindex_locked(self, key: Key) -> None:
        for name, per_key in self._values.items():
            old = per_key.pop(key, ())
            index = self._indices[name]
            for v in old:
                keys = index.get(v)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[v]

    def _replace(self, items: Dict[Key, K]) -> None:
        with self._lock:
            indexers = dict(self._indexers)
        values = {
            name: {k: tuple(fn(o)) for k, o in items.items()} for name, fn in indexers.items()
        }
        indices: Dict[str, Dict[Hashable, Set[Key]]] = {}
        for name, per_key in values.items():
            index: Dict[Hashable, Set[Key]] = {}
            for k, vals in per_key.items():
                for v in vals:
                    index.setdefault(v, set()).add(k)
            indices[name] = index
        with self._lock:
            self._version += 1
            self._items = items
            # An index added meanwhile is rebuilt from the new items by its own loop.
            self._values = {n: values.get(n, {}) for n in self._indexers}
            self._indices = {n: indices.get(n, {}) for n in self._indexers}
        with self._state:
            self._last_error = None
            self._ready.set()
            self._state.notify_all()


def pack_managed_fields(obj: K) -> K:
    """Keep a model's ``metadata.managedFields`` as compact JSON bytes until it is read
    (``kubesync.core.lazy.pack_field``): lossless, and a cached ConfigMap as served holds
    about a third less memory. Every ``StoreWriter`` does this to the objects it stores;
    other kinds of object (``DynamicObject``) are left as they are."""
    if isinstance(obj, View):
        meta = getattr(obj, "metadata", None)
        if isinstance(meta, View):
            try:
                pack_field(meta, "managed_fields")
            except AttributeError:  # a metadata model of its own, without the field
                pass
    return obj


#: How many distinct strings ``share_common_strings`` keeps to share; past that it starts
#: a new pool, so unique values (a pod-template-hash per ReplicaSet) cannot grow it
#: without bound. About 400 KB at most for strings no object holds any more.
SHARED_STRINGS_MAX = 4096
_SHARED: Dict[str, str] = {}


def share_common_strings(obj: K) -> K:
    """Share the strings that a cache holds a copy of per object although few distinct
    ones exist: a model's ``apiVersion``, ``kind``, ``metadata.namespace`` and label values
    (``kubesync.core.lazy.share_strings``, with one bounded pool for the process). Equal
    values, so nothing read or written changes; a store of ConfigMaps in one namespace
    holds about 180 bytes less per object. Every ``StoreWriter`` does this; other kinds of
    object (``DynamicObject``) are left as they are."""
    if isinstance(obj, View):
        pool = _SHARED
        if len(pool) > SHARED_STRINGS_MAX:
            pool.clear()  # atomic; a writer in another thread just adds to the new pool
        try:
            share_strings(obj, "api_version", "kind", pool=pool)
        except AttributeError:  # a model of its own, without some of the fields
            _share_each(obj, ("api_version", "kind"), pool)
        meta = getattr(obj, "metadata", None)
        if isinstance(meta, View):
            try:
                share_strings(meta, "namespace", "labels", pool=pool)
            except AttributeError:
                _share_each(meta, ("namespace", "labels"), pool)
    return obj


def _share_each(obj: Any, names: Tuple[str, ...], pool: Dict[str, str]) -> None:
    for name in names:
        try:
            share_strings(obj, name, pool=pool)
        except AttributeError:
            pass


class StoreWriter(Generic[K]):
    """Applies watcher events to its ``store``. One writer per store, one thread at a time.

    ``transform`` runs on each object on the way in (e.g. ``drop_managed_fields``, which
    halves a small object's memory). Then the ``managedFields`` of a model that still has
    them are packed (``pack_managed_fields``) and the strings repeated across objects are
    shared (``share_common_strings``): what a read or ``encode`` gives is unchanged.
    """

    def __init__(self, store: Optional[Store[K]] = None,
                 transform: Optional[Callable[[K], K]] = None):
        self.store: Store[K] = store if store is not None else Store()
        self._transform = transform
        self._buffer: Optional[Dict[Key, K]] = None
        #: The most objects the store has held. Objects that take it past that (a list, or
        #: a watch while the cache grows) are long-lived, and their young generation is
        #: promoted (client/gcpause.py); churn at a size reached before is left to the
        #: collector, so that a store of short-lived objects (Events) changes nothing.
        self._largest = 0

    def apply_event(self, ev: Any) -> None:
        if isinstance(ev, (Apply, InitApply)):
            obj = ev.object if self._transform is None else self._transform(ev.object)
            pack_managed_fields(obj)
            share_common_strings(obj)
            key = object_key(obj)
            if isinstance(ev, InitApply) and self._buffer is not None:
                self._buffer[key] = obj
                promote_young()  # a cache being built (a relist too: bounded by its size)
            else:
                size = self.store._put(key, obj, self.store._index_values(obj))
                if size > self._largest:
                    self._largest = size
                    promote_young()
        elif isinstance(ev, Delete):
            self.store._remove(object_key(ev.object))
        elif isinstance(ev, Init):
            self._buffer = {}
        elif isinstance(ev, InitDone):
            buffer, self._buffer = self._buffer, None
            self._largest = max(self._largest, len(buffer or ()))
            self.store._replace(buffer if buffer is not None else {})

    __call__ = apply_event

    def pending(self) -> Optional[List[K]]:
        """The objects of a (re)list in progress so far, or None when none is (a shared
        informer hands them to a consumer that joins mid-list)."""
        buffer = self._buffer
        return None if buffer is None else list(buffer.values())

    def record_error(self, error: BaseException) -> None:
        """Keep ``error`` as the store's ``last_error`` (a watcher's ``on_error`` hook)."""
        self.store._set_error(error)

    def close(self) -> None:
        """Say no more events come: the store can never become ready after this."""
        self.store._close()
