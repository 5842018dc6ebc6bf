"""The exception tree of kubesync, and the decoding of the server's ``Status``.

Catch at the height you need: ``KubeError`` for anything of ours, ``ApiError`` for any
answer the server gave, ``NotFound``/``Conflict``/... for one reason, ``TransportError``
for a request that got no answer. No ``requests``/``urllib3`` exception reaches a user.
See https://kubernetes.io/docs/reference/using-api/api-concepts/ for ``Status``.
"""

from __future__ import annotations

import builtins
import warnings
from typing import Any, Dict, List, Mapping, Optional, Tuple, Type

import attrs

__all__ = [
    "AlreadyExists",
    "ApiError",
    "BadRequest",
    "ConfigError",
    "Conflict",
    "ConnectError",
    "ConnectTimeout",
    "CopyError",
    "DecodeError",
    "ExecError",
    "ExecPluginError",
    "FeatureUnavailable",
    "Forbidden",
    "Gone",
    "InsecureTLSWarning",
    "Invalid",
    "KubeError",
    "KubeWarning",
    "MethodNotAllowed",
    "NotFound",
    "PortForwardError",
    "ProtocolError",
    "RequestTimeout",
    "ServerError",
    "Status",
    "StatusCause",
    "StatusDetails",
    "TLSError",
    "TooManyRequests",
    "TransportError",
    "Unauthorized",
    "UnprocessableBody",
    "UsageError",
    "error_for_status",
]


class KubeError(Exception):
    """The root of every error kubesync raises."""


class ConfigError(KubeError):
    """A kubeconfig, in-cluster setup or credential source is missing or malformed.

    ``source`` names the file (or other origin), ``key`` the place inside it.
    """

    def __init__(self, message: str, *, source: Optional[str] = None, key: Optional[str] = None):
        self.message = message
        self.source = source
        self.key = key
        where = ", ".join(p for p in (source and f"file {source}", key and f"key {key}") if p)
        super().__init__(f"{message} ({where})" if where else message)


class ExecPluginError(ConfigError):
    """An exec credential plugin is missing, failed, or printed no usable ExecCredential.

    ``command`` is the plugin, ``exit_code`` its status (None if it never ran), ``stderr``
    what it printed there, ``install_hint`` the kubeconfig's advice for installing it.
    """

    def __init__(
        self,
        message: str,
        *,
        command: str,
        source: Optional[str] = None,
        key: Optional[str] = None,
        exit_code: Optional[int] = None,
        stderr: str = "",
        install_hint: str = "",
    ):
        self.command = command
        self.exit_code = exit_code
        self.stderr = stderr
        self.install_hint = install_hint
        parts = [message]
        if stderr.strip():
            parts.append(f"stderr: {stderr.strip()}")
        if install_hint.strip():
            parts.append(install_hint.strip())
        super().__init__("\n".join(parts), source=source, key=key)
        self.message = message


class KubeWarning(UserWarning):
    """A warning from the API server (its ``Warning`` header) or about the configuration."""


class InsecureTLSWarning(KubeWarning):
    """The kubeconfig turned TLS verification off (``insecure-skip-tls-verify``)."""


class UsageError(KubeError, ValueError):
    """The caller asked for something impossible; raised before any request is sent."""


class FeatureUnavailable(UsageError):
    """The server's version does not offer what was asked (``feature``, ``needs``: the
    release that does, ``server``: the server's version), refused before sending it."""

    def __init__(self, message: str, *, feature: str = "", needs: str = "", server: str = ""):
        self.feature = feature
        self.needs = needs
        self.server = server
        super().__init__(message)

    def __reduce__(self) -> Any:
        return (_rebuild_feature, (str(self), self.feature, self.needs, self.server))


def _rebuild_feature(message: str, feature: str, needs: str, server: str) -> FeatureUnavailable:
    return FeatureUnavailable(message, feature=feature, needs=needs, server=server)


class DecodeError(KubeError, ValueError):
    """JSON from the server (or the caller) does not fit the model.

    ``kind`` is the model's kind, ``path`` the field path (``spec.containers[0].ports``).
    """

    def __init__(self, message: str, *, kind: Optional[str] = None, path: str = ""):
        self.message = message
        self.kind = kind
        self.path = path
        where = " at ".join(p for p in (kind, path) if p)
        super().__init__(f"{where}: {message}" if where else message)


