"""Client behaviour against canned HTTP answers (``responses``): decoding, errors, retries,
credentials refresh, warnings and secret redaction."""

from __future__ import annotations

import logging
import ssl
import sys
import warnings
from pathlib import Path
from typing import Any, Iterator, List, Optional, Tuple

import pytest
import requests
import responses
import urllib3.exceptions

from kubesync import Client, Config, errors
from kubesync._version import __version__
from kubesync.client import RetryPolicy
from kubesync.client.transport import retry_after
from kubesync.config import (
    Auth,
    BasicAuth,
    Credentials,
    ExecAuth,
    ExecSpec,
    Impersonation,
    TokenAuth,
)
from kubesync.core.request import Request

SERVER = "https://k8s.test:6443"
NS_URL = SERVER + "/api/v1/namespaces"
SECRET = "SUPERSECRET-token-value"
PLUGIN = Path(__file__).resolve().parent.parent / "fixtures" / "exec_plugin.py"


class Harness:
    """A client whose retry sleeps are recorded instead of slept."""

    def __init__(self, rsps: responses.RequestsMock):
        self.rsps = rsps
        self.sleeps: List[float] = []

    def client(self, auth: Optional[Auth] = None, retries: int = 3, **config: Any) -> Client:
        policy = RetryPolicy(retries=retries, sleep=self.sleeps.append, random=lambda: 0.5)
        return Client(Config(server=SERVER, auth=auth, **config), retries=policy)

    def sent(self, i: int = -1) -> requests.PreparedRequest:
        return self.rsps.calls[i].request

    @property
    def count(self) -> int:
        return len(self.rsps.calls)


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as r:
        yield r


@pytest.fixture
def h(rsps: responses.RequestsMock) -> Harness:
    return Harness(rsps)


def status_body(code: int, reason: str, message: str = "m", **details: Any) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
        "details": details,
    }


def connect_refused() -> requests.exceptions.ConnectionError:
    reason = urllib3.exceptions.NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    return requests.exceptions.ConnectionError(
        urllib3.exceptions.MaxRetryError(None, "/api", reason)  # type: ignore[arg-type]
    )


def connection_reset() -> requests.exceptions.ConnectionError:
    reason = urllib3.exceptions.ProtocolError(
        "Connection aborted.", ConnectionResetError(104, "reset")
    )
    return requests.exceptions.ConnectionError(reason)


# -- requests and answers ------------------------------------------------------------------


def test_get_decodes_json_and_sends_our_headers(h: Harness) -> None:
    h.rsps.get(NS_URL, json={"kind": "NamespaceList", "items": []})
    assert h.client().request("GET", "/api/v1/namespaces") == {"kind": "NamespaceList", "items": []}
    sent = h.sent()
    assert sent.headers["User-Agent"] == f"kubesync/{__version__}"
    assert sent.headers["Accept-Encoding"] == "gzip"
    assert sent.headers["Accept"] == "application/json"


def test_disable_compression_asks_for_identity(h: Harness) -> None:
    h.rsps.get(NS_URL, json={})
    h.client(disable_compression=True).request("GET", "/api/v1/namespaces")
    assert h.sent().headers["Accept-Encoding"] == "identity"


def test_bodies_are_json_encoded_unless_bytes(h: Harness) -> None:
    h.rsps.post(NS_URL, json={"ok": 1})
    h.rsps.patch(NS_URL + "/a", json={"ok": 2})
    client = h.client()
    client.request("POST", "/api/v1/namespaces", body={"metadata": {"name": "é"}})
    assert h.sent().headers["Content-Type"] == "application/json"
    assert h.sent().body == '{"metadata":{"name":"é"}}'.encode()
    client.request(
        "PATCH",
        "/api/v1/namespaces/a",
        body=b'{"x":1}',
        content_type="application/merge-patch+json",
        headers={"X-Extra": "1"},
    )
    assert h.sent().body == b'{"x":1}'
    assert h.sent().headers["Content-Type"] == "application/merge-patch+json"
    assert h.sent().headers["X-Extra"] == "1"


