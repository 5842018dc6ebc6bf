"""Credential sources: objects that produce the headers (or client certificate) of a request.

Each is safe to share between threads. ``credentials()`` is called before every request
and is cheap when nothing changed; ``refresh(rejected)`` is called once after a 401 and
says whether a retry with new credentials is worth it. None of them shows a secret in its
``repr``. Exec plugins: https://kubernetes.io/docs/reference/access-authn-authz/authentication/#client-go-credential-plugins
"""

from __future__ import annotations

import base64
import datetime
import logging
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import attrs

from kubesync.config.tls import ClientCert
from kubesync.core import json
from kubesync.core.clock import SYSTEM_CLOCK, Clock
from kubesync.core.forkgate import import_module
from kubesync.errors import ConfigError, ExecPluginError

__all__ = [
    "Auth",
    "BasicAuth",
    "Credentials",
    "ExecAuth",
    "ExecSpec",
    "Impersonation",
    "TokenAuth",
    "TokenFileAuth",
]

logger = logging.getLogger("kubesync.config")

# How long a non-interactive exec plugin may run. kubectl waits forever; a script or a web
# app should get an error instead of a hang (cloud plugins answer in well under a second).
EXEC_TIMEOUT = 60.0
EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
INTERACTIVE_MODES = ("Never", "IfAvailable", "Always")
# A token file is read again at least this often even when its stat looks unchanged (a
# same-length token written within one timestamp tick keeps mtime, size and inode);
# client-go's cached file token source re-reads projected tokens every minute too.
TOKEN_FILE_REREAD = 60.0


@attrs.define(frozen=True)
class Credentials:
    """What authenticates one request: headers, and for exec plugins maybe a client cert."""

    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    client_cert: Optional[ClientCert] = None

    def __repr__(self) -> str:
        return f"Credentials(headers={sorted(self.headers)}, client_cert={self.client_cert!r})"


class Auth:
    """A source of credentials; subclasses say where they come from."""

    def credentials(self) -> Credentials:
        """The credentials to send now."""
        raise NotImplementedError

    def refresh(self, rejected: Credentials) -> bool:
        """The server answered 401 to ``rejected``: get fresh ones; True if they differ."""
        return False

    def after_fork_in_child(self) -> None:
        """In a forked child (single-threaded at that moment): a fresh ``_lock`` for the
        sources that guard their state with one, since a thread of the parent may have
        held it at the fork (an exec plugin running). The client that uses this calls it."""
        if hasattr(self, "_lock"):
            self._lock = threading.Lock()


class TokenAuth(Auth):
    """A fixed bearer token (``token``, or an oidc auth-provider's ``id-token``)."""

    def __init__(self, token: str):
        self._creds = Credentials({"Authorization": f"Bearer {token}"})

    def credentials(self) -> Credentials:
        return self._creds

    def __repr__(self) -> str:
        return "TokenAuth(<redacted>)"


class BasicAuth(Auth):
    """HTTP basic auth (``username``/``password``; most clusters have it turned off)."""

    def __init__(self, username: str, password: str):
        self.username = username
        raw = f"{username}:{password}".encode()
        self._creds = Credentials({"Authorization": "Basic " + base64.b64encode(raw).decode()})

    def credentials(self) -> Credentials:
        return self._creds

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password=<redacted>)"


