"""Shared informers: one watch and one store per kind and query, fanned out to consumers.

client-go's SharedInformerFactory and controller-runtime's cache: every ``Controller`` (and
each of its ``owns``/``watches``) and every ``start_reflector`` on the same resource,
namespace, selectors and metadata-only choice of one ``Client`` share one ``Watcher``
(one LIST and one WATCH) and one ``Store``, instead of a watch and a cache each.

- ``shared_informers(client)`` is the client's ``SharedInformerFactory``;
  ``factory.informer(api, config)`` the ``SharedInformer`` for that query (made on first
  use, forgotten once no consumer holds it).
- ``informer.subscribe(handler)`` adds a consumer; the first one starts the watcher, the
  last ``Subscription.stop()`` stops it and joins its thread. A consumer that joins late
  gets the current state first: ``Init``, an ``InitApply`` per cached object, ``InitDone``.
- The store is written before any consumer hears of an event, so a handler that reads the
  store sees at least that event's state.

Slow consumers: each handler runs in its own named thread fed by a bounded queue
(``queue_size`` events). The watcher thread never waits for a consumer: when a queue is
full, its pending events are dropped and replaced by a resync, the current state from the
store (references to the cached objects, not copies), as if the watch had relisted. The
consumer loses intermediate states but never the current one, memory stays bounded, and
the other consumers and the store are not held up. Changes seen while watching keep their
kind: after the resync's ``InitDone``, each object that changed live while its events
were dropped comes once more, as an ``Apply`` of its state in the resync (or the
``Delete`` it had), so a controller still takes them ahead of its initial list (a live
change folded into the resync would otherwise come as an ``InitApply``, at the list's low
priority). At most one such event per object; none when the resync is of a relist still
in progress (the relist's own ``InitDone`` is yet to come).

Options beyond the key (page size, watch length, idle timeout, initial-list strategy) are
the first consumer's; a consumer that needs other ones, or a ``transform`` (which changes
what the store holds), gets a private informer (``shared=False`` where a caller offers it).
"""

from __future__ import annotations

import collections
import logging
import threading
import weakref
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Deque,
    Dict,
    Generic,
    Hashable,
    List,
    Optional,
    TypeVar,
)

from kubesync.client import fork
from kubesync.core import forkgate
from kubesync.core.clock import SYSTEM_CLOCK, Clock
from kubesync.core.params import selector_string
from kubesync.errors import KubeError
from kubesync.runtime.store import Store, StoreWriter, object_key
from kubesync.runtime.threads import join_thread, unique_name
from kubesync.runtime.watcher import (
    Apply,
    Delete,
    Init,
    InitApply,
    InitDone,
    Watcher,
    WatcherConfig,
)

if TYPE_CHECKING:
    from kubesync.client.api import Api
    from kubesync.client.client import Client

__all__ = [
    "CONSUMER_QUEUE_SIZE",
    "InformerStopped",
    "SharedInformer",
    "SharedInformerFactory",
    "Subscription",
    "informer_for",
    "shared_informers",
    "subscribe_to",
]

log = logging.getLogger("kubesync.runtime.informer")

K = TypeVar("K")
Handler = Callable[[Any], None]

#: Events a consumer may fall behind before it is resynced from the store: twice a LIST
#: page, so the burst of an initial list of up to 1000 objects passes without a resync for
#: a consumer that only queues keys.
CONSUMER_QUEUE_SIZE = 1024
#: How long stopping waits for a consumer's thread (its handler may be mid-call).
STOP_TIMEOUT = 30.0


def informer_key(api: Api[Any], config: WatcherConfig) -> Hashable:
    """What makes two watches the same: resource, model, namespace, selectors, metadata."""
    r = api.resource
    return (getattr(r, "group", None), getattr(r, "version", None), r.plural,
            getattr(api, "model", None), getattr(api, "namespace", None),
            selector_string(config.label_selector), selector_string(config.field_selector),
            config.metadata_only)


class InformerStopped(KubeError):
    """The informer's last consumer left and it stopped: it takes no new consumers (the
    factory makes a new one; ``subscribe_to`` does that by itself)."""