def test_send_sends_a_request_value_as_described(h: Harness) -> None:
    h.rsps.post(NS_URL, json={"kind": "Namespace"})
    req = Request("POST", "/api/v1/namespaces", {"dryRun": "All", "x": None, "v": True},
                  {"metadata": {"name": "a"}}, "application/apply-patch+yaml",
                  accept="application/json;as=Table", extra_headers={"X-Extra": "1"})
    assert h.client().send(req) == {"kind": "Namespace"}
    sent = h.sent()
    assert sent.method == "POST"
    assert sent.url == NS_URL + "?dryRun=All&v=true"
    assert sent.body == b'{"metadata":{"name":"a"}}'
    assert sent.headers["Content-Type"] == "application/apply-patch+yaml"
    assert sent.headers["Accept"] == "application/json;as=Table"
    assert sent.headers["X-Extra"] == "1"


def test_send_text_and_send_lines_take_request_values_too(h: Harness) -> None:
    h.rsps.get(NS_URL + "/a", body="some text")
    h.rsps.get(NS_URL, body=b"one\ntwo\n")
    client = h.client()
    assert client.send_text(Request("GET", "/api/v1/namespaces/a")) == "some text"
    assert h.sent().headers["Accept"] == "application/json, */*"
    with client.send_lines(Request("GET", "/api/v1/namespaces", {"timeoutSeconds": 10})) as lines:
        assert list(lines) == [b"one", b"two"]
        assert h.sent().req_kwargs["timeout"] == (10.0, 40.0)  # type: ignore[attr-defined]


def test_the_keyword_form_sends_the_same_as_a_request(h: Harness) -> None:
    h.rsps.patch(NS_URL + "/a", json={})
    client = h.client()
    client.request("PATCH", "/api/v1/namespaces/a", params={"force": True}, body={"a": 1},
                   content_type="application/merge-patch+json", headers={"X-Extra": "1"})
    client.send(Request("PATCH", "/api/v1/namespaces/a", {"force": True}, {"a": 1},
                        "application/merge-patch+json", extra_headers={"X-Extra": "1"}))
    first, second = h.sent(0), h.sent(1)
    assert (first.url, first.body) == (second.url, second.body)
    assert dict(first.headers) == dict(second.headers)


def test_empty_answer_is_none(h: Harness) -> None:
    h.rsps.delete(NS_URL + "/a", body=b"")
    assert h.client().request("DELETE", "/api/v1/namespaces/a") is None


def test_query_params_encoding(h: Harness) -> None:
    h.rsps.get(NS_URL, json={})
    params = {"watch": True, "allowWatchBookmarks": False, "limit": 5, "x": None, "f": ["a", "b"]}
    h.client().request("GET", "/api/v1/namespaces", params=params)
    assert h.sent().url == NS_URL + "?watch=true&allowWatchBookmarks=false&limit=5&f=a&f=b"


def test_request_text_returns_the_body_as_text(h: Harness) -> None:
    h.rsps.get(SERVER + "/api/v1/namespaces/n/pods/p/log", body="line 1\nline 2\n")
    assert h.client().request_text("GET", "/api/v1/namespaces/n/pods/p/log") == "line 1\nline 2\n"


def test_a_non_json_success_body_is_a_decode_error(h: Harness) -> None:
    h.rsps.get(NS_URL, body="<html>", content_type="text/html")
    with pytest.raises(errors.DecodeError, match="not JSON"):
        h.client().request("GET", "/api/v1/namespaces")


@pytest.mark.parametrize("path", ["api/v1/namespaces", "https://evil.example/api"])
def test_paths_must_be_absolute_api_paths(h: Harness, path: str) -> None:
    with pytest.raises(errors.UsageError):
        h.client().request("GET", path)
    assert h.count == 0


def test_a_closed_client_refuses_calls(h: Harness) -> None:
    with h.client() as client:
        pass
    with pytest.raises(errors.UsageError, match="closed"):
        client.request("GET", "/api")


def test_timeouts_default_and_follow_watch_timeout_seconds(h: Harness) -> None:
    h.rsps.get(NS_URL, body=b"{}\n")
    client = h.client()
    client.request("GET", "/api/v1/namespaces")
    assert h.sent().req_kwargs["timeout"] == (10.0, 60.0)  # type: ignore[attr-defined]
    client.request("GET", "/api/v1/namespaces", timeout=5)
    assert h.sent().req_kwargs["timeout"] == (5.0, 5.0)  # type: ignore[attr-defined]
    with client.stream_lines("GET", "/api/v1/namespaces", params={"timeoutSeconds": 300}):
        assert h.sent().req_kwargs["timeout"] == (10.0, 330.0)  # type: ignore[attr-defined]
    with client.stream_lines("GET", "/api/v1/namespaces"):
        assert h.sent().req_kwargs["timeout"] == (10.0, 3630.0)  # type: ignore[attr-defined]


