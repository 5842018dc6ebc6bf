"""A LIST large enough for the server to gzip is read, inflated and parsed as it arrives,
and decodes to exactly what a plain requests + json LIST of the same resourceVersion gives."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Tuple

import pytest
import requests
import yaml

from kubesync import Api
from kubesync.client import transport
from kubesync.core import objectlist
from kubesync.core.convert import decode_list, encode
from kubesync.core.jsonstream import BodyDecoder, ItemConverter
from kubesync.models.core_v1 import ConfigMap
from kubesync.models.meta_v1 import ObjectMeta

#: ConfigMaps listed: about 1.3 MB of JSON, 0.7 MB gzipped, so several reads.
N = 1000


def noise(seed: str, size: int) -> str:
    """Text that gzip cannot shrink much (hex digests), so that the body is large on the
    wire too and arrives in several reads."""
    out = ""
    while len(out) < size:
        out += hashlib.sha256(f"{seed}/{len(out)}".encode()).hexdigest()
    return out[:size]


class Recorder(BodyDecoder):
    """A BodyDecoder that keeps what it saw: parts fed, items parsed before the end."""

    made: List[Recorder] = []

    def __init__(self) -> None:
        super().__init__()
        self.parts = 0
        self.items_before_end = 0
        Recorder.made.append(self)

    def feed(self, data: bytes) -> None:
        super().feed(data)
        self.parts += 1

    def result(self) -> Any:
        self.items_before_end = len(self._items)
        return super().result()


class Converter(ItemConverter):
    """An ItemConverter that keeps how many items it had made before the body's end."""

    made: List[Converter] = []

    def __init__(self, convert: Any) -> None:
        super().__init__(convert)
        self.runs = 0
        self.made_before_end = 0
        Converter.made.append(self)

    def take(self, parsed: List[Any]) -> None:
        before = len(self._made or ())
        super().take(parsed)
        self.runs += len(self._made or ()) > before

    def finish(self, result: Any, parsed: List[Any]) -> None:
        self.made_before_end = len(self._made or ())
        super().finish(result, parsed)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> List[Recorder]:
    Recorder.made = []
    Converter.made = []
    monkeypatch.setattr(transport, "BodyDecoder", Recorder)
    monkeypatch.setattr(objectlist, "ItemConverter", Converter)
    return Recorder.made


def raw_get(kubeconfig: str, path: str, params: Dict[str, str]) -> Tuple[Any, str]:
    """The same LIST through plain requests (gzip asked, as requests always does)."""
    with open(kubeconfig) as f:
        doc = yaml.safe_load(f)
    ctx = next(c["context"] for c in doc["contexts"] if c["name"] == doc["current-context"])
    cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == ctx["cluster"])
    user = next(u["user"] for u in doc["users"] if u["name"] == ctx["user"])
    with requests.Session() as s:
        s.trust_env = False
        s.verify = cluster["certificate-authority"]
        s.cert = (user["client-certificate"], user["client-key"])
        r = s.get(cluster["server"] + path, params=params, timeout=60)
        r.raise_for_status()
        return r.json(), r.headers.get("Content-Encoding", "")


