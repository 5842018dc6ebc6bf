"""How objects, lists and stores look in Jupyter: YAML text, and tables like ``kubectl get``.

Everything from an object is HTML-escaped, and the size is bounded: a notebook saves its
outputs, and a 1 MiB ConfigMap or a 50,000-row table would make it unusable.
"""

from __future__ import annotations

import datetime
import html
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from kubesync.core.convert import encode
from kubesync.core.time import parse_time

__all__ = ["age", "list_html", "object_html", "object_text", "store_html", "table_html"]

#: Rows shown for a list; a notebook chokes on tens of thousands of table rows.
MAX_ROWS = 500
#: Characters of an object's YAML shown (a big ConfigMap or CRD would flood the page).
MAX_CHARS = 20_000
#: Characters of one table cell (a long annotation must not widen the table to a page).
MAX_CELL = 120


def object_text(obj: Any) -> str:
    """The encoded object as YAML, without ``managedFields`` (as ``kubectl get -o yaml``
    shows since 1.21: they are bookkeeping and half the text)."""
    import yaml  # only when an object is shown: a script never pays for it

    data = encode(obj)
    meta = data.get("metadata") if isinstance(data, dict) else None
    if isinstance(meta, dict) and "managedFields" in meta:
        data = {**data, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return str(yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True))


def object_html(obj: Any) -> str:
    """The YAML of ``object_text`` in a ``<pre>``, cut at ``MAX_CHARS`` with a note."""
    text = object_text(obj)
    more = ""
    if len(text) > MAX_CHARS:
        cut = text.rfind("\n", 0, MAX_CHARS) + 1 or MAX_CHARS
        more = (f"\n... {len(text) - cut:,} more characters "
                "(print(kubesync.manifests.dump(obj)) shows all)")
        text = text[:cut]
    return f"<pre>{html.escape(text)}{html.escape(more)}</pre>"


def age(timestamp: Any, now: Optional[datetime.datetime] = None) -> str:
    """``kubectl``-style age of an RFC 3339 timestamp: ``45s``, ``12m``, ``5h``, ``3d``."""
    if not isinstance(timestamp, str):
        return ""
    try:
        then = parse_time(timestamp)
    except ValueError:
        return ""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size, limit in (("s", 1, 120), ("m", 60, 120 * 60), ("h", 3600, 48 * 3600)):
        if seconds < limit:
            return f"{seconds // size}{unit}"
    return f"{seconds // 86400}d"


