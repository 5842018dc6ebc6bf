"""``Client``: one shared connection pool to one API server, with auth, retries and streams."""

from __future__ import annotations

import logging
import random
import sys
import threading
import warnings
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    Type,
    TypeVar,
    Union,
)
from urllib.parse import quote

import attrs

from kubesync._version import __version__
from kubesync.client import fork, wstransport
from kubesync.client.features import Feature, ServerVersion
from kubesync.client.transport import Response, Timeout, Transport
from kubesync.client.wstransport import WebSocket
from kubesync.config import tls
from kubesync.config.auth import Credentials
from kubesync.config.config import Config, Impersonation
from kubesync.core import json
from kubesync.core.backoff import CLIENT_RETRY, Backoff
from kubesync.core.clock import SYSTEM_CLOCK
from kubesync.core.forkgate import import_module
from kubesync.core.jsonstream import ItemConverter
from kubesync.core.request import Request
from kubesync.core.resource import ApiResource
from kubesync.errors import (
    ApiError,
    ConnectError,
    FeatureUnavailable,
    InsecureTLSWarning,
    KubeError,
    KubeWarning,
    RequestTimeout,
    TLSError,
    TransportError,
    UsageError,
)

if TYPE_CHECKING:
    from kubesync.client.discovery import Discovery

__all__ = ["Client", "LineStream", "RetryPolicy"]

logger = logging.getLogger("kubesync.client")

# Connect within 10 s (client-go's dialer allows 30 s, but a script should fail sooner);
# read 60 s, the API server's own limit for a non-watch request (--request-timeout).
DEFAULT_TIMEOUT: Tuple[float, float] = (10.0, 60.0)
# A watch ends server-side after its timeoutSeconds; the read timeout adds this margin.
WATCH_TIMEOUT_MARGIN = 30.0
# Streams without timeoutSeconds (a followed log; a watch left to the server's default of
# at most 2 x 30 min --min-request-timeout) may be quiet for long, but not forever.
STREAM_READ_TIMEOUT = 3600.0 + WATCH_TIMEOUT_MARGIN
# Connections kept per pool: enough for the runtime's default worker and watch threads
# (kept below urllib3's "pool is full" warning with 32 threads sharing a Client).
DEFAULT_POOL_MAXSIZE = 32
DEFAULT_RETRIES = 3
# Distinct server warnings remembered per client for de-duplication.
WARNINGS_REMEMBERED = 1024

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_NO_CREDENTIALS = Credentials()
_HEADER_TOKEN_SAFE = "!#$&'*+-.^_`|~"  # RFC 7230 tchar besides letters and digits

Params = Optional[Mapping[str, Any]]


