"""The controller: watchers feed a work queue; a pool of worker threads reconciles.

kube-runtime's ``Controller`` with client-go's work-queue guarantees: a key waiting is
queued once; one key is never reconciled by two workers at once; a change during a
reconcile runs it once more afterwards; errors back off per key (5 ms doubling to
1000 s by default), reset on success. Keys from an initial list or a resync wait behind
live changes (the queue's priorities), so a restart does not delay what happens meanwhile.
"""

from __future__ import annotations

import logging
import os
import queue as _queue
import signal
import threading
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Generic,
    Iterable,
    List,
    Optional,
    Tuple,
    TypeVar,
)

import attrs

from kubesync.core.clock import SYSTEM_CLOCK, Clock
from kubesync.core.objectref import ObjectRef
from kubesync.core.params import Selector, selector_string
from kubesync.errors import KubeError
from kubesync.runtime.informer import SharedInformer, Subscription, informer_for, subscribe_to
from kubesync.runtime.queue import PRIORITY_LOW, PRIORITY_NORMAL, QueueShutDown, WorkQueue
from kubesync.runtime.reconcile import Deadline, TerminalError, _set_deadline
from kubesync.runtime.sharding import (
    Sharder,
    Sharding,
    delete_member_lease,
    labels_of,
    release,
)
from kubesync.runtime.store import Store, StoreStopped
from kubesync.runtime.threads import join_thread, unique_name
from kubesync.runtime.watcher import (
    Apply,
    Delete,
    InitApply,
    PredicateFilter,
    WatcherConfig,
    watcher_config,
)

if TYPE_CHECKING:
    from kubesync.client.api import Api
    from kubesync.runtime.leader import LeaderElector

__all__ = ["Action", "Controller", "ObjectRef", "default_error_policy"]

log = logging.getLogger("kubesync.runtime.controller")

K = TypeVar("K")
C = TypeVar("C")

#: How long a graceful stop lets reconciles in flight finish before giving up on them.
SHUTDOWN_TIMEOUT = 30.0
#: Workers poll for leadership and shutdown this often while idle.
_IDLE_POLL = 0.5


@attrs.frozen
class Action:
    """What a reconcile asks for next. Build with the class methods."""

    requeue_after: Optional[float] = None
    backoff: bool = False

    @classmethod
    def requeue(cls, after: float) -> Action:
        """Reconcile again after ``after`` seconds (or sooner, on a change)."""
        if after < 0:
            raise ValueError("requeue after a negative delay")
        return cls(requeue_after=after)

    @classmethod
    def await_change(cls) -> Action:
        """Reconcile again only when something changes."""
        return cls()

    @classmethod
    def retry_with_backoff(cls) -> Action:
        """From an error policy: retry after this key's growing backoff delay."""
        return cls(backoff=True)


def default_error_policy(obj: Any, error: BaseException, ctx: Any) -> Action:
    """Retry with the key's exponential backoff."""
    return Action.retry_with_backoff()


@attrs.define
class _Metrics:
    reconciles: int = 0
    errors: int = 0
    duration_sum: float = 0.0
    duration_max: float = 0.0
    concurrent_max: int = 0
    in_flight: int = 0
    terminal_errors: int = 0
    timeouts: int = 0
    shard_releases: int = 0
    shard_skipped: int = 0


