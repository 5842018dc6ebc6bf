"""Admission and conversion reviews without a server: malformed input gets a clear 4xx
answer, handlers are dispatched by kind and operation, errors follow the failure policy,
mutations become JSON Patches, conversions chain, configurations carry our rules."""

from __future__ import annotations

import base64
import io
import json
import logging
from typing import Any, Dict, List, Optional, Tuple

import pytest

from kubesync.core.dynamic import DynamicObject
from kubesync.core.resource import ApiResource
from kubesync.errors import UsageError
from kubesync.models.apps_v1 import Deployment
from kubesync.models.core_v1 import ConfigMap
from kubesync.webhook import (
    AdmissionRequest,
    AdmissionResponse,
    AdmissionWebhooks,
    Conversions,
    Endpoint,
    WebhookApp,
    apply_patch,
    conversion_webhook,
    mutating_webhook_configuration,
    namespace_selector,
    parse_admission_review,
    validating_webhook_configuration,
)

WIDGETS = ApiResource("example.com", "v1", "Widget", "widgets")
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def review(obj: Optional[Dict[str, Any]] = None, *, operation: str = "CREATE",
           kind: Tuple[str, str, str] = ("", "v1", "ConfigMap"), uid: str = "u-1",
           old: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    group, version, k = kind
    request: Dict[str, Any] = {
        "uid": uid, "kind": {"group": group, "version": version, "kind": k},
        "resource": {"group": group, "version": version, "resource": k.lower() + "s"},
        "operation": operation, "namespace": "ns", "name": "n",
        "userInfo": {"username": "alice", "groups": ["devs"]},
        "object": obj, "oldObject": old,
    }
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def configmap(data: Optional[Dict[str, str]] = None, **meta: Any) -> Dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "n", **meta},
            "data": data or {}}


def answer(app: WebhookApp, path: str, body: Any) -> Tuple[int, Dict[str, Any]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    got = app.handle("POST", path, raw)
    return got.status, json.loads(got.body)


@pytest.fixture
def hooks() -> AdmissionWebhooks:
    h = AdmissionWebhooks()

    @h.validating(ConfigMap)
    def no_passwords(req: AdmissionRequest[ConfigMap]) -> AdmissionResponse:
        assert isinstance(req.object, ConfigMap)
        if "password" in (req.object.data or {}):
            return req.deny("no passwords here", warnings=["be careful"])
        return req.allow(warnings=["looked"])

    @h.mutating(ConfigMap, operations=["CREATE"])
    def label(req: AdmissionRequest[ConfigMap]) -> None:
        assert req.object is not None
        req.object.metadata.labels = {"seen/by": "us"}

    return h


# -- malformed input -----------------------------------------------------------------------


@pytest.mark.parametrize("body, status, message", [
    (b"{not json", 400, "the body is not JSON"),
    (b"[1, 2]", 400, "must be a JSON object, not list"),
    ({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
      "request": {"uid": "u-9"}}, 400, "expected apiVersion 'admission.k8s.io/v1'"),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "ConversionReview"}, 400,
     "kind 'AdmissionReview'"),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}, 400, "no request"),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}, 400,
     "request has no uid"),
    (dict(review(configmap()), request=dict(review(configmap())["request"], operation="EAT")),
     400, "request.operation must be one of"),
    (dict(review(configmap()), request=dict(review(configmap())["request"], kind="ConfigMap")),
     400, "request.kind must be an object"),
])
def test_a_malformed_admission_review_gets_400_and_says_what_is_wrong(
        hooks: AdmissionWebhooks, body: Any, status: int, message: str) -> None:
    got_status, got = answer(WebhookApp(hooks), "/validate", body)
    assert got_status == status
    assert got["kind"] == "AdmissionReview" and got["response"]["allowed"] is False
    assert message in got["response"]["status"]["message"]
    assert got["response"]["status"]["code"] == 400


def test_a_malformed_review_names_its_uid_when_it_has_one(hooks: AdmissionWebhooks) -> None:
    body = {"apiVersion": "v1", "kind": "AdmissionReview", "request": {"uid": "u-7"}}
    _, got = answer(WebhookApp(hooks), "/validate", body)
    assert got["response"]["uid"] == "u-7"