@attrs.define(frozen=True)
class RetryPolicy:
    """When to retry a failed call, and how long to wait first.

    Reads (GET/HEAD, so also a watch's start) are retried on connection errors, 429 and
    500/502/503/504; writes only when the request was never sent (connect error) or on
    429 with Retry-After. Waits double from ``backoff_base`` up to ``backoff_cap`` with
    jitter (half fixed, half random, so a thundering herd spreads out); a server's
    Retry-After is honoured up to ``retry_after_cap``. ``sleep``/``random`` are for tests.
    """

    retries: int = DEFAULT_RETRIES
    backoff_base: float = CLIENT_RETRY.initial
    backoff_cap: float = CLIENT_RETRY.maximum
    retry_after_cap: float = 60.0
    sleep: Callable[[float], None] = attrs.field(default=SYSTEM_CLOCK.sleep, eq=False, repr=False)
    random: Callable[[], float] = attrs.field(default=random.random, eq=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """The jittered wait before retry number ``attempt + 1``."""
        if self.backoff_base <= 0:
            return 0.0
        policy = Backoff(initial=self.backoff_base,
                         maximum=max(self.backoff_cap, self.backoff_base),
                         jitter=CLIENT_RETRY.jitter)
        return policy.delay(attempt, self.random())

    def delay(self, attempt: int, method: str, error: KubeError) -> Optional[float]:
        """Seconds to wait before retrying after ``error``, or None to give up."""
        if attempt >= self.retries:
            return None
        read = method.upper() in READ_METHODS
        if isinstance(error, TLSError):
            return None  # a certificate problem does not heal
        if isinstance(error, ConnectError):
            return self.backoff(attempt)  # never sent: safe for any method
        if isinstance(error, TransportError):
            # A dropped connection may have delivered the request; a read timeout already
            # waited the full read timeout. Retry only the first, and only for reads.
            if read and not isinstance(error, RequestTimeout):
                return self.backoff(attempt)
            return None
        if not isinstance(error, ApiError) or error.code not in RETRY_STATUSES:
            return None
        if error.retry_after is not None and (read or error.code == 429):
            return min(error.retry_after, self.retry_after_cap)
        return self.backoff(attempt) if read else None


_Self = TypeVar("_Self", bound="_ClosedOnExit")
_T = TypeVar("_T")


class _ClosedOnExit:
    """``with obj:`` calls ``obj.close()`` on the way out."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()


class LineStream(_ClosedOnExit):
    """The lines of a streaming answer (a watch, a followed log), as bytes without ``\\n``.

    Iterate it; use it as a context manager (closing on exit). ``close()`` may be called
    from any thread: a reader blocked waiting for the next line then stops at once and
    its loop ends (no exception). Transport failures mid-stream raise ``TransportError``.
    """

    def __init__(self, response: Response):
        self._response = response
        self._lines = response.iter_lines()
        self._closed = False

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._closed:
            raise StopIteration
        return next(self._lines)

    def close(self) -> None:
        """Close the response; safe from another thread, and more than once."""
        self._closed = True
        self._response.interrupt()


class Client(_ClosedOnExit):
    """A connection to one API server, built from a ``Config``.

    It sends ``Request`` values (``send``, ``send_text``, ``send_lines``), which ``Api``
    builds; ``request``, ``request_text`` and ``stream_lines`` take the same by method and
    path. Thread-safety: one ``Client`` is meant to be shared. All of these may be called
    from any number of threads at once; they share one ``requests.Session`` whose pool
    keeps ``pool_maxsize`` connections (more threads than that still work, but open extra
    connections). Credential refreshes (token files, exec
    plugins) are locked, so a plugin runs once however many threads need it. ``close()``
    is for when no other thread uses the client any more.

    Fork-safe: in a child forked from the process (gunicorn workers, multiprocessing's
    ``fork``), the client drops the parent's pooled connections and opens its own, so the
    two processes never share a TLS connection, and closing it in the child leaves the
    parent's connections alone.

    Every call has a timeout (``timeout``: seconds, or (connect, read)); failed calls are
    retried by ``retries`` (a count, or a ``RetryPolicy``). Errors are ``ApiError``
    subclasses (the server said no) or ``TransportError`` subclasses (no answer).
    """

    def __init__(
        self,
        config: Config,
        *,
        timeout: Timeout = DEFAULT_TIMEOUT,
        retries: Union[int, RetryPolicy] = DEFAULT_RETRIES,
        pool_maxsize: int = DEFAULT_POOL_MAXSIZE,
    ):
        self._config = config
        self._timeout = _pair(timeout)
        self._retry = retries if isinstance(retries, RetryPolicy) else RetryPolicy(retries)
        self._lock = threading.Lock()
        self._warned: Set[str] = set()
        self._cert_in_use = config.client_cert
        self._ca_pem = config.ca_pem
        self._ca_file = tls.CaFile(config.ca_file, config.ca_pem) if config.ca_file else None
        self._closed = False
        fork.register(self)
        self._version: Optional[ServerVersion] = None
        self._discovery: Optional[Discovery] = None
        if config.insecure_skip_tls_verify:
            text = (
                f"TLS verification is off for {config.server} (insecure-skip-tls-verify in "
                f"{config.source or 'the config'}): the server's identity is not checked"
            )
            logger.warning("%s", text)
            warnings.warn(InsecureTLSWarning(text), stacklevel=_caller_stacklevel())
        self._headers, self._multi_headers = _impersonation_headers(config.impersonate)
        self._transport = Transport(
            base_url=config.server,
            ssl_context=self._ssl_context(config.client_cert),
            insecure=config.insecure_skip_tls_verify,
            server_hostname=config.tls_server_name,
            proxy_url=config.proxy_url,
            pool_maxsize=pool_maxsize,
            headers={
                "User-Agent": f"kubesync/{__version__}",
                "Accept": "application/json",
                "Accept-Encoding": "identity" if config.disable_compression else "gzip",
            },
        )

    @classmethod
    def from_config(cls, config: Optional[Config] = None, **options: Any) -> Client:
        """A client for ``config``, or for ``Config.infer()`` when None."""
        if config is not None and not isinstance(config, Config):
            raise TypeError(
                f"Client.from_config takes a Config, not {type(config).__name__}: for a "
                "kubeconfig file use Config.from_kubeconfig(path)")
        return cls(Config.infer() if config is None else config, **options)

    @property
    def config(self) -> Config:
        return self._config

    @property
    def default_namespace(self) -> str:
        """The namespace of the config's context (``default`` if it names none)."""
        return self._config.namespace

    # -- what the server offers ----------------------------------------------------------

    def server_version(self, *, refresh: bool = False) -> ServerVersion:
        """The server's ``/version`` (read once, then cached; ``refresh`` reads again)."""
        version = self._version
        if version is None or refresh:
            data = self.request("GET", "/version")
            version = ServerVersion.from_dict(data if isinstance(data, Mapping) else {})
            self._version = version
        return version

    def supports(self, feature: Feature) -> bool:
        """Whether the server offers ``feature`` by default, judged by its version (one
        cached ``/version`` read); see ``kubesync.client.features``."""
        return self.server_version().supports(feature)

    def require(self, feature: Feature, what: str) -> None:
        """Raise ``FeatureUnavailable`` naming ``what`` needs ``feature`` unless the server
        offers it: a clear error before a request an old server would drop or refuse."""
        version = self.server_version()
        if not version.supports(feature):
            raise FeatureUnavailable(
                f"{what} needs Kubernetes {feature.release} or later ({feature.name}); "
                f"the server at {self._config.server} is {version}",
                feature=feature.name, needs=feature.release, server=str(version),
            )

    @property
    def discovery(self) -> Discovery:
        """This client's shared ``Discovery`` (aggregated when the server offers it),
        read on first use and cached; ``resolve``, dynamic Apis and ``manifests.apply``
        use it."""
        found = self._discovery
        if found is None:
            import_module("kubesync.client.discovery")  # through the fork gate, then:
            from kubesync.client.discovery import Discovery

            with self._lock:
                if self._discovery is None:
                    self._discovery = Discovery(self)
                found = self._discovery
        return found

    def resolve(self, name: str) -> ApiResource:
        """The resource a user means by ``name`` (``deploy``, ``deployments.apps``,
        ``apps/v1/deployments``...): ``self.discovery.resolve(name)``."""
        return self.discovery.resolve(name)

    # -- sending a Request -----------------------------------------------------------------

    def send(self, request: Request, *, timeout: Optional[Timeout] = None,
             converter: Optional[ItemConverter] = None) -> Any:
        """Send ``request`` and decode the JSON answer (None for an empty body).

        Failed calls are retried as ``retries`` says; a refused call raises its
        ``ApiError``, a call that got no answer its ``TransportError``. With
        ``converter``, a LIST answer's items are also converted while the rest of it
        arrives: see ``kubesync.core.jsonstream.ItemConverter`` (the answer returned is
        plain JSON all the same).
        """
        # The body is read (and a LIST's items parsed as they arrive) inside the attempt,
        # so a connection lost mid-body is retried as a lost request is.
        return self._send(request, timeout, stream=False, read_json=True,
                          converter=converter).json()

    def send_text(self, request: Request, *, timeout: Optional[Timeout] = None) -> str:
        """Send ``request`` and return the answer as text (e.g. a pod's log)."""
        response = self._send(request, timeout, stream=False, accept=_ACCEPT_ANY)
        return response.content().decode("utf-8", "replace")

    def send_lines(self, request: Request, *, timeout: Optional[Timeout] = None,
                   read_timeout: Optional[float] = None) -> LineStream:
        """Send a streaming ``request`` (a watch, ``follow`` logs); its ``LineStream``.

        Use it as ``with client.send_lines(req) as lines: for line in lines: ...``. The
        read timeout defaults to the ``timeoutSeconds`` query value plus a margin, so a
        quiet watch is not cut before the server ends it. Errors before the first byte
        (status, connection) raise here, after retries as for GET. ``read_timeout`` sets
        only the wait for the next byte (the connect timeout stays the client's): a watch
        uses it as an idle timeout.
        """
        pair = self._stream_timeout(request.query, timeout)
        if read_timeout is not None and timeout is None:
            pair = (pair[0], float(read_timeout))
        return LineStream(self._send(request, pair, stream=True, accept=_ACCEPT_ANY))

    # -- the same, by method and path -------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        body: Any = None,
        content_type: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[Timeout] = None,
    ) -> Any:
        """Call ``path`` (absolute, e.g. ``/api/v1/namespaces``) and decode the JSON answer.

        ``body`` is bytes (sent as is) or a JSON-able value (a ``str`` is encoded as a JSON
        string); ``content_type`` defaults to ``application/json``. Returns None for an
        empty body. The same as ``send(Request(...))``.
        """
        req = _request(method, path, params, body, content_type, headers)
        return self.send(req, timeout=timeout)

    def request_text(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        timeout: Optional[Timeout] = None,
    ) -> str:
        """Call ``path`` and return the answer as text; ``send_text(Request(...))``."""
        return self.send_text(_request(method, path, params), timeout=timeout)

    def stream_lines(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[Timeout] = None,
    ) -> LineStream:
        """Start a streaming call and return its ``LineStream``; ``send_lines(Request(...))``."""
        req = _request(method, path, params, headers=headers)
        return self.send_lines(req, timeout=timeout)

    def close(self) -> None:
        """Close all pooled connections; further calls raise ``UsageError``."""
        self._closed = True
        self._transport.close()

    def __repr__(self) -> str:
        c = self._config
        return f"Client(server={c.server!r}, context={c.context!r}, auth={c.auth!r})"

    def _after_fork_in_child(self) -> None:
        """A forked child gets its own connections (never the parent's TLS sockets) and
        fresh locks; the parent's connections are left to the parent, untouched."""
        self._lock = threading.Lock()
        # The TLS context is kept: no handshake of the parent's was under way at the fork
        # (core/forkgate.py), so none of its locks is held; building a new one here
        # could hang on an OpenSSL lock of a thread that is not ours.
        self._transport.after_fork_in_child()
        if self._config.auth is not None:
            self._config.auth.after_fork_in_child()

    # -- internals ---------------------------------------------------------------------

    def _send(
        self,
        req: Request,
        timeout: Optional[Timeout],
        *,
        stream: bool,
        accept: Optional[Mapping[str, str]] = None,
        read_json: bool = False,
        converter: Optional[ItemConverter] = None,
    ) -> Response:
        """The one place a request goes out: headers, body, auth, retries. The answer's
        body is read unless ``stream``; with ``read_json``, decoded (``Response.json``)."""
        method, url, request_headers = self._prepare(req)
        data: Optional[bytes] = None
        body = req.body
        if body is not None:
            data = bytes(body) if isinstance(body, (bytes, bytearray)) else json.dumps(body)
            request_headers["Content-Type"] = req.content_type or "application/json"
        request_headers.update(accept or {})
        request_headers.update(req.headers)
        query = _query(req.query)

        def attempt(creds: Credentials) -> Response:
            response = self._transport.send(
                method,
                url,
                params=query,
                body=data,
                headers={**request_headers, **creds.headers},
                multi_headers=self._multi_headers,
                timeout=self._timeout if timeout is None else _pair(timeout),
                stream=stream or read_json,
            )
            logger.debug("%s %s -> %d", method, url, response.status)
            try:
                self._report_warnings(response)  # may raise (warnings as errors)
                if not response.ok:
                    raise response.error()
                if read_json:
                    response.json(converter)
            except BaseException:
                response.close()  # the body unread: the connection must not stay out
                raise
            return response

        return self._with_credentials(method, url, attempt, retry_as=method)

    def send_websocket(
        self,
        request: Request,
        *,
        subprotocols: Sequence[str],
        timeout: Optional[Timeout] = None,
    ) -> WebSocket:
        """Open a WebSocket for ``request`` (a GET: exec, attach, port-forward).

        The same TLS context, credentials (refreshed once after a 401), impersonation
        headers and proxy as every other call. The upgrade is retried only when it was
        never sent (a connect error) or on 429: running a command twice is not safe. A
        refused upgrade raises its ``ApiError`` (``Forbidden``, ``NotFound``...).
        """
        method, url, request_headers = self._prepare(request)
        request_headers.update(request.headers)
        full_url = self._transport.url_with_query(url, _query(request.query))
        pair = self._timeout if timeout is None else _pair(timeout)

        def attempt(creds: Credentials) -> WebSocket:
            headers = {"User-Agent": self._transport.user_agent, **request_headers,
                       **creds.headers}
            ws = wstransport.connect(
                full_url,
                ssl_context=self._transport.ssl_context,
                server_hostname=self._transport.server_hostname,
                proxy_url=self._transport.proxy_for(url),
                headers=[*headers.items(), *self._multi_headers],
                subprotocols=subprotocols,
                timeout=pair,
            )
            logger.debug("%s %s -> 101 (%s)", method, url, ws.subprotocol)
            return ws

        return self._with_credentials(method, url, attempt, retry_as="POST")

    def _prepare(self, req: Request) -> Tuple[str, str, Dict[str, str]]:
        """The method, URL and base headers of ``req`` (checked: open client, API path)."""
        if self._closed:
            raise UsageError("the client is closed")
        path = req.path
        if not path.startswith("/"):
            raise UsageError(f"path must be an absolute API path starting with '/': {path!r}")
        return req.method.upper(), self._config.server + path, dict(self._headers)

    def _with_credentials(
        self, method: str, url: str, attempt: Callable[[Credentials], _T], *, retry_as: str
    ) -> _T:
        """``attempt(credentials)`` until it succeeds: once more with refreshed credentials
        after a 401, and again as the retry policy allows for a ``retry_as`` call."""
        attempt_no, refreshed = 0, False
        if self._ca_file is not None:
            self._reload_ca()
        while True:
            creds = self._credentials()
            error: KubeError
            try:
                return attempt(creds)
            except (ApiError, TransportError) as exc:
                error = exc
            auth = self._config.auth
            if isinstance(error, ApiError) and error.code == 401 and auth is not None \
                    and not refreshed:
                refreshed = True  # once: fresh credentials, then the same call again
                if auth.refresh(creds):
                    logger.info("%s %s: 401, retrying with refreshed credentials", method, url)
                    continue
            delay = self._retry.delay(attempt_no, retry_as, error)
            if delay is None:
                raise error
            attempt_no += 1
            logger.info(
                "%s %s failed (%s); retry %d of %d in %.2f s",
                method,
                url,
                error,
                attempt_no,
                self._retry.retries,
                delay,
            )
            self._retry.sleep(delay)

    def _credentials(self) -> Credentials:
        auth = self._config.auth
        if auth is None:
            return _NO_CREDENTIALS
        creds = auth.credentials()
        cert = creds.client_cert
        if cert is not None and cert != self._cert_in_use:
            with self._lock:  # an exec plugin handed out a (new) client certificate
                if cert != self._cert_in_use:
                    self._transport.set_ssl_context(self._ssl_context(cert))
                    self._cert_in_use = cert
        return creds

    def _reload_ca(self) -> None:
        """Trust a rotated CA file's new contents for new connections."""
        assert self._ca_file is not None
        pem = self._ca_file.changed()
        if pem is not None:
            with self._lock:
                self._ca_pem = pem
                self._transport.set_ssl_context(self._ssl_context(self._cert_in_use))

    def _ssl_context(self, cert: Optional[tls.ClientCert]) -> Any:
        c = self._config
        return tls.ssl_context(
            ca_pem=self._ca_pem,
            client_cert=cert,
            insecure=c.insecure_skip_tls_verify,
            source=c.source,
            public_roots=not c.server.lower().startswith("http://"),
        )

    def _report_warnings(self, response: Response) -> None:
        for text in response.warnings():
            with self._lock:
                if text in self._warned:
                    continue
                if len(self._warned) < WARNINGS_REMEMBERED:
                    self._warned.add(text)
            logger.warning("server warning: %s", text)
            warnings.warn(KubeWarning(text), stacklevel=_caller_stacklevel())

    def _stream_timeout(self, params: Params, timeout: Optional[Timeout]
                        ) -> Tuple[float, float]:
        if timeout is not None:
            return _pair(timeout)
        server_side: Any = (params or {}).get("timeoutSeconds")
        try:
            read = float(server_side) + WATCH_TIMEOUT_MARGIN
        except (TypeError, ValueError):
            read = STREAM_READ_TIMEOUT
        return (self._timeout[0], read)


