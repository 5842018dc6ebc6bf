"""RFC 6902 JSON Patch: the diff from one JSON document to another, and applying a patch.

A mutating webhook answers with the operations that turn the object it was sent into the
object it wants; ``json_patch(old, new)`` computes them, so a handler only edits the object.
Pointers follow RFC 6901 (``~`` is written ``~0``, ``/`` is written ``~1``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

from kubesync.core.json import dumps, json_copy
from kubesync.errors import KubeError

__all__ = ["JsonPatchError", "apply_patch", "escape_pointer", "json_patch", "unescape_pointer"]

Operation = Dict[str, Any]


class JsonPatchError(KubeError, ValueError):
    """A patch that does not apply to the document (a missing path, a failed ``test``)."""


def escape_pointer(token: str) -> str:
    """One JSON Pointer reference token: ``~`` becomes ``~0`` and then ``/`` becomes ``~1``."""
    return token.replace("~", "~0").replace("/", "~1")


def unescape_pointer(token: str) -> str:
    """The inverse of ``escape_pointer`` (``~1`` first, so ``~01`` stays ``~1``)."""
    return token.replace("~1", "/").replace("~0", "~")


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: ``True`` is not ``1`` and ``1`` is not ``1.0`` (Python's
    ``==`` says both are), so a changed type is never lost from a patch."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return bool(a == b)


def json_patch(old: Any, new: Any) -> List[Operation]:
    """The operations that turn JSON document ``old`` into ``new`` (neither is changed).

    Objects are compared key by key; arrays index by index over their common length, then
    items are appended or removed from the end (highest index first, so each index is
    still valid when it is applied). Values of a different type are replaced whole.
    """
    ops: List[Operation] = []
    _diff(old, new, (), ops)
    return ops


def _pointer(at: Tuple[str, ...]) -> str:
    return "".join("/" + escape_pointer(t) for t in at)


def _diff(old: Any, new: Any, at: Tuple[str, ...], ops: List[Operation]) -> None:
    # Containers are walked, not compared first, and a path is only spelled out for an
    # operation: one cheap pass over the document.
    if old is new:
        return
    if type(old) in (dict, list) and type(old) is type(new) and old == new \
            and dumps(old) == dumps(new):
        # Python's == (fast, in C) may call True and 1 equal; the JSON text never does.
        return
    if type(old) is dict and type(new) is dict:
        for key in old:
            if key not in new:
                ops.append({"op": "remove", "path": _pointer((*at, key))})
        for key, value in new.items():
            if key in old:
                _diff(old[key], value, (*at, key), ops)
            else:
                ops.append({"op": "add", "path": _pointer((*at, key)),
                            "value": json_copy(value)})
    elif type(old) is list and type(new) is list:
        common = min(len(old), len(new))
        for i in range(common):
            _diff(old[i], new[i], (*at, str(i)), ops)
        for i in range(len(old) - 1, common - 1, -1):
            ops.append({"op": "remove", "path": _pointer((*at, str(i)))})
        for i in range(common, len(new)):
            ops.append({"op": "add", "path": _pointer((*at, str(i))),
                        "value": json_copy(new[i])})
    elif type(old) is not type(new) or old != new:
        ops.append({"op": "replace", "path": _pointer(at), "value": json_copy(new)})


def _tokens(path: str) -> List[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise JsonPatchError(f"JSON Pointer {path!r} must be empty or start with '/'")
    return [unescape_pointer(t) for t in path[1:].split("/")]


def _index(container: List[Any], token: str, path: str, *, adding: bool) -> int:
    if adding and token == "-":
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise JsonPatchError(f"{path}: {token!r} is not an array index")
    i = int(token)
    if i > len(container) or (i == len(container) and not adding):
        raise JsonPatchError(f"{path}: index {i} is out of range (length {len(container)})")
    return i


def _parent(doc: Any, tokens: Sequence[str], path: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, path, adding=False)]
        else:
            raise JsonPatchError(f"{path}: no such path in the document")
    return node


def _get(doc: Any, path: str) -> Any:
    tokens = _tokens(path)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, path, adding=False)]
    raise JsonPatchError(f"{path}: no such path in the document")


def _remove(doc: Any, path: str) -> Any:
    tokens = _tokens(path)
    if not tokens:
        raise JsonPatchError("cannot remove the whole document")
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, path, adding=False))
    raise JsonPatchError(f"{path}: no such path in the document")


def _add(doc: Any, path: str, value: Any, *, replace: bool) -> Any:
    tokens = _tokens(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise JsonPatchError(f"{path}: no such path in the document")
        parent[last] = value
    elif isinstance(parent, list):
        i = _index(parent, last, path, adding=not replace)
        if replace:
            parent[i] = value
        else:
            parent.insert(i, value)
    else:
        raise JsonPatchError(f"{path}: the parent is not an object or an array")
    return doc


def apply_patch(doc: Any, ops: Sequence[Operation]) -> Any:
    """``doc`` with the RFC 6902 operations applied, in order; ``doc`` itself is unchanged.

    All six operations (add, remove, replace, move, copy, test) are supported; the first
    that does not apply raises ``JsonPatchError`` naming its index and path.
    """
    out = json_copy(doc)
    for n, op in enumerate(ops):
        try:
            out = _apply_one(out, op)
        except JsonPatchError as e:
            raise JsonPatchError(f"operation {n} ({op.get('op')!r}): {e}") from None
    return out


def _apply_one(doc: Any, op: Operation) -> Any:
    kind, path = op.get("op"), op.get("path")
    if not isinstance(path, str):
        raise JsonPatchError(f"'path' must be a string, not {path!r}")
    if kind in ("add", "replace", "test") and "value" not in op:
        raise JsonPatchError(f"{path}: {kind!r} needs a 'value'")
    if kind == "add":
        return _add(doc, path, json_copy(op["value"]), replace=False)
    if kind == "replace":
        return _add(doc, path, json_copy(op["value"]), replace=True)
    if kind == "remove":
        _remove(doc, path)
        return doc
    if kind == "test":
        if not json_equal(_get(doc, path), op["value"]):
            raise JsonPatchError(f"{path}: test failed")
        return doc
    if kind not in ("copy", "move"):
        raise JsonPatchError(f"unknown operation {kind!r}")
    source = op.get("from")
    if not isinstance(source, str):
        raise JsonPatchError(f"'from' must be a string, not {source!r}")
    if kind == "copy":
        return _add(doc, path, json_copy(_get(doc, source)), replace=False)
    if path.startswith(source + "/"):
        raise JsonPatchError(f"cannot move {source} into its own child {path}")
    return _add(doc, path, _remove(doc, source), replace=False)
