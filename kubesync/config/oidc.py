"""The kubeconfig ``auth-provider: oidc`` with its refresh-token flow, as kubectl had it.

The ``id-token`` is sent as the bearer token until it expires (its JWT ``exp``, read
without verifying: the API server verifies it). Then, or on a 401, the ``refresh-token`` is
exchanged at the issuer's token endpoint (from ``<idp-issuer-url>/.well-known/
openid-configuration``) for a new id-token, and a rotated refresh-token if the issuer
sends one. Both are written back to the kubeconfig file the user came from, so the next
process (and kubectl) starts with them: the file is replaced atomically, under kubectl's
``<file>.lock``, with everything else in it kept.
https://kubernetes.io/docs/reference/access-authn-authz/authentication/#using-kubectl
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import yaml

from kubesync.config import tls
from kubesync.config.auth import Auth, Credentials
from kubesync.core import json
from kubesync.errors import ConfigError

__all__ = ["KubeconfigUserWriter", "OidcAuth", "jwt_expiry"]

logger = logging.getLogger("kubesync.config")

#: Refresh this long before the id-token's ``exp``, so a request in flight does not carry
#: a token that expires on the way (client-go's oauth2 uses the same 10 s expiry delta).
EXPIRY_MARGIN = 10.0
#: The token endpoint's timeout: an identity provider answers in well under a second; a
#: request waiting on it should fail rather than hang.
OIDC_TIMEOUT = 30.0
#: How long to wait for another process's ``<kubeconfig>.lock`` before giving up.
LOCK_TIMEOUT = 10.0
#: A rejected or malformed answer is quoted up to this much (its ``error`` fields only).
_QUOTE = 200


def jwt_expiry(token: str) -> Optional[float]:
    """The ``exp`` claim (epoch seconds) of a JWT, read without verifying it; None if the
    token is not a JWT or has no numeric ``exp``."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, (int, float)) and not isinstance(exp, bool):
        return float(exp)
    return None