@attrs.define(frozen=True)
class StatusCause:
    """One cause of a failed request (for ``Invalid``: the field and what is wrong with it)."""

    reason: Optional[str] = None
    message: Optional[str] = None
    field: Optional[str] = None

    def __str__(self) -> str:
        head = f"{self.field}: " if self.field else ""
        return f"{head}{self.message or self.reason or ''}"


_CAUSE_KEYS = ("reason", "message", "field")
# StatusDetails field -> its JSON name, for the string-valued fields.
_DETAIL_KEYS = {"name": "name", "group": "group", "kind": "kind", "uid": "uid"}


def _causes_of(raw: Any) -> Optional[Tuple[StatusCause, ...]]:
    """``details.causes`` as typed causes, or None if it holds anything they cannot keep."""
    if not isinstance(raw, list):
        return None
    causes: List[StatusCause] = []
    for c in raw:
        if not isinstance(c, Mapping) or not all(
            k in _CAUSE_KEYS and isinstance(v, str) for k, v in c.items()
        ):
            return None
        causes.append(StatusCause(c.get("reason"), c.get("message"), c.get("field")))
    return tuple(causes)


@attrs.define(frozen=True)
class StatusDetails:
    """``Status.details``: which object the failure is about, and why.

    ``extra`` keeps what the typed fields cannot hold (keys a newer server adds, values
    of an unexpected type), so ``to_dict()`` gives back exactly what the server sent.
    See https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/
    """

    name: Optional[str] = None
    group: Optional[str] = None
    kind: Optional[str] = None
    uid: Optional[str] = None
    causes: Tuple[StatusCause, ...] = ()
    retry_after_seconds: Optional[int] = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StatusDetails:
        extra = dict(d)
        typed: Dict[str, Any] = {}
        for attr, key in _DETAIL_KEYS.items():
            if isinstance(extra.get(key), str):
                typed[attr] = extra.pop(key)
        seconds = extra.get("retryAfterSeconds")
        if isinstance(seconds, int) and not isinstance(seconds, bool):
            typed["retry_after_seconds"] = extra.pop("retryAfterSeconds")
        causes = _causes_of(extra.get("causes"))
        if causes is not None:
            typed["causes"] = causes
            del extra["causes"]
        return cls(**typed, extra=extra)

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            key: getattr(self, attr)
            for attr, key in _DETAIL_KEYS.items()
            if getattr(self, attr) is not None
        }
        if self.causes:
            out["causes"] = [
                {k: getattr(c, k) for k in _CAUSE_KEYS if getattr(c, k) is not None}
                for c in self.causes
            ]
        if self.retry_after_seconds is not None:
            out["retryAfterSeconds"] = self.retry_after_seconds
        out.update(self.extra)
        return out

    # Status.details was a plain dict before it was typed: reads by JSON key keep working
    # for one release, with a warning.
    def __getitem__(self, key: str) -> Any:
        warnings.warn(
            "Status.details is a StatusDetails now: read its attributes "
            "(details.name, details.causes, ...) instead of keys",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        """Deprecated: read the attributes instead (``details.name``)."""
        try:
            return self[key]
        except KeyError:
            return default


def _to_details(value: Any) -> StatusDetails:
    if isinstance(value, StatusDetails):
        return value
    return StatusDetails.from_dict(value if isinstance(value, Mapping) else {})


@attrs.define(frozen=True)
class Status:
    """The ``meta/v1 Status`` a server returns for a failed call (and for some deletes).

    ``details`` accepts a ``StatusDetails`` or its JSON mapping.
    """

    code: int = 0
    reason: str = ""
    message: str = ""
    status: str = ""
    details: StatusDetails = attrs.field(factory=StatusDetails, converter=_to_details)

    @property
    def causes(self) -> Tuple[StatusCause, ...]:
        """``details.causes``."""
        return self.details.causes

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, code: int = 0) -> Status:
        raw_code = d.get("code")
        return cls(
            code=raw_code if isinstance(raw_code, int) else code,
            reason=str(d.get("reason") or ""),
            message=str(d.get("message") or ""),
            status=str(d.get("status") or ""),
            details=_to_details(d.get("details")),
        )

    def to_dict(self) -> Dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "status": self.status,
            "message": self.message,
            "reason": self.reason,
            "details": self.details.to_dict(),
            "code": self.code,
        }


