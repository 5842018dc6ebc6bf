"""The standalone TLS server on loopback: it answers over HTTPS, limits bodies, picks up a
replaced certificate on the next connection, names its threads and joins them on stop."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import ssl
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, Tuple

import pytest

from kubesync.errors import KubeError
from kubesync.models.core_v1 import ConfigMap
from kubesync.testing.pki import CertPair, make_ca, make_serving_cert
from kubesync.webhook import AdmissionWebhooks, WebhookApp, WebhookServer

REVIEW = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
    "uid": "u", "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
    "resource": {"group": "", "version": "v1", "resource": "configmaps"},
    "operation": "CREATE", "object": {"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": {"name": "n"}}}}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, CertPair, CertPair, CertPair]:
    folder = tmp_path_factory.mktemp("pki")
    ca = make_ca(folder, "ca", "test-ca")
    one = make_serving_cert(folder, "one", ca, ["IP:127.0.0.1"])
    two = make_serving_cert(folder, "two", ca, ["IP:127.0.0.1"])
    return folder, ca, one, two


@pytest.fixture
def served(pki: Any, tmp_path: Path) -> Iterator[Tuple[WebhookServer, ssl.SSLContext, Path]]:
    _, ca, one, _ = pki
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(one.cert, cert)
    shutil.copy(one.key, key)
    hooks = AdmissionWebhooks()
    hooks.validating(ConfigMap)(lambda req: req.allow())
    server = WebhookServer(WebhookApp(hooks, max_body=4096), cert_file=cert, key_file=key,
                           host="127.0.0.1", port=0, request_timeout=5)
    client_ctx = ssl.create_default_context(cafile=str(ca.cert))
    server.start()
    try:
        yield server, client_ctx, tmp_path
    finally:
        assert server.stop() is True


def _connect(server: WebhookServer, ctx: ssl.SSLContext) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=5)


def _post(conn: http.client.HTTPSConnection, body: bytes, path: str = "/validate",
          headers: Any = None) -> Tuple[int, Dict[str, Any]]:
    conn.request("POST", path, body=body, headers=headers or {})
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read())


def _peer_cn(conn: http.client.HTTPSConnection) -> str:
    assert isinstance(conn.sock, ssl.SSLSocket)
    cert = conn.sock.getpeercert()
    assert cert is not None
    return dict(pair[0] for pair in cert["subject"])["commonName"]  # type: ignore[index]


def test_the_server_answers_an_admission_review_over_verified_tls(served: Any) -> None:
    server, ctx, _ = served
    conn = _connect(server, ctx)
    status, got = _post(conn, json.dumps(REVIEW).encode())
    assert status == 200 and got["response"] == {"uid": "u", "allowed": True}
    # The same connection is kept for the next review, as the API server does.
    status, got = _post(conn, b"{broken")
    assert status == 400 and "not JSON" in got["response"]["status"]["message"]
    conn.close()


def test_a_body_over_the_limit_is_refused_before_it_is_read(served: Any) -> None:
    server, ctx, _ = served
    conn = _connect(server, ctx)
    conn.putrequest("POST", "/validate")
    conn.putheader("Content-Length", "100000000")
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413 and b"over the limit of 4096 bytes" in resp.read()
    conn.close()


def test_a_post_without_content_length_gets_411(served: Any) -> None:
    server, ctx, _ = served
    conn = _connect(server, ctx)
    conn.putrequest("POST", "/validate")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    assert conn.getresponse().status == 411
    conn.close()


def test_a_replaced_certificate_is_served_on_the_next_connection(served: Any, pki: Any) -> None:
    server, ctx, folder = served
    _, _, _, two = pki
    first = _connect(server, ctx)
    _post(first, json.dumps(REVIEW).encode())
    assert _peer_cn(first) == "one"
    # As the kubelet updates a mounted Secret: new files swapped in atomically.
    for src, name in ((two.cert, "tls.crt"), (two.key, "tls.key")):
        shutil.copy(src, folder / f"{name}.new")
        os.replace(folder / f"{name}.new", folder / name)
    second = _connect(server, ctx)
    _post(second, json.dumps(REVIEW).encode())
    assert _peer_cn(second) == "two"
    first.close()
    second.close()


def test_a_broken_replacement_keeps_the_old_certificate(served: Any) -> None:
    server, ctx, folder = served
    (folder / "tls.crt").write_text("not a certificate")
    conn = _connect(server, ctx)
    assert _post(conn, json.dumps(REVIEW).encode())[0] == 200
    assert _peer_cn(conn) == "one"
    conn.close()


def test_threads_are_named_and_stop_joins_them_with_a_connection_open(pki: Any) -> None:
    _, ca, one, _ = pki
    hooks = AdmissionWebhooks()
    hooks.validating(ConfigMap)(lambda req: req.allow())
    server = WebhookServer(WebhookApp(hooks), cert_file=one.cert, key_file=one.key,
                           host="127.0.0.1", port=0).start()
    conn = _connect(server, ssl.create_default_context(cafile=str(ca.cert)))
    _post(conn, json.dumps(REVIEW).encode())  # the connection stays open (keep-alive)
    names = [t.name for t in threading.enumerate()]
    assert any(n.startswith("kubesync-webhook-server-") for n in names)
    ours = [t for t in threading.enumerate() if t.name.startswith("kubesync-webhook-conn-")]
    assert ours
    assert server.stop(timeout=5) is True
    assert not any(t.is_alive() for t in ours)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
    conn.close()


def test_a_missing_certificate_fails_start_naming_the_files(tmp_path: Path) -> None:
    hooks = AdmissionWebhooks()
    server = WebhookServer(WebhookApp(hooks), cert_file=tmp_path / "c.crt",
                           key_file=tmp_path / "c.key", host="127.0.0.1", port=0)
    with pytest.raises(KubeError, match=r"cannot load the webhook certificate .*c\.crt"):
        server.start()


def test_stop_in_a_forked_child_returns_and_leaves_the_parent_serving(served: Any) -> None:
    from tests.unit.test_fork import in_child

    server, ctx, _ = served
    conn = _connect(server, ctx)
    assert _post(conn, json.dumps(REVIEW).encode())[0] == 200  # an open keep-alive connection

    def child() -> None:
        assert server.stop(timeout=5) is True  # nothing runs here; nothing shut down
        assert "stopped" in repr(server)

    in_child(child, timeout=20)
    assert _post(conn, json.dumps(REVIEW).encode())[0] == 200  # the same connection lives
    fresh = _connect(server, ctx)
    assert _post(fresh, json.dumps(REVIEW).encode())[0] == 200
    fresh.close()
    conn.close()
