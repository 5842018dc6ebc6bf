"""The only module that calls requests: one Session, TLS, and the mapping of every failure.

Every requests/urllib3 exception becomes a ``TransportError`` (``ConnectError``,
``TLSError``, ``RequestTimeout``, ...) here, and every error status an ``ApiError`` subclass,
so nothing of requests reaches a user. Trust comes only from the ``ssl.SSLContext`` built
from the kubeconfig: ``trust_env`` is off (``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` and
``.netrc`` are ignored) and proxies from ``HTTPS_PROXY``/``NO_PROXY`` are looked up here
unless the kubeconfig sets ``proxy-url``.
"""

from __future__ import annotations

import contextlib
import email.utils
import http
import http.cookiejar
import re
import socket
import ssl
import threading
import time
from typing import (
    Any,
    ContextManager,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import requests
import requests.adapters
import requests.exceptions
import requests.utils
import urllib3
import urllib3.connection
import urllib3.exceptions
from urllib3._collections import HTTPHeaderDict  # urllib3.HTTPHeaderDict only from 2.0

from kubesync.client.gcpause import LARGE_BODY, gc_paused
from kubesync.client.inflate import BLOCK, InflateError, inflated
from kubesync.config.urls import mask_userinfo
from kubesync.core import json
from kubesync.core.jsonstream import BodyDecoder, ItemConverter
from kubesync.errors import (
    ApiError,
    ConnectError,
    ConnectTimeout,
    DecodeError,
    RequestTimeout,
    Status,
    TLSError,
    TransportError,
    error_for_status,
)

__all__ = ["Response", "Timeout", "Transport"]

Timeout = Union[float, Tuple[float, float]]

# Pools per adapter: one per (host, TLS settings); a second appears when an exec plugin
# hands out a new client certificate, so a few slots avoid churning live connections.
POOLS = 4
# How much of a non-Status error body goes into the error message.
ERROR_BODY_SNIPPET = 500

#: TCP keepalive on every connection, as client-go's dialer sets it (30 s): the kernel probes
#: an idle connection after 30 s, every 10 s, and gives up after 3 unanswered probes, so a
#: watch whose peer vanished (no FIN, no RST) fails in about a minute instead of hanging
#: until its read timeout. Options a platform lacks are left out.
def _keepalive_options() -> List[Tuple[int, int, Any]]:
    from urllib3.connection import HTTPConnection

    opts: List[Tuple[int, int, Any]] = list(HTTPConnection.default_socket_options)
    opts.append((socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1))
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            opts.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    return opts


SOCKET_OPTIONS = _keepalive_options()

#: A body part from this size up is parsed with the cyclic collector paused.
PAUSE_FROM = 64 * 1024
_NOT_PAUSED = contextlib.nullcontext()


def _paused_if(large: bool) -> ContextManager[None]:
    """``gc_paused()`` for work on a large body or part; nothing for a small one."""
    return gc_paused() if large else _NOT_PAUSED


_UNREAD: Any = object()

_FAILURES = (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError)
# One warning in a (possibly comma-joined) Warning header: code agent "text" ["date"].
_WARNING = re.compile(r'\d{3}\s+\S+\s+"((?:[^"\\]|\\.)*)"(?:\s+"[^"]*")?')


class _Connection(urllib3.connection.HTTPSConnection):
    """Marks a TLS error raised while connecting as a handshake failure, so that one on a
    connection already open (a broken record, as when two processes share a socket) is
    told apart from it: the first does not heal, the second does on a new connection."""

    def connect(self) -> None:
        try:
            super().connect()
        except (ssl.SSLError, ssl.CertificateError) as exc:
            exc.kubesync_handshake = True  # type: ignore[attr-defined]
            raise


class _Pool(urllib3.HTTPSConnectionPool):
    """Our connections; no ``InsecureRequestWarning`` per request when verification is
    off on purpose (the ``Client`` warned once, naming the kubeconfig that asked)."""

    ConnectionCls = _Connection

    def _validate_conn(self, conn: Any) -> None:
        if self.cert_reqs != "CERT_NONE":
            super()._validate_conn(conn)
            return
        urllib3.HTTPConnectionPool._validate_conn(self, conn)
        if conn.is_closed:
            conn.connect()


_POOL_CLASSES = {"http": urllib3.HTTPConnectionPool, "https": _Pool}


class _TLSAdapter(requests.adapters.HTTPAdapter):
    """An adapter whose connections use our SSLContext and nothing requests adds to it."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        *,
        insecure: bool,
        server_hostname: Optional[str],
        pool_maxsize: int,
    ):
        self._ssl_context = ssl_context
        self._insecure = insecure
        self._server_hostname = server_hostname
        super().__init__(pool_connections=POOLS, pool_maxsize=pool_maxsize, pool_block=False)

    def tls_kwargs(self) -> Dict[str, Any]:
        kw: Dict[str, Any] = {
            "ssl_context": self._ssl_context,
            "cert_reqs": "CERT_NONE" if self._insecure else "CERT_REQUIRED",
            "socket_options": SOCKET_OPTIONS,
        }
        if self._server_hostname:  # the kubeconfig's tls-server-name: SNI and verification
            kw["server_hostname"] = self._server_hostname
        return kw

    def set_ssl_context(self, ctx: ssl.SSLContext) -> None:
        # The context is part of urllib3's pool key, so new requests get new connections.
        self._ssl_context = ctx

    @property
    def ssl_context(self) -> ssl.SSLContext:
        return self._ssl_context

    @property
    def server_hostname(self) -> Optional[str]:
        return self._server_hostname

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        # Older requests (< 2.32.2) take pool settings from here only.
        kwargs.update(self.tls_kwargs())
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS managers bring their own pools
            manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> Any:  # (host params, pool kwargs); the stubs' TypedDicts are private
        host_params, _ = super().build_connection_pool_key_attributes(request, verify, cert)
        return host_params, self.tls_kwargs()

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        # requests would set ca_certs (certifi or an env bundle) on the pool, which urllib3
        # adds to our context's trust. The context already says whom to trust.
        return None


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """The API server sets no cookies; kubectl keeps none, so neither does the shared Session."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


class Transport:
    """One ``requests.Session`` with our TLS adapter; ``send`` is safe from many threads."""

    def __init__(
        self,
        *,
        base_url: str,
        ssl_context: ssl.SSLContext,
        insecure: bool = False,
        server_hostname: Optional[str] = None,
        proxy_url: Optional[str] = None,
        pool_maxsize: int = 32,
        headers: Optional[Mapping[str, str]] = None,
    ):
        self._settings: Dict[str, Any] = dict(
            insecure=insecure, server_hostname=server_hostname, pool_maxsize=pool_maxsize
        )
        self._headers = dict(headers or {})
        self._adapter, self._session = self._new_session(ssl_context)
        if proxy_url:  # the kubeconfig's proxy wins over the environment, NO_PROXY included
            self.proxies: Dict[str, str] = {"http": proxy_url, "https": proxy_url}
        else:
            self.proxies = dict(requests.utils.get_environ_proxies(base_url))
        self._ssl_lock = threading.Lock()

    def _new_session(self, ctx: ssl.SSLContext) -> Tuple[_TLSAdapter, requests.Session]:
        adapter = _TLSAdapter(ctx, **self._settings)
        session = requests.Session()
        session.trust_env = False
        session.headers.clear()
        session.headers.update(self._headers)
        session.cookies.set_policy(_NoCookies())
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return adapter, session

    def set_ssl_context(self, ctx: ssl.SSLContext) -> None:
        """Use ``ctx`` for new connections (an exec plugin rotated the client certificate)."""
        with self._ssl_lock:
            self._adapter.set_ssl_context(ctx)

    def after_fork_in_child(self) -> None:
        """In a forked child: a new pool, so no TLS connection is shared with the parent.

        The inherited connections are closed here, which only drops this process's file
        descriptors: nothing is sent, and no socket is shut down under the parent. The
        child is single-threaded when this runs, so nothing else holds the old locks.
        The SSL context is kept (a fork never splits a handshake: core/forkgate.py).
        """
        self._ssl_lock = threading.Lock()
        old = self._session
        self._adapter, self._session = self._new_session(self._adapter.ssl_context)
        try:
            old.close()
        except _FAILURES:
            pass

    # -- what a WebSocket (client/wstransport.py) takes from here, so it trusts, names the
    # -- server and goes through the proxy exactly as every request does ----------------

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The context new connections use (the kubeconfig's CA and client certificate)."""
        with self._ssl_lock:
            return self._adapter.ssl_context

    @property
    def server_hostname(self) -> Optional[str]:
        """The kubeconfig's ``tls-server-name`` (SNI and verification), or None."""
        return self._adapter.server_hostname

    @property
    def user_agent(self) -> str:
        return str(self._session.headers.get("User-Agent", ""))

    def proxy_for(self, url: str) -> Optional[str]:
        """The proxy URL a request to ``url`` goes through, or None."""
        return requests.utils.select_proxy(url, self.proxies)

    def url_with_query(self, url: str, params: Sequence[Tuple[str, str]]) -> str:
        """``url`` with ``params`` encoded as every request's query is."""
        prepared = requests.Request("GET", url, params=list(params)).prepare()
        return str(prepared.url)

    def send(
        self,
        method: str,
        url: str,
        *,
        params: Optional[Sequence[Tuple[str, str]]] = None,
        body: Optional[bytes] = None,
        headers: Optional[Mapping[str, str]] = None,
        multi_headers: Sequence[Tuple[str, str]] = (),
        timeout: Timeout,
        stream: bool = False,
    ) -> Response:
        """Send one request; the body is read unless ``stream``. Raises ``TransportError``."""
        try:
            prepared = self._session.prepare_request(
                requests.Request(method, url, params=params, data=body, headers=headers)
            )
            if multi_headers:
                # Impersonate-Group and friends must be separate header lines; requests'
                # header dict holds one value per name, urllib3's can hold several.
                merged = HTTPHeaderDict(dict(prepared.headers))
                for name, value in multi_headers:
                    merged.add(name, value)
                prepared.headers = merged  # type: ignore[assignment]
            raw = self._session.send(
                prepared,
                stream=True,
                timeout=timeout,
                allow_redirects=False,
                proxies=self.proxies,
                verify=True,
            )
        except _FAILURES as exc:
            raise transport_error(exc, method, url) from exc
        response = Response(raw, method, url)
        if not stream:
            response.content()
        return response

    def close(self) -> None:
        """Close every pooled connection."""
        self._session.close()


class Response:
    """An HTTP answer: status and headers, the body read through our error mapping."""

    def __init__(self, raw: requests.Response, method: str, url: str):
        self._raw = raw
        self.method = method
        self.url = url
        self.status: int = raw.status_code
        self.headers: Mapping[str, str] = raw.headers
        self._interrupted = False
        self._body: Optional[bytes] = None
        self._json: Any = _UNREAD
        self._read = False  # content() or json() began: the body is theirs

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def content(self) -> bytes:
        """The whole (decompressed) body, read once."""
        body = self._body
        if body is None:
            with self._reading():
                body = self._body = b"".join(self._blocks())
        return body

    def json(self, converter: Optional[ItemConverter] = None) -> Any:
        """The body decoded as JSON, as it arrives: a LIST's items are parsed between
        reads (core/jsonstream.py), with the cyclic collector paused only while a large
        part is parsed. With ``converter``, they are converted as they are parsed too
        (see ``ItemConverter``). None for an empty body; ``DecodeError`` for one that is not
        JSON. The body is not kept: ``content()`` after ``json()`` raises
        ``RuntimeError``."""
        if self._json is _UNREAD:
            decoder = BodyDecoder()
            if converter is not None:
                converter.reset()
            with self._reading():
                for block in self._blocks() if self._body is None else (self._body,):
                    # No cycles among parsed JSON (client/gcpause.py); never paused over
                    # a read.
                    with _paused_if(len(block) >= PAUSE_FROM):
                        decoder.feed(block)
                        if converter is not None:
                            converter.take(decoder.items)
            with _paused_if(decoder.size >= LARGE_BODY):
                try:
                    data = decoder.result()
                except ValueError:
                    kind = self.headers.get("Content-Type", "no content type")
                    raise DecodeError(
                        f"the answer to {self.method} {self.url} is not JSON ({kind})"
                    ) from None
                if converter is not None:
                    converter.finish(data, decoder.items)
            self._json = data
        return self._json

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        if self._read and self._body is None:
            raise RuntimeError("the body of this response was read already")
        self._read = True
        try:
            yield
        except _FAILURES as exc:
            self._raw.close()
            raise transport_error(exc, self.method, self.url) from exc
        except InflateError as exc:
            self._raw.close()
            raise TransportError(str(exc), method=self.method, url=self.url) from None

    def _blocks(self) -> Iterator[bytes]:
        """The body in parts as it arrives. A gzip body is read as sent and inflated in
        large blocks (client/inflate.py); any other is read through urllib3, which
        decodes it (deflate, and others it knows)."""
        stream = self._raw.raw
        if not isinstance(stream, urllib3.BaseHTTPResponse):
            yield self._raw.content
        elif self.headers.get("Content-Encoding", "").strip().lower() in ("gzip", "x-gzip"):
            yield from inflated(lambda n: stream.read(n, decode_content=False))
        else:
            read = stream.read
            while True:
                block = read(BLOCK, decode_content=True)
                if not block:
                    break
                yield block

    def iter_lines(self) -> Iterator[bytes]:
        """The body's non-empty lines as they arrive; ends quietly after ``interrupt()``."""
        pending = b""
        try:
            # chunk_size=None: each HTTP chunk as soon as it arrives (watch events and log
            # lines are flushed as chunks); a fixed size would wait for the buffer to fill.
            for chunk in self._raw.iter_content(chunk_size=None):
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                yield from (line for line in lines if line)
        except _FAILURES as exc:
            if self._interrupted:
                return
            raise transport_error(exc, self.method, self.url) from exc
        if pending and not self._interrupted:
            yield pending

    def warnings(self) -> List[str]:
        """The texts of the server's ``Warning`` headers."""
        raw_headers = getattr(self._raw.raw, "headers", None)
        getlist = getattr(raw_headers, "getlist", None)
        values = getlist("Warning") if getlist else [self.headers.get("Warning", "")]
        texts: List[str] = []
        for value in values:
            found = [m.group(1).replace('\\"', '"') for m in _WARNING.finditer(value)]
            texts.extend(found or ([value.strip()] if value.strip() else []))
        return texts

    def error(self) -> ApiError:
        """The ``ApiError`` for this (non-2xx) answer, from its Status body if it has one."""
        status = decode_status(self.content(), self.status, self.headers.get("Content-Type"))
        return error_for_status(
            status,
            method=self.method,
            url=self.url,
            headers=dict(self.headers),
            retry_after=retry_after(self.headers.get("Retry-After")),
        )

    def interrupt(self) -> None:
        """Stop a reader blocked in ``iter_lines`` in another thread, and close."""
        self._interrupted = True
        conn = getattr(self._raw.raw, "connection", None) or getattr(
            self._raw.raw, "_connection", None
        )
        sock = getattr(conn, "sock", None)
        if sock is not None:
            try:
                # Closing a socket does not wake a thread blocked reading it; shutdown does.
                sock.shutdown(socket.SHUT_RDWR)
            except (OSError, AttributeError):
                pass
        self.close()

    def close(self) -> None:
        """Release the connection (a stream that was not read to its end is closed)."""
        try:
            self._raw.close()
        except _FAILURES:
            pass


def decode_status(body: bytes, code: int, content_type: Optional[str] = None) -> Status:
    """The server's ``Status`` from an error body; any other body gives a plain one."""
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("kind") == "Status":
        return Status.from_dict({**doc, "code": doc.get("code") or code})
    try:
        phrase = http.HTTPStatus(code).phrase
    except ValueError:
        phrase = "Unknown"
    text = " ".join(body[:ERROR_BODY_SNIPPET].decode("utf-8", "replace").split())
    kind = f" ({content_type.split(';')[0]})" if content_type else ""
    message = f"the server answered {code} {phrase} with a non-Status body{kind}"
    return Status(
        code=code,
        reason=phrase.replace(" ", "").replace("-", ""),
        message=f"{message}: {text}" if text else message,
        status="Failure",
    )


def retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _in_handshake(exc: BaseException) -> bool:
    """Whether an SSL error (somewhere in ``exc``'s wrappers) came from making the
    connection, or was about the certificate, rather than from a connection in use."""
    seen: List[BaseException] = []
    todo: List[Any] = [exc]
    while todo:
        e = todo.pop()
        if not isinstance(e, BaseException) or any(e is s for s in seen):
            continue
        seen.append(e)
        if getattr(e, "kubesync_handshake", False) or isinstance(e, ssl.CertificateError):
            return True
        todo.extend([*e.args, getattr(e, "reason", None), e.__cause__, e.__context__])
    return False


def transport_error(exc: BaseException, method: str, url: str) -> TransportError:
    """Our exception for a requests/urllib3/socket failure (its text without credentials)."""
    reason: BaseException = exc
    if isinstance(exc, requests.exceptions.RequestException) and exc.args:
        inner = exc.args[0]
        if isinstance(inner, urllib3.exceptions.MaxRetryError) and inner.reason is not None:
            inner = inner.reason
        if isinstance(inner, BaseException):
            reason = inner
    text = mask_userinfo(str(reason) or type(reason).__name__)
    cls: type = TransportError
    if isinstance(exc, (requests.exceptions.SSLError, urllib3.exceptions.SSLError, ssl.SSLError)):
        if _in_handshake(exc):
            cls, text = TLSError, f"TLS handshake failed: {text}"
        else:  # a broken record on an open connection: the next connection may be fine
            text = f"TLS error on an open connection: {text}"
    elif isinstance(exc, requests.exceptions.ConnectTimeout):
        cls, text = ConnectTimeout, f"connect timed out: {text}"
    elif isinstance(exc, requests.exceptions.ProxyError):
        cls, text = ConnectError, f"cannot connect through the proxy: {text}"
    elif isinstance(
        reason, (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError)
    ) or isinstance(exc, (requests.exceptions.ReadTimeout, socket.timeout)):
        cls, text = RequestTimeout, f"read timed out: {text}"
    elif isinstance(reason, urllib3.exceptions.NewConnectionError):
        cls, text = ConnectError, f"cannot connect: {text}"
    elif isinstance(exc, requests.exceptions.InvalidURL):
        cls, text = ConnectError, f"invalid URL: {text}"
    else:
        text = f"connection failed: {text}"
    error: TransportError = cls(text, method=method, url=url)
    return error
