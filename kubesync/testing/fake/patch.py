"""The three PATCH kinds on JSON values: merge (RFC 7386), JSON patch (RFC 6902) and
strategic merge (the Kubernetes extension, merge keys from ``schema``).

Pure functions: the input objects are never changed; results share no mutable parts with
the patch. See https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Mapping

from kubesync.testing.fake.schema import TypeInfo
from kubesync.testing.fake.status import StatusError, bad_request, not_implemented
from kubesync.webhook.jsonpatch import JsonPatchError, apply_patch

_UNSUPPORTED_DIRECTIVES = ("$retainKeys",)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    out: Dict[str, Any] = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902 (kubesync's one implementation, ``kubesync.webhook.jsonpatch``) over a copy
    of ``target``; a failed ``test`` or a missing path is 422, as on a real server."""
    if not isinstance(ops, list):
        raise bad_request("json patch: the body must be a list of operations")
    try:
        return apply_patch(target, ops)
    except JsonPatchError as e:
        raise StatusError(422, "Invalid", f"json patch: {e}") from None


def strategic_merge(original: Any, patch: Any, typ: TypeInfo) -> Any:
    """Strategic merge patch: ``merge_patch`` plus lists merged by the spec's merge keys
    and the ``$patch`` (replace, delete, merge), ``$setElementOrder/<field>`` and
    ``$deleteFromPrimitiveList/<field>`` directives. ``$retainKeys`` answers 501."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    if typ.atomic:
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    out: Dict[str, Any] = dict(original) if isinstance(original, Mapping) else {}
    orders: Dict[str, Any] = {}
    for key, value in patch.items():
        if key in _UNSUPPORTED_DIRECTIVES:
            raise not_implemented(f"the strategic merge directive {key}")
        if key == "$patch":
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.partition("/")[2]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.partition("/")[2]
            gone = value if isinstance(value, list) else []
            if isinstance(out.get(field), list):
                out[field] = [v for v in out[field] if v not in gone]
            continue
        if key.startswith("$"):
            raise not_implemented(f"the strategic merge directive {key}")
        if value is None:
            out.pop(key, None)
            continue
        child = typ.child(key)
        rule = typ.rule(key)
        if isinstance(value, list):
            out[key] = _merge_list(out.get(key), value, child, rule.strategy or "",
                                   rule.merge_key)
        elif isinstance(value, Mapping):
            merged = strategic_merge(out.get(key), value, child)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        else:
            out[key] = copy.deepcopy(value)
    for field, order in orders.items():
        if isinstance(out.get(field), list) and isinstance(order, list):
            out[field] = _ordered(out[field], order, typ.rule(field).merge_key)
    return out


def _merge_list(original: Any, patch: List[Any], item: TypeInfo, strategy: str,
                merge_key: Any) -> List[Any]:
    if "merge" not in strategy.split(","):
        return [v for v in copy.deepcopy(patch)
                if not (isinstance(v, Mapping) and "$patch" in v)]
    current = list(original) if isinstance(original, list) else []
    if any(isinstance(v, Mapping) and v.get("$patch") == "replace" for v in patch):
        return [copy.deepcopy(v) for v in patch if not (isinstance(v, Mapping) and "$patch" in v)]
    if not merge_key:  # a list of scalars merged as a set (finalizers)
        return current + [copy.deepcopy(v) for v in patch if v not in current]
    for entry in patch:
        if not isinstance(entry, Mapping) or merge_key not in entry:
            raise bad_request(f"strategic merge: every item needs its merge key {merge_key!r}")
        at = next((i for i, e in enumerate(current)
                   if isinstance(e, Mapping) and e.get(merge_key) == entry[merge_key]), None)
        if entry.get("$patch") == "delete":
            if at is not None:
                del current[at]
            continue
        if at is None:
            current.append(strategic_merge({}, entry, item))
        else:
            current[at] = strategic_merge(current[at], entry, item)
    return current


def _ordered(items: List[Any], order: List[Any], merge_key: Any) -> List[Any]:
    def ident(v: Any) -> Any:
        return v.get(merge_key) if merge_key and isinstance(v, Mapping) else v

    wanted = [ident(v) for v in order]
    rank = {repr(w): i for i, w in enumerate(wanted)}
    return sorted(items, key=lambda v: rank.get(repr(ident(v)), len(rank)))