class _Resync:
    """In a consumer's queue: replace what it knows by these events (a snapshot), then
    hear of the live changes it missed (``live``: the last per object) again."""

    def __init__(self, events: List[Any], live: Dict[Any, Any]) -> None:
        self.events = events
        self.live = live

    def replay(self) -> List[Any]:
        """The snapshot's events, then one ``Apply`` (its state in the snapshot) or
        ``Delete`` per object that changed live; those only after a complete snapshot."""
        if not self.live or not self.events or not isinstance(self.events[-1], InitDone):
            return self.events
        now = {object_key(e.object): e.object for e in self.events
               if isinstance(e, InitApply)}
        again = [Apply(now[k]) if k in now else Delete(e.object)
                 for k, e in self.live.items()
                 if k in now or isinstance(e, Delete)]
        return [*self.events, *again]


def _live_changes(pending: Deque[Any], ev: Any) -> Dict[Any, Any]:
    """The last live change (``Apply``/``Delete``) per object among ``pending`` and
    ``ev``, those an earlier resync in ``pending`` carried included."""
    live: Dict[Any, Any] = {}
    for item in (*pending, ev):
        if isinstance(item, _Resync):
            live.update(item.live)
        elif isinstance(item, (Apply, Delete)):
            key = object_key(item.object)
            live.pop(key, None)  # in the order of the last change
            live[key] = item
    return live


_STOP = object()