def test_an_object_that_is_not_an_object_denies_with_the_handler_seeing_the_error() -> None:
    h = AdmissionWebhooks()
    h.validating(ConfigMap)(lambda req: req.allow() if req.object else req.deny("none"))
    _, got = answer(WebhookApp(h), "/validate", review("oops"))  # type: ignore[arg-type]
    assert got["response"]["allowed"] is False
    assert "request.object must be an object, not str" in got["response"]["status"]["message"]


def test_a_body_over_the_limit_gets_413_without_being_parsed(hooks: AdmissionWebhooks) -> None:
    app = WebhookApp(hooks, max_body=100)
    got = app.handle("POST", "/validate", b"{" + b" " * 200 + b"}")
    assert got.status == 413 and b"over the limit of 100 bytes" in got.body


def test_unknown_paths_and_methods_get_404_and_405(hooks: AdmissionWebhooks) -> None:
    app = WebhookApp(hooks)
    assert app.handle("POST", "/nope", b"{}").status == 404
    got = app.handle("GET", "/validate", b"")
    assert got.status == 405 and ("Allow", "POST") in got.headers
    assert app.handle("GET", "/healthz", b"").status == 200
    assert WebhookApp(hooks).handle("POST", "/convert", b"{}").status == 404


def test_our_own_bug_answers_500_json_not_a_traceback(
        hooks: AdmissionWebhooks, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(*a: Any, **k: Any) -> Any:
        raise RuntimeError("internal")

    monkeypatch.setattr(hooks, "review", broken)
    got = WebhookApp(hooks).handle("POST", "/validate", b"{}")
    assert got.status == 500 and json.loads(got.body)["message"].endswith("see its log")
    assert "internal" in caplog.text


# -- dispatch --------------------------------------------------------------------------------


def test_request_fields_are_typed_and_objects_decode_as_the_registered_model() -> None:
    old = configmap({"k": "old"})
    req = parse_admission_review(review(configmap({"k": "v"}), operation="UPDATE", old=old))
    assert isinstance(req.object, ConfigMap) and req.object.data == {"k": "v"}
    assert isinstance(req.old_object, ConfigMap) and req.old_object.data == {"k": "old"}
    assert (req.kind.api_version, req.kind.kind, req.resource.resource) == (
        "v1", "ConfigMap", "configmaps")
    assert (req.operation, req.namespace, req.name, req.dry_run) == ("UPDATE", "ns", "n", False)
    assert req.user_info.username == "alice" and req.user_info.groups == ["devs"]
    assert "UPDATE v1 ConfigMap 'ns/n'" in repr(req)


def test_kinds_without_a_model_decode_as_dynamic_objects() -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
           "spec": {"size": 3}}
    req = parse_admission_review(review(obj, kind=("example.com", "v1", "Widget")))
    assert isinstance(req.object, DynamicObject) and req.object["spec"] == {"size": 3}
    assert req.object.metadata.name == "w"


def test_validating_allows_denies_and_collects_warnings(hooks: AdmissionWebhooks) -> None:
    app = WebhookApp(hooks)
    status, ok = answer(app, "/validate", review(configmap({"a": "b"})))
    assert status == 200
    assert ok["response"] == {"uid": "u-1", "allowed": True, "warnings": ["looked"]}
    _, no = answer(app, "/validate", review(configmap({"password": "x"}), uid="u-2"))
    assert no["response"]["uid"] == "u-2" and no["response"]["allowed"] is False
    assert no["response"]["status"] == {"code": 403, "message": "no passwords here"}
    assert no["response"]["warnings"] == ["be careful"]


def test_a_kind_or_operation_without_handlers_is_allowed(hooks: AdmissionWebhooks) -> None:
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}
    _, got = answer(WebhookApp(hooks), "/validate",
                    review(deploy, kind=("apps", "v1", "Deployment")))
    assert got["response"]["allowed"] is True
    _, got = answer(WebhookApp(hooks), "/mutate",
                    review(configmap(), operation="UPDATE", old=configmap()))
    assert got["response"] == {"uid": "u-1", "allowed": True}