class Controller(Generic[K]):
    """Reconcile every object of ``api`` (and on changes to related objects).

    ``reconcile(obj, ctx)`` gets the latest object from the controller's store and
    returns an ``Action``; an exception goes to ``error_policy(obj, error, ctx)``, which
    returns an ``Action`` (an error there is logged and the key backs off).

    ``run(...)`` blocks until SIGINT/SIGTERM or ``stop()``; ``start(...)`` runs in the
    background (for web apps). Thread-safe: ``stop()`` and ``reconcile_all()`` may be
    called from any thread, including a reconcile.

    Watch options come in ``config`` (a ``WatcherConfig``); ``label_selector`` and
    ``field_selector`` are shortcuts that override its fields. ``predicate(obj)``: skip
    changes that leave its value the same (e.g. ``lambda o: o.metadata.generation``); it
    remembers one value per live object, forgotten on delete and on a relist that no
    longer lists it.

    ``reconcile_timeout`` (seconds) gives each reconcile a cooperative deadline
    (``reconcile_deadline()``, see ``kubesync.runtime.reconcile``); one that overruns it is
    logged, counted and retried with backoff, and its key is never handed to another worker
    while it runs. ``debounce`` (seconds) batches a burst of changes to one object into one
    reconcile, at most that long after the first. Raise ``TerminalError`` from a reconcile
    for a failure not worth retrying.

    ``sharding`` (a ``Sharding``) spreads the objects over the replicas that run this
    controller with the same ``Sharding.name``: each reconciles, watches and caches only
    the objects labelled for it (see ``kubesync.runtime.sharding``). It replaces
    ``leader_elector``: every replica works, none stands by.
    Threads are named ``kubesync-controller-<plural>-<n>...``, ``n`` unique in the process.
    """

    def __init__(
        self,
        api: Api[K],
        *,
        config: Optional[WatcherConfig] = None,
        label_selector: Selector = None,
        field_selector: Selector = None,
        predicate: Optional[Callable[[K], Any]] = None,
        resync_period: Optional[float] = None,
        queue: Optional[WorkQueue[ObjectRef]] = None,
        transform: Optional[Callable[[K], K]] = None,
        clock: Clock = SYSTEM_CLOCK,
        shared: bool = True,
        reconcile_timeout: Optional[float] = None,
        debounce: Optional[float] = None,
        sharding: Optional[Sharding] = None,
    ):
        if reconcile_timeout is not None and reconcile_timeout <= 0:
            raise ValueError("reconcile_timeout must be positive (or None for no deadline)")
        if debounce is not None and debounce < 0:
            raise ValueError("debounce must not be negative")
        self.api = api
        self._reconcile_timeout = reconcile_timeout
        self._debounce = debounce or 0.0
        # When each reconcile in flight started, by worker thread name: metrics() counts the
        # ones past their deadline without a watchdog thread.
        self._running_since: Dict[str, float] = {}
        self._config = watcher_config(config, label_selector=label_selector,
                                      field_selector=field_selector)
        self._sharding = sharding
        self._sharder: Optional[Sharder] = None
        # The sharder labels what the unsharded query matches; our watch, only our part.
        self._unsharded_config = self._config
        if sharding is not None:
            own = selector_string(self._config.label_selector)
            mine = f"{own},{sharding.selector}" if own else sharding.selector
            self._config = watcher_config(self._config, label_selector=mine)
        self._changed: Optional[PredicateFilter[K]] = (
            PredicateFilter(predicate) if predicate is not None else None
        )
        self._resync_period = resync_period
        self._clock = clock
        self.queue: WorkQueue[ObjectRef] = (
            queue if queue is not None else WorkQueue(api.resource.plural, clock=clock)
        )
        # The watches come from the client's shared informers (one per query, shared with
        # other controllers and reflectors); ``shared=False`` or a transform: private ones.
        self._shared = shared
        self._transform = transform
        self._informer: SharedInformer[K] = informer_for(
            api, self._config, shared=shared, transform=transform, clock=clock)
        self._relations: List[Tuple[Api[Any], WatcherConfig, Callable[[Any], None], str]] = []
        self._subscriptions: List[Subscription] = []
        self.name = unique_name(f"kubesync-controller-{api.resource.plural}")
        self._threads: List[threading.Thread] = []
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        # One teardown at a time; a second stop() waits for the first, then finds it done.
        self._teardown_lock = threading.Lock()
        self._stopper: Optional[threading.Thread] = None
        self._metrics = _Metrics()
        self._elector: Optional[LeaderElector] = None
        self._started = False
        self._started_pid = os.getpid()

    @property
    def store(self) -> Store[K]:
        """The controller's cache of the main resource (shared: do not modify objects)."""
        return self._informer.store

    # -- relations ----------------------------------------------------------------------

    def owns(self, child_api: Api[Any], config: Optional[WatcherConfig] = None, *,
             label_selector: Selector = None,
             field_selector: Selector = None,
             metadata_only: Optional[bool] = None) -> Controller[K]:
        """Reconcile the owner when a child whose controller ownerReference points at one
        of our objects changes (or goes). Options as for ``watches``; ``metadata_only``
        suits owns well, since the ownerReferences are all it reads."""
        owner = self.api.resource

        def mapper(child: Any) -> List[ObjectRef]:
            refs = getattr(child.metadata, "owner_references", None) or []
            ns = child.metadata.namespace if owner.namespaced else None
            return [
                ObjectRef(r.name, ns)
                for r in refs
                if r.controller and r.kind == owner.kind and r.api_version == owner.api_version
            ]

        return self.watches(child_api, mapper, config, label_selector=label_selector,
                            field_selector=field_selector, metadata_only=metadata_only)

    def watches(self, other_api: Api[Any], mapper: Callable[[Any], Iterable[ObjectRef]],
                config: Optional[WatcherConfig] = None, *,
                label_selector: Selector = None,
                field_selector: Selector = None,
                metadata_only: Optional[bool] = None) -> Controller[K]:
        """Reconcile the objects ``mapper(obj)`` names when an ``other_api`` object changes.

        ``config`` says how to watch ``other_api``; the keywords override its fields. With
        ``metadata_only`` the watch carries ``PartialObjectMetadata`` (name, labels,
        annotations, ownerReferences...) instead of whole objects, so ``mapper`` sees only
        ``.metadata``: far less memory and traffic for big kinds such as Secrets or Pods.
        """
        if self._started:
            raise KubeError("add relations before the controller starts")

        def sink(ev: Any) -> None:
            if isinstance(ev, (InitApply, Apply, Delete)):
                try:
                    refs = list(mapper(ev.object))
                except Exception:
                    log.exception("a watches() mapper failed")
                    return
                for ref in refs:
                    self._enqueue(ObjectRef(*ref), initial=isinstance(ev, InitApply))

        config = watcher_config(config, label_selector=label_selector,
                                field_selector=field_selector, metadata_only=metadata_only)
        name = unique_name(f"{self.name}-{other_api.resource.plural}")
        self._relations.append((other_api, config, sink, name))
        return self

    def reconcile_all(self) -> None:
        """Queue every object in the store (e.g. after a configuration change), behind the
        live changes (at the initial list's low priority)."""
        for ref in self.store.keys():
            self.queue.add(ref, PRIORITY_LOW)

    def _on_main_event(self, ev: Any) -> None:
        # The informer wrote the store before handing the event on: reconcile reads it.
        if (self._sharding is not None and isinstance(ev, (InitApply, Apply))
                and self._sharding.drain_label in labels_of(ev.object)):
            # Asked to let it go: a label change no predicate would let through.
            self.queue.add(ObjectRef.of(ev.object), PRIORITY_NORMAL)
            return
        if self._changed is not None and not self._changed(ev):
            return
        if isinstance(ev, (InitApply, Apply)):
            self._enqueue(ObjectRef.of(ev.object), initial=isinstance(ev, InitApply))

    def _enqueue(self, ref: ObjectRef, *, initial: bool) -> None:
        """A list's keys go in at once at low priority (a debounce would only delay them);
        a live change at normal priority, after the debounce window if there is one."""
        if initial:
            self.queue.add(ref, PRIORITY_LOW)
        elif self._debounce:
            self.queue.add_debounced(ref, self._debounce, PRIORITY_NORMAL)
        else:
            self.queue.add(ref, PRIORITY_NORMAL)

    # -- running ------------------------------------------------------------------------

    def start(
        self,
        reconcile: Callable[[K, C], Optional[Action]],
        error_policy: Callable[[K, BaseException, C], Action] = default_error_policy,
        context: Any = None,
        *,
        workers: int = 1,
        leader_elector: Optional[LeaderElector] = None,
    ) -> Controller[K]:
        """Start watchers and ``workers`` worker threads in the background."""
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if self._sharding is not None and leader_elector is not None:
            raise KubeError("a sharded controller takes no leader_elector: every replica "
                            "works on its own shard (the sharder elects itself)")
        with self._lock:
            if self._started:
                raise KubeError("this controller was started already")
            self._started = True
        self._elector = leader_elector
        self._started_pid = os.getpid()
        if self._sharding is not None:
            # Our own Lease is our membership: workers pick keys only while it is renewed.
            self._elector = self._sharding.member_elector(self.api.client, self._clock)
            self._sharder = Sharder(self.api, self._unsharded_config, self._sharding,
                                    clock=self._clock, shared=self._shared)
        if self._elector is not None:
            self._elector.start()
        main = subscribe_to(self.api, self._config, self._on_main_event,
                            informer=self._informer, shared=self._shared,
                            transform=self._transform, name=self.name, clock=self._clock)
        self._informer = main.informer  # a new one if another consumer stopped ours
        self.store._filled_in_background(None)  # a forked child must not trust it
        self._subscriptions.append(main)
        for other_api, config, sink, name in self._relations:
            self._subscriptions.append(subscribe_to(other_api, config, sink, shared=self._shared,
                                                    name=name, clock=self._clock))
        for i in range(workers):
            t = threading.Thread(
                target=self._work, args=(reconcile, error_policy, context),
                name=f"{self.name}-worker-{i}", daemon=True,
            )
            self._threads.append(t)  # before it runs: stop() looks for its caller here
            t.start()
        if self._resync_period:
            t = threading.Thread(target=self._resync, name=f"{self.name}-resync",
                                 daemon=True)
            self._threads.append(t)
            t.start()
        if self._sharder is not None:
            self._sharder.start()
        return self

    def run(
        self,
        reconcile: Callable[[K, C], Optional[Action]],
        error_policy: Callable[[K, BaseException, C], Action] = default_error_policy,
        context: Any = None,
        *,
        workers: int = 1,
        leader_elector: Optional[LeaderElector] = None,
        shutdown_timeout: float = SHUTDOWN_TIMEOUT,
    ) -> None:
        """Run until SIGINT/SIGTERM (in the main thread) or ``stop()``; then stop gracefully."""
        restore = self._install_signals()
        try:
            self.start(reconcile, error_policy, context, workers=workers,
                       leader_elector=leader_elector)
            self._stopping.wait()
        finally:
            self.stop(shutdown_timeout)
            restore()

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum: int, frame: Any) -> None:
            log.info("signal %s: stopping the controller", signum)
            self._stopping.set()

        for s in previous:
            signal.signal(s, handler)

        def restore() -> None:
            for s, h in previous.items():
                signal.signal(s, h)

        return restore

    def stop(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Stop taking work, let reconciles in flight finish (up to ``timeout``), stop the
        watchers and the leader elector (releasing its lease), join every thread.

        Called from one of the controller's own threads (a reconcile), it only signals and
        returns: the rest runs in a thread of its own once that reconcile is done, since a
        thread cannot wait for itself. A thread still running after ``timeout`` is logged.
        """
        self._stopping.set()
        if threading.current_thread() in self._threads:
            self.queue.shutdown()  # no new work; the reconciles in flight finish
            with self._lock:
                if self._stopper is None:
                    self._stopper = threading.Thread(
                        target=self._teardown, args=(timeout,), name=f"{self.name}-stopper",
                        daemon=True)
                    self._stopper.start()
            return
        self._teardown(timeout)

    def _teardown(self, timeout: float) -> None:
        with self._teardown_lock:
            if self._stopped.is_set():
                return
            clock = self._clock
            deadline = clock.monotonic() + timeout
            self.queue.shutdown(drain=True, timeout=timeout)
            for t in self._threads:
                join_thread(t, max(0.0, deadline - clock.monotonic()), log)
            for sub in self._subscriptions:
                sub.stop(max(0.0, deadline - clock.monotonic()))
            if self._sharder is not None:
                self._sharder.stop()  # its own bound: the label writes in flight
            if self._elector is not None:
                self._elector.stop()
            if (self._sharding is not None and self._started
                    and os.getpid() == self._started_pid):
                # Nothing of ours runs any more: let the sharder move our objects now,
                # instead of a lease duration later. (Not from a forked child: the Lease
                # is its parent's, which still works under it.)
                delete_member_lease(self.api.client, self._sharding)
            self._stopped.set()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def ready(self) -> bool:
        """Started, not stopping, its cache complete, and leading or standing by (a replica
        waiting for the lease is ready: it takes over at once when it wins)."""
        if not self._started or self._stopping.is_set() or not self.store.is_ready:
            return False
        return self._elector is None or self._elector.running

    def healthy(self) -> bool:
        """Started, not stopping, and every watcher and worker thread still alive."""
        if not self._started or self._stopping.is_set():
            return False
        if self._sharder is not None and not self._sharder.alive:
            return False
        subs = self._subscriptions
        return all(s.alive for s in subs) and all(t.is_alive() for t in self._threads)

    # -- workers ------------------------------------------------------------------------

    def _work(self, reconcile: Callable[..., Any], error_policy: Callable[..., Any],
              ctx: Any) -> None:
        while not self._stopping.is_set():
            # As client-go's WaitForCacheSync: a key queued by a relation before our own
            # store is complete would find nothing to reconcile and be lost.
            try:
                if not self.store.wait_until_ready(_IDLE_POLL):
                    continue
            except StoreStopped:
                return
            if self._elector is not None and not self._elector.wait_for_leadership(_IDLE_POLL):
                continue
            try:
                item = self.queue.get(timeout=_IDLE_POLL)
            except QueueShutDown:
                return
            except _queue.Empty:
                continue
            with item as ref:
                if self._elector is not None and not self._elector.is_leader:
                    # Not ours to do now; keep it for the next leader.
                    self.queue.add(ref, item.priority)
                    continue
                self._reconcile_one(ref, item.priority, reconcile, error_policy, ctx)

    def _reconcile_one(self, ref: ObjectRef, priority: int, reconcile: Callable[..., Any],
                       error_policy: Callable[..., Any], ctx: Any) -> None:
        obj = self.store.get(ref.name, ref.namespace)
        if obj is None:
            self.queue.forget(ref)  # gone: nothing to reconcile
            return
        if self._sharding is not None and not self._own(ref, obj):
            return
        worker = threading.current_thread().name
        started = self._clock.monotonic()
        with self._lock:
            m = self._metrics
            m.in_flight += 1
            m.concurrent_max = max(m.concurrent_max, m.in_flight)
            self._running_since[worker] = started
        timeout = self._reconcile_timeout
        _set_deadline(Deadline(timeout, self._clock) if timeout is not None else None)
        failed = terminal = False
        action: Optional[Action] = None
        try:
            action = reconcile(obj, ctx)
        except TerminalError as error:
            failed = terminal = True
            log.error("reconcile %s failed for good, not retrying until it changes: %s",
                      ref, error, exc_info=error.__cause__ is not None)
        except Exception as error:
            failed = True
            log.warning("reconcile %s failed: %s", ref, error,
                        exc_info=not isinstance(error, KubeError))
            try:
                action = error_policy(obj, error, ctx)
            except Exception:
                log.exception("error_policy failed for %s", ref)
                action = Action.retry_with_backoff()
        finally:
            _set_deadline(None)
            took = self._clock.monotonic() - started
            overran = timeout is not None and took > timeout
            with self._lock:
                del self._running_since[worker]
                m.in_flight -= 1
                m.reconciles += 1
                m.errors += failed
                m.terminal_errors += terminal
                m.timeouts += overran
                m.duration_sum += took
                m.duration_max = max(m.duration_max, took)
        if terminal:
            # No backoff kept, and no requeue an earlier run asked for: only a change (or a
            # resync) brings the key back.
            self.queue.forget(ref)
            self.queue.cancel_earlier_delays(ref)
            return
        if overran:
            log.warning("reconcile %s took %.3f s, past its %s s timeout; retrying with "
                        "backoff", ref, took, timeout)
            if not failed:
                # Whatever it returned came too late to trust: its deadline is the contract.
                action = Action.retry_with_backoff()
        self._schedule(ref, priority, action)

    def _own(self, ref: ObjectRef, obj: Any) -> bool:
        """Whether ``obj`` is ours to reconcile now; if a drain asks for it, let it go.

        The queue hands a key to one worker at a time, so when this runs no reconcile of
        the key is in flight here: removing our label is then safe."""
        sharding = self._sharding
        assert sharding is not None
        labels = labels_of(obj)
        if labels.get(sharding.shard_label) != sharding.member_id:
            # Moved away while our store has not heard yet: never reconcile it.
            self.queue.forget(ref)
            with self._lock:
                self._metrics.shard_skipped += 1
            return False
        if sharding.drain_label not in labels:
            return True
        try:
            released = release(self.api, obj, sharding)
        except KubeError as e:
            log.warning("letting %s go to another shard failed: %s", ref, e)
            self.queue.add_rate_limited(ref, PRIORITY_NORMAL)
            return False
        self.queue.forget(ref)
        self.queue.cancel_earlier_delays(ref)
        if released:
            log.debug("let %s go to another shard", ref)
            with self._lock:
                self._metrics.shard_releases += 1
        return False

    def _schedule(self, ref: ObjectRef, priority: int, action: Optional[Action]) -> None:
        if action is not None and action.backoff:
            self.queue.add_rate_limited(ref, priority)
            return
        self.queue.forget(ref)
        if action is not None and action.requeue_after is not None:
            self.queue.add_after(ref, action.requeue_after, priority)

    def _resync(self) -> None:
        assert self._resync_period
        while not self._clock.wait(self._stopping, self._resync_period):
            self.reconcile_all()

    # -- metrics ------------------------------------------------------------------------

    def metrics(self) -> Dict[str, Any]:
        """A snapshot: reconciles, errors (``terminal_errors`` among them), ``timeouts``
        (reconciles that returned past their deadline), ``overrunning`` (reconciles running
        past it now), durations, queue depth, ``predicate_memory`` (objects the predicate
        remembers a value for)."""
        now = self._clock.monotonic()
        timeout = self._reconcile_timeout
        with self._lock:
            m = attrs.asdict(self._metrics)
            m["overrunning"] = 0 if timeout is None else sum(
                1 for since in self._running_since.values() if now - since > timeout)
        m["predicate_memory"] = len(self._changed) if self._changed is not None else 0
        m["queue_depth"] = len(self.queue)
        m["queue_processing"] = self.queue.processing
        m["queue_delayed"] = self.queue.delayed
        m["store_size"] = len(self.store)
        m["leading"] = self._elector.is_leader if self._elector is not None else True
        if self._sharding is not None:
            m["shard_member"] = self._sharding.member_id
            m["shard_objects"] = m["store_size"]
            sharder = self._sharder.metrics() if self._sharder is not None else {}
            m["sharder_leading"] = bool(sharder.get("leading", False))
            m["shard_members"] = sharder.get("members", 0)
            m["shard_assignments"] = sharder.get("assignments", 0)
            m["shard_reassignments"] = sharder.get("reassignments", 0)
            m["shard_drains"] = sharder.get("drains", 0)
            m["shard_conflicts"] = sharder.get("conflicts", 0)
        return m
