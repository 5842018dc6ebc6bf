"""What only the fake does (fault injection, its threads, its kubeconfig) and how
kubesync's runtime recovers through it: dropped watches resume, 410 relists."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator

import pytest
import requests

from kubesync import Api, Client, Config, Discovery, Patch
from kubesync.errors import ApiError, NotFound, ServerError, TransportError, Unauthorized
from kubesync.models.apps_v1 import Deployment
from kubesync.models.core_v1 import ConfigMap
from kubesync.models.meta_v1 import ObjectMeta
from kubesync.runtime import start_reflector
from kubesync.testing.fake import FakeApiServer

WAIT = 10.0


def until(check: Callable[[], Any], what: str) -> Any:
    """Poll ``check`` with a bound (state another thread changes; nothing to wait on)."""
    deadline = time.monotonic() + WAIT
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen in {WAIT}s")
        time.sleep(0.01)
    return check()


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    with FakeApiServer(bookmark_interval=0.05) as server:
        yield server


@pytest.fixture
def client(fake: FakeApiServer) -> Iterator[Client]:
    c = Client(Config.from_kubeconfig(fake.kubeconfig_path), retries=0)
    yield c
    c.close()


def cms(client: Client) -> Api[ConfigMap]:
    return Api(client, ConfigMap, namespace="default")


def test_fail_next_answers_the_next_requests_with_the_status(fake, client):
    fake.faults.fail_next(2, code=503, method="GET")
    for _ in range(2):
        with pytest.raises(ServerError) as failed:
            cms(client).list()
        assert failed.value.code == 503
    assert cms(client).list().items == []


def test_a_delayed_request_outlasts_a_short_client_timeout(fake):
    fake.faults.delay_next(1, seconds=2.0)
    impatient = Client(Config.from_kubeconfig(fake.kubeconfig_path), timeout=(1.0, 0.3),
                       retries=0)
    try:
        with pytest.raises(TransportError):
            cms(impatient).list()
        assert cms(impatient).list().items == []
    finally:
        impatient.close()


def test_a_silent_server_answers_nothing_until_resumed(fake):
    fake.faults.silence()
    impatient = Client(Config.from_kubeconfig(fake.kubeconfig_path), timeout=(1.0, 0.3),
                       retries=0)
    try:
        with pytest.raises(TransportError):
            cms(impatient).list()
        fake.faults.resume()
        assert cms(impatient).list().items == []
    finally:
        impatient.close()


def _watches(fake: FakeApiServer) -> list:
    return [r for r in fake.requests if r.query.get("watch") in ("true", "1")]


def _lists(fake: FakeApiServer) -> list:
    """The (re)lists: a LIST, or a watch that starts with the initial events (WatchList)."""
    return [r for r in fake.requests if r.method == "GET" and r.path.endswith("/configmaps")
            and ("watch" not in r.query or r.query.get("sendInitialEvents") == "true")]


def test_a_reflector_resumes_a_dropped_watch_without_relisting(fake, client):
    api = cms(client)
    api.create(ConfigMap(metadata=ObjectMeta(name="a")))
    store = start_reflector(api)
    try:
        assert store.wait_until_ready(WAIT)
        until(lambda: _watches(fake), "the first watch")
        fake.faults.drop_watches()
        until(lambda: len(_watches(fake)) >= 2, "a second watch")
        api.create(ConfigMap(metadata=ObjectMeta(name="b")))
        until(lambda: store.get("b", namespace="default"), "b in the store")
        assert len(_lists(fake)) == 1  # resumed from its resourceVersion: no relist
        resumed = _watches(fake)[1].query
        assert resumed.get("resourceVersion") not in (None, "", "0")
        assert resumed.get("sendInitialEvents") != "true"
    finally:
        store.stop()


def test_a_reflector_relists_after_410_gone():
    # No bookmarks in time: the watcher's resourceVersion stays at its last ConfigMap event.
    with FakeApiServer(bookmark_interval=3600) as fake:
        client = fake.client()
        api = cms(client)
        api.create(ConfigMap(metadata=ObjectMeta(name="a")))
        store = start_reflector(api)
        try:
            assert store.wait_until_ready(WAIT)
            until(lambda: _watches(fake), "the first watch")
            api.delete("a")
            until(lambda: store.get("a", namespace="default") is None, "a leaving the store")
            client.request("POST", "/api/v1/namespaces", body={"metadata": {"name": "x"}})
            fake.compact()  # history gone, watches cut: the resume gets 410, then a relist
            until(lambda: len(_lists(fake)) >= 2, "a relist")
            api.create(ConfigMap(metadata=ObjectMeta(name="b")))
            until(lambda: store.get("b", namespace="default"), "b in the store")
            assert [r.code for r in _watches(fake)][:2] == [200, 200]
        finally:
            store.stop()
            client.close()


def test_watch_bookmarks_carry_the_current_resource_version(fake, client):
    api = cms(client)
    made = api.create(ConfigMap(metadata=ObjectMeta(name="a")))
    with api.watch(resource_version=made.metadata.resource_version, bookmarks=True,
                   timeout_seconds=5) as stream:
        for event in stream:
            assert event.type == "BOOKMARK"
            assert int(event.object.metadata.resource_version) >= int(
                made.metadata.resource_version)
            break


def test_watch_from_a_compacted_version_is_gone(fake, client):
    api = cms(client)
    old = api.create(ConfigMap(metadata=ObjectMeta(name="a"))).metadata.resource_version
    api.delete("a")
    assert fake.compact() == fake.resource_version
    with pytest.raises(ApiError) as gone:
        with api.watch(resource_version=old, timeout_seconds=5) as stream:
            list(stream)
    assert gone.value.code == 410
    with pytest.raises(ApiError) as exact:
        api.list(resource_version=old, resource_version_match="Exact")
    assert exact.value.code == 410


def test_stop_joins_every_thread_and_removes_the_kubeconfig(fake, client):
    # Other servers of the session (the contract suite's) keep theirs: only this one's count.
    others = {t for t in threading.enumerate() if t.name.startswith("kubesync-fake-")} - set(
        fake.threads())
    api = cms(client)
    stream = api.watch(timeout_seconds=60)  # an open watch and a keep-alive connection
    it = iter(stream)
    api.create(ConfigMap(metadata=ObjectMeta(name="a")))
    assert next(it).type == "ADDED"
    path = fake.kubeconfig_path
    threads = fake.threads()
    assert {t.name for t in threads} >= {"kubesync-fake-apiserver"}
    assert all(t.name.startswith("kubesync-fake-apiserver") for t in threads)
    fake.stop()
    stream.close()
    assert not any(t.is_alive() for t in threads)
    assert not [t for t in threading.enumerate()
                if t.name.startswith("kubesync-fake-") and t not in others]
    import os

    assert not os.path.exists(path)


def test_unserved_subresources_answer_501_and_table_only_406(fake, client):
    with pytest.raises(ApiError) as refused:
        client.request("GET", "/api/v1/namespaces/default/pods/p/log")
    assert refused.value.code == 501
    response = requests.get(f"{fake.server}/api/v1/namespaces/default/configmaps",
                            headers={"Accept": "application/json;as=Table;g=meta.k8s.io;v=v1"},
                            timeout=5)
    assert response.status_code == 406


def test_discovery_lists_built_in_kinds_and_new_crds(fake, client):
    d = Discovery(client)
    assert d.resolve("deployments").kind == "Deployment"
    Api(client, __import__("kubesync.models.apiextensions_v1", fromlist=["x"])
        .CustomResourceDefinition).apply({
            "metadata": {"name": "gadgets.example.com"},
            "spec": {"group": "example.com", "scope": "Cluster",
                     "names": {"plural": "gadgets", "kind": "Gadget"},
                     "versions": [{"name": "v1", "served": True, "storage": True}]}},
        field_manager="t")
    gadget = Discovery(client).resolve("gadgets")
    assert (gadget.group, gadget.namespaced) == ("example.com", False)


def test_strategic_merge_uses_the_spec_merge_keys_for_ports(fake, client):
    api = Api(client, Deployment, namespace="default")
    api.create(api._decode({"metadata": {"name": "d"}, "spec": {
        "selector": {"matchLabels": {"a": "b"}}, "template": {"spec": {"containers": [
            {"name": "c", "image": "i", "ports": [{"containerPort": 80, "name": "http"}]}]}}}}))
    out = api.patch("d", Patch.strategic({"spec": {"template": {"spec": {"containers": [
        {"name": "c", "ports": [{"containerPort": 443, "name": "https"}]}]}}}}))
    ports = [p.container_port for p in out.spec.template.spec.containers[0].ports]
    assert ports == [80, 443]


def test_https_requires_the_kubeconfig_token():
    with FakeApiServer(tls=True) as fake:
        c = fake.client()
        try:
            assert cms(c).list().items == []
        finally:
            c.close()
        anonymous = Client(Config(server=fake.server, insecure_skip_tls_verify=True),
                           retries=0)
        try:
            with pytest.raises(Unauthorized):
                cms(anonymous).list()
        finally:
            anonymous.close()
        assert "token" not in repr(fake)


def test_namespace_deletion_takes_its_content(fake, client):
    client.request("POST", "/api/v1/namespaces", body={"metadata": {"name": "gone"}})
    Api(client, ConfigMap, namespace="gone").create(ConfigMap(metadata=ObjectMeta(name="a")))
    client.request("DELETE", "/api/v1/namespaces/gone")
    with pytest.raises(NotFound):
        client.request("GET", "/api/v1/namespaces/gone")
    with pytest.raises(NotFound):
        Api(client, ConfigMap, namespace="gone").get("a")


def test_start_takes_milliseconds():
    FakeApiServer().start().stop()  # the first in a process builds model classes
    started = time.perf_counter()
    server = FakeApiServer().start()
    elapsed = time.perf_counter() - started
    server.stop()
    assert elapsed < 1.0, elapsed  # a generous bound on 2 shared cores; ~10 ms typically
