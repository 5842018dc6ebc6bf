"""BodyDecoder: a JSON body decoded in parts equals the body decoded whole, however it is
cut, and a LIST's items are parsed as their text completes."""

from __future__ import annotations

import json
import random
from typing import Any, Iterable, List

import pytest

from kubesync.core import jsonstream
from kubesync.core.json import dumps, loads
from kubesync.core.jsonstream import BodyDecoder


def decode(body: bytes, sizes: Iterable[int]) -> Any:
    d = BodyDecoder()
    pos = 0
    for size in sizes:
        d.feed(body[pos:pos + size])
        pos += size
    d.feed(body[pos:])
    return d.result()


def cuts(body: bytes, seed: int) -> List[int]:
    rng = random.Random(seed)
    out, total = [], 0
    while total < len(body):
        n = rng.choice([1, 2, 3, 17, 100, 999, 4096, 70000])
        out.append(n)
        total += n
    return out


def config_map_list(n: int) -> bytes:
    items = [{"metadata": {"name": f"cm-{i}", "labels": {"a": "b"}},
              "data": {"k": "v" * (i % 50)}} for i in range(n)]
    return dumps({"kind": "ConfigMapList", "apiVersion": "v1",
                  "metadata": {"resourceVersion": "12"}, "items": items})


def stateful_set_list(n: int) -> bytes:
    # volumeClaimTemplates: an array of objects that begin as the items do.
    vct = [{"metadata": {"name": f"data-{k}"}, "spec": {"resources": {}}} for k in range(3)]
    items = [{"metadata": {"name": f"s{i}"}, "spec": {"volumeClaimTemplates": vct}}
             for i in range(n)]
    return dumps({"kind": "StatefulSetList", "apiVersion": "apps/v1", "metadata": {},
                  "items": items})


TRICKY = [
    config_map_list(0),
    config_map_list(1),
    config_map_list(300),
    stateful_set_list(40),
    # Custom resources: items begin with apiVersion; two ownerReferences begin so too.
    dumps({"apiVersion": "x.io/v1", "kind": "FooList", "metadata": {}, "items": [
        {"apiVersion": "x.io/v1", "kind": "Foo", "metadata": {"name": f"f{i}", "ownerReferences": [
            {"apiVersion": "v1", "kind": "A", "name": "a"},
            {"apiVersion": "v1", "kind": "B", "name": "b"}]}} for i in range(30)]}),
    # Strings holding the text an item begins with, escaped, and a string ending in "},{".
    dumps({"kind": "L", "metadata": {}, "items": [
        {"metadata": {"name": "a"}, "data": {"x": '},{"metadata":{', "y": "},{"}},
        {"metadata": {"name": "b"}, "data": {"z": "]}"}}]}),
    # Keys after the items, a duplicate key in the envelope, unicode.
    b'{"kind":"L","metadata":{},"kind":"M","items":[{"metadata":{"n":"\xc3\xa9"}},'
    b'{"metadata":{"n":2}}],"extra":1}',
    # Not LISTs: a Pod with a volume's "items":[, an array, scalars, an empty object.
    dumps({"kind": "Pod", "spec": {"volumes": [{"configMap": {"items": [{"key": "a"}]}}]}}),
    b'[{"metadata":{}},{"metadata":{}}]',
    b'"text"', b"42", b"{}", b"null",
    # Items that are not objects; whitespace as a pretty printer writes it.
    b'{"kind":"L","items":[1,2,3]}',
    json.dumps({"kind": "L", "metadata": {}, "items": [{"metadata": {"name": "a"}},
                                                       {"metadata": {"name": "b"}}]},
               indent=2).encode(),
    b'{"kind":"L","items":[]}',
]


@pytest.mark.parametrize("body", TRICKY, ids=range(len(TRICKY)))
def test_any_cut_of_a_body_decodes_as_the_whole_body(body: bytes) -> None:
    want = loads(body)
    for seed in range(6):
        got = decode(body, cuts(body, seed))
        assert got == want
        if isinstance(want, dict):
            assert list(got) == list(want)  # key order as a whole parse gives it
    assert decode(body, [len(body)]) == want
    assert decode(body, [1] * min(len(body), 3000)) == want


def test_items_are_parsed_as_their_text_completes() -> None:
    body = config_map_list(50)
    d = BodyDecoder()
    half = body.index(b'{"metadata":{"name":"cm-30"')
    d.feed(body[:half + 5])
    assert 28 <= len(d._items) <= 30  # cm-0..cm-28 at least: the rest waits for its end
    assert [i["metadata"]["name"] for i in d._items] == \
        [f"cm-{i}" for i in range(len(d._items))]
    d.feed(body[half + 5:])
    assert d.result() == loads(body)


