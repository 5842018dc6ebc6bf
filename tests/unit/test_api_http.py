"""Api behaviour a real server here will not show on demand: pod logs (no kubelet),
watch ERROR events, query options the 1.20 server ignores."""

from __future__ import annotations

import json
from typing import Iterator
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from kubesync import Api, Client, Config
from kubesync.errors import Conflict, Gone, ServerError, UsageError
from kubesync.models.core_v1 import ConfigMap, Pod
from kubesync.models.meta_v1 import ObjectMeta

SERVER = "https://k8s.test"
PODS = f"{SERVER}/api/v1/namespaces/ns/pods"
CMS = f"{SERVER}/api/v1/namespaces/ns/configmaps"

# The canned server is plain https with no CA: the client warns about that, rightly.
pytestmark = pytest.mark.filterwarnings("ignore::kubesync.errors.InsecureTLSWarning")


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as r:
        yield r


@pytest.fixture
def client() -> Iterator[Client]:
    c = Client(Config(server=SERVER, insecure_skip_tls_verify=True), retries=0)
    yield c
    c.close()


def _query(call: responses.Call) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(call.request.url).query).items()}


def test_logs_return_the_whole_text_with_the_options_as_query(
    rsps: responses.RequestsMock, client: Client
) -> None:
    rsps.get(f"{PODS}/web/log", body="line 1\nline 2\n", content_type="text/plain")
    pods = Api(client, Pod, namespace="ns")
    text = pods.logs("web", container="app", tail_lines=2, since_seconds=60, timestamps=True,
                     previous=True)
    assert text == "line 1\nline 2\n"
    assert _query(rsps.calls[0]) == {"container": "app", "tailLines": "2",
                                     "sinceSeconds": "60", "timestamps": "true",
                                     "previous": "true"}


def test_following_logs_yields_lines_as_they_come(
    rsps: responses.RequestsMock, client: Client
) -> None:
    rsps.get(f"{PODS}/web/log", body="a\nb\nc\n", content_type="text/plain")
    lines = Api(client, Pod, namespace="ns").logs("web", follow=True)
    assert not isinstance(lines, str)
    assert list(lines) == ["a", "b", "c"]
    assert _query(rsps.calls[0]) == {"follow": "true"}


def test_logs_are_for_pods_only(client: Client) -> None:
    with pytest.raises(UsageError, match="Pods"):
        Api(client, ConfigMap, namespace="ns").logs("x")


def _line(etype: str, obj: dict) -> str:
    return json.dumps({"type": etype, "object": obj}) + "\n"


def test_watch_decodes_typed_events_and_raises_error_events(
    rsps: responses.RequestsMock, client: Client
) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "a", "resourceVersion": "5"}, "data": {"k": "v"}}
    gone = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410,
            "reason": "Expired", "message": "too old resource version: 1 (5)"}
    body = _line("ADDED", cm) + _line("BOOKMARK", {"kind": "ConfigMap", "metadata": {
        "resourceVersion": "6"}}) + _line("ERROR", gone)
    rsps.get(CMS, body=body)
    events = iter(Api(client, ConfigMap, namespace="ns").watch(resource_version="1"))
    first = next(events)
    assert first.type == "ADDED" and isinstance(first.object, ConfigMap)
    assert first.object.data == {"k": "v"}
    assert next(events).resource_version == "6"
    with pytest.raises(Gone, match="too old"):
        next(events)
    assert _query(rsps.calls[0]) == {"watch": "1", "allowWatchBookmarks": "true",
                                     "resourceVersion": "1"}


def test_write_options_reach_the_query(rsps: responses.RequestsMock, client: Client) -> None:
    rsps.post(CMS, json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}})
    Api(client, ConfigMap, namespace="ns").create(
        ConfigMap(metadata=ObjectMeta(name="a")), dry_run=True, field_manager="me",
        field_validation="Strict")
    assert _query(rsps.calls[0]) == {"dryRun": "All", "fieldManager": "me",
                                     "fieldValidation": "Strict"}
    sent = json.loads(rsps.calls[0].request.body)
    assert sent == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}


def test_update_gives_up_after_its_retries_with_the_last_conflict(
    rsps: responses.RequestsMock, client: Client
) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "a", "resourceVersion": "1"}}
    conflict = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 409,
                "reason": "Conflict", "message": "the object has been modified"}
    rsps.get(f"{CMS}/a", json=cm)
    rsps.put(f"{CMS}/a", json=conflict, status=409)
    with pytest.raises(Conflict, match="modified"):
        Api(client, ConfigMap, namespace="ns").update("a", lambda o: None, retries=2)
    assert [c.request.method for c in rsps.calls] == ["GET", "PUT"] * 3


def test_a_server_error_is_not_retried_by_update(
    rsps: responses.RequestsMock, client: Client
) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}
    rsps.get(f"{CMS}/a", json=cm)
    rsps.put(f"{CMS}/a", json={"kind": "Status", "code": 500, "message": "boom"}, status=500)
    with pytest.raises(ServerError):
        Api(client, ConfigMap, namespace="ns").update("a", lambda o: None)
    assert len(rsps.calls) == 2