def test_mutations_become_a_json_patch_of_the_sent_object(hooks: AdmissionWebhooks) -> None:
    sent = configmap({"a": "b"}, annotations={"x/y": "1"})
    _, got = answer(WebhookApp(hooks), "/mutate", review(sent))
    response = got["response"]
    assert response["patchType"] == "JSONPatch" and response["allowed"] is True
    ops = json.loads(base64.b64decode(response["patch"]))
    assert ops == [{"op": "add", "path": "/metadata/labels", "value": {"seen/by": "us"}}]
    assert apply_patch(sent, ops)["metadata"] == {"name": "n", "annotations": {"x/y": "1"},
                                                  "labels": {"seen/by": "us"}}


def test_mutating_handlers_chain_and_may_return_explicit_patches() -> None:
    h = AdmissionWebhooks()
    h.mutating(WIDGETS)(lambda req: req.patch([{"op": "add", "path": "/spec/b", "value": 2}]))

    @h.mutating(WIDGETS)
    def second(req: AdmissionRequest[DynamicObject]) -> None:
        assert req.object is not None
        req.object["spec"] = dict(req.object["spec"], c=req.object["spec"]["b"] + 1)

    sent = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"a": 1}}
    _, got = answer(WebhookApp(h), "/mutate", review(sent, kind=("example.com", "v1", "Widget")))
    ops = json.loads(base64.b64decode(got["response"]["patch"]))
    assert apply_patch(sent, ops)["spec"] == {"a": 1, "b": 2, "c": 3}


@pytest.mark.parametrize("policy, allowed", [("Fail", False), ("Ignore", True)])
def test_a_raising_handler_follows_the_failure_policy_and_is_logged(
        caplog: pytest.LogCaptureFixture, policy: Any, allowed: bool) -> None:
    h = AdmissionWebhooks(failure_policy=policy)

    @h.validating(ConfigMap)
    def explode(req: AdmissionRequest[ConfigMap]) -> AdmissionResponse:
        raise ValueError("replicas must be odd")

    with caplog.at_level(logging.ERROR, "kubesync.webhook"):
        _, got = answer(WebhookApp(h), "/validate", review(configmap()))
    response = got["response"]
    assert response["allowed"] is allowed
    if allowed:
        assert "replicas must be odd" in response["warnings"][0]
    else:
        assert response["status"]["message"] == "replicas must be odd"
    assert "explode failed" in caplog.text and "ValueError" in caplog.text


def test_a_validating_handler_that_returns_nothing_is_an_error_not_an_allow() -> None:
    h = AdmissionWebhooks()
    h.validating(ConfigMap)(lambda req: None)
    _, got = answer(WebhookApp(h), "/validate", review(configmap()))
    assert got["response"]["allowed"] is False
    assert "return req.allow() or req.deny" in got["response"]["status"]["message"]


def test_registration_checks_its_arguments() -> None:
    h = AdmissionWebhooks()
    with pytest.raises(UsageError, match="operations must be some of"):
        h.validating(ConfigMap, operations=["EAT"])
    with pytest.raises(UsageError, match="failure_policy"):
        AdmissionWebhooks(failure_policy="Maybe")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="not a resource kind"):
        h.validating(int)


# -- WSGI ------------------------------------------------------------------------------------


def wsgi(app: WebhookApp, path: str, body: bytes,
         length: Optional[str] = "auto") -> Tuple[str, bytes]:
    environ: Dict[str, Any] = {"REQUEST_METHOD": "POST", "PATH_INFO": path,
                               "wsgi.input": io.BytesIO(body)}
    if length is not None:
        environ["CONTENT_LENGTH"] = str(len(body)) if length == "auto" else length
    seen: List[str] = []
    out = b"".join(app(environ, lambda status, headers: seen.append(status)))
    return seen[0], out


