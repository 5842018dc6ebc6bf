"""OIDC refresh against a local token endpoint, the kubeconfig written back, the exec plugin
allowlist, and a CA file rotated under a running client."""

from __future__ import annotations

import base64
import http.server
import json
import os
import ssl
import stat
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
import yaml

from kubesync import Client, Config
from kubesync.config.auth import Credentials
from kubesync.config.oidc import OidcAuth, jwt_expiry
from kubesync.errors import ConfigError
from kubesync.testing.pki import make_pki

NOW = 1_700_000_000.0


def jwt(exp: float, sub: str = "alice") -> str:
    def part(obj: Dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'RS256'})}.{part({'exp': exp, 'sub': sub})}.c2ln"


class Issuer(http.server.ThreadingHTTPServer):
    """An OIDC issuer: a discovery document and a token endpoint that rotates the refresh
    token on each use and records what it was sent."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _IssuerHandler)
        self.lock = threading.Lock()
        self.calls: List[Dict[str, Any]] = []
        self.valid_refresh = "refresh-1"
        self.issued = 0
        self.refuse: Optional[Dict[str, str]] = None
        self.gate = threading.Event()
        self.gate.set()
        self.thread = threading.Thread(target=self.serve_forever, name="test-oidc-issuer",
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/realm"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join()


class _IssuerHandler(http.server.BaseHTTPRequestHandler):
    server: Issuer

    def _json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.calls.append({"path": self.path})
        if self.path == "/realm/.well-known/openid-configuration":
            self._json(200, {"issuer": self.server.url,
                             "token_endpoint": self.server.url + "/token"})
        else:
            self._json(404, {})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        form = dict(p.split("=", 1) for p in body.split("&"))
        self.server.gate.wait(10)
        with self.server.lock:
            self.server.calls.append({"path": self.path, "form": form,
                                      "auth": self.headers.get("Authorization")})
            if self.server.refuse is not None:
                return self._json(400, self.server.refuse)
            if form.get("refresh_token") != self.server.valid_refresh:
                return self._json(400, {"error": "invalid_grant",
                                        "error_description": "refresh token is stale"})
            self.server.issued += 1
            n = self.server.issued
            self.server.valid_refresh = f"refresh-{n + 1}"
        self._json(200, {"id_token": jwt(NOW + 3600 * n, sub=f"alice-{n}"),
                         "refresh_token": f"refresh-{n + 1}", "token_type": "Bearer"})

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    server = Issuer()
    yield server
    server.stop()


class FakeTime:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def kubeconfig(tmp_path: Path, issuer: Issuer, id_token: str) -> Path:
    path = tmp_path / "config"
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "https://k8s.test:6443"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "alice"}}],
        "users": [
            {"name": "bob", "user": {"token": "bob-token"}},
            {"name": "alice", "user": {"auth-provider": {"name": "oidc", "config": {
                "client-id": "kube", "client-secret": "s3cret", "id-token": id_token,
                "refresh-token": "refresh-1", "idp-issuer-url": issuer.url,
                "extra-scopes": "groups"}}}},
        ],
        "preferences": {"colors": True},
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
    return path


def oidc_of(path: Path, clock: FakeTime) -> OidcAuth:
    auth = Config.from_kubeconfig(str(path)).auth
    assert isinstance(auth, OidcAuth)
    auth._clock = clock  # the fake clock decides when the id-token has expired
    return auth


def test_jwt_expiry_reads_the_exp_claim_only_from_jwts():
    assert jwt_expiry(jwt(NOW)) == NOW
    assert jwt_expiry("opaque-token") is None
    assert jwt_expiry("a.!!!.c") is None


def test_a_valid_id_token_is_used_without_asking_the_issuer(tmp_path, issuer):
    clock = FakeTime(NOW)
    auth = oidc_of(kubeconfig(tmp_path, issuer, jwt(NOW + 600)), clock)
    assert auth.credentials().headers["Authorization"] == f"Bearer {jwt(NOW + 600)}"
    assert issuer.calls == []


def test_an_expired_id_token_is_refreshed_and_the_rotation_written_back(tmp_path, issuer):
    clock = FakeTime(NOW)
    path = kubeconfig(tmp_path, issuer, jwt(NOW - 1))
    before = yaml.safe_load(path.read_text())
    auth = oidc_of(path, clock)
    creds = auth.credentials()
    assert creds.headers["Authorization"] == f"Bearer {jwt(NOW + 3600, sub='alice-1')}"
    discovery, token = issuer.calls
    assert discovery["path"] == "/realm/.well-known/openid-configuration"
    assert token["path"] == "/realm/token"
    assert token["form"]["grant_type"] == "refresh_token"
    assert token["form"]["refresh_token"] == "refresh-1"
    assert token["form"]["scope"] == "openid+groups"
    assert token["auth"] == "Basic " + base64.b64encode(b"kube:s3cret").decode()
    after = yaml.safe_load(path.read_text())
    config = after["users"][1]["user"]["auth-provider"]["config"]
    assert config["id-token"] == jwt(NOW + 3600, sub="alice-1")
    assert config["refresh-token"] == "refresh-2"  # the issuer rotated it
    # Everything else is as it was: other users, the cluster, preferences, the mode.
    before["users"][1]["user"]["auth-provider"]["config"].update(
        {"id-token": config["id-token"], "refresh-token": "refresh-2"})
    assert after == before
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["config"]  # no lock or temporary file left
    # Valid until its exp (minus the margin): no second refresh.
    clock.now = NOW + 3000
    auth.credentials()
    assert len(issuer.calls) == 2
    # Expired again: the rotated refresh token is the one sent.
    clock.now = NOW + 3600
    assert auth.credentials().headers["Authorization"].endswith(jwt(NOW + 7200, "alice-2"))
    assert issuer.calls[-1]["form"]["refresh_token"] == "refresh-2"


def test_a_new_process_starts_from_the_written_back_tokens(tmp_path, issuer):
    path = kubeconfig(tmp_path, issuer, jwt(NOW - 1))
    oidc_of(path, FakeTime(NOW)).credentials()
    again = oidc_of(path, FakeTime(NOW + 60))
    assert again.credentials().headers["Authorization"].endswith(jwt(NOW + 3600, "alice-1"))
    assert len(issuer.calls) == 2  # the first process's refresh only


def test_a_401_refreshes_once_and_threads_share_the_refresh(tmp_path, issuer):
    clock = FakeTime(NOW)
    auth = oidc_of(kubeconfig(tmp_path, issuer, jwt(NOW + 600)), clock)
    rejected = auth.credentials()
    issuer.gate.clear()  # hold the token endpoint until every thread is waiting
    results: List[bool] = []
    threads = [threading.Thread(target=lambda: results.append(auth.refresh(rejected)),
                                name=f"test-oidc-refresh-{i}") for i in range(4)]
    for t in threads:
        t.start()
    issuer.gate.set()
    for t in threads:
        t.join(10)
    assert results == [True] * 4
    assert sum(1 for c in issuer.calls if c["path"] == "/realm/token") == 1


def test_a_refused_refresh_names_the_issuer_and_its_error_but_no_secret(tmp_path, issuer):
    auth = oidc_of(kubeconfig(tmp_path, issuer, jwt(NOW - 1)), FakeTime(NOW))
    issuer.refuse = {"error": "invalid_grant", "error_description": "Token is not active",
                     "echo": "refresh-1"}
    with pytest.raises(ConfigError) as info:
        auth.credentials()
    text = str(info.value)
    assert issuer.url in text and "400" in text and "invalid_grant: Token is not active" in text
    for secret in ("refresh-1", "s3cret", jwt(NOW - 1)):
        assert secret not in text and secret not in repr(auth)
    assert "kube" in repr(auth)


def test_without_a_refresh_token_the_id_token_is_all_there_is(tmp_path, issuer):
    path = kubeconfig(tmp_path, issuer, jwt(NOW - 1))
    doc = yaml.safe_load(path.read_text())
    del doc["users"][1]["user"]["auth-provider"]["config"]["refresh-token"]
    path.write_text(yaml.safe_dump(doc))
    auth = Config.from_kubeconfig(str(path)).auth
    assert not isinstance(auth, OidcAuth)
    assert auth is not None and auth.credentials().headers["Authorization"].endswith(
        jwt(NOW - 1))
    assert auth.refresh(Credentials()) is False


# -- the exec plugin allowlist ----------------------------------------------------------------


def exec_kubeconfig(tmp_path: Path, command: str) -> Path:
    path = tmp_path / "exec-config"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "https://k8s.test:6443"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "users": [{"name": "u", "user": {"exec": {
            "command": command, "apiVersion": "client.authentication.k8s.io/v1",
            "interactiveMode": "Never"}}}],
    }))
    return path


def test_an_exec_plugin_not_on_the_allowlist_is_refused_by_name(tmp_path):
    path = exec_kubeconfig(tmp_path, "evil-plugin")
    with pytest.raises(ConfigError) as info:
        Config.from_kubeconfig(str(path), exec_allowlist=["aws", "gke-gcloud-auth-plugin"])
    text = str(info.value)
    assert "'evil-plugin' is not on the allowlist" in text
    assert str(path) in text and "users[u].user.exec.command" in text
    assert Config.from_kubeconfig(str(path), exec_allowlist=["evil-plugin"]).auth is not None
    assert Config.from_kubeconfig(str(path)).auth is not None  # no allowlist: as kubectl


def test_a_bare_name_does_not_allow_a_path_with_that_name(tmp_path):
    path = exec_kubeconfig(tmp_path, "/tmp/x/aws")
    with pytest.raises(ConfigError, match="'/tmp/x/aws' is not on the allowlist"):
        Config.from_kubeconfig(str(path), exec_allowlist=["aws"])
    assert Config.from_kubeconfig(str(path), exec_allowlist=["/tmp/x/aws"]).auth is not None


def test_the_allowlist_is_a_list_not_a_string(tmp_path):
    with pytest.raises(ConfigError, match="not one string"):
        Config.from_kubeconfig(str(exec_kubeconfig(tmp_path, "aws")), exec_allowlist="aws")


# -- a CA file rotated under a running client ---------------------------------------------------


class _Ok(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: TlsServer

    def do_GET(self) -> None:
        self.server.ports.append(self.client_address[1])
        data = b'{"kind": "Status"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class TlsServer(http.server.ThreadingHTTPServer):
    """HTTPS with the certificate of ``tls`` at the time each connection is accepted."""

    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Ok)
        self.tls = tls
        self.ports: List[int] = []
        self.thread = threading.Thread(target=self.serve_forever, name="test-ca-server",
                                       daemon=True)
        self.thread.start()

    def get_request(self) -> Any:
        sock, addr = self.socket.accept()
        return self.tls.wrap_socket(sock, server_side=True), addr

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join()


def _serving(pair: Any) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pair.cert), str(pair.key))
    return ctx


@pytest.fixture(scope="module")
def two_cas(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Two unrelated PKIs: the cluster's CA before and after a rotation."""
    made = []
    for name in ("old", "new"):
        folder = tmp_path_factory.mktemp(name)
        folder.chmod(0o700)
        made.append(make_pki(folder))
    return made