def test_a_gzipped_list_is_parsed_as_it_arrives_and_equals_a_plain_list(
        kube_client: Any, kube_cluster: Any, kube_namespace: str,
        recorder: List[Recorder]) -> None:
    api = Api(kube_client, ConfigMap, namespace=kube_namespace)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: api.create(ConfigMap(
            metadata=ObjectMeta(name=f"s-{i:04d}", labels={"batch": "s"}),
            data={f"k{k}": noise(f"{i}-{k}", 128) for k in range(8)})), range(N)))
    path = f"/api/v1/namespaces/{kube_namespace}/configmaps"
    recorder.clear()  # the creates' answers went through it too
    data = kube_client.request("GET", path, params={"labelSelector": "batch=s"})
    [decoder] = recorder
    assert decoder.size > N * 8 * 128  # the whole body went through it
    assert decoder.parts > 1 and decoder._rest is None  # in parts, as it came
    assert decoder.items_before_end > 0  # and items were parsed before its end
    rv = data["metadata"]["resourceVersion"]
    plain, encoding = raw_get(kube_cluster.kubeconfig_path, path, {
        "labelSelector": "batch=s", "resourceVersion": rv, "resourceVersionMatch": "Exact"})
    assert encoding == "gzip"  # the server did gzip this LIST
    assert data == plain
    assert list(data) == list(plain)
    typed = api.list(label_selector={"batch": "s"})
    assert [o.metadata.name for o in typed.items] == [f"s-{i:04d}" for i in range(N)]
    assert typed.items[5].data == plain["items"][5]["data"]
    # The typed items were made while the answer arrived, in several runs, and are the
    # objects of the answer's own items (the body of the same resourceVersion).
    [converter] = Converter.made
    assert converter.runs > 1 and converter.made_before_end > 0
    assert converter.items is not None and typed.items is converter.items
    assert typed.resource_version is not None
    again = decode_list(ConfigMap, raw_get(kube_cluster.kubeconfig_path, path, {
        "labelSelector": "batch=s", "resourceVersion": typed.resource_version,
        "resourceVersionMatch": "Exact"})[0])
    assert [encode(o) for o in typed.items] == [encode(o) for o in again.items]


def test_items_with_nested_objects_that_begin_as_items_do_are_not_split(
        kube_client: Any, kube_cluster: Any, kube_namespace: str,
        recorder: List[Recorder]) -> None:
    # StatefulSets: volumeClaimTemplates are objects that begin with "metadata" too.
    path = f"/apis/apps/v1/namespaces/{kube_namespace}/statefulsets"
    template = {"metadata": {"labels": {"app": "s"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}

    claims = [{"metadata": {"name": f"d{k}"},
               "spec": {"accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}}}} for k in range(3)]

    def make(i: int) -> None:
        kube_client.request("POST", path, body={
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": f"st-{i:03d}", "annotations": {"pad": noise(str(i), 4000)}},
            "spec": {"selector": {"matchLabels": {"app": "s"}}, "serviceName": "s",
                     "replicas": 0, "template": template, "volumeClaimTemplates": claims}})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(make, range(200)))
    recorder.clear()
    data = kube_client.request("GET", path)
    [decoder] = recorder
    assert decoder.parts > 1
    rv = data["metadata"]["resourceVersion"]
    plain, encoding = raw_get(kube_cluster.kubeconfig_path, path,
                              {"resourceVersion": rv, "resourceVersionMatch": "Exact"})
    assert encoding == "gzip"
    assert data == plain
    assert [len(o["spec"]["volumeClaimTemplates"]) for o in data["items"]] == [3] * 200


def test_a_lists_items_carry_none_of_the_keys_its_filler_leaves_to_their_read(
        kube_client: Any, kube_namespace: str) -> None:
    # The list filler does not look these keys up in a built-in kind's items
    # (lazy._NOT_IN_BUILTIN_ITEMS, _NOT_IN_ITEM_MODELS): this server does not send them.
    from kubesync.core import lazy

    api = Api(kube_client, ConfigMap, namespace=kube_namespace)
    api.create(ConfigMap(metadata=ObjectMeta(name="keys"), data={"a": "b"}))
    data = kube_client.request("GET", f"/api/v1/namespaces/{kube_namespace}/configmaps",
                               params={"fieldSelector": "metadata.name=keys"})
    [item] = data["items"]
    assert not set(item) & lazy._NOT_IN_BUILTIN_ITEMS
    assert not set(item["metadata"]) & lazy._NOT_IN_ITEM_MODELS
    [typed] = api.list(field_selector={"metadata.name": "keys"}).items
    assert (typed.api_version, typed.kind, typed.metadata.self_link) == (None, None, None)
    got = api.get("keys")  # one object's answer does carry its kind
    assert (got.api_version, got.kind) == ("v1", "ConfigMap")
    assert encode(typed) == item