def test_the_wsgi_app_answers_reviews_and_refuses_big_or_bad_bodies(
        hooks: AdmissionWebhooks) -> None:
    app = WebhookApp(hooks, max_body=2000)
    status, body = wsgi(app, "/validate", json.dumps(review(configmap())).encode())
    assert status == "200 OK" and json.loads(body)["response"]["allowed"] is True
    assert wsgi(app, "/validate", b"{}", length="99999")[0] == "413 Payload Too Large"
    assert wsgi(app, "/validate", b"x" * 3000, length=None)[0] == "413 Payload Too Large"
    assert wsgi(app, "/validate", b"{}", length="ten")[0] == "400 Bad Request"


# -- conversion ------------------------------------------------------------------------------


def conversion_review(objects: List[Any], desired: str = "example.com/v3") -> Dict[str, Any]:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "request": {"uid": "c-1", "desiredAPIVersion": desired, "objects": objects}}


def widget(version: str, **spec: Any) -> Dict[str, Any]:
    return {"apiVersion": f"example.com/{version}", "kind": "Widget",
            "metadata": {"name": "w", "uid": "x"}, "spec": spec}


@pytest.fixture
def conversions() -> Conversions:
    c = Conversions()

    @c.register("example.com/v1", "example.com/v2", kind="Widget")
    def v1_to_v2(obj: DynamicObject) -> Dict[str, Any]:
        return dict(obj.to_dict(), spec={"size": obj["spec"]["count"]})

    @c.register("example.com/v2", "example.com/v3", kind="Widget")
    def v2_to_v3(obj: DynamicObject) -> Dict[str, Any]:
        if obj["spec"]["size"] < 0:
            raise ValueError("size below zero")
        return dict(obj.to_dict(), spec={"replicas": obj["spec"]["size"]})

    return c


def test_conversion_chains_through_registered_pairs_and_sets_api_version(
        conversions: Conversions) -> None:
    status, got = answer(WebhookApp(conversion=conversions), "/convert",
                         conversion_review([widget("v1", count=3), widget("v3", replicas=1)]))
    assert status == 200
    assert got["response"]["result"] == {"status": "Success"}
    assert got["response"]["uid"] == "c-1"
    assert got["response"]["convertedObjects"] == [widget("v3", replicas=3),
                                                   widget("v3", replicas=1)]


@pytest.mark.parametrize("objects, message", [
    ([widget("v3", replicas=1)], "no conversion of Widget from example.com/v3 to example.com/v1"),
    (["nope"], "request.objects[0] is not an object"),
    ([{"metadata": {"name": "q"}}], "object 'q' has no apiVersion and kind"),
])
def test_objects_that_cannot_convert_fail_the_review_with_a_reason(
        conversions: Conversions, objects: List[Any], message: str) -> None:
    _, got = answer(WebhookApp(conversion=conversions), "/convert",
                    conversion_review(objects, "example.com/v1"))
    assert got["response"]["result"]["status"] == "Failure"
    assert message in got["response"]["result"]["message"]


def test_a_raising_conversion_fails_with_its_message(conversions: Conversions) -> None:
    _, got = answer(WebhookApp(conversion=conversions), "/convert",
                    conversion_review([widget("v2", size=-1)]))
    assert got["response"]["result"] == {
        "status": "Failure",
        "message": "converting Widget 'w' from example.com/v2 to example.com/v3: size below zero"}


def test_a_conversion_returning_a_non_object_fails_the_review() -> None:
    c = Conversions()
    c.register("example.com/v1", "example.com/v2", kind="Widget")(lambda obj: 42)
    _, got = answer(WebhookApp(conversion=c), "/convert",
                    conversion_review([widget("v1")], "example.com/v2"))
    assert got["response"]["result"]["status"] == "Failure"
    assert "returned int, not an object" in got["response"]["result"]["message"]


@pytest.mark.parametrize("body, message", [
    (b"nope", "the body is not JSON"),
    ({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
      "request": {"uid": "c"}}, "needs desiredAPIVersion"),
])
def test_a_malformed_conversion_review_gets_400(conversions: Conversions, body: Any,
                                                message: str) -> None:
    status, got = answer(WebhookApp(conversion=conversions), "/convert", body)
    assert status == 400 and message in got["response"]["result"]["message"]


