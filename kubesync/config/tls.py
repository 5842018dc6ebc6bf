"""TLS material (CA, client certificate and key) turned into an ``ssl.SSLContext``.

Why a context and not requests' ``verify=``/``cert=`` paths: the CA is loaded from memory,
so ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` can neither replace nor widen the trust the
kubeconfig names; and the key needs a file only for the instant ``load_cert_chain`` reads
it (Python's ``ssl`` has no in-memory key loading): a private directory (0700, file 0600)
that is deleted before this module returns, so no key file outlives the call, even if the
process is later killed.
"""

from __future__ import annotations

import logging
import os
import shutil
import ssl
import tempfile
import threading
from typing import Any, Optional, Tuple

import attrs

from kubesync.core.forkgate import guarded
from kubesync.errors import ConfigError

logger = logging.getLogger("kubesync.config")

__all__ = ["CaFile", "ClientCert", "ForkSafeContext", "ssl_context"]


class ForkSafeContext(ssl.SSLContext):
    """An ``SSLContext`` whose handshakes (in ``wrap_socket``) a fork waits for: one split
    by a fork leaves OpenSSL's locks held in the child, whose next handshake then hangs."""

    def wrap_socket(self, *args: Any, **kwargs: Any) -> Any:
        with guarded():
            return super().wrap_socket(*args, **kwargs)


@attrs.define(frozen=True)
class ClientCert:
    """A PEM client certificate (chain) and its private key, for mutual TLS."""

    cert_pem: bytes = attrs.field(repr=False)
    key_pem: bytes = attrs.field(repr=False)

    def __repr__(self) -> str:
        return "ClientCert(<redacted>)"


def ssl_context(
    *,
    ca_pem: Optional[bytes] = None,
    client_cert: Optional[ClientCert] = None,
    insecure: bool = False,
    source: Optional[str] = None,
    public_roots: bool = True,
) -> ssl.SSLContext:
    """A client context trusting exactly ``ca_pem`` (or the system roots when None).

    ``insecure`` turns verification off (the kubeconfig's ``insecure-skip-tls-verify``).
    ``public_roots=False`` leaves a context without ``ca_pem`` trusting nothing: for a
    plain ``http://`` server, which never needs them (loading them costs 0.2-0.6 s).
    Bad PEM data raises ``ConfigError`` naming ``source``. A fork waits for the context
    to be built, and for its handshakes (see ``core/forkgate.py``).
    """
    with guarded():
        return _build(ca_pem, client_cert, insecure, source, public_roots)


def _build(
    ca_pem: Optional[bytes],
    client_cert: Optional[ClientCert],
    insecure: bool,
    source: Optional[str],
    public_roots: bool,
) -> ssl.SSLContext:
    ctx = ForkSafeContext(ssl.PROTOCOL_TLS_CLIENT)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif ca_pem is not None:
        try:
            ctx.load_verify_locations(cadata=ca_pem.decode("ascii"))
        except (ssl.SSLError, ValueError) as exc:
            raise ConfigError(
                f"the certificate authority is not valid PEM: {exc}",
                source=source,
                key="certificate-authority",
            ) from None
    elif public_roots:
        _load_public_roots(ctx)
    if client_cert is not None:
        _load_client_cert(ctx, client_cert, source)
    return ctx


def _load_public_roots(ctx: ssl.SSLContext) -> None:
    # The system store (as kubectl uses) plus certifi, which requests installs: some Python
    # builds (python.org on macOS) ship an OpenSSL with an empty system store.
    ctx.load_default_certs()
    try:
        import certifi
    except ImportError:  # pragma: no cover - requests depends on certifi
        return
    ctx.load_verify_locations(cafile=certifi.where())


def _no_password() -> bytes:
    # An encrypted key must fail with an error, not prompt on a terminal.
    return b""


def _load_client_cert(ctx: ssl.SSLContext, cert: ClientCert, source: Optional[str]) -> None:
    folder = tempfile.mkdtemp(prefix="kubesync-tls-")  # created 0700
    try:
        cert_path = _write_private(folder, "client.crt", cert.cert_pem)
        key_path = _write_private(folder, "client.key", cert.key_pem)
        ctx.load_cert_chain(cert_path, key_path, password=_no_password)
    except ssl.SSLError as exc:
        # The reason only (e.g. KEY_VALUES_MISMATCH): never the key's bytes.
        raise ConfigError(
            f"the client certificate and key cannot be used: {exc.reason or exc}",
            source=source,
            key="client-certificate/client-key",
        ) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _write_private(folder: str, name: str, data: bytes) -> str:
    path = os.path.join(folder, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


class CaFile:
    """A CA bundle file watched for changes: ``changed()`` gives the new PEM once after the
    file was replaced or rewritten (a stat per call, as for token files), else None.

    The kubelet updates a service account's ``ca.crt`` on CA rotation; a long-running
    client must trust the new CA without a restart. A file that is missing, empty or not
    valid PEM for a moment (mid-rotation) keeps the last good one.
    """

    def __init__(self, path: str, current: Optional[bytes] = None):
        self.path = path
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._pem = current

    def __repr__(self) -> str:
        return f"CaFile(path={self.path!r})"

    def _stat(self) -> Optional[Tuple[int, int, int]]:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def changed(self) -> Optional[bytes]:
        with self._lock:
            stamp = self._stat()
            if stamp is None or stamp == self._stamp:
                return None
            try:
                with open(self.path, "rb") as f:
                    pem = f.read()
                ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(
                    cadata=pem.decode("ascii"))
            except (OSError, ssl.SSLError, ValueError):
                return None  # half-written: look again on the next call
            self._stamp = stamp
            if pem == self._pem:
                return None
            self._pem = pem
            logger.info("the CA file %s changed; trusting its new contents", self.path)
            return pem
