"""The watcher: LIST then WATCH, forever, as explicit states driven by a named thread.

``step(api, config, state)`` is pure logic over an ``Api``: it makes one call (a page of
the list, the start of a watch, or the next event of one) and returns the events to emit
and the next state. Recovery is a change of state: 410 Gone -> ``Empty`` (relist); a watch
the server ended -> ``InitListed(rv)`` (resume without relisting). The thread only loops
over ``step()``, backs off on errors and hands events to a bounded queue (or a sink).
See https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import warnings
import weakref
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Generic,
    Hashable,
    Iterator,
    List,
    Optional,
    Set,
    Tuple,
    TypeVar,
    Union,
)

import attrs

from kubesync.client.features import Feature
from kubesync.core import forkgate
from kubesync.core.backoff import ExponentialBackoff
from kubesync.core.clock import SYSTEM_CLOCK, Clock
from kubesync.core.events import ADDED, BOOKMARK, DELETED, MODIFIED
from kubesync.core.objectref import identity
from kubesync.core.params import DEFAULT_PAGE_SIZE, Selector
from kubesync.errors import ApiError, Gone, KubeError
from kubesync.runtime.threads import join_thread, unique_name

if TYPE_CHECKING:
    from kubesync.client.api import Api

__all__ = [
    "Apply",
    "Delete",
    "Event",
    "Init",
    "InitApply",
    "InitDone",
    "InitialList",
    "PredicateFilter",
    "WatchEndedEarly",
    "Watcher",
    "WatcherConfig",
    "applied_objects",
    "predicate_filter",
    "step",
    "watch",
    "watcher_config",
]

log = logging.getLogger("kubesync.runtime.watcher")

K = TypeVar("K")

#: client-go's reflector asks for watches of 5 to 10 minutes (a random length, so that
#: many clients do not reconnect in step after an apiserver restart).
MIN_WATCH_TIMEOUT = 300
#: How many events may wait for a slow consumer before the thread stops reading.
QUEUE_SIZE = 512
#: The API server sends a watch that asked for bookmarks one about every minute (its watch
#: cache's bookmark timer), so two minutes without a byte means the connection is dead
#: (a proxy or load balancer that stopped forwarding without closing it): reconnect then,
#: instead of after the read timeout of timeoutSeconds + 30 s (up to 10.5 minutes).
IDLE_TIMEOUT = 120.0
#: client-go's reflector: a watch that ends within a second without a single event is
#: treated as an error and backed off, so a server (or proxy) that closes every watch at
#: once does not get a new one in a tight loop.
MIN_HEALTHY_WATCH = 1.0
#: The annotation on the bookmark that ends a streamed initial list (WatchList).
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
#: Streaming lists (WatchList): "auto" streams on servers that have them on by default,
#: ``Feature.STREAMING_LIST`` (1.34; the gate was on in 1.32 and off again in 1.33). Older
#: servers reject ``sendInitialEvents`` (then the watcher lists) or, before 1.27, ignore
#: it and never send the bookmark that ends the list.
STREAMING_LIST_SINCE = Feature.STREAMING_LIST.since
#: From 1.34 the API server serves consistent lists from its watch cache (it waits until
#: the cache has caught up with etcd), so a consistent initial list is as cheap as rv "0"
#: and never stale; older servers read a consistent list from etcd, paged.
CONSISTENT_LIST_SINCE = (1, 34)


class InitialList:
    """How a watcher gets the initial state, as kube-rs's ``InitialListStrategy``.

    ``LIST`` pages through a LIST and then watches from its resourceVersion; ``STREAMING``
    opens one watch with ``sendInitialEvents=true`` whose first events are the current
    objects, ended by a bookmark (WatchList: one request, objects decoded one at a time
    instead of a page of 500 held at once); ``AUTO`` streams where the server supports it
    and lists elsewhere (or when the server refuses the streaming watch).
    """

    AUTO = "auto"
    LIST = "list"
    STREAMING = "streaming"


class WatchEndedEarly(KubeError):
    """The server ended a watch within a second without sending a single event.

    Treated as an error (logged, passed to ``on_error``, backed off) so that a server or a
    proxy that closes every watch at once does not get new ones in a tight loop.
    """


# -- events, as kube-rs's watcher::Event ------------------------------------------------


@attrs.frozen
class Init:
    """A (re)list begins: what follows until ``InitDone`` is the complete state."""


@attrs.frozen
class InitApply(Generic[K]):
    """One object of the (re)list."""

    object: K


@attrs.frozen
class InitDone:
    """The (re)list is complete; objects not seen since ``Init`` are gone."""

    resource_version: Optional[str] = None


@attrs.frozen
class Apply(Generic[K]):
    """An object was added or changed while watching."""

    object: K


@attrs.frozen
class Delete(Generic[K]):
    """An object was deleted while watching (its last state)."""

    object: K


Event = Union[Init, InitApply[K], InitDone, Apply[K], Delete[K]]


# -- states -----------------------------------------------------------------------------


@attrs.frozen
class Empty:
    """Nothing current: the next step starts a (re)list, no older than ``resource_version``
    (the last one seen, when there was one)."""

    resource_version: Optional[str] = None


@attrs.frozen
class InitPage:
    """Listing: the next page is fetched with ``continue_`` (the first one with none)."""

    continue_: Optional[str] = None
    resource_version: Optional[str] = None


@attrs.frozen
class InitListed:
    """Listed (or a watch ended): the next step watches from ``resource_version``."""

    resource_version: str


@attrs.frozen
class Watching:
    """Reading a watch; ``resource_version`` is the last one seen. ``opened_at`` (clock
    seconds) and ``got_events`` tell a watch the server ended at once from a healthy one."""

    resource_version: str
    stream: Any = attrs.field(eq=False, repr=False)
    events: Iterator[Any] = attrs.field(eq=False, repr=False)
    opened_at: float = attrs.field(default=0.0, eq=False, repr=False)
    got_events: bool = attrs.field(default=False, eq=False, repr=False)


@attrs.frozen
class InitStreaming:
    """A streaming initial list: the watch whose first events are the current objects,
    until the bookmark annotated ``k8s.io/initial-events-end``. ``stream`` is None until
    the watch is opened; ``resource_version`` is the floor asked for (the last one seen)."""

    resource_version: Optional[str] = None
    stream: Any = attrs.field(default=None, eq=False, repr=False)
    events: Optional[Iterator[Any]] = attrs.field(default=None, eq=False, repr=False)


State = Union[Empty, InitPage, InitListed, Watching, InitStreaming]


@attrs.frozen(kw_only=True, init=False)
class WatcherConfig:
    """What to watch, and how: the one set of options wherever a watch starts (``watcher``,
    ``start_reflector``, ``Controller`` and its ``owns``/``watches``). Keyword-only."""

    label_selector: Selector = None
    field_selector: Selector = None
    #: Objects per LIST page (``limit``): 500, as client-go's reflector pages.
    page_size: int = DEFAULT_PAGE_SIZE
    bookmarks: bool = True
    #: Watch ``PartialObjectMetadata`` instead of whole objects (cheap for big kinds).
    metadata_only: bool = False
    #: Server-side watch length in seconds (``timeoutSeconds``, as ``Api.watch`` names it);
    #: None picks 5-10 minutes at random per watch.
    timeout_seconds: Optional[int] = None
    #: As client-go's reflector: the first list asks for resourceVersion "0", which the
    #: API server answers from its watch cache (one response, no etcd read); a relist asks
    #: for a state no older than the last one seen, so the store never goes back in time
    #: (with several API servers whose caches lag differently). False: always a
    #: consistent list from etcd, paged. None (the default): consistent where the server
    #: serves consistent lists from its cache (1.34 on, as cheap as "0" and never stale),
    #: "0" on older servers, where it is the only read that spares etcd.
    list_from_cache: Optional[bool] = None
    #: How the initial state comes: ``InitialList.AUTO`` (a streaming list where the
    #: server offers it, else LIST), ``LIST`` or ``STREAMING``.
    initial_list: str = attrs.field(default=InitialList.AUTO)
    #: With bookmarks on, a watch that delivers no byte for this many seconds is taken for
    #: a dead connection and reopened from its last resourceVersion (the server sends a
    #: bookmark about every minute). None: only the read timeout, timeoutSeconds + 30 s.
    idle_timeout: Optional[float] = IDLE_TIMEOUT

    @initial_list.validator
    def _known_strategy(self, attribute: Any, value: str) -> None:
        known = (InitialList.AUTO, InitialList.LIST, InitialList.STREAMING)
        if value not in known:
            raise ValueError(f"WatcherConfig(initial_list=) is one of {', '.join(known)}, "
                             f"not {value!r}")

    def __init__(self, *args: Any, watch_timeout: Optional[int] = None, **kwargs: Any) -> None:
        if args:
            warnings.warn("WatcherConfig takes keyword arguments only; positional ones are "
                          "deprecated", DeprecationWarning, stacklevel=2)
            names = ["label_selector", "field_selector", "page_size", "bookmarks",
                     "metadata_only", "timeout_seconds", "list_from_cache",
                     "initial_list", "idle_timeout"]
            if len(args) > len(names):
                raise TypeError(f"WatcherConfig takes at most {len(names)} options")
            for name, value in zip(names, args):
                if name in kwargs:
                    raise TypeError(f"WatcherConfig got {name!r} twice")
                kwargs[name] = value
        if watch_timeout is not None:
            warnings.warn("WatcherConfig(watch_timeout=) is now timeout_seconds=",
                          DeprecationWarning, stacklevel=2)
            kwargs.setdefault("timeout_seconds", watch_timeout)
        self.__attrs_init__(**kwargs)

    @property
    def watch_timeout(self) -> Optional[int]:
        """Deprecated name of ``timeout_seconds``."""
        warnings.warn("WatcherConfig.watch_timeout is now timeout_seconds",
                      DeprecationWarning, stacklevel=2)
        return self.timeout_seconds


def watcher_config(config: Optional[WatcherConfig] = None, **options: Any) -> WatcherConfig:
    """``config`` (default: the defaults) with the ``options`` that are not None set."""
    base = config if config is not None else WatcherConfig()
    given = {k: v for k, v in options.items() if v is not None}
    return attrs.evolve(base, **given) if given else base


def _watch_timeout(config: WatcherConfig) -> int:
    if config.timeout_seconds is not None:
        return config.timeout_seconds
    return int(MIN_WATCH_TIMEOUT * (1 + random.random()))


def _rv_of(page_or_event: Any) -> Optional[str]:
    meta = getattr(page_or_event, "metadata", None)
    rv = getattr(meta, "resource_version", None)
    return rv if isinstance(rv, str) else None


def step(api: Api[Any], config: WatcherConfig, state: State,
         clock: Clock = SYSTEM_CLOCK) -> Tuple[List[Any], State]:
    """One call's worth of progress: the events it yields and the next state.

    Raises what the call raised; the caller decides the next state on errors with
    ``recover()``. ``config.initial_list`` "auto" lists here: the ``Watcher`` thread
    resolves it against the server first (``resolve_config``).
    """
    if isinstance(state, Empty):
        if config.initial_list == InitialList.STREAMING:
            return [Init()], InitStreaming(state.resource_version)
        return [Init()], InitPage(None, state.resource_version)
    if isinstance(state, InitPage):
        lister = api.list_metadata if config.metadata_only else api.list
        floor: dict = {}
        if state.continue_ is None and config.list_from_cache is not False:
            if state.resource_version:
                floor = {"resource_version": state.resource_version,
                         "resource_version_match": "NotOlderThan"}
            elif config.list_from_cache is None or config.list_from_cache:
                # None reaches here unresolved (no server to ask): the old default, "0".
                floor = {"resource_version": "0"}
        page = lister(
            label_selector=config.label_selector,
            field_selector=config.field_selector,
            limit=config.page_size,
            continue_=state.continue_,
            **floor,
        )
        events: List[Any] = [InitApply(obj) for obj in page.items]
        cont = page.metadata.continue_ if page.metadata is not None else None
        if cont:
            return events, InitPage(cont, state.resource_version)
        rv = _rv_of(page) or ""
        events.append(InitDone(rv))
        return events, InitListed(rv)
    if isinstance(state, InitStreaming):
        return _step_streaming(api, config, state, clock)
    if isinstance(state, InitListed):
        stream = _open_watch(api, config, state.resource_version)
        return [], Watching(state.resource_version, stream, iter(stream), clock.monotonic())
    if isinstance(state, Watching):
        try:
            ev = next(state.events)
        except StopIteration:
            if not state.got_events and clock.monotonic() - state.opened_at < MIN_HEALTHY_WATCH:
                raise WatchEndedEarly(
                    f"the server ended the watch of {api.resource.plural} at once, without "
                    f"an event") from None
            # The server ended the watch (its timeout): resume from where we are.
            return [], InitListed(state.resource_version)
        if ev.type not in _KNOWN_TYPES:
            log.warning("skipping a watch event of unknown type %r for %s", ev.type,
                        api.resource.plural)
            return [], attrs.evolve(state, got_events=True)
        rv = ev.resource_version or state.resource_version
        nxt = Watching(rv, state.stream, state.events, state.opened_at, True)
        if ev.type == BOOKMARK:
            return [], nxt
        if ev.type == DELETED:
            return [Delete(ev.object)], nxt
        return [Apply(ev.object)], nxt
    raise TypeError(f"not a watcher state: {state!r}")  # pragma: no cover


_KNOWN_TYPES = frozenset({ADDED, MODIFIED, DELETED, BOOKMARK})
#: What a server that does not take ``sendInitialEvents`` answers: 400 Bad Request or 422
#: Invalid ("sendInitialEvents is forbidden ..." with the WatchList gate off), 403 where a
#: proxy filters the query.
_STREAMING_REFUSED = frozenset({400, 403, 422})


def _open_watch(api: Api[Any], config: WatcherConfig, rv: Optional[str],
                **streaming: Any) -> Any:
    options: Dict[str, Any] = dict(
        resource_version=rv,
        label_selector=config.label_selector,
        field_selector=config.field_selector,
        timeout_seconds=_watch_timeout(config),
        bookmarks=config.bookmarks or bool(streaming),  # a streamed list ends in one
        metadata_only=config.metadata_only,
        **streaming,
    )
    if options["bookmarks"] and config.idle_timeout is not None:
        options["read_timeout"] = config.idle_timeout
    return api.watch(**options)


def _step_streaming(api: Api[Any], config: WatcherConfig, state: InitStreaming,
                    clock: Clock) -> Tuple[List[Any], State]:
    """The streaming initial list: open the watch, then read its initial events (ADDED)
    until the bookmark that ends them; that bookmark's resourceVersion is the list's."""
    if state.stream is None or state.events is None:
        # No resourceVersion with NotOlderThan: a consistent snapshot (served from the
        # watch cache once it has caught up); after a 410, no older than the last seen.
        stream = _open_watch(api, config, state.resource_version or "",
                             send_initial_events=True,
                             resource_version_match="NotOlderThan")
        return [], InitStreaming(state.resource_version, stream, iter(stream))
    try:
        ev = next(state.events)
    except StopIteration:
        # Ended before the list was complete: start it over with a new Init (which
        # drops what was half-listed, so nothing deleted meanwhile survives).
        _close(state)
        return [], Empty(state.resource_version)
    if ev.type == BOOKMARK:
        annotations = ((ev.raw or {}).get("metadata") or {}).get("annotations") or {}
        rv = ev.resource_version or ""
        if annotations.get(INITIAL_EVENTS_END) == "true":
            return [InitDone(rv)], Watching(rv, state.stream, state.events,
                                            clock.monotonic(), True)
        return [], state
    if ev.type in (ADDED, MODIFIED):
        return [InitApply(ev.object)], state
    # The initial events are all ADDED; anything else before the end bookmark (DELETED,
    # an unknown type) says nothing about the current state: skipped.
    log.warning("skipping a %r event in the streamed initial list of %s", ev.type,
                api.resource.plural)
    return [], state


def resolve_config(api: Api[Any], config: WatcherConfig) -> WatcherConfig:
    """``config`` with "auto" choices made for ``api``'s server: the initial-list
    strategy and whether the first list reads from the cache (see the constants)."""
    if config.initial_list != InitialList.AUTO and config.list_from_cache is not None:
        return config
    version = server_version(api)
    changes: Dict[str, Any] = {}
    if config.initial_list == InitialList.AUTO:
        streaming = version is not None and version >= STREAMING_LIST_SINCE
        changes["initial_list"] = InitialList.STREAMING if streaming else InitialList.LIST
    if config.list_from_cache is None:
        # False: a consistent list (no resourceVersion), served from the cache from 1.34.
        changes["list_from_cache"] = not (version is not None
                                          and version >= CONSISTENT_LIST_SINCE)
    return attrs.evolve(config, **changes)


_versions: Dict[int, Optional[Tuple[int, int]]] = {}
_versions_lock = threading.Lock()
forkgate.renew_in_child(globals(), "_versions_lock", threading.Lock)


def server_version(api: Api[Any]) -> Optional[Tuple[int, int]]:
    """The (major, minor) of ``api``'s server from ``/version``, asked once per Client (a
    failure is not remembered); None when it cannot be told (then the watcher makes the
    choices every server takes)."""
    client = getattr(api, "client", None)
    if client is None:
        return None
    from kubesync.client.client import Client

    if isinstance(client, Client):  # the client's own cache, shared with Client.supports
        try:
            v = client.server_version()
        except Exception as e:  # no answer we can read: choose as for an old server
            log.info("could not tell the server's version (%s); listing with rv 0", e)
            return None
        return (v.major, v.minor)
    with _versions_lock:
        if id(client) in _versions:
            return _versions[id(client)]
    try:
        info = client.request("GET", "/version")
        major = int(str(info["major"]).rstrip("+"))
        minor = int(str(info["minor"]).rstrip("+"))
        found: Optional[Tuple[int, int]] = (major, minor)
    except Exception as e:  # no answer we can read: choose as for an old server, this once
        log.info("could not tell the server's version (%s); listing with rv 0", e)
        return None
    with _versions_lock:
        _versions[id(client)] = found
        weakref.finalize(client, _versions.pop, id(client), None)
    return found


def recover(state: State, error: BaseException) -> State:
    """The state to retry from after ``error``: 410 Gone relists from scratch; a broken
    watch resumes from its last resourceVersion; a failed list call is tried again."""
    _close(state)
    if isinstance(error, Gone):
        floor = (state.resource_version
                 if isinstance(state, (Watching, InitPage, InitStreaming)) else None)
        return Empty(floor)
    if isinstance(state, Watching):
        return InitListed(state.resource_version)
    if isinstance(state, InitStreaming):
        return Empty(state.resource_version)  # a new Init: the half-streamed list is void
    return state


def _close(state: State) -> None:
    if isinstance(state, (Watching, InitStreaming)) and state.stream is not None:
        try:
            state.stream.close()
        except Exception:  # closing a broken stream must not mask the real error
            log.debug("closing a watch failed", exc_info=True)


_SENTINEL = object()


class _SinkFailed(Exception):
    """A sink raised ``cause`` on an event: it missed that event, so the watcher relists."""

    def __init__(self, message: str, cause: Exception):
        super().__init__(message)
        self.cause = cause


class Watcher(Generic[K]):
    """A background thread that lists and watches, handing events over in order.

    Iterate it (in your own thread) for ``Init``/``InitApply``/``InitDone``/``Apply``/
    ``Delete`` events; the queue between is bounded, so a slow consumer makes the thread
    wait (and stop reading the stream) instead of growing memory. Errors are logged,
    passed to ``on_error`` and retried with exponential backoff; 410 Gone relists.
    ``stop()`` (or leaving the ``with`` block) ends the iteration and joins the thread.

    With ``sink=`` the thread calls ``sink(event)`` itself instead of queueing (used by
    the background reflector and the controller). A sink that raises has not taken the
    event (a store now missing it), so the watch ends and, after a backoff, a relist
    brings the sink up to date; the error goes to ``on_error`` like any other.
    The thread is named ``name``, by default ``kubesync-watcher-<plural>-<n>`` with a number
    no other thread of the process has (``unique_name``).
    """

    def __init__(
        self,
        api: Api[K],
        config: Optional[WatcherConfig] = None,
        *,
        backoff: Optional[ExponentialBackoff] = None,
        on_error: Optional[Callable[[BaseException], None]] = None,
        sink: Optional[Callable[[Any], None]] = None,
        queue_size: int = QUEUE_SIZE,
        name: Optional[str] = None,
        clock: Clock = SYSTEM_CLOCK,
    ):
        self.api = api
        self.config = config if config is not None else WatcherConfig()
        self._clock = clock
        self.backoff = backoff if backoff is not None else ExponentialBackoff(clock=clock)
        self._on_error = on_error
        self._sink = sink
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._state_lock = threading.Lock()
        self._state: State = Empty()
        self._thread: Optional[threading.Thread] = None
        self.name = name or unique_name(f"kubesync-watcher-{api.resource.plural}")
        # The thread's own: the config with "auto" resolved, and how many 410s in a row.
        self._config = self.config
        self._gone_streak = 0

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Watcher[K]:
        """Start the thread (iterating, or entering the ``with`` block, also does)."""
        if self._thread is None:
            if self._stop.is_set():
                raise KubeError("a stopped watcher cannot start again; make a new one")
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: Optional[float] = 30.0) -> None:
        """Stop the thread, close the open watch and join; the iteration then ends."""
        self._stop.set()
        with self._state_lock:
            _close(self._state)
        join_thread(self._thread, timeout, log)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Watcher[K]:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- consuming ------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Event[K]]:
        if self._sink is not None:
            raise KubeError("a watcher with a sink hands its events to the sink")
        self.start()
        while True:
            ev = self.next_event(timeout=None)
            if ev is None:
                return
            yield ev

    def next_event(self, timeout: Optional[float] = None) -> Optional[Event[K]]:
        """The next event, or None when stopped or after ``timeout`` seconds."""
        self.start()
        waited = 0.0
        while True:
            if self._stop.is_set() and self._queue.empty():
                return None
            slice_ = 0.25 if timeout is None else max(0.0, min(0.25, timeout - waited))
            try:
                item = self._queue.get(timeout=slice_)
            except queue.Empty:
                waited += slice_
                if timeout is not None and waited >= timeout:
                    return None
                continue
            if item is _SENTINEL:
                return None
            return item

    # -- the thread -----------------------------------------------------------------------

    def _emit(self, ev: Any) -> bool:
        """Hand one event over; False when stopped while waiting for room. A sink's
        failure raises ``_SinkFailed``."""
        if self._sink is not None:
            try:
                self._sink(ev)
            except Exception as e:
                raise _SinkFailed(f"the event sink failed on {type(ev).__name__}: "
                                  f"{type(e).__name__}: {e}", e) from e
            return not self._stop.is_set()
        while not self._stop.is_set():
            try:
                self._queue.put(ev, timeout=0.25)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        state: State = Empty()
        try:
            self._config = resolve_config(self.api, self.config)
            while not self._stop.is_set():
                try:
                    events, state = step(self.api, self._config, state, self._clock)
                except Exception as e:
                    state = self._failed(state, e)
                    continue
                with self._state_lock:
                    self._state = state
                if self._stop.is_set():
                    break
                if isinstance(state, Watching) and state.got_events:
                    self._gone_streak = 0  # the watch works: the next 410 relists at once
                try:
                    for ev in events:
                        if not self._emit(ev):
                            break
                except _SinkFailed as failed:  # the sink lacks an event: relist for it
                    _close(state)
                    log.error("%s: %s; relisting", self.name, failed)
                    state = self._failed(Empty(), failed.cause)
        finally:
            _close(state)
            with self._state_lock:
                self._state = Empty()
            self._stop.set()
            try:
                self._queue.put_nowait(_SENTINEL)
            except queue.Full:
                pass

    def _failed(self, state: State, error: Exception) -> State:
        nxt = recover(state, error)
        if (isinstance(state, InitStreaming) and isinstance(error, ApiError)
                and error.code in _STREAMING_REFUSED and self.config.initial_list
                == InitialList.AUTO):
            # The server does not take streaming lists (WatchList off by a feature gate):
            # list and watch from now on, at once; the error is not a failure to back off.
            log.info("%s: the server refused a streaming list (%s); listing instead",
                     self.name, error)
            listing: Dict[str, Any] = {"initial_list": InitialList.LIST}
            self._config = attrs.evolve(self._config, **listing)
            return nxt
        with self._state_lock:
            self._state = nxt
        if self._stop.is_set():
            return nxt
        if isinstance(error, Gone) and self._gone_streak == 0:
            # The resourceVersion expired: relist at once; again only after a backoff if
            # the relist meets 410 as well (a server that answers 410 to everything).
            self._gone_streak += 1
            log.info("%s: %s; relisting", self.name, error)
            delay = 0.0
        else:
            if isinstance(error, Gone):
                self._gone_streak += 1
            delay = self.backoff.next_delay()
            log.warning("%s: %s; retrying in %.2fs", self.name, error, delay,
                        exc_info=not isinstance(error, KubeError))
        if self._on_error is not None:
            try:
                self._on_error(error)
            except Exception:
                log.exception("%s: on_error hook failed", self.name)
        if delay:
            self._clock.wait(self._stop, delay)
        return nxt


def watch(
    api: Api[K],
    config: Optional[WatcherConfig] = None,
    *,
    label_selector: Selector = None,
    field_selector: Selector = None,
    page_size: Optional[int] = None,
    bookmarks: Optional[bool] = None,
    metadata_only: Optional[bool] = None,
    backoff: Optional[ExponentialBackoff] = None,
    on_error: Optional[Callable[[BaseException], None]] = None,
    queue_size: int = QUEUE_SIZE,
    clock: Clock = SYSTEM_CLOCK,
) -> Watcher[K]:
    """A ``Watcher`` over ``api`` (not yet started: iterate it or use ``with``).

    The resilient watch: it relists after ``410 Gone`` and resumes after a dropped
    connection; ``Api.watch()`` is one raw watch request. Options come in ``config``;
    the keywords are shortcuts that override its fields.
    """
    config = watcher_config(config, label_selector=label_selector,
                            field_selector=field_selector, page_size=page_size,
                            bookmarks=bookmarks, metadata_only=metadata_only)
    return Watcher(api, config, backoff=backoff, on_error=on_error, queue_size=queue_size,
                   clock=clock)


# -- helpers over event streams ----------------------------------------------------------


def applied_objects(events: Iterator[Event[K]]) -> Iterator[K]:
    """Only the objects that exist now (from ``InitApply`` and ``Apply``)."""
    for ev in events:
        if isinstance(ev, (InitApply, Apply)):
            yield ev.object


class PredicateFilter(Generic[K]):
    """Tells which events change ``predicate(obj)``: call it on each event in order.

    Remembers one value per live object, keyed by uid, so an object deleted and created
    again under its name (while a watch was down) counts as new. ``Delete`` forgets the
    object; a relist (``Init`` .. ``InitDone``) forgets every object it did not list.
    Not thread-safe: one event stream feeds it.
    """

    def __init__(self, predicate: Callable[[K], Any]) -> None:
        self.predicate = predicate
        self._last: Dict[Hashable, Any] = {}
        self._seen: Optional[Set[Hashable]] = None

    def __len__(self) -> int:
        """How many objects it remembers a value for."""
        return len(self._last)

    def __call__(self, ev: Event[K]) -> bool:
        """Whether to pass ``ev`` on: False only for an apply whose value did not change."""
        if isinstance(ev, Init):
            self._seen = set()
        elif isinstance(ev, InitDone):
            if self._seen is not None:
                for gone in set(self._last) - self._seen:
                    del self._last[gone]
            self._seen = None
        elif isinstance(ev, Delete):
            self._last.pop(identity(ev.object), None)
        elif isinstance(ev, (InitApply, Apply)):
            key = identity(ev.object)
            if self._seen is not None:
                self._seen.add(key)
            value = self.predicate(ev.object)
            if key in self._last and self._last[key] == value:
                return False
            self._last[key] = value
        return True


def predicate_filter(
    events: Iterator[Event[K]], predicate: Callable[[K], Any]
) -> Iterator[Event[K]]:
    """Drop ``Apply``/``InitApply`` events whose ``predicate(obj)`` did not change.

    E.g. ``predicate_filter(w, lambda o: o.metadata.generation)`` skips status-only
    changes. Memory: one value per live object; deletes and relists prune it (see
    ``PredicateFilter``).
    """
    changed = PredicateFilter(predicate)
    for ev in events:
        if changed(ev):
            yield ev
