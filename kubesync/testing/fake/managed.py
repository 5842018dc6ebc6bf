"""Server-side apply and ``managedFields``: who owns which field, and the merge.

Simplified from the real algorithm (structured-merge-diff), on purpose:
- ownership is tracked per field path (``f:``, list items by ``k:`` map keys, set items by
  ``v:``), from the spec's list types; a field the schema does not type is a map merged
  key by key, and its lists are atomic;
- a conflict is a field in the applied configuration that another manager owns with a
  different value (equal values become shared ownership, as on a real server);
- an apply removes the fields its manager applied before and no longer applies, unless
  another manager owns them too;
- no defaulting, no version conversion of field sets (one ``apiVersion`` per manager
  entry is recorded as sent), and ``null`` in an applied configuration is ignored.
See https://kubernetes.io/docs/reference/using-api/server-side-apply/
"""

from __future__ import annotations

import copy
import json
from typing import Any, Dict, List, Mapping, Optional, Set, Tuple

from kubesync.testing.fake.schema import ListRule, TypeInfo
from kubesync.testing.fake.status import StatusError

Path = Tuple[str, ...]
FieldSet = Set[Path]
#: (manager, operation, subresource) -> (apiVersion, fields)
Owners = Dict[Tuple[str, str, str], Tuple[str, FieldSet]]

#: Fields the server owns: never tracked, never applied.
_SERVER_META = {"name", "namespace", "uid", "resourceVersion", "generation",
                "creationTimestamp", "managedFields", "deletionTimestamp",
                "deletionGracePeriodSeconds", "selfLink"}


def _item_keys(rule: ListRule) -> Optional[Tuple[str, ...]]:
    if rule.list_type == "map" and rule.map_keys:
        return rule.map_keys
    if rule.list_type is None and rule.merge_key:
        return (rule.merge_key,)
    return None


def _is_set(rule: ListRule) -> bool:
    return rule.list_type == "set" or (
        rule.list_type is None and rule.strategy == "merge" and not rule.merge_key)


def _key_of(item: Any, keys: Tuple[str, ...]) -> str:
    ident = {k: item.get(k) for k in keys if isinstance(item, Mapping) and k in item}
    return "k:" + json.dumps(ident, sort_keys=True, separators=(",", ":"))


def fields_of(obj: Mapping[str, Any], typ: TypeInfo, *, status: Optional[bool]) -> FieldSet:
    """Every path set in ``obj``: leaves and the maps and items holding them.

    ``status``: True for only ``status`` (the status subresource), False for all but it
    (a kind with a status subresource), None for everything.
    """
    out: FieldSet = set()
    for key, value in obj.items():
        if key in ("apiVersion", "kind") or value is None:
            continue
        if (status is True and key != "status") or (status is False and key == "status"):
            continue
        child = typ.child(key)
        if key == "metadata" and isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if k not in _SERVER_META}
            if not value:
                continue
        _walk(("f:" + key,), value, child, typ.rule(key), out)
    return out


def _walk(path: Path, value: Any, typ: TypeInfo, rule: ListRule, out: FieldSet) -> None:
    out.add(path)
    if isinstance(value, Mapping) and not typ.atomic and rule.map_type != "atomic":
        for key, v in value.items():
            if v is not None:
                _walk((*path, "f:" + key), v, typ.child(key), typ.rule(key), out)
    elif isinstance(value, list):
        keys = _item_keys(rule)
        if keys:
            for item in value:
                _walk((*path, _key_of(item, keys)), item, typ, NO_LIST, out)
        elif _is_set(rule):
            for item in value:
                out.add((*path, "v:" + json.dumps(item, sort_keys=True)))


NO_LIST = ListRule(None, None, None, (), None)