class TokenFileAuth(Auth):
    """A bearer token read from a file, and read again whenever the file changes.

    Service-account tokens are rotated by the kubelet (an atomic symlink swap), so a stat
    per request notices a new token at once; the file is also read again every
    ``reread_interval`` seconds whatever its stat says (a rewrite may keep mtime, size and
    inode). If the file vanishes or is empty later, the last token read is kept (as
    client-go does) until a new one appears. ``clock`` is for tests.
    """

    def __init__(self, path: str, *, source: Optional[str] = None, key: Optional[str] = None,
                 reread_interval: float = TOKEN_FILE_REREAD, clock: Clock = SYSTEM_CLOCK):
        self.path = path
        self._lock = threading.Lock()
        self._stamp: Optional[Tuple[int, int, int]] = None
        self._clock = clock
        self._reread_interval = reread_interval
        self._read_at = clock.monotonic()
        token = self._read()
        if token is None:
            raise ConfigError(
                f"the token file {path} cannot be read or is empty", source=source, key=key
            )
        self._creds = Credentials({"Authorization": f"Bearer {token}"})

    def credentials(self) -> Credentials:
        with self._lock:
            try:
                st = os.stat(self.path)
            except OSError:
                return self._creds
            stale = self._clock.monotonic() - self._read_at >= self._reread_interval
            if stale or (st.st_mtime_ns, st.st_size, st.st_ino) != self._stamp:
                self._reload_locked()
            return self._creds

    def refresh(self, rejected: Credentials) -> bool:
        with self._lock:
            self._reload_locked()
            return self._creds != rejected

    def _reload_locked(self) -> None:
        self._read_at = self._clock.monotonic()
        token = self._read()
        if token is not None:
            self._creds = Credentials({"Authorization": f"Bearer {token}"})

    def _read(self) -> Optional[str]:
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                token = f.read().decode("utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
        self._stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        return token or None

    def __repr__(self) -> str:
        return f"TokenFileAuth(path={self.path!r})"


def _env_repr(env: Tuple[Tuple[str, str], ...]) -> str:
    return repr([name for name, _ in env])  # values may be secrets


@attrs.define(frozen=True)
class ExecSpec:
    """A kubeconfig ``user.exec`` section, checked and with its path resolved.

    ``cluster`` is the ``spec.cluster`` object of ``KUBERNETES_EXEC_INFO`` when the
    kubeconfig sets ``provideClusterInfo``, else None.
    """

    command: str
    api_version: str
    args: Tuple[str, ...] = ()
    env: Tuple[Tuple[str, str], ...] = attrs.field(default=(), repr=_env_repr)
    install_hint: str = ""
    interactive_mode: str = "IfAvailable"
    cluster: Optional[Mapping[str, Any]] = attrs.field(default=None, repr=False)
    source: Optional[str] = None
    key: Optional[str] = None
    timeout: float = EXEC_TIMEOUT


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):  # closed or detached stdin (some notebooks, services)
        return False