def test_a_nested_end_that_begins_as_an_item_does_is_not_taken_for_an_item_end() -> None:
    body = stateful_set_list(10)
    d = BodyDecoder()
    d.feed(body[:len(body) // 2])
    assert d._items and all(i["metadata"]["name"].startswith("s") for i in d._items)
    assert all(len(i["spec"]["volumeClaimTemplates"]) == 3 for i in d._items)
    d.feed(body[len(body) // 2:])
    assert d.result() == loads(body)


@pytest.mark.parametrize("body", [
    b'{"kind":"L","items":[{"metadata":{}},{"metadata":{}]}',  # a bracket short
    b'{"kind":"L","items":[{"metadata":{}},{"metadata":{}}',  # cut before the end
    b'{"kind":"L","items":[{"metadata":{}},{"metadata":{}}]}}',  # one brace too many
    b'{"kind":"L","items":[{"metadata":{}} , {"metadata":{}}]} x',
    b'{"kind":"L","items":[{"metadata":{}},{"metadata":nope}]}',
    b'{"kind":',
    b"nope",
])
def test_a_body_that_is_not_json_raises_value_error_as_a_whole_parse_does(body: bytes) -> None:
    with pytest.raises(ValueError):
        loads(body)
    for sizes in ([len(body)], [1] * len(body), [5, 9]):
        with pytest.raises(ValueError):
            decode(body, sizes)


def test_an_empty_body_is_none() -> None:
    assert BodyDecoder().result() is None
    d = BodyDecoder()
    d.feed(b"")
    assert d.result() is None


def test_an_item_longer_than_the_piece_limit_goes_to_the_end_of_body_parse(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonstream, "PIECE_LIMIT", 2000)
    big = {"metadata": {"name": "big"}, "data": {"x": "y" * 5000}}
    body = dumps({"kind": "L", "metadata": {}, "items": [{"metadata": {}}, big, big,
                                                         {"metadata": {"name": "z"}}]})
    d = BodyDecoder()
    for i in range(0, len(body), 700):
        d.feed(body[i:i + 700])
    assert d._rest is not None  # kept, not parsed in parts
    assert d.result() == loads(body)


def test_an_envelope_past_the_head_limit_is_parsed_whole(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonstream, "HEAD_LIMIT", 50)
    body = dumps({"kind": "L", "metadata": {"continue": "c" * 100},
                  "items": [{"metadata": {}}, {"metadata": {}}]})
    d = BodyDecoder()
    for i in range(0, len(body), 20):
        d.feed(body[i:i + 20])
    assert d._head is None and d._rest is not None
    assert d.result() == loads(body)


def test_many_nested_ends_in_one_item_stop_the_parsing_in_parts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonstream, "MISSES_LIMIT", 2)
    nested = [{"metadata": {"name": f"n{k}"}} for k in range(10)]
    body = dumps({"kind": "L", "items": [{"metadata": {"name": "a"}, "spec": {"x": nested}},
                                         {"metadata": {"name": "b"}}]})
    d = BodyDecoder()
    for i in range(0, len(body), 16):
        d.feed(body[i:i + 16])
    assert d._rest is not None
    assert d.result() == loads(body)


def test_with_the_standard_library_parser_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonstream, "loads", json.loads)
    for body in TRICKY:
        want = json.loads(body)
        assert decode(body, cuts(body, 1)) == want
        assert decode(body, [len(body)]) == want


def test_a_part_that_ends_at_a_nested_end_falls_back_to_items_one_by_one() -> None:
    body = stateful_set_list(6)
    # Up to the second nested "},{"metadata":" of item 3: the last candidate of the part.
    item3 = body.index(b'{"metadata":{"name":"s3"}')
    cut = body.index(b'},{"metadata":{"name":"data-2"}', item3) + 3
    d = BodyDecoder()
    d.feed(body[:cut])
    assert d._by_item  # the array up to there did not parse
    assert [i["metadata"]["name"] for i in d._items] == ["s0", "s1", "s2"]
    d.feed(body[cut:])
    assert d.result() == loads(body)


def custom_resource_list(n: int) -> bytes:
    # As apiextensions writes them: keys sorted, so managedFields entries (and
    # ownerReferences) begin with "apiVersion" too, as the items do.
    fields = [{"apiVersion": "x.io/v1", "fieldsType": "FieldsV1", "manager": m}
              for m in ("kubectl", "controller", "status")]
    items = [{"apiVersion": "x.io/v1", "kind": "Foo",
              "metadata": {"managedFields": fields, "name": f"f{i}"}, "spec": {"i": i}}
             for i in range(n)]
    return dumps({"apiVersion": "x.io/v1", "items": items, "kind": "FooList",
                  "metadata": {"resourceVersion": "5"}})


def test_a_custom_resource_list_is_parsed_a_part_at_a_time() -> None:
    # The opening runs to the second key ("kind"): managedFields entries begin otherwise.
    body = custom_resource_list(400)
    d = BodyDecoder()
    for i in range(0, len(body), 4096):
        d.feed(body[i:i + 4096])
    assert d._opening == b'},{"apiVersion":"x.io/v1","kind":'
    assert not d._by_item and d._rest is None
    assert d.result() == loads(body)


@pytest.mark.parametrize("item, opening", [
    ({"metadata": {"name": "a"}, "x": 1}, b'},{"metadata":{"name":'),
    ({"apiVersion": "v", "kind": "K"}, b'},{"apiVersion":"v","kind":'),
    ({"n": 1, "m": 2}, b'},{"n":'),  # a number: it differs from item to item
    ({"a": {}, "b": {"c": 1}}, b'},{"a":'),  # the second key is past the first value
])
def test_the_opening_is_how_items_begin_alike(item: Any, opening: bytes) -> None:
    body = dumps({"kind": "L", "items": [item] * 50})
    d = BodyDecoder()
    for i in range(0, len(body), 64):
        d.feed(body[i:i + 64])
    assert d._opening == opening
    assert d.result() == loads(body)


@pytest.mark.parametrize("body", [
    b'{"kind":"L","items":[{"a":1},{"a":2}],"items":[{"a":3}]}',
    b'{"kind":"L","items":[{"a":1}],"items":null}',
    b'{"kind":"L","items":[{"a":1},{"a":2}],"it\\u0065ms":[{"a":3}],"z":0}',
])
def test_a_later_items_key_wins_as_in_a_whole_parse(body: bytes) -> None:
    want = loads(body)
    for sizes in ([len(body)], [1] * len(body), [30]):
        assert decode(body, sizes) == want


def test_items_nest_as_deep_as_a_whole_parse_allows_and_no_deeper() -> None:
    for depth in (1018, 1019, 1020, 1021, 1022, 1023, 1024):
        deep = b'{"a":' + b"[" * depth + b"]" * depth + b"}"
        body = b'{"kind":"L","items":[' + deep + b',{"a":1},{"a":2}]}'
        try:
            want: Any = loads(body)
        except ValueError:
            want = ValueError
        for sizes in ([len(body)], [len(body) - 20, 20], [7]):
            try:
                got: Any = decode(body, sizes * (len(body) // sum(sizes) + 1))
            except ValueError:
                got = ValueError
            if want is ValueError:
                assert got is ValueError, (depth, sizes)
            else:  # (the nested arrays are too deep for == to compare)
                assert got is not ValueError, (depth, sizes)
                assert got["items"][1:] == want["items"][1:] and len(got["items"]) == 3


def test_the_result_is_the_same_when_asked_again() -> None:
    body = config_map_list(20)
    d = BodyDecoder()
    d.feed(body)
    first = d.result()
    assert d.result() is first and len(first["items"]) == 20


# -- ItemConverter: a LIST's items converted as they are parsed ---------------------------


class Tagged:
    """What a converter makes of an item: the item, and which run made it."""

    def __init__(self, raw: Any, run: int) -> None:
        self.raw, self.run = raw, run


def read_converting(body: bytes, sizes: Iterable[int], convert: Any) -> Any:
    """``body`` fed in ``sizes`` as Response.json feeds it, converting as it goes."""
    d, c = BodyDecoder(), jsonstream.ItemConverter(convert)
    pos = 0
    for size in [*sizes, len(body)]:
        d.feed(body[pos:pos + size])
        pos += size
        c.take(d.items)
    result = d.result()
    c.finish(result, d.items)
    return result, c


def tagging() -> Any:
    runs: List[List[Any]] = []

    def convert(raws: List[Any]) -> List[Any]:
        runs.append(list(raws))
        return [Tagged(raw, len(runs)) for raw in raws]

    return convert, runs


@pytest.mark.parametrize("index", range(len(TRICKY)))
def test_converted_items_are_the_answers_items_in_order_or_none(index: int) -> None:
    body = TRICKY[index]
    for seed in range(4):
        convert, runs = tagging()
        result, c = read_converting(body, cuts(body, seed), convert)
        assert result == loads(body)  # converting changes nothing of the JSON
        if c.items is None:
            # Not made as they came (the caller converts the answer's items): only for
            # what is not a LIST parsed in parts; the first six bodies are.
            assert index >= 6
            continue
        raws = result["items"]
        assert len(c.items) == len(raws)
        assert all(t.raw is raw for t, raw in zip(c.items, raws))  # the answer's objects
        assert [raw for run in runs for raw in run] == raws  # each converted once


def test_a_lists_items_are_converted_in_runs_while_the_body_arrives() -> None:
    body = config_map_list(300)
    convert, runs = tagging()
    _, c = read_converting(body, [1024] * (len(body) // 1024), convert)
    assert c.items is not None and len(c.items) == 300
    assert len(runs) > 10  # a run per part that completed items
    assert len(runs[-1]) < 300 and c.items[0].run == 1  # the first ones long before the end
    assert [t.raw["metadata"]["name"] for t in c.items] == [f"cm-{i}" for i in range(300)]


@pytest.mark.parametrize("body", [
    b'{"kind":"L","items":[{"a":1},{"a":2}],"items":[{"a":3}]}',  # a later items key wins
    json.dumps({"kind": "L", "items": [{"metadata": {}}, {"metadata": {}}]},
               indent=1).encode(),  # whitespace: parsed whole at the end
    b'[{"metadata":{}},{"metadata":{}}]',  # not a LIST
])
def test_items_not_parsed_as_they_came_are_left_for_the_caller(body: bytes) -> None:
    for sizes in ([1] * len(body), [len(body)]):
        convert, _ = tagging()
        result, c = read_converting(body, sizes, convert)
        assert result == loads(body) and c.items is None


def test_a_run_the_converter_refuses_leaves_the_items_to_the_callers_own_pass() -> None:
    from kubesync.core.convert import decode_list
    from kubesync.core.lazy import list_filler
    from kubesync.errors import DecodeError
    from kubesync.models.core_v1 import ConfigMap

    items = [b'{"metadata":{"name":"a%d"}}' % i for i in range(10)]
    body = b'{"kind":"L","items":[' + b",".join(items) + b',7]}'  # items[10] is no object
    made = jsonstream.ItemConverter(list_filler(ConfigMap))
    d = BodyDecoder()
    for i in range(0, len(body), 40):
        d.feed(body[i:i + 40])
        made.take(d.items)
    result = d.result()
    made.finish(result, d.items)
    assert made.items is None
    with pytest.raises(DecodeError, match=r"items\[10\]"):  # named in the whole list
        decode_list(ConfigMap, result, converter=made)


def test_a_reset_converter_forgets_the_body_read_before() -> None:
    body = config_map_list(40)
    convert, runs = tagging()
    c = jsonstream.ItemConverter(convert)
    cut = BodyDecoder()
    cut.feed(body[:len(body) // 2])  # a body cut short (a lost connection)...
    c.take(cut.items)
    assert runs
    c.reset()  # ... then the retried request's body, read anew
    d = BodyDecoder()
    for i in range(0, len(body), 512):
        d.feed(body[i:i + 512])
        c.take(d.items)
    c.finish(d.result(), d.items)
    assert c.items is not None and [t.raw for t in c.items] == loads(body)["items"]


def test_decode_list_takes_the_items_made_as_they_came() -> None:
    from kubesync.core.convert import decode_list
    from kubesync.core.lazy import list_filler
    from kubesync.models.core_v1 import ConfigMap

    body = config_map_list(120)
    result, made = read_converting(body, [2000] * (len(body) // 2000),
                                   list_filler(ConfigMap))
    assert made.items is not None
    listed = decode_list(ConfigMap, result, converter=made)
    assert listed.items is made.items  # taken, not made again
    assert made.raws is result["items"]
    assert listed == decode_list(ConfigMap, loads(body))
    assert listed.resource_version == "12"


def test_decode_list_takes_made_items_only_from_the_answer_they_were_made_of() -> None:
    from kubesync.core.convert import decode_list
    from kubesync.core.lazy import list_filler
    from kubesync.models.core_v1 import ConfigMap

    first, made = read_converting(config_map_list(5), [100] * 10, list_filler(ConfigMap))
    other = loads(config_map_list(5).replace(b'"cm-', b'"other-'))
    listed = decode_list(ConfigMap, other, converter=made)  # another answer, same length
    assert [o.metadata.name for o in listed.items] == [f"other-{i}" for i in range(5)]
    assert decode_list(ConfigMap, first, converter=made).items is made.items
