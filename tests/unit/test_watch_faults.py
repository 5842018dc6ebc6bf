"""The watcher against servers that misbehave: storms of empty watches and 410s, unknown
event types, silence; and the streaming initial list, step by step."""

from __future__ import annotations

import threading
from typing import Any, List, Optional

import pytest

from kubesync.core.clock import FakeClock
from kubesync.errors import Gone, Invalid, Status
from kubesync.runtime.store import StoreWriter
from kubesync.runtime.watcher import (
    IDLE_TIMEOUT,
    Apply,
    Empty,
    Init,
    InitApply,
    InitDone,
    InitialList,
    InitListed,
    InitStreaming,
    WatchEndedEarly,
    Watcher,
    WatcherConfig,
    Watching,
    resolve_config,
    step,
)
from tests.helpers import eventually
from tests.unit.runtime_fakes import FakeApi, FakeStream, blocking_stream, event, obj, page

WINDOW = 5.0  # seconds of (fake) time the storm tests count requests over


class RunningClock(FakeClock):
    """A fake clock whose waits take no real time: a wait moves time to its deadline."""

    def wait(self, event: threading.Event, timeout: Optional[float]) -> bool:
        if not event.is_set() and timeout:
            self.advance(timeout)
        return event.is_set()


def _count_calls_in_window(api: FakeApi, calls: List[Any], clock: RunningClock) -> int:
    """Run a watcher until fake time passes the window (or calls pile up without time
    moving, as a loop with no backoff does); the calls made within the window."""
    times: List[float] = []
    original_list, original_watch = api.list, api.watch

    def timed_list(**kw: Any) -> Any:
        times.append(clock.monotonic())
        return original_list(**kw)

    def timed_watch(**kw: Any) -> Any:
        times.append(clock.monotonic())
        return original_watch(**kw)

    if calls is api.list_calls:
        api.list = timed_list  # type: ignore[method-assign]
    else:
        api.watch = timed_watch  # type: ignore[method-assign]
    w = Watcher(api, WatcherConfig(), sink=lambda ev: None, clock=clock)  # type: ignore[arg-type]
    w.start()
    try:
        eventually(lambda: clock.monotonic() >= WINDOW or len(calls) >= 500, timeout=20,
                   what="the window to pass")
    finally:
        w.stop()
    return sum(t < WINDOW for t in times)


def test_a_watch_the_server_ends_at_once_is_backed_off() -> None:
    clock = RunningClock()
    api = FakeApi()
    api.pages = [page([obj("a")], rv="5")]
    api.streams = [lambda: FakeStream(iter([]))]  # every watch ends at once, empty
    watches = _count_calls_in_window(api, api.watch_calls, clock)
    # 800 ms doubling with jitter: a handful in 5 s, not a tight loop.
    assert 1 <= watches <= 6, watches


def test_a_410_on_every_relist_relists_at_once_then_backs_off() -> None:
    clock = RunningClock()
    api = FakeApi()
    api.pages = [Gone(Status(code=410, reason="Expired", message="too old"))]
    lists = _count_calls_in_window(api, api.list_calls, clock)
    assert 2 <= lists <= 7, lists


def test_the_first_410_relists_without_waiting() -> None:
    clock = FakeClock()  # time stands still: any wait would block the second list
    api = FakeApi()
    stop = threading.Event()
    api.pages = [Gone(Status(code=410, message="too old")), page([obj("a")], rv="5")]
    api.streams = [blocking_stream(stop)]
    writer: StoreWriter[Any] = StoreWriter()
    w = Watcher(api, WatcherConfig(), sink=writer.apply_event, clock=clock)  # type: ignore[arg-type]
    with w:
        assert writer.store.wait_until_ready(10)
        stop.set()
    assert len(api.list_calls) == 2


def test_a_watch_ending_at_once_without_events_is_an_error_step_by_step() -> None:
    clock = FakeClock()
    api = FakeApi()
    state = Watching("7", FakeStream(iter([])), iter([]), opened_at=clock.monotonic())
    with pytest.raises(WatchEndedEarly):
        step(api, WatcherConfig(), state, clock)  # type: ignore[arg-type]
    clock.advance(2.0)  # a watch that lasted its while ended normally: resume
    state = Watching("7", FakeStream(iter([])), iter([]), opened_at=0.0)
    assert step(api, WatcherConfig(), state, clock)[1] == InitListed("7")  # type: ignore[arg-type]


def test_an_unknown_event_type_touches_neither_the_store_nor_the_resume_point() -> None:
    api = FakeApi()
    stop = threading.Event()
    api.pages = [page([obj("a", "10")], rv="10")]
    api.streams = [[event("ADDED", obj("b", "11")), event("FOO", obj("ghost", "12"))],
                   blocking_stream(stop)]
    writer: StoreWriter[Any] = StoreWriter()
    w = Watcher(api, WatcherConfig(), sink=writer.apply_event)  # type: ignore[arg-type]
    with w:
        eventually(lambda: len(api.watch_calls) >= 2, timeout=10, what="the second watch")
        stop.set()
    assert sorted(k.name for k in writer.store.keys()) == ["a", "b"]
    assert api.watch_calls[1]["resource_version"] == "11"  # not the FOO event's 12


