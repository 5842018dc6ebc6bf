"""Api behaviour a real server here will not show on demand: pod logs (no kubelet),
watch ERROR events, query options the 1.20 server ignores; and the ``Request`` values
the Api hands its client."""

from __future__ import annotations

import json
import threading
from typing import Any, Iterator, List, Tuple
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from kubesync import Api, Client
from kubesync.client import api as api_module
from kubesync.client import watch
from kubesync.client.features import Feature, ServerVersion
from kubesync.core.params import Patch
from kubesync.core.request import Request
from kubesync.errors import Conflict, DecodeError, Gone, ServerError, UsageError
from kubesync.models.core_v1 import ConfigMap, Pod
from kubesync.models.meta_v1 import ObjectMeta
from kubesync.runtime.watcher import Watcher

SERVER = "https://k8s.test"  # conftest.CANNED_SERVER, which the fixtures use
PODS = f"{SERVER}/api/v1/namespaces/ns/pods"
CMS = f"{SERVER}/api/v1/namespaces/ns/configmaps"

# The canned server is plain https with no CA: the client warns about that, rightly.
pytestmark = pytest.mark.filterwarnings("ignore::kubesync.errors.InsecureTLSWarning")


@pytest.fixture
def client(canned_client: Client) -> Client:
    return canned_client


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


# -- describe, then send: the Request values the Api hands its client -----------------------


class RecordingClient:
    """Records what the Api sends: (how, Request); answers with canned data."""

    default_namespace = "ns"

    def __init__(self, answer: Any = None, lines: Tuple[bytes, ...] = (),
                 version: Tuple[int, int] = (1, 37)):
        self.sent: List[Tuple[str, Request]] = []
        self.answer = answer
        self.lines = lines
        self.version = ServerVersion(*version)

    def supports(self, feature: Feature) -> bool:
        return self.version.supports(feature)

    def require(self, feature: Feature, what: str) -> None:
        assert self.supports(feature), what

    def send(self, req: Request, **kw: Any) -> Any:
        self.sent.append(("json", req))
        return self.answer

    def send_text(self, req: Request, **kw: Any) -> str:
        self.sent.append(("text", req))
        return "log text"

    def send_lines(self, req: Request, **kw: Any) -> Any:
        self.sent.append(("lines", req))
        return _Lines(self.lines)


class _Lines:
    def __init__(self, lines: Tuple[bytes, ...]):
        self._lines = iter(lines)

    def __iter__(self) -> Iterator[bytes]:
        return self._lines

    def __enter__(self) -> _Lines:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def close(self) -> None:
        pass


CM_JSON = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}


def test_api_verbs_hand_the_client_request_values() -> None:
    client = RecordingClient(answer=CM_JSON)
    cms = Api(client, ConfigMap, namespace="ns")  # type: ignore[arg-type]
    cms.get("a")
    cms.patch("a", Patch.merge({"data": {"k": "v"}}), field_manager="me")
    assert client.sent == [
        ("json", Request("GET", "/api/v1/namespaces/ns/configmaps/a")),
        ("json", Request("PATCH", "/api/v1/namespaces/ns/configmaps/a",
                         {"fieldManager": "me", "fieldValidation": "Strict"},
                         {"data": {"k": "v"}}, "application/merge-patch+json")),
    ]


def test_logs_send_text_and_follow_sends_lines() -> None:
    client = RecordingClient(lines=(b"a", b"b"))
    pods = Api(client, Pod, namespace="ns")  # type: ignore[arg-type]
    assert pods.logs("web", tail_lines=3) == "log text"
    assert list(pods.logs("web", follow=True)) == ["a", "b"]
    path = "/api/v1/namespaces/ns/pods/web/log"
    assert client.sent == [("text", Request("GET", path, {"tailLines": 3})),
                           ("lines", Request("GET", path, {"follow": "true"}))]


def test_watch_sends_lines_when_iterated_and_decodes_the_events() -> None:
    client = RecordingClient(lines=(json.dumps({"type": "ADDED", "object": CM_JSON}).encode(),))
    stream = Api(client, ConfigMap, namespace="ns").watch(  # type: ignore[arg-type]
        resource_version="7", bookmarks=False)
    assert client.sent == []  # nothing is sent until the stream is iterated
    events = list(stream)
    assert [e.object.metadata.name for e in events] == ["a"]
    assert client.sent == [("lines", Request("GET", "/api/v1/namespaces/ns/configmaps",
                                             {"resourceVersion": "7", "watch": "1"}))]


def test_evict_sends_an_eviction_to_the_pods_subresource() -> None:
    client = RecordingClient(answer={"kind": "Status", "status": "Success"})
    Api(client, Pod, namespace="ns").evict("web", dry_run=True)  # type: ignore[arg-type]
    [(how, req)] = client.sent
    assert (how, req.method, req.path) == ("json", "POST",
                                           "/api/v1/namespaces/ns/pods/web/eviction")
    assert req.body["kind"] == "Eviction" and req.body["apiVersion"] == "policy/v1"
    assert req.body["deleteOptions"] == {"dryRun": ["All"]}


def test_evict_on_a_server_before_1_22_sends_a_v1beta1_eviction_at_once() -> None:
    client = RecordingClient(answer={"kind": "Status", "status": "Success"}, version=(1, 21))
    Api(client, Pod, namespace="ns").evict("web")  # type: ignore[arg-type]
    [(_, req)] = client.sent
    assert req.body["apiVersion"] == "policy/v1beta1"