def test_a_rotated_ca_file_is_trusted_without_a_restart(tmp_path, two_cas):
    from kubesync.config import incluster

    old, new = two_cas
    server = TlsServer(_serving(old.serving))
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "ca.crt").write_bytes(old.ca.cert.read_bytes())
    (sa / "token").write_text("sa-token")
    env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1",
           "KUBERNETES_SERVICE_PORT": str(server.server_address[1])}
    client = Client(incluster.load(env, str(sa)), retries=0)
    try:
        client.request("GET", "/version")
        # The cluster's CA rotates: the server presents a certificate of the new CA, and
        # ca.crt is replaced (a new file renamed over the old, as the kubelet's writer does).
        server.tls = _serving(new.serving)
        staged = sa / "ca.crt.new"
        staged.write_bytes(new.ca.cert.read_bytes())
        os.replace(staged, sa / "ca.crt")
        client.request("GET", "/version")
        assert len(set(server.ports)) == 2  # a new handshake, verified with the new CA
    finally:
        client.close()
        server.stop()


def test_a_client_with_the_ca_in_memory_fails_on_the_rotated_certificate(two_cas):
    # The control for the test above: the same server, the old CA fixed in the config.
    from kubesync.errors import TLSError

    old, new = two_cas
    server = TlsServer(_serving(new.serving))
    client = Client(Config(server=f"https://127.0.0.1:{server.server_address[1]}",
                           ca_pem=old.ca.cert.read_bytes()), retries=0)
    try:
        with pytest.raises(TLSError):
            client.request("GET", "/version")
    finally:
        client.close()
        server.stop()


def test_a_kubeconfig_that_cannot_be_written_keeps_the_new_tokens_in_memory(
        tmp_path, issuer, caplog):
    path = kubeconfig(tmp_path, issuer, jwt(NOW - 1))
    auth = oidc_of(path, FakeTime(NOW))
    (tmp_path / "config.lock").write_text("")  # another writer holds the lock
    auth._writer._lock_timeout = 0.0  # type: ignore[union-attr]
    with caplog.at_level("WARNING", logger="kubesync.config"):
        creds = auth.credentials()
    assert creds.headers["Authorization"].endswith(jwt(NOW + 3600, "alice-1"))
    assert "not saved" in caplog.text and "config.lock is held" in caplog.text
    assert "refresh-2" not in caplog.text
    assert yaml.safe_load(path.read_text())["users"][1]["user"]["auth-provider"][
        "config"]["refresh-token"] == "refresh-1"
