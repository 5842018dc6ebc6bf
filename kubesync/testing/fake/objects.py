"""Small pure helpers on JSON objects: metadata access, names, timestamps, keys, scale."""

from __future__ import annotations

import base64
import json
import random
import re
import time
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from kubesync.testing.fake.resources import ResourceType
from kubesync.testing.fake.selectors import selector_string
from kubesync.testing.fake.status import bad_request, gone, invalid
from kubesync.testing.fake.storage import Key

Clock = Callable[[], float]

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
#: The alphabet and length of generateName's suffix (no vowels, no look-alikes).
_SUFFIX_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_SUFFIX_LEN = 5
_MAX_GENERATE_BASE = 58


def meta(obj: Mapping[str, Any]) -> Dict[str, Any]:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def timestamp(clock: Clock) -> str:
    """RFC 3339 in whole seconds, as ``creationTimestamp`` is."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock()))


def generate_name(base: str, rng: random.Random) -> str:
    return base[:_MAX_GENERATE_BASE] + "".join(rng.choice(_SUFFIX_CHARS)
                                               for _ in range(_SUFFIX_LEN))


def check_name(rt: ResourceType, name: str) -> None:
    """The real server's name rules: a DNS label for namespaces, a DNS subdomain for most
    kinds, a path segment for RBAC kinds (``system:`` names)."""
    if not name or name in (".", "..") or "/" in name or "%" in name or len(name) > 253:
        why = "a name must be a valid path segment of at most 253 characters"
    elif rt.kind == "Namespace" and not (_LABEL.match(name) and len(name) <= 63):
        why = ("a lowercase RFC 1123 label must consist of lower case alphanumeric "
               "characters or '-', and must start and end with an alphanumeric character")
    elif rt.group != "rbac.authorization.k8s.io" and not _SUBDOMAIN.match(name):
        why = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
               "characters, '-' or '.', and must start and end with an alphanumeric character")
    else:
        return
    raise invalid(rt.kind, rt.group, name, "metadata.name", why, name)


def key_of(rt: ResourceType, namespace: Optional[str], name: str) -> Key:
    return (rt.group, rt.plural, namespace or "", name)


def encode_continue(rv: int, after: Tuple[str, str]) -> str:
    raw = json.dumps({"rv": rv, "ns": after[0], "name": after[1]}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> Tuple[int, Tuple[str, str]]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return int(raw["rv"]), (str(raw["ns"]), str(raw["name"]))
    except (ValueError, KeyError, TypeError) as e:
        raise bad_request(f"continue key is not valid: {e}") from e


CONTINUE_TOO_OLD = gone(
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list without the continue parameter.")


def get_path(obj: Mapping[str, Any], path: str) -> Any:
    """The value at a JSON path like ``.spec.replicas``; None when absent."""
    cur: Any = obj
    for part in path.strip(".").split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


def set_path(obj: Dict[str, Any], path: str, value: Any) -> None:
    parts = path.strip(".").split(".")
    cur = obj
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = cur[part] = {}
        cur = nxt
    cur[parts[-1]] = value


def scale_of(rt: ResourceType, obj: Mapping[str, Any]) -> Dict[str, Any]:
    """The ``autoscaling/v1 Scale`` view of ``obj``."""
    assert rt.scale is not None
    m = meta(obj)
    status: Dict[str, Any] = {"replicas": get_path(obj, rt.scale.status_replicas) or 0}
    if rt.scale.label_selector:
        selector = get_path(obj, rt.scale.label_selector)
        if isinstance(selector, Mapping):
            selector = selector_string(selector)
        if selector:
            status["selector"] = selector
    scale_meta = {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                    "creationTimestamp") if k in m}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": scale_meta,
            "spec": {"replicas": get_path(obj, rt.scale.spec_replicas) or 0},
            "status": status}


def partial(obj: Mapping[str, Any]) -> Dict[str, Any]:
    """The ``PartialObjectMetadata`` form (metadata-only reads)."""
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata", {})}