class KubeconfigUserWriter:
    """Writes new auth-provider values into one user of one kubeconfig file, as kubectl
    does after a refresh: under ``<file>.lock``, by an atomic replace, keeping the rest."""

    def __init__(self, path: str, user: str, *, lock_timeout: float = LOCK_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic):
        self.path = path
        self.user = user
        self._lock_timeout = lock_timeout
        self._clock = clock

    def __repr__(self) -> str:
        return f"KubeconfigUserWriter(path={self.path!r}, user={self.user!r})"

    def write(self, values: Mapping[str, str]) -> None:
        """Set ``values`` in ``users[user].user.auth-provider.config``; ``ConfigError``
        (naming the file, never a value) if the file cannot be updated."""
        lock = self.path + ".lock"
        self._take(lock)
        try:
            with open(self.path, encoding="utf-8") as f:
                doc = yaml.safe_load(f)
            config = self._config_of(doc)
            config.update(values)
            self._replace(yaml.safe_dump(doc, default_flow_style=False, sort_keys=False))
        except OSError as exc:
            raise ConfigError(f"cannot update the kubeconfig: {exc.strerror}",
                              source=self.path) from None
        except yaml.YAMLError:
            raise ConfigError("cannot update the kubeconfig: it is no longer valid YAML",
                              source=self.path) from None
        finally:
            try:
                os.unlink(lock)
            except OSError:
                pass

    def _take(self, lock: str) -> None:
        deadline = self._clock() + self._lock_timeout
        pause = threading.Event()  # never set: a bounded wait between tries
        while True:
            try:
                os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                return
            except FileExistsError:
                if self._clock() >= deadline:
                    raise ConfigError(
                        f"cannot update the kubeconfig: {lock} is held by another process "
                        f"(remove it if no kubectl or kubesync is writing)",
                        source=self.path) from None
                pause.wait(0.05)
            except OSError as exc:
                raise ConfigError(f"cannot lock the kubeconfig: {exc.strerror}",
                                  source=self.path) from None

    def _config_of(self, doc: Any) -> Dict[str, Any]:
        users = doc.get("users") if isinstance(doc, dict) else None
        for entry in users if isinstance(users, list) else []:
            if isinstance(entry, dict) and entry.get("name") == self.user:
                provider = (entry.get("user") or {}).get("auth-provider")
                if isinstance(provider, dict):
                    config = provider.setdefault("config", {})
                    if isinstance(config, dict):
                        return config
        raise ConfigError(f"cannot update the kubeconfig: users[{self.user}] has no "
                          "auth-provider any more", source=self.path,
                          key=f"users[{self.user}].user.auth-provider")

    def _replace(self, text: str) -> None:
        folder = os.path.dirname(os.path.abspath(self.path))
        mode = os.stat(self.path).st_mode & 0o777
        fd, tmp = tempfile.mkstemp(prefix=".kubeconfig-", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


class OidcAuth(Auth):
    """An OIDC id-token, refreshed with the refresh-token before it expires or after a 401.

    Thread-safe: one refresh at a time, and threads that waited for it use its result.
    ``writer`` persists the new tokens (None keeps them in memory only); ``clock`` gives
    epoch seconds (for tests); ``ca_pem`` is the issuer's CA (``idp-certificate-authority``),
    else the system roots.
    """

    def __init__(
        self,
        *,
        client_id: str,
        issuer_url: str,
        id_token: Optional[str] = None,
        refresh_token: Optional[str] = None,
        client_secret: Optional[str] = None,
        extra_scopes: Tuple[str, ...] = (),
        ca_pem: Optional[bytes] = None,
        writer: Optional[KubeconfigUserWriter] = None,
        clock: Callable[[], float] = time.time,
        timeout: float = OIDC_TIMEOUT,
        source: Optional[str] = None,
        key: Optional[str] = None,
    ):
        self.client_id = client_id
        self.issuer_url = issuer_url.rstrip("/")
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._id_token = id_token
        self.extra_scopes = extra_scopes
        self._ca_pem = ca_pem
        self._writer = writer
        self._clock = clock
        self._timeout = timeout
        self._source, self._key = source, key
        self._lock = threading.Lock()
        self._token_endpoint: Optional[str] = None
        self._creds = self._credentials_of(id_token)

    def __repr__(self) -> str:
        return f"OidcAuth(issuer_url={self.issuer_url!r}, client_id={self.client_id!r})"

    @property
    def expiry(self) -> Optional[float]:
        """When the current id-token expires (epoch seconds), if it says."""
        return jwt_expiry(self._id_token) if self._id_token else None

    def credentials(self) -> Credentials:
        with self._lock:
            if self._expired_locked() and self._refresh_token:
                self._refresh_locked()
            return self._creds

    def refresh(self, rejected: Credentials) -> bool:
        with self._lock:
            if self._creds != rejected:
                return True  # another thread refreshed meanwhile
            if not self._refresh_token:
                return False
            self._refresh_locked()
            return self._creds != rejected

    # -- internals --------------------------------------------------------------------------

    @staticmethod
    def _credentials_of(id_token: Optional[str]) -> Credentials:
        return Credentials({"Authorization": f"Bearer {id_token}"} if id_token else {})

    def _expired_locked(self) -> bool:
        if not self._id_token:
            return True
        exp = jwt_expiry(self._id_token)
        return exp is not None and self._clock() >= exp - EXPIRY_MARGIN

    def _error(self, message: str) -> ConfigError:
        return ConfigError(f"OIDC token refresh with {self.issuer_url}: {message}",
                           source=self._source, key=self._key)

    def _refresh_locked(self) -> None:
        endpoint = self._token_endpoint or self._discover_endpoint()
        form = {"grant_type": "refresh_token", "refresh_token": self._refresh_token or ""}
        if self.extra_scopes:
            form["scope"] = " ".join(("openid", *self.extra_scopes))
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "Accept": "application/json"}
        if self._client_secret is not None:
            # RFC 6749 2.3.1: HTTP Basic with the form-encoded id and secret.
            pair = (f"{urllib.parse.quote_plus(self.client_id)}:"
                    f"{urllib.parse.quote_plus(self._client_secret)}")
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form["client_id"] = self.client_id
        answer = self._call(endpoint, urllib.parse.urlencode(form).encode(), headers)
        id_token = answer.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise self._error("the token endpoint's answer has no id_token")
        rotated = answer.get("refresh_token")
        if isinstance(rotated, str) and rotated:
            self._refresh_token = rotated
        self._id_token = id_token
        self._creds = self._credentials_of(id_token)
        logger.info("OIDC id-token refreshed with %s", self.issuer_url)
        if self._writer is not None:
            try:
                self._writer.write({"id-token": id_token,
                                    "refresh-token": self._refresh_token or ""})
            except ConfigError as exc:
                # The new tokens work in this process; only the next one starts older.
                logger.warning("OIDC tokens refreshed but not saved: %s", exc)

    def _discover_endpoint(self) -> str:
        url = self.issuer_url + "/.well-known/openid-configuration"
        doc = self._call(url, None, {"Accept": "application/json"})
        endpoint = doc.get("token_endpoint")
        if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
            raise self._error(f"{url} names no token_endpoint")
        self._token_endpoint = endpoint
        return endpoint

    def _call(self, url: str, data: Optional[bytes], headers: Mapping[str, str]
              ) -> Dict[str, Any]:
        request = urllib.request.Request(url, data=data, headers=dict(headers),
                                         method="POST" if data is not None else "GET")
        context = tls.ssl_context(ca_pem=self._ca_pem, source=self._source)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout,
                                        context=context) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise self._error(f"{url} answered {exc.code}{_oauth_error(exc.read())}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise self._error(f"cannot reach {url}: {reason}") from None
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise self._error(f"{url} did not answer a JSON object")
        return doc


def _oauth_error(body: bytes) -> str:
    """The OAuth ``error``/``error_description`` of a refused call (never other fields,
    which could echo a token)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(doc, dict):
        return ""
    parts = [str(doc[k])[:_QUOTE] for k in ("error", "error_description")
             if isinstance(doc.get(k), str)]
    return f" ({': '.join(parts)})" if parts else ""