def to_fields_v1(fields: FieldSet) -> Dict[str, Any]:
    """The ``fieldsV1`` form: nested maps; ``"."`` marks a node owned with its children."""
    tree: Dict[str, Any] = {}
    for path in sorted(fields):
        node = tree
        for part in path:
            node = node.setdefault(part, {})
    def mark(node: Dict[str, Any], path: Path) -> None:
        for part, child in node.items():
            if part == ".":
                continue
            here = (*path, part)
            if child:
                if here in fields and len(here) > 1:
                    child["."] = {}
                mark(child, here)
    mark(tree, ())
    return tree


def from_fields_v1(tree: Mapping[str, Any], prefix: Path = ()) -> FieldSet:
    out: FieldSet = set()
    for part, child in tree.items():
        if part == ".":
            out.add(prefix)
            continue
        here = (*prefix, part)
        if not child or len(here) == 1:
            out.add(here)
        if isinstance(child, Mapping):
            out |= from_fields_v1(child, here)
    return out


def owners_of(obj: Mapping[str, Any]) -> Owners:
    out: Owners = {}
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        key = (entry.get("manager", ""), entry.get("operation", "Update"),
               entry.get("subresource", ""))
        out[key] = (entry.get("apiVersion", ""), from_fields_v1(entry.get("fieldsV1") or {}))
    return out


def render(owners: Owners, now: str, previous: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """``managedFields`` entries; an entry whose fields did not change keeps its time."""
    before = owners_of(previous)
    out = []
    for (manager, op, sub), (api_version, fields) in sorted(owners.items()):
        if not fields:
            continue
        old = before.get((manager, op, sub))
        when = now
        if old is not None and old[1] == fields:
            when = next((e.get("time", now) for e in
                         (previous.get("metadata") or {}).get("managedFields") or []
                         if (e.get("manager"), e.get("operation"), e.get("subresource", ""))
                         == (manager, op, sub)), now)
        entry = {"manager": manager, "operation": op, "apiVersion": api_version,
                 "time": when, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(fields)}
        if sub:
            entry["subresource"] = sub
        out.append(entry)
    return out


def value_at(obj: Any, path: Path) -> Any:
    """The value at ``path``, or the ``_MISSING`` marker."""
    cur = obj
    for part in path:
        kind, _, rest = part.partition(":")
        if kind == "f" and isinstance(cur, Mapping) and rest in cur:
            cur = cur[rest]
        elif kind == "k" and isinstance(cur, list):
            ident = json.loads(rest)
            cur = next((i for i in cur if isinstance(i, Mapping)
                        and all(i.get(k) == v for k, v in ident.items())), _MISSING)
            if cur is _MISSING:
                return _MISSING
        elif kind == "v" and isinstance(cur, list):
            value = json.loads(rest)
            return value if value in cur else _MISSING
        else:
            return _MISSING
    return cur


_MISSING = object()


def _remove(obj: Any, path: Path) -> None:
    """Remove ``path`` from ``obj`` in place (``obj`` is the caller's own copy)."""
    parent = value_at(obj, path[:-1])
    kind, _, rest = path[-1].partition(":")
    if kind == "f" and isinstance(parent, dict):
        parent.pop(rest, None)
    elif kind in ("k", "v") and isinstance(parent, list):
        target = value_at(obj, path)
        if target is not _MISSING:
            parent.remove(target)


def field_path(path: Path) -> str:
    """``.spec.containers[name="web"].image``, as a conflict message names a field."""
    out = ""
    for part in path:
        kind, _, rest = part.partition(":")
        if kind == "f":
            out += "." + rest
        elif kind == "k":
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(rest).items()) + "]"
        else:
            out += f"[={rest}]"
    return out