class ExecAuth(Auth):
    """Credentials printed by an exec plugin, cached until their ``expirationTimestamp``.

    The plugin runs under a lock, so many threads needing credentials at once (or all
    getting a 401 together) run it once. ``clock`` returns epoch seconds (for tests).
    """

    def __init__(
        self,
        spec: ExecSpec,
        *,
        clock: Callable[[], float] = time.time,
        stdin_is_terminal: Callable[[], bool] = _stdin_is_terminal,
    ):
        self.spec = spec
        self._clock = clock
        self._stdin_is_terminal = stdin_is_terminal
        self._lock = threading.Lock()
        self._creds: Optional[Credentials] = None
        self._expiry: Optional[float] = None

    def credentials(self) -> Credentials:
        with self._lock:
            if self._creds is None or (self._expiry is not None and self._clock() >= self._expiry):
                self._creds, self._expiry = self._run()
            return self._creds

    def refresh(self, rejected: Credentials) -> bool:
        with self._lock:
            if self._creds is not None and self._creds != rejected:
                return True  # another thread already replaced them
            self._creds, self._expiry = self._run()
            return self._creds != rejected

    def __repr__(self) -> str:
        return f"ExecAuth(command={self.spec.command!r})"

    def _error(self, message: str, **kw: Any) -> ExecPluginError:
        return ExecPluginError(
            message, command=self.spec.command, source=self.spec.source, key=self.spec.key, **kw
        )

    def _run(self) -> Tuple[Credentials, Optional[float]]:
        spec = self.spec
        interactive = spec.interactive_mode != "Never" and self._stdin_is_terminal()
        if spec.interactive_mode == "Always" and not interactive:
            raise self._error("interactiveMode is Always but standard input is not a terminal")
        info: Dict[str, Any] = {"interactive": interactive}
        if spec.cluster is not None:
            info["cluster"] = dict(spec.cluster)
        env = dict(os.environ)
        env.update(spec.env)
        env["KUBERNETES_EXEC_INFO"] = json.dumps(
            {"apiVersion": spec.api_version, "kind": "ExecCredential", "spec": info}
        ).decode()
        logger.debug("running exec credential plugin %s", spec.command)
        import_module("subprocess")  # here: most configs run no plugin (costly to import);
        import subprocess  # first through the fork gate, as this may be a watcher's thread

        try:
            # Interactive: the plugin may prompt, so it gets our terminal; else stdin is
            # closed and stderr captured for the error message.
            proc = subprocess.run(
                [spec.command, *spec.args],
                env=env,
                stdin=None if interactive else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=None if interactive else subprocess.PIPE,
                timeout=None if interactive else spec.timeout,
                check=False,
            )
        except FileNotFoundError:
            raise self._error(
                f"the exec plugin {spec.command!r} was not found", install_hint=spec.install_hint
            ) from None
        except OSError as exc:
            raise self._error(
                f"the exec plugin {spec.command!r} could not be started: {exc.strerror}",
                install_hint=spec.install_hint,
            ) from None
        except subprocess.TimeoutExpired as exc:
            raise self._error(
                f"the exec plugin {spec.command!r} did not finish within {spec.timeout:g} s",
                stderr=_text(exc.stderr),
            ) from None
        stderr = _text(proc.stderr)
        if proc.returncode != 0:
            raise self._error(
                f"the exec plugin {spec.command!r} failed with exit status {proc.returncode}",
                exit_code=proc.returncode,
                stderr=stderr,
            )
        return self._parse(proc.stdout, stderr)

    def _parse(self, stdout: bytes, stderr: str) -> Tuple[Credentials, Optional[float]]:
        # Never quote stdout in an error: it holds the credential.
        def bad(what: str) -> ExecPluginError:
            return self._error(
                f"the exec plugin {self.spec.command!r} printed {what}", exit_code=0, stderr=stderr
            )

        try:
            doc = json.loads(stdout)
        except ValueError:
            raise bad("no JSON ExecCredential on stdout") from None
        if not isinstance(doc, dict) or doc.get("kind") != "ExecCredential":
            raise bad("JSON that is not an ExecCredential")
        if doc.get("apiVersion") != self.spec.api_version:
            raise bad(
                f"apiVersion {doc.get('apiVersion')!r}; the kubeconfig asks for "
                f"{self.spec.api_version!r}"
            )
        status = doc.get("status")
        if not isinstance(status, dict):
            raise bad("an ExecCredential without a status")
        token = status.get("token")
        cert, key = status.get("clientCertificateData"), status.get("clientKeyData")
        if not isinstance(token, (str, type(None))) or not all(
            isinstance(v, (str, type(None))) for v in (cert, key)
        ):
            raise bad("an ExecCredential whose status fields are not strings")
        if bool(cert) != bool(key):
            raise bad("only one of clientCertificateData and clientKeyData")
        if not token and not cert:
            raise bad("an ExecCredential with neither a token nor a client certificate")
        expiry: Optional[float] = None
        stamp = status.get("expirationTimestamp")
        if stamp is not None:
            try:
                expiry = parse_rfc3339(stamp)
            except ValueError:
                raise bad(f"an expirationTimestamp that is not RFC 3339: {stamp!r}") from None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client_cert = ClientCert(cert.encode(), key.encode()) if cert and key else None
        return Credentials(headers, client_cert), expiry


def _text(data: Optional[bytes]) -> str:
    return (data or b"").decode("utf-8", "replace")


def parse_rfc3339(value: Any) -> float:
    """Epoch seconds of an RFC 3339 timestamp ("2024-05-01T10:00:00Z"); ValueError if not."""
    if not isinstance(value, str):
        raise ValueError(value)
    text = value.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python 3.9's fromisoformat takes at most 6 fraction digits; Go prints up to 9.
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
        if digits == 0:
            raise ValueError(value)
    when = datetime.datetime.fromisoformat(text.replace("t", "T"))
    if when.tzinfo is None:
        raise ValueError(value)
    return when.timestamp()


@attrs.define(frozen=True)
class Impersonation:
    """Act as another user (``as``, ``as-uid``, ``as-groups``, ``as-user-extra``).

    https://kubernetes.io/docs/reference/access-authn-authz/authentication/#user-impersonation
    """

    user: Optional[str] = None
    uid: Optional[str] = None
    groups: Tuple[str, ...] = ()
    extra: Mapping[str, Tuple[str, ...]] = attrs.field(factory=dict)
