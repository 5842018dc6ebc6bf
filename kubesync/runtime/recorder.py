"""``Recorder``: publish events.k8s.io/v1 Events about objects, folding repeats into a series.

A repeat of the same event (same object, type, reason, action and note) within
``SERIES_WINDOW`` updates the first Event's ``series`` (count, last observed time) instead
of creating another object, as Kubernetes' own event recorder does.
See https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/event-v1/
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Optional, Tuple

from kubesync.core.clock import SYSTEM_CLOCK, Clock
from kubesync.core.dynamic import DynamicObject
from kubesync.core.params import Patch
from kubesync.errors import KubeError, NotFound, UsageError

if TYPE_CHECKING:
    from kubesync.client.client import Client

__all__ = ["Recorder"]

log = logging.getLogger("kubesync.runtime.recorder")

#: Kubernetes' event recorder folds repeats seen within 6 minutes into one series.
SERIES_WINDOW = dt.timedelta(minutes=6)
#: Remembered events for folding; client-go's LRU cache holds 4096.
CACHE_SIZE = 4096
#: The API server refuses notes longer than 1 KiB.
NOTE_LIMIT = 1024

_Key = Tuple[Any, ...]


def _nanos(t: dt.datetime) -> int:
    """Nanoseconds since the epoch (microsecond precision: what a datetime holds)."""
    delta = t - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def _micro(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Recorder:
    """Publishes Events as ``reporting_controller``. Thread-safe; errors are logged, not
    raised (an event is worth less than the reconcile that publishes it). Event times and
    the series window are read from ``clock``'s wall time."""

    def __init__(self, client: Client, reporting_controller: str,
                 reporting_instance: Optional[str] = None, *, clock: Clock = SYSTEM_CLOCK):
        from kubesync.client.api import Api
        from kubesync.core.resource import ApiResource

        self.client = client
        self._clock = clock
        self.reporting_controller = reporting_controller
        self.reporting_instance = reporting_instance or socket.gethostname()
        self._resource = ApiResource(group="events.k8s.io", version="v1", kind="Event",
                                     plural="events", namespaced=True)
        self._api_for = lambda ns: Api(client, self._resource, ns)
        self._lock = threading.Lock()
        self._series: OrderedDict[_Key, Tuple[str, str, dt.datetime, int]] = OrderedDict()

    def publish(self, regarding: Any, *, type: str = "Normal", reason: str, action: str,
                note: Optional[str] = None, related: Any = None) -> Optional[dict]:
        """Record that ``action`` happened to ``regarding`` (an object) because of
        ``reason``. Returns the Event as written, or None if writing it failed."""
        if type not in ("Normal", "Warning"):
            raise UsageError(f"an event's type is Normal or Warning, not {type!r}")
        ref = _reference(regarding)
        namespace = ref.get("namespace") or "default"
        note = (note or "")[:NOTE_LIMIT]
        key = (tuple(sorted(ref.items())), type, reason, action, note)
        now = self._clock.now()
        with self._lock:
            known = self._series.get(key)
        try:
            if known is not None and now - known[2] < SERIES_WINDOW:
                name, ns, first, count = known
                body = {"series": {"count": count + 1, "lastObservedTime": _micro(now)}}
                try:
                    written = self._api_for(ns).patch(name, Patch.merge(body))
                    self._remember(key, (name, ns, first, count + 1))
                    return written.to_dict()
                except NotFound:
                    pass  # the first one expired (events have a TTL): start over
            event = {
                "apiVersion": "events.k8s.io/v1", "kind": "Event",
                # As Kubernetes names them: the object's name and the time in hex.
                "metadata": {"name": f"{ref.get('name', 'object')}.{_nanos(now):x}",
                             "namespace": namespace},
                "eventTime": _micro(now),
                "reportingController": self.reporting_controller,
                "reportingInstance": self.reporting_instance,
                "action": action, "reason": reason, "type": type, "note": note,
                "regarding": ref,
            }
            if related is not None:
                event["related"] = _reference(related)
            written = self._api_for(namespace).create(DynamicObject(event))
            self._remember(key, (str(written.metadata.name), namespace, now, 1))
            return written.to_dict()
        except KubeError as e:
            log.warning("publishing event %s/%s about %s failed: %s", reason, action,
                        ref.get("name"), e)
            return None

    def _remember(self, key: _Key, value: Tuple[str, str, dt.datetime, int]) -> None:
        with self._lock:
            self._series[key] = value
            self._series.move_to_end(key)
            while len(self._series) > CACHE_SIZE:
                self._series.popitem(last=False)


def _reference(obj: Any) -> dict:
    """An ObjectReference (as JSON) to a model object or a DynamicObject."""
    from kubesync.core.resource import resource_of

    res = resource_of(obj)
    meta = obj.metadata
    ref = {"apiVersion": res.api_version, "kind": res.kind, "name": meta.name,
           "uid": meta.uid, "resourceVersion": meta.resource_version}
    if res.namespaced and meta.namespace:
        ref["namespace"] = meta.namespace
    return {k: v for k, v in ref.items() if v}