class ApiError(KubeError):
    """The server answered with an error status. ``status`` holds the decoded ``Status``.

    ``method`` and ``url`` say which call failed (the URL carries no credentials);
    ``headers`` are the response's headers (``Audit-Id`` helps the cluster admin);
    ``retry_after`` is the server's advised wait in seconds (``Retry-After`` or
    ``details.retryAfterSeconds``), or None.
    """

    def __init__(
        self,
        status: Status,
        *,
        method: Optional[str] = None,
        url: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
        retry_after: Optional[float] = None,
    ):
        self.status = status
        self.method = method
        self.url = url
        self.headers: Mapping[str, str] = dict(headers or {})
        if retry_after is None and status.details.retry_after_seconds is not None:
            retry_after = float(status.details.retry_after_seconds)
        self.retry_after = retry_after
        super().__init__(self._text())

    @property
    def code(self) -> int:
        return self.status.code

    @property
    def reason(self) -> str:
        return self.status.reason

    @property
    def message(self) -> str:
        return self.status.message

    @property
    def causes(self) -> Tuple[StatusCause, ...]:
        return self.status.causes

    def _text(self) -> str:
        head = f"{self.status.code} {self.status.reason}".strip()
        where = f" ({self.method} {self.url})" if self.method and self.url else ""
        return f"{head}: {self.status.message}{where}"

    def __reduce__(self) -> Any:
        return (
            _rebuild_api_error,
            (type(self), self.status, self.method, self.url, self.headers, self.retry_after),
        )


def _rebuild_api_error(
    cls: Type[ApiError],
    status: Status,
    method: Optional[str],
    url: Optional[str],
    headers: Optional[Mapping[str, str]] = None,
    retry_after: Optional[float] = None,
) -> ApiError:
    return cls(status, method=method, url=url, headers=headers, retry_after=retry_after)


class BadRequest(ApiError):
    """400: the request was malformed (also a JSON patch whose ``test`` op failed)."""


class Unauthorized(ApiError):
    """401: the credentials were missing, wrong or expired."""


class Forbidden(ApiError):
    """403: authenticated, but RBAC (or admission) does not allow the call."""


class NotFound(ApiError, LookupError):
    """404: the object, or its kind, does not exist."""


class MethodNotAllowed(ApiError):
    """405: the resource does not support this verb."""


class Conflict(ApiError):
    """409: a stale resourceVersion, or a server-side apply field conflict."""


class AlreadyExists(Conflict):
    """409 with reason ``AlreadyExists``: create of a name that is taken."""


class Gone(ApiError):
    """410: the resourceVersion is too old (compacted); relist."""


class UnprocessableBody(ApiError):
    """422 without reason ``Invalid``."""


class Invalid(UnprocessableBody):
    """422 ``Invalid``: the object failed validation; ``causes`` name the fields."""

    def _text(self) -> str:
        base = super()._text()
        # The server usually writes the causes into the message too: add only the rest.
        missing = [str(c) for c in self.status.causes if str(c) not in self.status.message]
        return "; ".join([base, *missing])


class TooManyRequests(ApiError):
    """429: throttled (API priority and fairness, or an eviction blocked by a budget)."""


class ServerError(ApiError):
    """5xx: the server failed."""


_BY_CODE: Dict[int, Type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    410: Gone,
    422: UnprocessableBody,
    429: TooManyRequests,
}


def error_for_status(
    status: Status,
    *,
    method: Optional[str] = None,
    url: Optional[str] = None,
    headers: Optional[Mapping[str, str]] = None,
    retry_after: Optional[float] = None,
) -> ApiError:
    """The ``ApiError`` subclass that fits ``status`` (by code, refined by reason)."""
    cls: Type[ApiError]
    if status.code == 409 and status.reason == "AlreadyExists":
        cls = AlreadyExists
    elif status.code == 422 and status.reason == "Invalid":
        cls = Invalid
    elif status.code >= 500:
        cls = ServerError
    else:
        cls = _BY_CODE.get(status.code, ApiError)
    return cls(status, method=method, url=url, headers=headers, retry_after=retry_after)


class TransportError(KubeError):
    """The request got no usable HTTP answer (connection, TLS, timeout, broken stream)."""

    def __init__(self, message: str, *, method: Optional[str] = None, url: Optional[str] = None):
        self.method = method
        self.url = url
        where = f" ({method} {url})" if method and url else ""
        super().__init__(f"{message}{where}")


