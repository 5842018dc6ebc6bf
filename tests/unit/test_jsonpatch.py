"""The JSON Patch diff: applying json_patch(old, new) to old gives new, for many generated
documents (fixed seed), plus the pointer escaping and the cases Python's == gets wrong."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from kubesync.webhook.jsonpatch import (
    JsonPatchError,
    apply_patch,
    escape_pointer,
    json_equal,
    json_patch,
    unescape_pointer,
)

KEYS = ["a", "b", "spec", "x/y", "m~n", "~1", "", "0", "-", "ü"]


def _value(rng: random.Random, depth: int) -> Any:
    pick = rng.random()
    if depth <= 0 or pick < 0.35:
        return rng.choice([None, True, False, 0, 1, 1.0, -7, 2.5, "", "s", "1", [], {}])
    if pick < 0.65:
        return [_value(rng, depth - 1) for _ in range(rng.randint(0, 4))]
    return {k: _value(rng, depth - 1) for k in rng.sample(KEYS, rng.randint(0, 5))}


def _mutate(rng: random.Random, doc: Any, depth: int) -> Any:
    """A changed copy of ``doc``: some keys/items added, removed, replaced or recursed."""
    if isinstance(doc, dict) and rng.random() < 0.8:
        out = {}
        for k, v in doc.items():
            r = rng.random()
            if r < 0.15:
                continue
            out[k] = _mutate(rng, v, depth - 1) if r < 0.6 else v
        for k in rng.sample(KEYS, rng.randint(0, 2)):
            out.setdefault(k, _value(rng, depth - 1))
        return out
    if isinstance(doc, list) and rng.random() < 0.8:
        items = [(_mutate(rng, v, depth - 1) if rng.random() < 0.4 else v) for v in doc
                 if rng.random() > 0.2]
        for _ in range(rng.randint(0, 2)):
            items.insert(rng.randint(0, len(items)), _value(rng, depth - 1))
        return items
    return _value(rng, depth)


def test_applying_the_diff_gives_the_new_document_for_generated_cases() -> None:
    rng = random.Random(19)
    changed = 0
    for _ in range(3000):
        old = {"root": _value(rng, 4)}
        new = _mutate(rng, old, 5)
        if not isinstance(new, dict):
            new = {"root": new}
        before_old, before_new = copy.deepcopy(old), copy.deepcopy(new)
        ops = json_patch(old, new)
        assert json_equal(apply_patch(old, ops), new), (old, new, ops)
        assert json_equal(old, before_old) and json_equal(new, before_new)  # untouched
        changed += bool(ops)
        assert bool(ops) != json_equal(old, new)
    assert changed > 2000  # the generator really changes documents


def test_an_unchanged_document_gives_no_operations() -> None:
    doc = {"a": [1, {"b": None}], "c": "d"}
    assert json_patch(doc, copy.deepcopy(doc)) == []


@pytest.mark.parametrize("old, new", [({"v": 1}, {"v": True}), ({"v": 1}, {"v": 1.0}),
                                      ({"v": [0]}, {"v": [False]})])
def test_a_changed_json_type_is_patched_though_python_calls_it_equal(old: Any, new: Any) -> None:
    ops = json_patch(old, new)
    assert ops and json_equal(apply_patch(old, ops), new)


def test_pointer_tokens_escape_tilde_then_slash() -> None:
    assert escape_pointer("a/b~c") == "a~1b~0c"
    assert escape_pointer("~1") == "~01"
    assert unescape_pointer("~01") == "~1"
    ops = json_patch({}, {"metadata/x": 1, "~": 2})
    assert {o["path"] for o in ops} == {"/metadata~1x", "/~0"}


def test_arrays_shrink_from_the_end_and_grow_by_index() -> None:
    assert json_patch({"l": [1, 2, 3]}, {"l": [1]}) == [
        {"op": "remove", "path": "/l/2"}, {"op": "remove", "path": "/l/1"}]
    assert json_patch({"l": [1]}, {"l": [1, 2, 3]}) == [
        {"op": "add", "path": "/l/1", "value": 2}, {"op": "add", "path": "/l/2", "value": 3}]


def test_the_patch_shares_no_values_with_the_new_document() -> None:
    new = {"l": [{"deep": []}]}
    ops = json_patch({}, new)
    ops[0]["value"][0]["deep"].append(1)
    assert new == {"l": [{"deep": []}]}


def test_apply_supports_move_copy_and_test() -> None:
    doc = {"a": {"b": 1}, "l": [1, 2]}
    out = apply_patch(doc, [{"op": "copy", "from": "/a/b", "path": "/c"},
                            {"op": "move", "from": "/l/0", "path": "/l/-"},
                            {"op": "test", "path": "/c", "value": 1}])
    assert out == {"a": {"b": 1}, "l": [2, 1], "c": 1}


@pytest.mark.parametrize("op, message", [
    ({"op": "remove", "path": "/nope"}, "no such path"),
    ({"op": "replace", "path": "/l/5", "value": 1}, "out of range"),
    ({"op": "add", "path": "/l/01", "value": 1}, "not an array index"),
    ({"op": "test", "path": "/a", "value": 2}, "test failed"),
    ({"op": "add", "path": "a", "value": 1}, "must be empty or start with '/'"),
    ({"op": "add", "path": "/x"}, "needs a 'value'"),
    ({"op": "frobnicate", "path": "/a"}, "unknown operation"),
    ({"op": "move", "from": "/m", "path": "/m/n"}, "into its own child"),
])
def test_a_patch_that_does_not_apply_says_which_operation_and_why(op: Any, message: str) -> None:
    with pytest.raises(JsonPatchError, match=message) as info:
        apply_patch({"a": 1, "l": [0], "m": {}}, [{"op": "test", "path": "/a", "value": 1}, op])
    assert str(info.value).startswith("operation 1 ")
