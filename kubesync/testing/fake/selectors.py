"""Label and field selectors, parsed and matched as the API server does.

Label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``,
``!a``, comma-separated (all must hold). Field selectors: ``path=value``, ``path==value``,
``path!=value`` over any dotted field of the object (the real server allows only a few per
kind; the fake allows every one). See
https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Set

from kubesync.testing.fake.status import bad_request

Matcher = Callable[[Mapping[str, Any]], bool]

_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_./-]*)\s*$")


def _split(selector: str) -> List[str]:
    """Split on commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


def _equals(key: str, value: str, negate: bool) -> Matcher:
    def test(labels: Mapping[str, Any]) -> bool:
        return (labels.get(key) == value) != negate
    return test


def _within(key: str, values: Set[str], negate: bool) -> Matcher:
    def test(labels: Mapping[str, Any]) -> bool:
        return (labels.get(key) in values) != negate
    return test


def _exists(key: str, negate: bool) -> Matcher:
    def test(labels: Mapping[str, Any]) -> bool:
        return (key in labels) != negate
    return test


def _field_equals(path: str, value: str, negate: bool) -> Matcher:
    def test(obj: Mapping[str, Any]) -> bool:
        return ((_field(obj, path) or "") == value) != negate
    return test


def label_matcher(selector: Optional[str]) -> Matcher:
    """A predicate over an object's labels; ``BadRequest`` naming the bad term."""
    if not selector:
        return lambda labels: True
    tests: List[Matcher] = []
    for term in _split(selector):
        eq = _EQ_RE.match(term)
        if eq:
            key, op, value = eq.groups()
            tests.append(_equals(key, value, op == "!="))
            continue
        m = _SET_RE.match(term)
        if m is None:
            raise bad_request(f"unable to parse requirement: {term.strip()!r} in "
                              f"labelSelector {selector!r}")
        neg, key, op, values = m.groups()
        if op:
            if neg:
                raise bad_request(f"unable to parse requirement: {term.strip()!r}")
            vals = {v.strip() for v in values.split(",") if v.strip()}
            tests.append(_within(key, vals, op == "notin"))
        else:
            tests.append(_exists(key, bool(neg)))
    return lambda labels: all(t(labels) for t in tests)


def _field(obj: Mapping[str, Any], path: str) -> Optional[str]:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return None if isinstance(cur, (dict, list)) else str(cur)


def field_matcher(selector: Optional[str]) -> Matcher:
    """A predicate over a whole object; an absent field compares as ``""``."""
    if not selector:
        return lambda obj: True
    tests: List[Matcher] = []
    for term in _split(selector):
        m = _EQ_RE.match(term)
        if m is None:
            raise bad_request(f"invalid field selector term {term.strip()!r} in "
                              f"fieldSelector {selector!r}")
        path, op, value = m.groups()
        tests.append(_field_equals(path, value, op == "!="))
    return lambda obj: all(t(obj) for t in tests)


def selector_string(selector: Mapping[str, Any]) -> str:
    """A ``LabelSelector`` object as the string form (``Scale.status.selector``)."""
    terms: List[str] = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    ops: Dict[str, str] = {"In": "in", "NotIn": "notin"}
    for expr in selector.get("matchExpressions") or []:
        key, op = expr.get("key", ""), expr.get("operator", "")
        if op in ops:
            terms.append(f"{key} {ops[op]} ({','.join(sorted(expr.get('values') or []))})")
        elif op == "Exists":
            terms.append(key)
        elif op == "DoesNotExist":
            terms.append(f"!{key}")
    return ",".join(terms)