def test_a_bookmark_moves_the_resume_point_and_a_deletion_deletes() -> None:
    api = FakeApi()
    from tests.unit.runtime_fakes import bookmark

    events = iter([event("DELETED", obj("a", "11")), bookmark("15")])
    state: Any = Watching("10", FakeStream(events), events, got_events=True)
    out, state = step(api, WatcherConfig(), state)  # type: ignore[arg-type]
    assert [type(e).__name__ for e in out] == ["Delete"] and state.resource_version == "11"
    out, state = step(api, WatcherConfig(), state)  # type: ignore[arg-type]
    assert out == [] and state.resource_version == "15"


def test_a_watch_with_bookmarks_asks_for_the_idle_timeout_as_its_read_timeout() -> None:
    api = FakeApi()
    api.streams = [[]]
    step(api, WatcherConfig(), InitListed("3"))  # type: ignore[arg-type]
    step(api, WatcherConfig(idle_timeout=2.5), InitListed("3"))  # type: ignore[arg-type]
    step(api, WatcherConfig(bookmarks=False), InitListed("3"))  # type: ignore[arg-type]
    assert [c.get("read_timeout") for c in api.watch_calls] == [IDLE_TIMEOUT, 2.5, None]


# -- the streaming initial list ---------------------------------------------------------


def _end_bookmark(rv: str) -> Any:
    from kubesync.core.events import WatchEvent

    raw = {"metadata": {"resourceVersion": rv,
                        "annotations": {"k8s.io/initial-events-end": "true"}}}
    return WatchEvent("BOOKMARK", obj("", rv), raw)


def test_a_streaming_list_is_one_watch_ended_by_the_annotated_bookmark() -> None:
    api = FakeApi()
    live = [event("ADDED", obj("a", "5")), event("ADDED", obj("b", "6")),
            _end_bookmark("8"), event("MODIFIED", obj("a", "9"))]
    api.streams = [live]
    cfg = WatcherConfig(initial_list=InitialList.STREAMING)
    out, state = step(api, cfg, Empty())  # type: ignore[arg-type]
    assert out == [Init()] and isinstance(state, InitStreaming)
    got: List[Any] = []
    for _ in range(5):
        out, state = step(api, cfg, state)  # type: ignore[arg-type]
        got.extend(out)
    assert api.list_calls == []
    (call,) = api.watch_calls
    assert call["send_initial_events"] is True
    assert call["resource_version_match"] == "NotOlderThan"
    assert call["resource_version"] == ""  # consistent: the latest state
    assert call["bookmarks"] is True
    assert [type(e) for e in got] == [InitApply, InitApply, InitDone, Apply]
    assert got[2] == InitDone("8") and isinstance(state, Watching)
    assert state.resource_version == "9"


def test_a_streamed_list_cut_short_starts_over_with_a_new_init() -> None:
    api = FakeApi()
    api.streams = [[event("ADDED", obj("a", "5"))]]
    cfg = WatcherConfig(initial_list=InitialList.STREAMING)
    state: Any = InitStreaming("4")
    for _ in range(3):
        _, state = step(api, cfg, state)  # type: ignore[arg-type]
    assert state == Empty("4")


class _VersionClient:
    def __init__(self, minor: str) -> None:
        self.minor = minor

    def request(self, method: str, path: str) -> Any:
        assert (method, path) == ("GET", "/version")
        return {"major": "1", "minor": self.minor}


@pytest.mark.parametrize(("minor", "strategy", "from_cache"), [
    ("20", InitialList.LIST, True),
    ("32", InitialList.LIST, True),  # the WatchList gate was on in 1.32, off again in 1.33
    ("33", InitialList.LIST, True),
    ("34", InitialList.STREAMING, False),
    ("37+", InitialList.STREAMING, False),
])
def test_auto_choices_follow_the_server_version(minor: str, strategy: str,
                                                from_cache: bool) -> None:
    api = FakeApi()
    api.client = _VersionClient(minor)  # type: ignore[attr-defined]
    cfg = resolve_config(api, WatcherConfig())  # type: ignore[arg-type]
    assert (cfg.initial_list, cfg.list_from_cache) == (strategy, from_cache)


def test_a_server_refusing_streaming_lists_is_listed_at_once() -> None:
    api = FakeApi()
    api.client = _VersionClient("37")  # type: ignore[attr-defined]
    stop = threading.Event()
    refused = Invalid(Status(code=422, reason="Invalid", message="sendInitialEvents is "
                             "forbidden"))
    api.streams = [refused, blocking_stream(stop)]
    api.pages = [page([obj("a")], rv="5")]
    errors: List[BaseException] = []
    writer: StoreWriter[Any] = StoreWriter()
    clock = FakeClock()  # a backoff would block here: there must be none
    w = Watcher(api, WatcherConfig(), sink=writer.apply_event, on_error=errors.append,  # type: ignore[arg-type]
                clock=clock)
    with w:
        assert writer.store.wait_until_ready(10)
        stop.set()
    assert [k.name for k in writer.store.keys()] == ["a"]
    assert api.watch_calls[0]["send_initial_events"] is True
    assert "send_initial_events" not in api.watch_calls[1]
    assert errors == []


def test_connections_have_tcp_keepalive_on() -> None:
    import socket
    import ssl

    from kubesync.client.transport import Transport

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    answered = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            answered.wait(10)

    t = threading.Thread(target=serve, name="test-keepalive-server", daemon=True)
    t.start()
    transport = Transport(base_url=f"http://127.0.0.1:{port}",
                          ssl_context=ssl.create_default_context())
    try:
        response = transport.send("GET", f"http://127.0.0.1:{port}/api", timeout=10,
                                  stream=True)
        sock = response._raw.raw._connection.sock  # the open stream's socket
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
    finally:
        answered.set()
        transport.close()
        t.join(10)
        server.close()