def test_watch_stream_is_still_importable_from_client_api() -> None:
    assert api_module.WatchStream is watch.WatchStream


def test_a_malformed_watch_line_is_a_decode_error_naming_the_request(
    rsps: responses.RequestsMock, client: Client
) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}
    rsps.get(CMS, body=_line("ADDED", cm) + '{"type": "ADDED", "object": {"data": "s3cr\n')
    events = iter(Api(client, ConfigMap, namespace="ns").watch())
    assert next(events).type == "ADDED"
    with pytest.raises(DecodeError, match=r"malformed watch line.*GET /api/v1/namespaces/ns/"
                                          r"configmaps") as caught:
        next(events)
    assert "s3cr" not in str(caught.value)  # the line may be a Secret's data


def test_the_watcher_hands_a_malformed_line_to_on_error_as_a_decode_error(
    rsps: responses.RequestsMock, client: Client
) -> None:
    rsps.get(CMS, json={"apiVersion": "v1", "kind": "ConfigMapList",
                        "metadata": {"resourceVersion": "3"}, "items": []})
    rsps.get(CMS, body="not json\n")
    errors: List[BaseException] = []
    seen = threading.Event()

    def on_error(error: BaseException) -> None:
        errors.append(error)
        seen.set()

    w = Watcher(Api(client, ConfigMap, namespace="ns"), on_error=on_error, sink=lambda ev: None)
    with w:
        assert seen.wait(10)
    assert isinstance(errors[0], DecodeError) and "GET /api/v1/namespaces/ns" in str(errors[0])

def test_writes_validate_strictly_by_default_and_none_sends_nothing() -> None:
    client = RecordingClient(answer=CM_JSON)
    cms = Api(client, ConfigMap, namespace="ns")  # type: ignore[arg-type]
    cm = ConfigMap(metadata=ObjectMeta(name="a"))
    cms.create(cm)
    cms.replace("a", cm, field_validation="Warn")
    cms.apply(cm, field_manager="me", field_validation=None)
    queries = [req.query for _, req in client.sent]
    assert queries[0] == {"fieldValidation": "Strict"}
    assert queries[1] == {"fieldValidation": "Warn"}
    assert "fieldValidation" not in queries[2]
    with pytest.raises(UsageError, match="field_validation must be one of"):
        cms.create(cm, field_validation="strict")  # type: ignore[arg-type]


def test_an_ephemeral_container_is_a_strategic_patch_of_its_subresource() -> None:
    client = RecordingClient(answer={"apiVersion": "v1", "kind": "Pod",
                                     "metadata": {"name": "web"}})
    pods = Api(client, Pod, namespace="ns")  # type: ignore[arg-type]
    pods.add_ephemeral_container("web", {"name": "dbg", "image": "busybox",
                                         "targetContainerName": "main"})
    [(_, req)] = client.sent
    assert (req.method, req.path) == (
        "PATCH", "/api/v1/namespaces/ns/pods/web/ephemeralcontainers")
    assert req.content_type == "application/strategic-merge-patch+json"
    assert req.body == {"spec": {"ephemeralContainers": [
        {"name": "dbg", "image": "busybox", "targetContainerName": "main"}]}}
    with pytest.raises(UsageError, match="needs a name and an image"):
        pods.add_ephemeral_container("web", {"name": "dbg"})


def test_resize_patches_the_resize_subresource_per_container() -> None:
    client = RecordingClient(answer={"apiVersion": "v1", "kind": "Pod",
                                     "metadata": {"name": "web"}})
    pods = Api(client, Pod, namespace="ns")  # type: ignore[arg-type]
    pods.resize("web", {"main": {"limits": {"cpu": "2"}}})
    [(_, req)] = client.sent
    assert req.path == "/api/v1/namespaces/ns/pods/web/resize"
    assert req.body == {"spec": {"containers": [{"name": "main",
                                                 "resources": {"limits": {"cpu": "2"}}}]}}


def test_pod_subresources_on_an_old_server_raise_feature_unavailable() -> None:
    from kubesync.errors import FeatureUnavailable

    class Old(RecordingClient):
        def require(self, feature: Feature, what: str) -> None:
            raise FeatureUnavailable(f"{what} needs Kubernetes {feature.release}")

    pods = Api(Old(), Pod, namespace="ns")  # type: ignore[arg-type]
    with pytest.raises(FeatureUnavailable, match="resizing a pod in place needs"):
        pods.resize("web", {"main": {"limits": {"cpu": "2"}}})
    with pytest.raises(UsageError, match="is for Pods"):
        Api(Old(), ConfigMap, namespace="ns").resize(  # type: ignore[arg-type]
            "x", {"main": {}})


def test_generic_subresource_calls_build_their_paths() -> None:
    client = RecordingClient(answer={"kind": "Scale", "apiVersion": "autoscaling/v1"})
    cms = Api(client, ConfigMap, namespace="ns")  # type: ignore[arg-type]
    assert cms.get_subresource("a", "status").kind == "Scale"
    cms.patch_subresource("a", "status", Patch.merge({"x": 1}))
    cms.replace_subresource("a", "scale", {"spec": {}})
    cms.create_subresource("a", "token", {"spec": {}})
    assert [(r.method, r.path.rsplit("/", 1)[1]) for _, r in client.sent] == [
        ("GET", "status"), ("PATCH", "status"), ("PUT", "scale"), ("POST", "token")]