def test_stream_lines_yields_non_empty_lines(h: Harness) -> None:
    h.rsps.get(NS_URL, body=b'{"type":"ADDED"}\n\n{"type":"DELETED"}\ntail')
    with h.client().stream_lines(
        "GET", "/api/v1/namespaces", params={"watch": True}, headers={"Accept": "application/x"}
    ) as lines:
        assert list(lines) == [b'{"type":"ADDED"}', b'{"type":"DELETED"}', b"tail"]
    assert h.sent().headers["Accept"] == "application/x"


def test_stream_start_errors_raise_before_the_stream_is_returned(h: Harness) -> None:
    h.rsps.get(NS_URL, status=404, json=status_body(404, "NotFound"))
    with pytest.raises(errors.NotFound):
        h.client().stream_lines("GET", "/api/v1/namespaces")


# -- errors --------------------------------------------------------------------------------


STATUSES = [(400, "BadRequest"), (401, "Unauthorized"), (403, "Forbidden"), (404, "NotFound")]
STATUSES += [(409, "AlreadyExists"), (409, "Conflict"), (410, "Expired"), (422, "Invalid")]
STATUSES += [(429, "TooManyRequests"), (500, "InternalError")]


@pytest.mark.parametrize(("code", "reason"), STATUSES)
def test_status_answers_raise_their_error_class(h: Harness, code: int, reason: str) -> None:
    h.rsps.post(
        NS_URL, status=code, json=status_body(code, reason, "why"), headers={"Audit-Id": "a1"}
    )
    with pytest.raises(errors.ApiError) as info:
        h.client(retries=0).request("POST", "/api/v1/namespaces", body={})
    # the class mapping itself is test_errors.py's; here: the body reached it intact
    assert type(info.value) is type(errors.error_for_status(errors.Status(code, reason)))
    err = info.value
    assert (err.code, err.reason, err.message) == (code, reason, "why")
    assert (err.method, err.url) == ("POST", NS_URL)
    assert err.headers["Audit-Id"] == "a1"


@pytest.mark.parametrize(
    ("code", "body", "content_type", "cls", "reason"),
    [
        (502, "<html><h1>Bad Gateway</h1></html>", "text/html", errors.ServerError, "BadGateway"),
        (404, "404 page not found", "text/plain", errors.NotFound, "NotFound"),
        (403, "", "text/plain", errors.Forbidden, "Forbidden"),
        (401, '{"error": "no"}', "application/json", errors.Unauthorized, "Unauthorized"),
    ],
)
def test_non_status_error_bodies_still_give_a_clear_api_error(
    h: Harness, code: int, body: str, content_type: str, cls: type, reason: str
) -> None:
    h.rsps.get(NS_URL, status=code, body=body, content_type=content_type)
    with pytest.raises(cls) as info:
        h.client(retries=0).request("GET", "/api/v1/namespaces")
    err = info.value
    assert err.code == code and err.reason == reason
    assert f"the server answered {code}" in str(err) and content_type in str(err)
    if body:
        assert body[:10] in err.message


# -- retries -------------------------------------------------------------------------------


def test_get_is_retried_on_connection_errors(h: Harness) -> None:
    h.rsps.get(NS_URL, body=connect_refused())
    h.rsps.get(NS_URL, body=connection_reset())
    h.rsps.get(NS_URL, json={"ok": True})
    assert h.client().request("GET", "/api/v1/namespaces") == {"ok": True}
    assert h.count == 3 and h.sleeps == [0.375, 0.75]  # 0.5 * 2**n, jitter fixed at 3/4


def test_write_is_retried_when_the_connection_was_never_made(h: Harness) -> None:
    h.rsps.post(NS_URL, body=connect_refused())
    h.rsps.post(NS_URL, body=requests.exceptions.ConnectTimeout("timed out"))
    h.rsps.post(NS_URL, json={"created": True})
    assert h.client().request("POST", "/api/v1/namespaces", body={}) == {"created": True}
    assert h.count == 3


