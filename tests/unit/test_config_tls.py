"""TLS material: the key touches disk only privately and only while it is loaded."""

from __future__ import annotations

import os
import ssl
import stat
from pathlib import Path
from typing import Any, Dict, List

import pytest

from kubesync.config.tls import ClientCert, ssl_context
from kubesync.errors import ConfigError

PKI = Path(__file__).resolve().parent.parent / "fixtures" / "kubeconfig" / "pki"
CA = (PKI / "ca.crt").read_bytes()
CLIENT = ClientCert((PKI / "client.crt").read_bytes(), (PKI / "client.key").read_bytes())


def test_key_is_loaded_from_a_private_folder_removed_right_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: List[Dict[str, Any]] = []
    original = ssl.SSLContext.load_cert_chain

    def spy(self: ssl.SSLContext, certfile: str, keyfile: str, password: Any = None) -> None:
        folder = os.path.dirname(keyfile)
        seen.append(
            {
                "folder": folder,
                "folder_mode": stat.S_IMODE(os.stat(folder).st_mode),
                "key_mode": stat.S_IMODE(os.stat(keyfile).st_mode),
                "cert_mode": stat.S_IMODE(os.stat(certfile).st_mode),
            }
        )
        original(self, certfile, keyfile, password=password)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
    ctx = ssl_context(ca_pem=CA, client_cert=CLIENT)
    assert isinstance(ctx, ssl.SSLContext) and len(seen) == 1
    assert (seen[0]["folder_mode"], seen[0]["key_mode"], seen[0]["cert_mode"]) == (
        0o700,
        0o600,
        0o600,
    )
    assert not os.path.exists(seen[0]["folder"])


def test_context_trusts_only_the_given_ca() -> None:
    ctx = ssl_context(ca_pem=CA)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert [c["subject"] for c in ctx.get_ca_certs()] == [((("commonName", "kubesync-test-ca"),),)]


def test_insecure_context_verifies_nothing() -> None:
    ctx = ssl_context(insecure=True)
    assert ctx.verify_mode == ssl.CERT_NONE and not ctx.check_hostname


def test_mismatched_key_is_a_config_error_without_key_bytes() -> None:
    other_key = (PKI / "server.key").read_bytes()
    with pytest.raises(ConfigError) as info:
        ssl_context(ca_pem=CA, client_cert=ClientCert(CLIENT.cert_pem, other_key), source="/k")
    err = info.value
    assert err.key == "client-certificate/client-key" and err.source == "/k"
    assert "PRIVATE KEY" not in str(err) and other_key.decode()[40:80] not in str(err)


def test_encrypted_key_fails_instead_of_prompting() -> None:
    encrypted = (PKI / "client-encrypted.key").read_bytes()
    with pytest.raises(ConfigError, match="cannot be used"):
        ssl_context(ca_pem=CA, client_cert=ClientCert(CLIENT.cert_pem, encrypted))


def test_invalid_ca_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        ssl_context(ca_pem=b"not a certificate")
    assert info.value.key == "certificate-authority"


def test_a_plain_http_server_gets_no_public_roots_and_https_without_a_ca_does() -> None:
    from kubesync import Client, Config

    plain = Client(Config(server="http://127.0.0.1:1"))
    secure = Client(Config(server="https://127.0.0.1:1"))
    try:
        assert plain._transport.ssl_context.cert_store_stats()["x509_ca"] == 0
        assert secure._transport.ssl_context.cert_store_stats()["x509_ca"] > 0
    finally:
        plain.close()
        secure.close()
