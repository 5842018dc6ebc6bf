"""Gzip bodies: inflated as they are read (ISA-L where installed, zlib otherwise), the
same bytes as the body sent, and a clear TransportError for one that does not inflate."""

from __future__ import annotations

import gzip
import zlib
from typing import Any, Iterator, List

import pytest
import responses

from kubesync import Client, Config, errors
from kubesync.client import RetryPolicy, inflate
from kubesync.client.inflate import InflateError, inflated
from kubesync.core import objectlist
from kubesync.core.json import dumps, loads
from kubesync.core.jsonstream import ItemConverter

SERVER = "https://k8s.test:6443"
URL = SERVER + "/api/v1/namespaces/default/configmaps"
BODY = dumps({"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"},
              "items": [{"metadata": {"name": f"cm-{i}"}, "data": {"k": "v" * (i % 90)}}
                        for i in range(3000)]})


def reader(data: bytes, size: int = 1000):  # type: ignore[no-untyped-def]
    pos = 0

    def read(n: int) -> bytes:
        nonlocal pos
        part = data[pos:pos + min(n, size)]
        pos += len(part)
        return part

    return read


@pytest.fixture(params=["installed", "zlib"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "zlib":
        monkeypatch.setattr(inflate, "_inflater", zlib)
    yield request.param


def test_a_gzip_stream_inflates_to_what_was_sent(backend: str) -> None:
    packed = gzip.compress(BODY, compresslevel=1)
    for size in (1, 100, 65536, len(packed)):
        parts = list(inflated(reader(packed, size)))
        assert b"".join(parts) == BODY
        assert all(parts)  # no empty parts handed on


def test_gzip_members_one_after_another_inflate_as_one_body(backend: str) -> None:
    packed = gzip.compress(b"first,") + gzip.compress(b"second")
    assert b"".join(inflated(reader(packed, 7))) == b"first,second"


def test_an_empty_body_inflates_to_nothing(backend: str) -> None:
    assert list(inflated(reader(b""))) == []


@pytest.mark.parametrize("bad", ["corrupt", "cut", "trailing"])
def test_a_body_that_does_not_inflate_raises_inflate_error(backend: str, bad: str) -> None:
    packed = gzip.compress(BODY)
    data = {"corrupt": packed[:10] + b"\x00" * 50 + packed[60:],
            "cut": packed[: len(packed) // 2],
            "trailing": packed + b"not gzip"}[bad]
    with pytest.raises(InflateError, match="gzip body"):
        b"".join(inflated(reader(data, 4096)))


def client() -> Client:
    return Client(Config(server=SERVER), retries=RetryPolicy(retries=0))


@responses.activate
def test_a_gzip_list_answer_decodes_as_the_body_sent() -> None:
    responses.get(URL, body=gzip.compress(BODY, compresslevel=1),
                  headers={"Content-Encoding": "gzip"}, content_type="application/json")
    assert client().request("GET", "/api/v1/namespaces/default/configmaps") == loads(BODY)


@responses.activate
def test_a_gzip_text_answer_reads_as_the_text_sent() -> None:
    responses.get(SERVER + "/api/v1/namespaces/default/pods/p/log",
                  body=gzip.compress(b"line 1\nline 2\n"), headers={"Content-Encoding": "gzip"})
    text = client().request_text("GET", "/api/v1/namespaces/default/pods/p/log")
    assert text == "line 1\nline 2\n"


@responses.activate
def test_a_gzip_answer_that_does_not_inflate_is_a_transport_error_naming_the_call() -> None:
    responses.get(URL, body=gzip.compress(BODY)[:5000], headers={"Content-Encoding": "gzip"})
    with pytest.raises(errors.TransportError) as info:
        client().request("GET", "/api/v1/namespaces/default/configmaps")
    assert "gzip body ends before" in str(info.value)
    assert info.value.method == "GET" and info.value.url == URL


@responses.activate
def test_an_answer_that_is_not_json_is_a_decode_error_naming_the_call() -> None:
    responses.get(URL, body=gzip.compress(b'{"kind":"L","items":[{"metadata":{}},nope]}'),
                  headers={"Content-Encoding": "gzip"}, content_type="application/json")
    with pytest.raises(errors.DecodeError, match=r"GET .*/configmaps is not JSON"):
        client().request("GET", "/api/v1/namespaces/default/configmaps")


def test_the_backend_is_isal_where_it_has_wheels() -> None:
    # setup.cfg requires isal on x86_64 and arm64 machines; this suite runs on one.
    import platform

    assert platform.machine() not in ("x86_64", "AMD64", "aarch64", "arm64") \
        or inflate.BACKEND == "isal"




def test_zero_padding_after_a_member_is_skipped_as_gzip_skips_it(backend: str) -> None:
    packed = gzip.compress(b"body") + b"\0" * 7
    assert gzip.decompress(packed) == b"body"
    assert b"".join(inflated(reader(packed, 3))) == b"body"


@responses.activate
@pytest.mark.parametrize("encoding, pack", [
    ("x-gzip", gzip.compress),
    ("deflate", zlib.compress),  # urllib3 inflates what is not gzip
    ("identity", lambda b: b),
])
def test_answers_in_other_encodings_decode_as_the_body_sent(encoding: str, pack: Any) -> None:
    responses.get(URL, body=pack(BODY), headers={"Content-Encoding": encoding},
                  content_type="application/json")
    assert client().request("GET", "/api/v1/namespaces/default/configmaps") == loads(BODY)


@responses.activate
def test_a_typed_list_cut_short_is_retried_and_its_items_made_from_the_answer_read_whole(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from kubesync import Api
    from kubesync.core.convert import decode_list, encode
    from kubesync.models.core_v1 import ConfigMap

    monkeypatch.setattr(inflate, "BLOCK", 16 * 1024)  # several parts, items made per part
    whole = gzip.compress(BODY, compresslevel=1)
    # The answer lost mid-body is of another list (as after a change): none of its items
    # may be among those returned.
    other = gzip.compress(BODY.replace(b'"cm-', b'"lost-'), compresslevel=1)
    responses.get(URL, body=other[:len(other) // 2], headers={"Content-Encoding": "gzip"},
                  content_type="application/json")
    responses.get(URL, body=whole, headers={"Content-Encoding": "gzip"},
                  content_type="application/json")
    converters: List[ItemConverter] = []

    class Recording(ItemConverter):
        def __init__(self, convert: Any) -> None:
            super().__init__(convert)
            self.runs = 0
            converters.append(self)

        def reset(self) -> None:
            super().reset()
            self.runs = 0  # counts the runs of the answer read last

        def take(self, parsed: List[Any]) -> None:
            self.runs += 1
            super().take(parsed)

    monkeypatch.setattr(objectlist, "ItemConverter", Recording)
    c = Client(Config(server=SERVER), retries=RetryPolicy(retries=1, sleep=lambda s: None))
    listed = Api(c, ConfigMap, namespace="default").list()
    assert len(responses.calls) == 2  # the first answer ended mid-body: retried
    want = decode_list(ConfigMap, loads(BODY))
    assert [encode(o) for o in listed.items] == [encode(o) for o in want.items]
    assert listed.resource_version == "7"
    # The items were made as the second answer arrived, in runs, and are the ones listed.
    [converter] = converters
    assert isinstance(converter, Recording) and converter.runs > 1
    assert converter.items is not None and listed.items is converter.items