class ConnectError(TransportError):
    """The connection could not be made (refused, DNS, TLS handshake, proxy)."""


class RequestTimeout(TransportError, builtins.TimeoutError):
    """A connect or read timeout passed without an answer.

    Also the builtin ``TimeoutError``, as ``WaitTimeout`` is: ``except TimeoutError``
    catches every kind of timeout kubesync raises.
    """


class ConnectTimeout(ConnectError, RequestTimeout):
    """The connection was not made in time (so the request was never sent)."""


class TLSError(ConnectError):
    """The TLS handshake failed: an untrusted or mismatched server certificate, or a
    client certificate the server refused. Retrying does not help."""



class ProtocolError(TransportError):
    """A stream broke its protocol: a WebSocket message on an unknown channel, one without
    a channel byte, or an exec stream that ended without its exit status."""


class ExecError(KubeError):
    """A command run in a container failed: it exited non-zero (``exec(check=True)``), or
    it could not be run at all (``returncode`` None: no such command, container gone).

    ``command`` is the command, ``stdout``/``stderr`` what it printed (bytes), ``status``
    the ``Status`` the server sent on the error channel.
    """

    def __init__(
        self,
        message: str,
        *,
        command: Tuple[str, ...],
        returncode: Optional[int],
        stdout: bytes = b"",
        stderr: bytes = b"",
        status: Optional[Status] = None,
    ):
        self.command = tuple(command)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.status = status
        super().__init__(_with_stderr(message, stderr))
        self.message = message

    def __reduce__(self) -> Any:
        return (_rebuild_exec_error, (self.message, self.command, self.returncode,
                                      self.stdout, self.stderr, self.status))


#: How much of a failed command's stderr goes into the ExecError message (the end of it).
ERROR_STDERR_TAIL = 1000


def _with_stderr(message: str, stderr: bytes) -> str:
    """``message`` and the end of a command's ``stderr``, where it usually says why."""
    tail = stderr.decode("utf-8", "replace").strip()[-ERROR_STDERR_TAIL:]
    return f"{message}\nstderr: {tail}" if tail else message


def _rebuild_exec_error(message: str, command: Tuple[str, ...], returncode: Optional[int],
                        stdout: bytes, stderr: bytes, status: Optional[Status]) -> ExecError:
    return ExecError(message, command=command, returncode=returncode, stdout=stdout,
                     stderr=stderr, status=status)


class PortForwardError(KubeError):
    """The pod's side of a port-forward failed (nothing listening on ``port``, the pod
    gone): the server's text from the port's error channel, for that connection only."""

    def __init__(self, message: str, *, pod: str, port: int):
        self.pod = pod
        self.port = port
        self.message = message
        super().__init__(f"port-forward to port {port} of pod {pod} failed: {message}")

    def __reduce__(self) -> Any:
        return (_rebuild_port_forward_error, (self.message, self.pod, self.port))


def _rebuild_port_forward_error(message: str, pod: str, port: int) -> PortForwardError:
    return PortForwardError(message, pod=pod, port=port)


class CopyError(KubeError):
    """Copying files to or from a container failed.

    Either ``tar`` in the container failed or could not run (``returncode`` its exit code,
    None when it never ran; ``stderr`` what it printed), or the archive it sent was
    refused (``member``: the name in the archive) because extracting it would write
    outside the destination or make something other than files, folders and links.
    """

    def __init__(
        self,
        message: str,
        *,
        member: Optional[str] = None,
        returncode: Optional[int] = None,
        stderr: bytes = b"",
    ):
        self.member = member
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(_with_stderr(message, stderr))
        self.message = message

    def __reduce__(self) -> Any:
        return (_rebuild_copy_error, (self.message, self.member, self.returncode, self.stderr))


def _rebuild_copy_error(message: str, member: Optional[str], returncode: Optional[int],
                        stderr: bytes) -> CopyError:
    return CopyError(message, member=member, returncode=returncode, stderr=stderr)


# Old names kept for one release; each use warns.
_DEPRECATED = {"TimeoutError": ("RequestTimeout", RequestTimeout)}


def __getattr__(name: str) -> Any:
    if name in _DEPRECATED:
        new, value = _DEPRECATED[name]
        warnings.warn(f"kubesync.errors.{name} is deprecated (it shadows the builtin): "
                      f"use kubesync.errors.{new}", DeprecationWarning, stacklevel=2)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
