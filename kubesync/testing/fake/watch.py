"""One watch request: initial events, then changes from the history, bookmarks, and the
410 that an expired resourceVersion gets, written as JSON lines through ``send``.

resourceVersion semantics as the real server's: unset or ``"0"`` starts with an ADDED
event per current object; ``N`` resumes after N (``ERROR`` 410 Expired once N is older
than the history); ``sendInitialEvents=true`` ends the initial events with a BOOKMARK
annotated ``k8s.io/initial-events-end``. An object that stops matching the selectors is
sent as DELETED, one that starts matching as ADDED. See
https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Mapping, Optional

from kubesync.testing.fake.backend import Backend, Query
from kubesync.testing.fake.faults import Faults
from kubesync.testing.fake.objects import meta, partial
from kubesync.testing.fake.resources import ResourceType
from kubesync.testing.fake.selectors import field_matcher, label_matcher
from kubesync.testing.fake.status import bad_request
from kubesync.testing.fake.storage import Event, TooOld

#: A watch without timeoutSeconds ends after this long (the real server picks 30-60 min).
DEFAULT_WATCH_TIMEOUT = 1800.0
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def _expired(rv: str) -> Dict[str, Any]:
    return {"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f"too old resource version: {rv}", "reason": "Expired", "code": 410}}


def serve(backend: Backend, rt: ResourceType, namespace: Optional[str], query: Query, *,
          metadata_only: bool, send: Callable[[Mapping[str, Any]], None], faults: Faults,
          stopping: Callable[[], bool], bookmark_interval: float) -> str:
    """Stream one watch until its timeout, a stop, a drop or a send failure.

    Returns why it ended: ``"timeout"``, ``"stopped"``, ``"dropped"`` or ``"expired"``.
    """
    storage = backend.storage
    labels = label_matcher(query.get("labelSelector"))
    fields = field_matcher(query.get("fieldSelector"))
    rv_param = query.get("resourceVersion") or ""
    initial_events = query.get("sendInitialEvents") == "true"
    bookmarks = query.get("allowWatchBookmarks") == "true"
    try:
        timeout = float(query.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT)
    except ValueError:
        raise bad_request(f"timeoutSeconds {query.get('timeoutSeconds')!r}") from None
    drops = faults.drops
    deadline = time.monotonic() + timeout

    def matches(obj: Optional[Mapping[str, Any]]) -> bool:
        if obj is None:
            return False
        if namespace is not None and meta(obj).get("namespace") != namespace:
            return False
        return labels(meta(obj).get("labels") or {}) and fields(obj)

    def shown(obj: Mapping[str, Any]) -> Dict[str, Any]:
        return partial(obj) if metadata_only else backend.served(rt, dict(obj))

    with storage.lock:
        if rv_param in ("", "0") or initial_events:
            since = storage.resource_version
            initial = [o for o in storage.items(rt.collection, namespace) if matches(o)]
        else:
            try:
                since = int(rv_param)
            except ValueError:
                raise bad_request(f"resourceVersion {rv_param!r} is not valid") from None
            initial = []
            try:
                storage.events_after(since, rt.collection)
            except TooOld:
                send(_expired(rv_param))
                return "expired"
    for obj in initial:
        send({"type": "ADDED", "object": shown(obj)})
    if initial_events and bookmarks:
        send(_bookmark(rt, since, initial_end=True))
    next_bookmark = time.monotonic() + bookmark_interval
    while True:
        faults.wait_while_silent()
        now = time.monotonic()
        if stopping():
            return "stopped"
        if faults.drops != drops:
            return "dropped"
        if now >= deadline:
            return "timeout"
        if bookmarks and now >= next_bookmark:
            send(_bookmark(rt, since))
            next_bookmark = now + bookmark_interval
        with storage.lock:
            try:
                events: List[Event] = storage.events_after(since, rt.collection)
                if not events:
                    wake = min(deadline, next_bookmark if bookmarks else deadline)
                    storage.lock.wait(max(0.0, wake - time.monotonic()))
                    events = [] if stopping() else storage.events_after(since, rt.collection)
            except TooOld:  # compacted past this watch while it lagged
                send(_expired(str(since)))
                return "expired"
            if faults.silent:  # held back: sent after resume()
                continue
            # Everything up to now is seen: a later compaction must not expire this watch.
            since = storage.resource_version
        for e in events:
            was, now_matches = matches(e.prev), matches(e.obj)
            if e.type == "DELETED":
                kind = "DELETED" if was else None
            elif was and now_matches:
                kind = "MODIFIED"
            elif now_matches:
                kind = "ADDED"
            elif was:
                kind = "DELETED"
            else:
                kind = None
            if kind is not None:
                send({"type": kind, "object": shown(e.obj)})


def _bookmark(rt: ResourceType, rv: int, initial_end: bool = False) -> Dict[str, Any]:
    m: Dict[str, Any] = {"resourceVersion": str(rv)}
    if initial_end:
        m["annotations"] = {INITIAL_EVENTS_END: "true"}
    return {"type": "BOOKMARK", "object": {"kind": rt.kind, "apiVersion": rt.api_version,
                                           "metadata": m}}
