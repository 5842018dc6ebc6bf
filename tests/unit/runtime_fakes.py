"""A fake Api for the runtime's unit tests: scripted pages, watch streams and errors."""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterator, List, Optional

import attrs

from kubesync.core.events import WatchEvent


@attrs.define
class Meta:
    name: str
    namespace: Optional[str] = "ns"
    uid: Optional[str] = None
    resource_version: Optional[str] = None
    generation: Optional[int] = None
    continue_: Optional[str] = None


@attrs.define
class Obj:
    metadata: Meta
    value: Any = None


def obj(name: str, rv: str = "1", value: Any = None, ns: Optional[str] = "ns") -> Obj:
    return Obj(Meta(name, ns, uid=f"uid-{name}", resource_version=rv), value)


def event(etype: str, o: Obj) -> WatchEvent[Obj]:
    return WatchEvent(etype, o, {"metadata": {"resourceVersion": o.metadata.resource_version}})


def bookmark(rv: str) -> WatchEvent[Obj]:
    return WatchEvent("BOOKMARK", obj("", rv), {"metadata": {"resourceVersion": rv}})


@attrs.define
class Page:
    items: List[Obj]
    metadata: Meta


@attrs.frozen
class FakeResource:
    plural: str = "things"
    kind: str = "Thing"


class FakeStream:
    """A watch stream; ``close()`` from another thread ends a blocked iteration."""

    def __init__(self, events: Iterator[Any]):
        self._events = events
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[Any]:
        for ev in self._events:
            if self.closed.is_set():
                return
            if isinstance(ev, BaseException):
                raise ev
            yield ev

    def close(self) -> None:
        self.closed.set()


class FakeApi:
    """``lists`` is a list of callables/lists returning pages; ``watches`` the same for
    streams. Each call pops the next script entry (the last one repeats)."""

    def __init__(self) -> None:
        self.resource = FakeResource()
        self.list_calls: List[dict] = []
        self.watch_calls: List[dict] = []
        self.pages: List[Any] = []
        self.streams: List[Any] = []
        self.lock = threading.Lock()

    def _next(self, script: List[Any]) -> Any:
        with self.lock:
            item = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(item, BaseException):
            raise item
        return item() if callable(item) else item

    def list(self, **kw: Any) -> Page:
        self.list_calls.append(kw)
        return self._next(self.pages)  # type: ignore[no-any-return]

    list_metadata = list

    def watch(self, **kw: Any) -> FakeStream:
        self.watch_calls.append(kw)
        made = self._next(self.streams)
        return made if isinstance(made, FakeStream) else FakeStream(iter(made))


def page(items: List[Obj], rv: str = "10", cont: Optional[str] = None) -> Page:
    return Page(items, Meta("", None, resource_version=rv, continue_=cont))


def blocking_stream(stop: threading.Event) -> Callable[[], FakeStream]:
    """A stream that yields nothing until ``stop`` (or close)."""

    def make() -> FakeStream:
        holder: List[FakeStream] = []

        def gen() -> Iterator[Any]:
            while not stop.is_set() and not holder[0].closed.is_set():
                holder[0].closed.wait(0.05)
            return
            yield

        s = FakeStream(gen())
        holder.append(s)
        return s

    return make