class Subscription:
    """One consumer of a ``SharedInformer``. ``stop()`` leaves (idempotent); the informer
    stops when its last subscription does."""

    def __init__(self, informer: SharedInformer[Any], handler: Optional[Handler],
                 on_error: Optional[Callable[[BaseException], None]], name: str,
                 queue_size: int) -> None:
        self.informer = informer
        self.name = name
        self.on_error = on_error
        self._handler = handler
        self._queue_size = queue_size
        self._lock = threading.Condition(threading.Lock())
        self._pending: Deque[Any] = collections.deque()
        self.resyncs = 0  # how often it fell behind and was resynced (for tests, metrics)
        self._thread: Optional[threading.Thread] = None
        self._stopped = False

    @property
    def store(self) -> Store[Any]:
        return self.informer.store

    @property
    def alive(self) -> bool:
        """Whether its handler thread (if it has one) and its informer's watcher run."""
        handler_ok = self._thread is None or self._thread.is_alive()
        return handler_ok and not self._stopped and self.informer.running

    def _start(self) -> None:
        if self._handler is not None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def _offer(self, ev: Any, snapshot: Callable[[], List[Any]]) -> None:
        """Queue ``ev`` (the watcher thread; the informer's lock held), or resync when full."""
        if self._handler is None:
            return
        with self._lock:
            if self._stopped:
                return
            if len(self._pending) >= self._queue_size:
                episode = not isinstance(self._pending[0], _Resync)
                live = _live_changes(self._pending, ev)
                self._pending.clear()
                self._pending.append(_Resync(snapshot(), live))
                self.resyncs += 1
                if episode:  # once while it stays behind, not once per event
                    log.warning("%s fell %d events behind; resyncing it from the cache",
                                self.name, self._queue_size)
            else:
                self._pending.append(ev)
            self._lock.notify()

    def _run(self) -> None:
        assert self._handler is not None
        while True:
            with self._lock:
                while not self._pending:
                    self._lock.wait()
                item = self._pending.popleft()
            if item is _STOP:
                return
            for ev in item.replay() if isinstance(item, _Resync) else (item,):
                try:
                    self._handler(ev)
                except Exception:
                    log.exception("%s: the event handler failed on %s", self.name,
                                  type(ev).__name__)

    def stop(self, timeout: Optional[float] = STOP_TIMEOUT) -> None:
        """Leave the informer and join this consumer's thread (events pending are dropped)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._pending.clear()
            self._pending.append(_STOP)
            self._lock.notify()
        self.informer._leave(self)
        join_thread(self._thread, timeout, log)


class SharedInformer(Generic[K]):
    """One watcher and one store for a query, shared by its subscriptions. Thread-safe.

    The watcher thread is ``kubesync-informer-<plural>-<n>``; each consumer with a handler
    has a thread named after it. ``store`` is the shared cache: do not modify its objects.
    """

    def __init__(self, api: Api[K], config: WatcherConfig, *,
                 factory: Optional[SharedInformerFactory] = None, key: Hashable = None,
                 transform: Optional[Callable[[K], K]] = None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.api = api
        self.config = config
        self.name = unique_name(f"kubesync-informer-{api.resource.plural}")
        self._factory = factory
        self._key = key
        self._writer: StoreWriter[K] = StoreWriter(transform=transform)
        self._lock = threading.Lock()  # orders store writes, fan-out and joins
        self._subs: List[Subscription] = []
        # The consumers that hold the store for start_reflector: store.stop() ends one.
        self._store_holders: List[Subscription] = []
        self._started = False
        self._stopped = False
        self._watcher: Watcher[K] = Watcher(api, config, sink=self._dispatch,
                                            on_error=self._failed, name=self.name,
                                            clock=clock)
        fork.register(self)

    @property
    def store(self) -> Store[K]:
        return self._writer.store

    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def running(self) -> bool:
        """Whether the watcher thread is alive."""
        return self._watcher.running

    @property
    def consumers(self) -> int:
        with self._lock:
            return len(self._subs)

    def subscribe(self, handler: Optional[Handler] = None, *,
                  on_error: Optional[Callable[[BaseException], None]] = None,
                  name: Optional[str] = None,
                  queue_size: int = CONSUMER_QUEUE_SIZE) -> Subscription:
        """Add a consumer: ``handler(event)`` in a thread of its own for every watcher event
        (the current state first, if there is one); None for a consumer of the store only.
        ``on_error`` hears the watcher's errors. Starts the watcher on the first one."""
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        sub = Subscription(self, handler, on_error, name or unique_name(f"{self.name}-consumer"),
                           queue_size)
        with self._lock:
            if self._stopped:
                raise InformerStopped(f"{self.name} stopped (its last consumer left); ask the "
                                "factory for a new informer")
            self._subs.append(sub)
            if handler is not None:
                for ev in self._current_locked():
                    sub._pending.append(ev)  # not started yet: no lock needed, no resync
            start = not self._started
            self._started = True
        sub._start()
        if start:
            self._watcher.start()
        return sub

    def hold_store(self, sub: Subscription) -> Store[K]:
        """The store, for a consumer that reads only it (``start_reflector``): each
        ``store.stop()`` then ends one such consumer, the last of them the informer."""
        with self._lock:
            self._store_holders.append(sub)
        self.store._stopper = self._release_store
        self.store._filled_in_background(self._restart_in_child)
        return self.store

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # the parent's watcher thread may have held it

    def _restart_in_child(self) -> None:
        """In a forked child, on the store's first use: a watcher of our own (the
        parent's thread is gone; its open watch is left to the parent, untouched)."""
        clock = self._watcher._clock
        self._watcher = Watcher(self.api, self.config, sink=self._dispatch,
                                on_error=self._failed, name=self.name, clock=clock)
        self._watcher.start()

    def _release_store(self) -> None:
        with self._lock:
            sub = self._store_holders.pop() if self._store_holders else None
        if sub is not None:
            sub.stop()

    def _current_locked(self) -> List[Any]:
        """Events that bring a new consumer to where the others are (our lock held)."""
        buffer = self._writer.pending()
        if buffer is not None:  # mid-(re)list: its start and what came so far
            return [Init(), *(InitApply(o) for o in buffer)]
        if self.store.is_ready:
            return [Init(), *(InitApply(o) for o in self.store.list()), InitDone()]
        return []

    def _dispatch(self, ev: Any) -> None:
        # Under our lock, so a consumer joining now sees either all of this event (in the
        # store or the list in progress) or none of it, then the rest in order. The store's
        # index functions therefore run under it too: they must not subscribe.
        with self._lock:
            self._writer.apply_event(ev)  # the store first: handlers read it
            subs = list(self._subs)
            snapshot = self._current_locked
            for sub in subs:
                sub._offer(ev, snapshot)

    def _failed(self, error: BaseException) -> None:
        self._writer.record_error(error)
        with self._lock:
            hooks = [s.on_error for s in self._subs if s.on_error is not None]
        for hook in hooks:  # user code: outside our lock
            try:
                hook(error)
            except Exception:
                log.exception("%s: an on_error hook failed", self.name)

    def _leave(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)
            last = not self._subs and not self._stopped
            if last:
                self._stopped = True
        if last:
            if self._factory is not None:
                self._factory._forget(self._key, self)
            self._watcher.stop()
            self._writer.close()