def test_conversion_registration_needs_one_kind_and_no_duplicates() -> None:
    c = Conversions()
    with pytest.raises(UsageError, match="needs one kind"):
        c.register("example.com/v1", "example.com/v2")
    with pytest.raises(UsageError, match="needs one kind"):
        c.register(Deployment, ConfigMap)
    c.register("a.io/v1", "a.io/v2", kind="A")(lambda o: o)
    with pytest.raises(UsageError, match="registered already"):
        c.register("a.io/v1", "a.io/v2", kind="A")(lambda o: o)


# -- configurations --------------------------------------------------------------------------


def test_configurations_carry_the_handlers_rules_endpoint_and_ca(hooks: AdmissionWebhooks) -> None:
    endpoint = Endpoint.url("https://127.0.0.1:8443/", ca=PEM, prefix="/hooks")
    vwc = validating_webhook_configuration("v.example.com", hooks, endpoint,
                                           namespace_selector=namespace_selector("a", "b"))
    hook = vwc.webhooks[0]
    assert hook.client_config.url == "https://127.0.0.1:8443/hooks/validate"
    assert base64.b64decode(hook.client_config.ca_bundle or "").decode() == PEM
    assert [(r.api_groups, r.resources, r.operations) for r in hook.rules or []] == [
        ([""], ["configmaps"], ["CREATE", "UPDATE"])]
    assert hook.namespace_selector is not None
    assert hook.namespace_selector.match_expressions[0].values == ["a", "b"]
    assert (hook.side_effects, hook.admission_review_versions) == ("None", ["v1"])
    mwc = mutating_webhook_configuration("m.example.com", hooks,
                                         Endpoint.service("sys", "hooks", port=9443))
    m = mwc.webhooks[0]
    assert m.client_config.service is not None
    assert (m.client_config.service.name, m.client_config.service.path) == ("hooks", "/mutate")
    assert [r.operations for r in m.rules or []] == [["CREATE"]]


def test_configuration_helpers_refuse_what_the_api_server_would(hooks: AdmissionWebhooks) -> None:
    endpoint = Endpoint.url("https://h:1", ca=PEM)
    with pytest.raises(UsageError, match="fully qualified"):
        validating_webhook_configuration("short", hooks, endpoint)
    with pytest.raises(UsageError, match="no validating handlers"):
        validating_webhook_configuration("a.b.c", AdmissionWebhooks(), endpoint)
    with pytest.raises(UsageError, match="https://"):
        Endpoint.url("http://h:1")
    with pytest.raises(UsageError, match="not a PEM"):
        Endpoint.url("https://h:1", ca=b"garbage")


def test_conversion_webhook_sets_the_crd_conversion_stanza() -> None:
    from kubesync.core.convert import decode, encode
    from kubesync.models.apiextensions_v1 import CustomResourceDefinition

    crd = decode(CustomResourceDefinition, {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"}, "spec": {"group": "example.com"}})
    out = encode(conversion_webhook(crd, Endpoint.url("https://h:1", ca=PEM)))
    assert out["spec"]["conversion"]["strategy"] == "Webhook"
    assert out["spec"]["conversion"]["webhook"]["clientConfig"]["url"] == "https://h:1/convert"
    assert out["spec"]["conversion"]["webhook"]["conversionReviewVersions"] == ["v1"]
    assert "conversion" not in encode(crd)["spec"]  # a copy


def test_the_app_mounted_in_flask_answers_below_its_prefix(hooks: AdmissionWebhooks) -> None:
    from flask import Flask
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    flask_app = Flask("t")
    flask_app.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
        flask_app.wsgi_app, {"/webhooks": WebhookApp(hooks)})
    got = flask_app.test_client().post("/webhooks/validate",
                                       data=json.dumps(review(configmap({"password": "x"}))))
    assert got.status_code == 200
    assert got.get_json()["response"]["status"]["message"] == "no passwords here"
    assert flask_app.test_client().post("/webhooks/validate", data=b"[").status_code == 400