def _dig(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _ratio(data: Dict[str, Any], have: Tuple[str, ...], want: Tuple[str, ...]) -> str:
    return f"{_dig(data, *have) or 0}/{_dig(data, *want) or 0}"


def _pod_ready(data: Dict[str, Any]) -> str:
    statuses = _dig(data, "status", "containerStatuses") or []
    ready = sum(1 for s in statuses if isinstance(s, dict) and s.get("ready"))
    return f"{ready}/{len(statuses)}"


def _pod_restarts(data: Dict[str, Any]) -> str:
    statuses = _dig(data, "status", "containerStatuses") or []
    return str(sum(s.get("restartCount") or 0 for s in statuses if isinstance(s, dict)))


def _node_status(data: Dict[str, Any]) -> str:
    for cond in _dig(data, "status", "conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return "Ready" if cond.get("status") == "True" else "NotReady"
    return "Unknown"


def _data_count(data: Dict[str, Any]) -> str:
    return str(len(data.get("data") or {}) + len(data.get("binaryData") or {}))


Column = Tuple[str, Callable[[Dict[str, Any]], Any]]

_COLUMNS: Dict[str, List[Column]] = {
    "Pod": [
        ("Ready", _pod_ready),
        ("Status", lambda d: _dig(d, "status", "phase")),
        ("Restarts", _pod_restarts),
        ("Node", lambda d: _dig(d, "spec", "nodeName")),
    ],
    "Deployment": [
        ("Ready", lambda d: _ratio(d, ("status", "readyReplicas"), ("spec", "replicas"))),
        ("Up-to-date", lambda d: _dig(d, "status", "updatedReplicas") or 0),
        ("Available", lambda d: _dig(d, "status", "availableReplicas") or 0),
    ],
    "StatefulSet": [
        ("Ready", lambda d: _ratio(d, ("status", "readyReplicas"), ("spec", "replicas"))),
    ],
    "ReplicaSet": [
        ("Desired", lambda d: _dig(d, "spec", "replicas")),
        ("Ready", lambda d: _dig(d, "status", "readyReplicas") or 0),
    ],
    "DaemonSet": [
        ("Desired", lambda d: _dig(d, "status", "desiredNumberScheduled")),
        ("Ready", lambda d: _dig(d, "status", "numberReady")),
    ],
    "Job": [
        ("Completions", lambda d: _ratio(d, ("status", "succeeded"), ("spec", "completions"))),
    ],
    "Service": [
        ("Type", lambda d: _dig(d, "spec", "type")),
        ("Cluster-IP", lambda d: _dig(d, "spec", "clusterIP")),
    ],
    "ConfigMap": [("Data", _data_count)],
    "Secret": [("Type", lambda d: d.get("type")), ("Data", _data_count)],
    "Namespace": [("Status", lambda d: _dig(d, "status", "phase"))],
    "Node": [
        ("Status", _node_status),
        ("Version", lambda d: _dig(d, "status", "nodeInfo", "kubeletVersion")),
    ],
    "PersistentVolumeClaim": [
        ("Status", lambda d: _dig(d, "status", "phase")),
        ("Volume", lambda d: _dig(d, "spec", "volumeName")),
        ("Capacity", lambda d: _dig(d, "status", "capacity", "storage")),
    ],
    "Event": [
        ("Type", lambda d: d.get("type")),
        ("Reason", lambda d: d.get("reason")),
    ],
}


def _kind_of(item: Any) -> str:
    resource = getattr(item, "api_resource", None)
    if resource is not None:
        return str(resource.kind)
    kind = getattr(item, "kind", None)
    return kind if isinstance(kind, str) else ""


def _item_kind(lst: Any) -> str:
    kind = lst.kind or ""
    if kind.endswith("List"):
        return str(kind[: -len("List")])
    return _kind_of(lst.items[0]) if lst.items else ""


def table_html(items: Sequence[Any], kind: str, caption: str) -> str:
    """An HTML table of objects: name, namespace (if any), age, ``kind``'s own columns.

    At most ``MAX_ROWS`` rows; the caption says how many there are in all.
    """
    rows = [encode(item) for item in items[:MAX_ROWS]]
    extra = _COLUMNS.get(kind, [])
    namespaced = any(_dig(r, "metadata", "namespace") for r in rows)
    heads = ["Name"] + (["Namespace"] if namespaced else []) + ["Age"] + [c[0] for c in extra]
    now = datetime.datetime.now(datetime.timezone.utc)
    body = []
    for r in rows:
        cells = [_dig(r, "metadata", "name")]
        if namespaced:
            cells.append(_dig(r, "metadata", "namespace"))
        cells.append(age(_dig(r, "metadata", "creationTimestamp"), now))
        cells.extend(_safe(fn, r) for _, fn in extra)
        body.append("".join(f"<td>{html.escape(_cell(c))}</td>" for c in cells))
    if len(items) > len(rows):
        caption += f" (first {len(rows):,} shown)"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in heads)
    return (
        f"<table><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead>"
        "<tbody>" + "".join(f"<tr>{row}</tr>" for row in body) + "</tbody></table>"
    )


def list_html(lst: Any) -> str:
    """An ``ObjectList`` as a table (``table_html``)."""
    kind = _item_kind(lst)
    n = len(lst.items)
    return table_html(lst.items, kind, f"{lst.kind or kind or 'List'}: {n:,} items")


def store_html(store: Any) -> str:
    """A ``Store`` as a table, sorted by namespace and name (``table_html``)."""
    items: List[Any] = sorted(store.list(), key=_sort_key)
    kind = _kind_of(items[0]) if items else ""
    state = "ready" if store.is_ready else "not ready yet"
    return table_html(items, kind, f"Store of {kind or 'objects'}: {len(items):,} ({state})")


def _sort_key(obj: Any) -> Tuple[str, str]:
    meta = getattr(obj, "metadata", None)
    return (getattr(meta, "namespace", None) or "", getattr(meta, "name", None) or "")


def _safe(fn: Callable[[Dict[str, Any]], Any], row: Dict[str, Any]) -> Any:
    # A malformed object (a string where a count should be) shows a blank, not an error.
    try:
        return fn(row)
    except (TypeError, ValueError, AttributeError):
        return None


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "\u2026"