def merge(live: Any, config: Any, typ: TypeInfo, rule: ListRule = NO_LIST) -> Any:
    """``config`` merged into ``live`` by the schema (maps by key, map-lists by item key,
    sets by value, everything else replaced)."""
    if isinstance(config, Mapping):
        if not isinstance(live, Mapping) or typ.atomic or rule.map_type == "atomic":
            return copy.deepcopy(dict(config))
        out = dict(live)
        for key, value in config.items():
            if value is None:
                continue
            out[key] = merge(out.get(key), value, typ.child(key), typ.rule(key))
        return out
    if isinstance(config, list) and isinstance(live, list):
        keys = _item_keys(rule)
        if keys:
            out_list = list(live)
            for item in config:
                ident = _key_of(item, keys)
                at = next((i for i, e in enumerate(out_list) if _key_of(e, keys) == ident), None)
                if at is None:
                    out_list.append(copy.deepcopy(item))
                else:
                    out_list[at] = merge(out_list[at], item, typ)
            return out_list
        if _is_set(rule):
            return list(live) + [copy.deepcopy(v) for v in config if v not in live]
    return copy.deepcopy(config)


def _leaves(fields: FieldSet) -> FieldSet:
    parents = {p[:i] for p in fields for i in range(1, len(p))}
    return fields - parents


def record_update(owners: Owners, old: Optional[Mapping[str, Any]], new: Mapping[str, Any],
                  manager: str, api_version: str, typ: TypeInfo, subresource: str,
                  status: Optional[bool]) -> Owners:
    """Ownership after a non-apply write by ``manager``: it owns what it changed."""
    now_fields = fields_of(new, typ, status=status)
    if old is None:
        changed, removed = now_fields, set()
    else:
        before = fields_of(old, typ, status=status)
        changed = {p for p in now_fields if p not in before
                   or (p in _leaves(now_fields) and value_at(old, p) != value_at(new, p))}
        removed = before - now_fields
    out: Owners = {}
    for key, (av, fields) in owners.items():
        out[key] = (av, fields - changed - removed)
    if changed:
        mine = (manager, "Update", subresource)
        av, fields = out.get(mine, (api_version, set()))
        out[mine] = (api_version, (fields | changed) - removed)
    return out


def apply(live: Mapping[str, Any], config: Mapping[str, Any], owners: Owners, *,
          manager: str, api_version: str, force: bool, typ: TypeInfo, subresource: str,
          status: Optional[bool]) -> Tuple[Dict[str, Any], Owners]:
    """Apply ``config`` as ``manager`` onto ``live``: the new object and its owners.

    Raises a 409 ``Conflict`` Status listing each conflicting field and its owner
    unless ``force``, which takes the fields over.
    """
    applied = fields_of(config, typ, status=status)
    leaves = _leaves(applied)
    mine = (manager, "Apply", subresource)
    conflicts: List[Tuple[str, Path]] = []
    out: Owners = {k: (av, set(f)) for k, (av, f) in owners.items()}
    for key, (_, fields) in out.items():
        if key == mine:
            continue
        for path in sorted(fields & leaves):
            wanted = value_at(config, path)
            if isinstance(wanted, Mapping):  # a map or struct: its members conflict, not it
                continue
            if value_at(live, path) != wanted:
                conflicts.append((key[0], path))
                if force:
                    fields.discard(path)
    if conflicts and not force:
        causes = [{"type": "FieldManagerConflict", "field": field_path(p),
                   "message": f'conflict with "{m}"'} for m, p in conflicts]
        lines = "\n".join(f'- conflict with "{m}": {field_path(p)}' for m, p in conflicts)
        n = len(conflicts)
        raise StatusError(409, "Conflict",
                          f"Apply failed with {n} conflict{'s' if n > 1 else ''}: {lines}",
                          details={"causes": causes})
    previously = out.get(mine, ("", set()))[1]
    others = set().union(*(f for k, (_, f) in out.items() if k != mine))
    new = copy.deepcopy(dict(live))
    for path in sorted(previously - applied - others, key=len, reverse=True):
        if len(path) > 1 or path[0] not in ("f:metadata",):
            _remove(new, path)
    new = merge(new, {k: v for k, v in config.items() if not (
        (status is True and k not in ("status",)) or (status is False and k == "status"))
        or k in ("apiVersion", "kind")}, typ)
    out[mine] = (api_version, applied)
    return new, out