def test_write_is_not_retried_when_the_request_may_have_been_sent(h: Harness) -> None:
    h.rsps.post(NS_URL, body=connection_reset())
    with pytest.raises(errors.TransportError) as info:
        h.client().request("POST", "/api/v1/namespaces", body={})
    assert not isinstance(info.value, errors.ConnectError)
    assert h.count == 1 and h.sleeps == []


def test_read_timeouts_are_not_retried(h: Harness) -> None:
    h.rsps.get(NS_URL, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(errors.RequestTimeout):
        h.client().request("GET", "/api/v1/namespaces")
    assert h.count == 1


def test_tls_failures_are_not_retried(h: Harness) -> None:
    bad_cert = ssl.SSLCertVerificationError(1, "certificate verify failed")
    h.rsps.get(NS_URL, body=requests.exceptions.SSLError(bad_cert))
    with pytest.raises(errors.TLSError, match="certificate verify failed"):
        h.client().request("GET", "/api/v1/namespaces")
    assert h.count == 1


@pytest.mark.parametrize("code", [500, 502, 503, 504])
def test_get_is_retried_on_server_errors_and_writes_are_not(h: Harness, code: int) -> None:
    h.rsps.get(NS_URL, status=code, json=status_body(code, "X"))
    h.rsps.get(NS_URL, json={"ok": True})
    h.rsps.post(NS_URL, status=code, json=status_body(code, "X"))
    client = h.client()
    assert client.request("GET", "/api/v1/namespaces") == {"ok": True}
    with pytest.raises(errors.ServerError):
        client.request("POST", "/api/v1/namespaces", body={})
    assert h.count == 3


def test_retries_are_bounded_with_exponential_backoff(h: Harness) -> None:
    h.rsps.get(NS_URL, status=503, json=status_body(503, "ServiceUnavailable"))
    with pytest.raises(errors.ServerError):
        h.client(retries=3).request("GET", "/api/v1/namespaces")
    assert h.count == 4 and h.sleeps == [0.375, 0.75, 1.5]


def test_backoff_is_capped_and_jittered() -> None:
    policy = RetryPolicy(backoff_base=1, backoff_cap=4, random=lambda: 1.0)
    assert [policy.backoff(n) for n in range(5)] == [1, 2, 4, 4, 4]
    low = RetryPolicy(backoff_base=1, backoff_cap=4, random=lambda: 0.0)
    assert [low.backoff(n) for n in range(3)] == [0.5, 1, 2]


def test_429_honours_retry_after_for_reads_and_writes(h: Harness) -> None:
    for method in ("GET", "POST"):
        h.rsps.add(
            method,
            NS_URL,
            status=429,
            json=status_body(429, "TooManyRequests"),
            headers={"Retry-After": "3"},
        )
        h.rsps.add(method, NS_URL, json={"ok": method})
    client = h.client()
    assert client.request("GET", "/api/v1/namespaces") == {"ok": "GET"}
    assert client.request("POST", "/api/v1/namespaces", body={}) == {"ok": "POST"}
    assert h.sleeps == [3.0, 3.0]


def test_429_retry_after_seconds_in_the_status_details_count_too(h: Harness) -> None:
    h.rsps.post(NS_URL, status=429, json=status_body(429, "TooManyRequests", retryAfterSeconds=2))
    h.rsps.post(NS_URL, json={"ok": True})
    assert h.client().request("POST", "/api/v1/namespaces", body={}) == {"ok": True}
    assert h.sleeps == [2.0]


def test_429_without_retry_after_retries_reads_only(h: Harness) -> None:
    h.rsps.get(NS_URL, status=429, json=status_body(429, "TooManyRequests"))
    h.rsps.get(NS_URL, json={"ok": True})
    h.rsps.post(NS_URL, status=429, json=status_body(429, "TooManyRequests"))
    client = h.client()
    assert client.request("GET", "/api/v1/namespaces") == {"ok": True}
    with pytest.raises(errors.TooManyRequests):
        client.request("POST", "/api/v1/namespaces", body={})
    assert h.sleeps == [0.375] and h.count == 3


def test_retry_after_is_capped(h: Harness) -> None:
    h.rsps.get(NS_URL, status=503, json=status_body(503, "X"), headers={"Retry-After": "3600"})
    h.rsps.get(NS_URL, json={})
    h.client().request("GET", "/api/v1/namespaces")
    assert h.sleeps == [60.0]


@pytest.mark.parametrize("code", [400, 403, 404, 409, 422])
def test_client_errors_are_not_retried(h: Harness, code: int) -> None:
    h.rsps.get(NS_URL, status=code, json=status_body(code, "X"))
    with pytest.raises(errors.ApiError):
        h.client().request("GET", "/api/v1/namespaces")
    assert h.count == 1


def test_a_watch_start_is_retried_like_a_get(h: Harness) -> None:
    h.rsps.get(NS_URL, status=503, json=status_body(503, "X"))
    h.rsps.get(NS_URL, body=b'{"type":"ADDED"}\n')
    with h.client().stream_lines("GET", "/api/v1/namespaces", params={"watch": True}) as lines:
        assert list(lines) == [b'{"type":"ADDED"}']
    assert h.count == 2


def test_retry_after_header_forms() -> None:
    assert retry_after("7") == 7.0
    assert retry_after("-3") == 0.0
    assert retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert retry_after("soon") is None and retry_after(None) is None


# -- credentials ---------------------------------------------------------------------------


def test_token_and_basic_auth_headers_are_sent(h: Harness) -> None:
    h.rsps.get(NS_URL, json={})
    h.client(auth=TokenAuth("abc")).request("GET", "/api/v1/namespaces")
    assert h.sent().headers["Authorization"] == "Bearer abc"
    h.client(auth=BasicAuth("u", "p")).request("GET", "/api/v1/namespaces")
    assert h.sent().headers["Authorization"] == "Basic dTpw"


def test_impersonation_headers(h: Harness) -> None:
    h.rsps.get(NS_URL, json={})
    imp = Impersonation(user="jane", uid="42", groups=("devs",), extra={"team/id": ("7",)})
    h.client(impersonate=imp).request("GET", "/api/v1/namespaces")
    headers = h.sent().headers
    assert headers["Impersonate-User"] == "jane" and headers["Impersonate-Uid"] == "42"
    assert headers["Impersonate-Group"] == "devs"
    assert headers["Impersonate-Extra-team%2Fid"] == "7"


def exec_auth(folder: Path) -> Tuple[ExecAuth, Path]:
    count = folder / "runs"
    spec = ExecSpec(
        command=sys.executable,
        args=(str(PLUGIN),),
        api_version="client.authentication.k8s.io/v1",
        env=(("PLUGIN_COUNT_FILE", str(count)), ("PLUGIN_TOKEN", SECRET)),
        interactive_mode="Never",
    )
    return ExecAuth(spec), count


def test_exec_plugin_is_rerun_after_a_401_and_the_call_retried(h: Harness, tmp_path: Path) -> None:
    auth, count = exec_auth(tmp_path)
    h.rsps.get(NS_URL, status=401, json=status_body(401, "Unauthorized"))
    h.rsps.get(NS_URL, json={"ok": True})
    assert h.client(auth=auth).request("GET", "/api/v1/namespaces") == {"ok": True}
    assert [c.request.headers["Authorization"] for c in h.rsps.calls] == [
        f"Bearer {SECRET}-1",
        f"Bearer {SECRET}-2",
    ]
    assert len(count.read_text().splitlines()) == 2 and h.sleeps == []


def test_a_second_401_is_raised_after_one_refresh(h: Harness, tmp_path: Path) -> None:
    auth, count = exec_auth(tmp_path)
    h.rsps.post(NS_URL, status=401, json=status_body(401, "Unauthorized"))
    with pytest.raises(errors.Unauthorized):
        h.client(auth=auth).request("POST", "/api/v1/namespaces", body={})
    assert h.count == 2 and len(count.read_text().splitlines()) == 2


def test_a_static_token_401_is_not_retried(h: Harness) -> None:
    h.rsps.get(NS_URL, status=401, json=status_body(401, "Unauthorized"))
    with pytest.raises(errors.Unauthorized):
        h.client(auth=TokenAuth("t")).request("GET", "/api/v1/namespaces")
    assert h.count == 1


def test_secrets_stay_out_of_logs_errors_and_reprs(
    h: Harness, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth, _ = exec_auth(tmp_path)
    h.rsps.get(NS_URL, status=401, json=status_body(401, "Unauthorized"))
    h.rsps.post(NS_URL, body=connection_reset())
    h.rsps.put(NS_URL, status=503, json=status_body(503, "X"))
    client = h.client(auth=auth, proxy_url="http://proxyuser:PROXYPASS@proxy:3128")
    texts = [repr(client), str(client.config), repr(client.config)]
    for method in ("GET", "POST", "PUT"):
        with pytest.raises(errors.KubeError) as info:
            client.request(method, "/api/v1/namespaces", body={} if method != "GET" else None)
        texts += [str(info.value), repr(info.value), repr(getattr(info.value, "headers", ""))]
    basic = h.client(auth=BasicAuth("admin", SECRET))
    h.rsps.get(SERVER + "/version", status=500, json=status_body(500, "X"))
    with pytest.raises(errors.ServerError) as info:
        basic.request("GET", "/version")
    texts += [str(info.value), repr(basic), caplog.text]
    assert h.rsps.calls[0].request.headers["Authorization"].endswith(f"{SECRET}-1")  # was sent
    for text in texts:
        assert SECRET not in text and "PROXYPASS" not in text
        assert "YWRtaW46U1VQRVJTRUNSRVQ" not in text  # base64 of the basic credentials


def test_proxy_credentials_are_redacted_from_transport_errors(h: Harness) -> None:
    failure = requests.exceptions.ProxyError(
        "Cannot connect to proxy http://u:PROXYPASS@proxy:3128"
    )
    h.rsps.get(NS_URL, body=failure)
    with pytest.raises(errors.ConnectError) as info:
        h.client(retries=0).request("GET", "/api/v1/namespaces")
    assert "PROXYPASS" not in str(info.value) and "://***@proxy:3128" in str(info.value)


# -- warnings ------------------------------------------------------------------------------


def test_server_warnings_are_logged_and_warned_once(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    deprecation = '299 - "policy/v1beta1 PodSecurityPolicy is deprecated, use x, y"'
    h.rsps.get(
        NS_URL,
        json={},
        headers=[("Warning", deprecation), ("Warning", '299 - "second \\"quoted\\" warning"')],
    )
    client = h.client()
    with pytest.warns(errors.KubeWarning) as caught:
        client.request("GET", "/api/v1/namespaces")
    assert [str(w.message) for w in caught] == [
        "policy/v1beta1 PodSecurityPolicy is deprecated, use x, y",
        'second "quoted" warning',
    ]
    assert {w.filename for w in caught} == {__file__}  # pointed at the caller, not at us
    records = [
        r for r in caplog.records if r.name == "kubesync.client" and r.levelno == logging.WARNING
    ]
    assert len(records) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a repeated warning would raise here
        client.request("GET", "/api/v1/namespaces")


def test_comma_joined_warning_header_is_split(h: Harness) -> None:
    joined = '299 - "first, with comma", 299 - "second"'
    h.rsps.get(NS_URL, json={}, headers={"Warning": joined})
    with pytest.warns(errors.KubeWarning) as caught:
        h.client().request("GET", "/api/v1/namespaces")
    assert [str(w.message) for w in caught] == ["first, with comma", "second"]


def test_insecure_config_warns_at_client_creation(h: Harness) -> None:
    with pytest.warns(errors.InsecureTLSWarning, match="TLS verification is off") as caught:
        h.client(insecure_skip_tls_verify=True)
    assert caught[0].filename == __file__


class CountingAuth(Auth):
    def __init__(self) -> None:
        self.calls = 0

    def credentials(self) -> Credentials:
        self.calls += 1
        return Credentials({"Authorization": f"Bearer n{self.calls}"})


def test_credentials_are_asked_for_on_every_attempt(h: Harness) -> None:
    h.rsps.get(NS_URL, status=503, json=status_body(503, "X"))
    h.rsps.get(NS_URL, json={})
    auth = CountingAuth()
    h.client(auth=auth).request("GET", "/api/v1/namespaces")
    assert [c.request.headers["Authorization"] for c in h.rsps.calls] == ["Bearer n1", "Bearer n2"]