class SharedInformerFactory:
    """The shared informers of one ``Client``, by query. Thread-safe; get it with
    ``shared_informers(client)``. It holds its informers weakly: one is kept alive by its
    consumers (and whoever asked for it), and forgotten when its last consumer leaves."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._lock = threading.Lock()
        self._informers: weakref.WeakValueDictionary[Hashable, SharedInformer[Any]] = (
            weakref.WeakValueDictionary())
        self._clock = clock

    def informer(self, api: Api[K], config: Optional[WatcherConfig] = None) -> SharedInformer[K]:
        """The informer for ``api`` and ``config``'s query; made (not started) if none runs."""
        config = config if config is not None else WatcherConfig()
        key = informer_key(api, config)
        with self._lock:
            found = self._informers.get(key)
            if found is not None and not found.stopped:
                return found
            made: SharedInformer[K] = SharedInformer(api, config, factory=self, key=key,
                                                     clock=self._clock)
            self._informers[key] = made
            return made

    def _forget(self, key: Hashable, informer: SharedInformer[Any]) -> None:
        with self._lock:
            if self._informers.get(key) is informer:
                del self._informers[key]

    def __len__(self) -> int:
        """How many informers are alive (started, or held by someone)."""
        with self._lock:
            return len(self._informers)


_factories: weakref.WeakKeyDictionary[Any, SharedInformerFactory] = weakref.WeakKeyDictionary()
_factories_lock = threading.Lock()
forkgate.renew_in_child(globals(), "_factories_lock", threading.Lock)


def shared_informers(client: Client) -> SharedInformerFactory:
    """``client``'s ``SharedInformerFactory`` (one per Client, made on first use)."""
    with _factories_lock:
        factory = _factories.get(client)
        if factory is None:
            factory = _factories[client] = SharedInformerFactory()
        return factory


def informer_for(api: Api[K], config: WatcherConfig, *, shared: bool = True,
                 transform: Optional[Callable[[K], K]] = None,
                 clock: Clock = SYSTEM_CLOCK) -> SharedInformer[K]:
    """The shared informer for ``api`` and ``config`` (its Client's), or a private one when
    ``shared`` is False, a ``transform`` changes what the store holds, or ``api`` has no
    Client (a test's fake)."""
    client = getattr(api, "client", None)
    if not shared or transform is not None or client is None:
        return SharedInformer(api, config, transform=transform, clock=clock)
    return shared_informers(client).informer(api, config)


def subscribe_to(api: Api[K], config: WatcherConfig, handler: Optional[Handler] = None, *,
                 informer: Optional[SharedInformer[K]] = None, shared: bool = True,
                 transform: Optional[Callable[[K], K]] = None,
                 on_error: Optional[Callable[[BaseException], None]] = None,
                 name: Optional[str] = None, clock: Clock = SYSTEM_CLOCK) -> Subscription:
    """Subscribe to ``informer`` (or the one ``informer_for`` gives), taking a new one if
    it stopped meanwhile: its last consumer may leave between the lookup and the join."""
    while True:
        if informer is None or informer.stopped:
            informer = informer_for(api, config, shared=shared, transform=transform,
                                    clock=clock)
        try:
            return informer.subscribe(handler, on_error=on_error, name=name)
        except InformerStopped:
            informer = None
