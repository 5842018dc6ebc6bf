"""Client behaviour against a real local HTTP(S) server: threads sharing one pool, TLS trust
despite REQUESTS_CA_BUNDLE, client certificates, tls-server-name, proxies, stream closing."""

from __future__ import annotations

import http.server
import json
import logging
import os
import socket
import ssl
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

from kubesync import Client, Config, errors
from kubesync.client import RetryPolicy
from kubesync.config import ClientCert, ExecAuth, ExecSpec, Impersonation

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PKI = FIXTURES / "kubeconfig" / "pki"
CA = (PKI / "ca.crt").read_bytes()
UNRELATED_BUNDLE = next(
    (
        p
        for p in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
        if os.path.exists(p)
    ),
    None,
)

Handler = Callable[["RecordingHandler"], None]


class RecordingHandler(http.server.BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1; records each request, then lets the server's ``respond`` answer."""

    protocol_version = "HTTP/1.1"
    server: LocalServer

    def handle_one_request(self) -> None:  # a quiet server: no stderr lines per request
        try:
            super().handle_one_request()
        except (ConnectionError, ssl.SSLError, OSError):
            self.close_connection = True

    def do_ANY(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        peer = None
        if isinstance(self.connection, ssl.SSLSocket):
            cert = self.connection.getpeercert()
            peer = dict(x[0] for x in cert["subject"])["commonName"] if cert else None
        with self.server.lock:
            self.server.requests.append(
                {
                    "path": self.path,
                    "headers": self.headers,
                    "body": body,
                    "peer": peer,
                    "port": self.client_address[1],
                }
            )
        self.server.respond(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_ANY

    def send_json(self, obj: Any, status: int = 200) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def answer_ok(handler: RecordingHandler) -> None:
    handler.send_json({"kind": "Status", "path": handler.path})


class LocalServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, tls: Optional[ssl.SSLContext] = None, respond: Handler = answer_ok):
        super().__init__(("127.0.0.1", 0), RecordingHandler)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.respond = respond
        self.lock = threading.Lock()
        self.requests: List[Dict[str, Any]] = []
        self.scheme = "https" if tls else "http"
        self.thread = threading.Thread(
            target=self.serve_forever, name="test-local-server", daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join()


def server_tls(cert: str = "server", require_client_cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(PKI / f"{cert}.crt", PKI / f"{cert}.key")
    if require_client_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=CA.decode())
    return ctx


@pytest.fixture
def serve() -> Iterator[Callable[..., LocalServer]]:
    servers: List[LocalServer] = []

    def start(tls: Optional[ssl.SSLContext] = None, respond: Handler = answer_ok) -> LocalServer:
        servers.append(LocalServer(tls, respond))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def unrelated_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The trap on this machine: env bundles that would replace the cluster's CA in requests."""
    import certifi

    bundle = UNRELATED_BUNDLE or certifi.where()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)
    monkeypatch.setenv("CURL_CA_BUNDLE", bundle)


def no_sleep_policy(sleeps: List[float]) -> RetryPolicy:
    return RetryPolicy(sleep=sleeps.append)


# -- threads ------------------------------------------------------------------------------


def test_32_threads_share_one_client_for_2000_requests_without_pool_warnings(
    serve: Callable[..., LocalServer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="urllib3")
    server = serve()
    client = Client(Config(server=server.url))
    total, threads = 2000, 32
    counter = iter(range(total))
    counter_lock = threading.Lock()
    failures: List[BaseException] = []
    done: List[int] = []

    def work() -> None:
        while True:
            with counter_lock:
                n = next(counter, None)
            if n is None:
                return
            try:
                answer = client.request("GET", f"/api/v1/namespaces/n{n}")
                assert answer["path"] == f"/api/v1/namespaces/n{n}"
                done.append(n)
            except BaseException as exc:  # collected, asserted below
                failures.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    client.close()
    assert failures == []
    assert sorted(done) == list(range(total))
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
    assert len({r["port"] for r in server.requests}) <= threads  # connections were reused


def test_impersonated_groups_and_extras_are_separate_header_lines(
    serve: Callable[..., LocalServer],
) -> None:
    server = serve()
    imp = Impersonation(user="jane", groups=("devs", "ops"), extra={"scopes": ("view", "edit")})
    Client(Config(server=server.url, impersonate=imp)).request("GET", "/api")
    headers = server.requests[0]["headers"]
    assert headers.get_all("Impersonate-Group") == ["devs", "ops"]
    assert headers.get_all("Impersonate-Extra-scopes") == ["view", "edit"]
    assert headers.get_all("Impersonate-User") == ["jane"]


# -- streams ------------------------------------------------------------------------------


def test_closing_a_stream_from_another_thread_stops_a_blocked_reader(
    serve: Callable[..., LocalServer],
) -> None:
    release = threading.Event()

    def watch(handler: RecordingHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        line = b'{"type":"ADDED"}\n'
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
        handler.wfile.flush()
        release.wait(30)  # then hang up: a quiet watch
        handler.close_connection = True

    server = serve(respond=watch)
    client = Client(Config(server=server.url))
    lines = client.stream_lines("GET", "/api/v1/pods", params={"watch": True}, timeout=(5, 60))
    got: List[bytes] = []
    first = threading.Event()
    outcome: List[Any] = []

    def read() -> None:
        try:
            for line in lines:
                got.append(line)
                first.set()
            outcome.append("ended")
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert first.wait(10)
        started = time.monotonic()
        lines.close()
        reader.join(10)
        assert not reader.is_alive(), "the reader was not woken by close()"
        assert time.monotonic() - started < 10  # well before the 60 s read timeout
        assert got == [b'{"type":"ADDED"}'] and outcome == ["ended"]
    finally:
        release.set()
        reader.join()
    client.close()


def test_a_stream_ended_by_the_server_ends_the_iteration(serve: Callable[..., LocalServer]) -> None:
    def logs(handler: RecordingHandler) -> None:
        data = b"one\ntwo\n"
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    server = serve(respond=logs)
    with Client(Config(server=server.url)) as client, client.stream_lines("GET", "/log") as lines:
        assert list(lines) == [b"one", b"two"]


# -- TLS ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("unrelated_ca_bundle")
def test_kubeconfig_ca_is_used_despite_env_ca_bundles(serve: Callable[..., LocalServer]) -> None:
    server = serve(server_tls())
    assert (
        Client(Config(server=server.url, ca_pem=CA)).request("GET", "/version")["path"]
        == "/version"
    )


@pytest.mark.usefixtures("unrelated_ca_bundle")
def test_without_the_cluster_ca_the_server_is_not_trusted(
    serve: Callable[..., LocalServer],
) -> None:
    server = serve(server_tls())
    sleeps: List[float] = []
    with pytest.raises(errors.TLSError, match="certificate verify failed"):
        Client(Config(server=server.url), retries=no_sleep_policy(sleeps)).request(
            "GET", "/version"
        )
    assert sleeps == []  # a certificate problem is not retried


@pytest.mark.usefixtures("unrelated_ca_bundle")
def test_env_bundle_does_not_widen_trust(
    serve: Callable[..., LocalServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The env bundle here *does* hold our test CA: the kubeconfig names another CA, so the
    # server must still be refused (requests would have used the env bundle).
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(PKI / "ca.crt"))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(PKI / "ca.crt"))
    other_ca = (PKI / "server-named.crt").read_bytes()  # some certificate that is not our CA
    server = serve(server_tls())
    with pytest.raises(errors.TLSError):
        Client(Config(server=server.url, ca_pem=other_ca), retries=0).request("GET", "/version")


@pytest.mark.usefixtures("unrelated_ca_bundle")
def test_client_certificate_from_data_is_presented(serve: Callable[..., LocalServer]) -> None:
    server = serve(server_tls(require_client_cert=True))
    cert = ClientCert((PKI / "client.crt").read_bytes(), (PKI / "client.key").read_bytes())
    Client(Config(server=server.url, ca_pem=CA, client_cert=cert)).request("GET", "/version")
    assert server.requests[0]["peer"] == "alice"


def test_exec_plugin_client_certificate_is_presented(
    serve: Callable[..., LocalServer], tmp_path: Path
) -> None:
    server = serve(server_tls(require_client_cert=True))
    spec = ExecSpec(
        command=sys.executable,
        args=(str(FIXTURES / "exec_plugin.py"),),
        api_version="client.authentication.k8s.io/v1beta1",
        env=(("PLUGIN_CERT_DIR", str(PKI)),),
    )
    Client(Config(server=server.url, ca_pem=CA, auth=ExecAuth(spec))).request("GET", "/version")
    assert server.requests[0]["peer"] == "alice"
    assert "Authorization" not in server.requests[0]["headers"]


def test_tls_server_name_is_used_for_sni_and_verification(
    serve: Callable[..., LocalServer],
) -> None:
    server = serve(server_tls("server-named"))  # a certificate for kubernetes.test only
    with pytest.raises(errors.TLSError):
        Client(Config(server=server.url, ca_pem=CA), retries=0).request("GET", "/version")
    named = Config(server=server.url, ca_pem=CA, tls_server_name="kubernetes.test")
    assert Client(named).request("GET", "/version")["path"] == "/version"


def test_insecure_skip_tls_verify_warns_once_ours_not_urllib3s_per_request(
    serve: Callable[..., LocalServer]
) -> None:
    server = serve(server_tls("server-named"))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        client = Client(Config(server=server.url, insecure_skip_tls_verify=True))
        for _ in range(3):
            assert client.request("GET", "/version")["path"] == "/version"
        client.close()
    assert [type(w.message) for w in seen] == [errors.InsecureTLSWarning]


# -- proxies ------------------------------------------------------------------------------


def test_proxy_url_from_the_kubeconfig_is_used_even_with_no_proxy(
    serve: Callable[..., LocalServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = serve()
    monkeypatch.setenv("NO_PROXY", "kube.invalid")
    monkeypatch.setenv("no_proxy", "kube.invalid")
    config = Config(server="http://kube.invalid:8080", proxy_url=proxy.url)
    Client(config).request("GET", "/api")
    assert proxy.requests[0]["path"] == "http://kube.invalid:8080/api"  # absolute form: proxied


def test_env_proxy_is_honoured_and_no_proxy_bypasses_it(
    serve: Callable[..., LocalServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = serve()
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, proxy.url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    Client(Config(server="http://kube.invalid:8080")).request("GET", "/api")
    assert proxy.requests[-1]["path"] == "http://kube.invalid:8080/api"
    direct = serve()
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1")
    Client(Config(server=direct.url)).request("GET", "/api")
    assert len(proxy.requests) == 1 and direct.requests[0]["path"] == "/api"


def test_connection_refused_is_a_connect_error_after_retries() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    sleeps: List[float] = []
    with pytest.raises(errors.ConnectError, match="cannot connect"):
        Client(Config(server=f"http://127.0.0.1:{port}"), retries=no_sleep_policy(sleeps)).request(
            "POST", "/api", body={}
        )
    assert len(sleeps) == 3