_ACCEPT_ANY = {"Accept": "application/json, */*"}


def _caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside kubesync."""
    frame = sys._getframe(1)  # the function about to call warnings.warn
    level = 1
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith("kubesync"):
        frame = frame.f_back
        level += 1
    return level


def _request(
    method: str,
    path: str,
    params: Params,
    body: Any = None,
    content_type: Optional[str] = None,
    headers: Optional[Mapping[str, str]] = None,
) -> Request:
    """A ``Request`` from the keyword form of ``request``/``request_text``/``stream_lines``."""
    return Request(method, path, params or {}, body, content_type, extra_headers=headers or {})


def _pair(timeout: Timeout) -> Tuple[float, float]:
    if isinstance(timeout, tuple):
        return (float(timeout[0]), float(timeout[1]))
    return (float(timeout), float(timeout))


def _query(params: Params) -> List[Tuple[str, str]]:
    """Query pairs: None dropped, booleans as ``true``/``false``, lists repeated."""
    out: List[Tuple[str, str]] = []
    for key, value in (params or {}).items():
        values: Sequence[Any] = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if v is None:
                continue
            out.append((key, ("true" if v else "false") if isinstance(v, bool) else str(v)))
    return out


def _impersonation_headers(
    imp: Optional[Impersonation],
) -> Tuple[Dict[str, str], List[Tuple[str, str]]]:
    """Impersonate-* headers: single-valued ones, and those that repeat per value."""
    if imp is None:
        return {}, []
    single: Dict[str, str] = {}
    if imp.user:
        single["Impersonate-User"] = imp.user
    if imp.uid:
        single["Impersonate-Uid"] = imp.uid
    multi = [("Impersonate-Group", g) for g in imp.groups]
    for key, values in imp.extra.items():
        name = "Impersonate-Extra-" + quote(key, safe=_HEADER_TOKEN_SAFE)
        multi.extend((name, v) for v in values)
    return single, multi
