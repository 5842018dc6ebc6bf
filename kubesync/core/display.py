"""How objects and lists look in Jupyter: YAML-like text, and tables like ``kubectl get``."""

from __future__ import annotations

import datetime
import html
from typing import Any, Callable, Dict, List, Optional, Tuple

__all__ = ["age", "list_html", "object_html", "object_text"]

#: Rows shown for a list; a notebook chokes on tens of thousands of table rows.
MAX_ROWS = 500


def object_text(obj: Any) -> str:
    """The encoded object as YAML, without ``managedFields`` (as ``kubectl get -o yaml``
    shows since 1.21: they are bookkeeping and half the text)."""
    import yaml

    from kubesync.core.convert import encode

    data = encode(obj)
    meta = data.get("metadata") if isinstance(data, dict) else None
    if isinstance(meta, dict) and "managedFields" in meta:
        data = {**data, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return str(yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True))


def object_html(obj: Any) -> str:
    return f"<pre>{html.escape(object_text(obj))}</pre>"


def age(timestamp: Any, now: Optional[datetime.datetime] = None) -> str:
    """``kubectl``-style age of an RFC 3339 timestamp: ``45s``, ``12m``, ``5h``, ``3d``."""
    from kubesync.core.convert import parse_time

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


def _item_kind(lst: Any) -> str:
    kind = lst.kind or ""
    if kind.endswith("List"):
        return str(kind[: -len("List")])
    items = lst.items
    resource = getattr(items[0], "api_resource", None) if items else None
    return resource.kind if resource is not None else ""


def list_html(lst: Any) -> str:
    """An HTML table of a list: name, namespace (if any), age, kind-specific columns."""
    from kubesync.core.convert import encode

    rows = [encode(item) for item in lst.items[:MAX_ROWS]]
    extra = _COLUMNS.get(_item_kind(lst), [])
    namespaced = any(_dig(r, "metadata", "namespace") for r in rows)
    heads = ["Name"] + (["Namespace"] if namespaced else []) + ["Age"] + [c[0] for c in extra]
    now = datetime.datetime.now(datetime.timezone.utc)
    body = []
    for r in rows:
        cells = [_dig(r, "metadata", "name")]
        if namespaced:
            cells.append(_dig(r, "metadata", "namespace"))
        cells.append(age(_dig(r, "metadata", "creationTimestamp"), now))
        cells.extend(fn(r) for _, fn in extra)
        body.append("".join(f"<td>{html.escape(_cell(c))}</td>" for c in cells))
    more = len(lst.items) - len(rows)
    caption = f"{len(lst.items)} {html.escape(lst.kind or 'items')}"
    if more > 0:
        caption += f" ({MAX_ROWS} shown)"
    head = "".join(f"<th>{h}</th>" for h in heads)
    return (
        f"<table><caption>{caption}</caption><thead><tr>{head}</tr></thead><tbody>"
        + "".join(f"<tr>{row}</tr>" for row in body)
        + "</tbody></table>"
    )


def _cell(value: Any) -> str:
    return "" if value is None else str(value)
