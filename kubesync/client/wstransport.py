"""The only module that calls websocket-client: open a WebSocket, and map its every failure.

The socket under the WebSocket is ours: TCP (through the proxy ``Transport`` chose, with
the standard library's CONNECT tunnel), then TLS with the ``ssl.SSLContext`` built from the
kubeconfig, so the CA, client certificate, ``insecure-skip-tls-verify`` and
``tls-server-name`` are exactly those of every other request. websocket-client only does
the handshake and the framing on it; it never reads ``https_proxy``, ``NO_PROXY`` or
``WEBSOCKET_CLIENT_CA_BUNDLE``. A refused upgrade becomes the same ``ApiError`` subclass
(``Forbidden``, ``NotFound``, ...) as any other request; nothing of websocket-client
reaches a user. Its trace log (``websocket.enableTrace``) would print request headers,
tokens included: leave it off.
"""

from __future__ import annotations

import base64
import http.client
import re
import selectors
import socket
import ssl
from typing import TYPE_CHECKING, List, Literal, Optional, Sequence, Tuple
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:  # imported where a WebSocket is made: most programs never exec or forward
    import websocket

from kubesync.client import fork
from kubesync.client.transport import decode_status, retry_after
from kubesync.core.forkgate import import_module
from kubesync.errors import (
    ApiError,
    ConnectError,
    ConnectTimeout,
    ProtocolError,
    RequestTimeout,
    TLSError,
    TransportError,
    UsageError,
    error_for_status,
)

__all__ = ["WebSocket", "connect"]

Kind = Literal["data", "control", "close"]

_USERINFO = re.compile(r"(://)[^/@\s]+@")

#: Why a WebSocket (an exec, attach or port-forward) opened before ``os.fork()`` refuses
#: in the child: the connection, and the thread reading it, belong to the parent.
FORKED = ("this exec/attach/port-forward stream was opened before os.fork() and belongs to "
          "the parent process; open a new one in the child")


class WebSocket:
    """One open WebSocket: whole binary messages out and in, failures as our errors.

    ``send`` may be called from one thread while another is in ``receive``; ``close``
    from any thread wakes a ``receive`` at once. ``read_timeout`` is how long a silent
    server is tolerated (the Client's read timeout); the caller enforces it.
    """

    def __init__(self, ws: websocket.WebSocket, url: str, read_timeout: float):
        self._ws = ws
        self.url = url
        self.read_timeout = read_timeout
        self.subprotocol: str = ws.getsubprotocol() or ""
        self._closed = False
        self._forked = False
        import websocket  # loaded by connect() already; bound here, not per frame

        self._close_op: int = websocket.ABNF.OPCODE_CLOSE
        self._control_ops = (websocket.ABNF.OPCODE_PING, websocket.ABNF.OPCODE_PONG)
        fork.register(self)

    def _after_fork_in_child(self) -> None:
        # The connection is the parent's: the child may only drop its copy of the socket.
        self._forked = True

    def _refuse_if_forked(self) -> None:
        if self._forked:
            raise UsageError(f"{FORKED} ({self.url})")

    def send(self, data: bytes) -> None:
        """Send ``data`` as one binary message."""
        self._refuse_if_forked()
        if self._closed:
            raise TransportError("the WebSocket is closed", method="GET", url=self.url)
        try:
            self._ws.send_binary(data)
        except Exception as exc:
            raise websocket_error(exc, self.url) from None

    def ping(self) -> None:
        """Send a ping; the server's pong shows the connection is alive."""
        self._refuse_if_forked()
        if self._closed:
            return
        try:
            self._ws.ping()
        except Exception as exc:
            raise websocket_error(exc, self.url) from None

    def readable(self, timeout: float) -> bool:
        """Whether a frame can be read now, waiting at most ``timeout`` seconds."""
        sock = self._ws.sock
        if sock is None:
            return True  # receive() then reports the closed connection
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True  # already decrypted, so select() would not see it
        with selectors.DefaultSelector() as sel:
            try:
                sel.register(sock, selectors.EVENT_READ)
            except (ValueError, OSError):
                return True
            return bool(sel.select(max(0.0, timeout)))

    def receive(self) -> Tuple[Kind, bytes]:
        """The next frame: ``("data", message)``, ``("control", b"")`` for a ping or pong
        (pings are answered), or ``("close", b"")`` when the server closed the WebSocket.

        The connection ending without a close frame (or inside a frame) raises
        ``TransportError``.
        """
        self._refuse_if_forked()
        try:
            opcode, frame = self._ws.recv_data_frame(True)
        except Exception as exc:
            if self._closed:
                return "close", b""
            raise websocket_error(exc, self.url) from None
        if opcode == self._close_op:
            return "close", b""
        if opcode in self._control_ops:
            return "control", b""
        data = frame.data
        return "data", data.encode("utf-8") if isinstance(data, str) else bytes(data)

    def close(self) -> None:
        """Close the connection (safe from any thread, and more than once)."""
        if self._closed:
            return
        self._closed = True
        sock = self._ws.sock
        if self._forked:  # never shut down, nor send a close frame on, the parent's stream
            if sock is not None:
                sock.close()
            return
        if sock is not None:
            try:  # wakes a reader blocked in readable() or receive(); close() alone does not
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            self._ws.shutdown()
        except Exception:  # closing a broken socket has nothing to report
            pass

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<WebSocket {self.subprotocol or '-'} {state} {self.url}>"


def connect(
    url: str,
    *,
    ssl_context: ssl.SSLContext,
    server_hostname: Optional[str],
    proxy_url: Optional[str],
    headers: Sequence[Tuple[str, str]],
    subprotocols: Sequence[str],
    timeout: Tuple[float, float],
) -> WebSocket:
    """Open a WebSocket to ``url`` (``https://``/``http://``, query included).

    ``headers`` may repeat a name (``Impersonate-Group``); ``timeout`` is (connect, read).
    A refused upgrade raises its ``ApiError``; the server choosing none of
    ``subprotocols`` raises ``ProtocolError``; anything else a ``TransportError``.
    """
    import_module("websocket")  # its first import through the fork gate (a thread's)
    import websocket

    lines: List[str] = []
    for name, value in headers:
        if any(c in f"{name}{value}" for c in "\r\n\0"):
            raise UsageError(f"the header {name.strip()!r} holds a line break")
        lines.append(f"{name}: {value}")
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    sock: Optional[socket.socket] = None
    try:  # until the upgrade request is written, nothing was sent: a retry is safe
        sock = _dial(host, port, proxy_url, timeout[0], url)
        # As urllib3 does for every request: small messages (keystrokes, resizes) go out
        # at once instead of waiting for the previous one's ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if secure:
            sock.settimeout(timeout[0])
            sock = ssl_context.wrap_socket(sock, server_hostname=server_hostname or host)
    except Exception as exc:
        _close_quietly(sock)
        if isinstance(exc, TransportError):
            raise
        raise websocket_error(exc, url, opening=True) from None
    try:
        sock.settimeout(timeout[1])
        ws = websocket.WebSocket(enable_multithread=True, skip_utf8_validation=True)
        ws_url = ("wss" if secure else "ws") + url[len(parts.scheme):]
        ws.connect(ws_url, socket=sock, header=lines, subprotocols=list(subprotocols),
                   suppress_origin=True, timeout=timeout[1])
    except websocket.WebSocketBadStatusException as exc:
        _close_quietly(sock)
        raise _refused(exc, url) from None
    except Exception as exc:
        _close_quietly(sock)
        if isinstance(exc, websocket.WebSocketException) and "Invalid WebSocket Header" in str(exc):
            raise ProtocolError(
                f"the server accepted none of the subprotocols {', '.join(subprotocols)}",
                method="GET", url=url) from None
        raise websocket_error(exc, url) from None
    return WebSocket(ws, url, timeout[1])


def _dial(host: str, port: int, proxy_url: Optional[str], timeout: float, url: str
          ) -> socket.socket:
    """A TCP socket to ``host:port``, directly or through an HTTP proxy's CONNECT."""
    if not proxy_url:
        return socket.create_connection((host, port), timeout=timeout)
    proxy = urlsplit(proxy_url)
    if proxy.scheme != "http":
        raise ConnectError(
            f"WebSockets (exec, attach) go through http:// proxies only, not the "
            f"{proxy.scheme}:// proxy at {proxy.hostname}", method="GET", url=url)
    tunnel_headers = {}
    if proxy.username:
        raw = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}".encode()
        tunnel_headers["Proxy-Authorization"] = "Basic " + base64.b64encode(raw).decode()
    conn = http.client.HTTPConnection(proxy.hostname or "", proxy.port or 80, timeout=timeout)
    conn.set_tunnel(host, port, headers=tunnel_headers)
    try:
        conn.connect()
    except OSError as exc:
        conn.close()
        text = _USERINFO.sub(r"\1***@", str(exc))
        raise ConnectError(f"cannot connect through the proxy: {text}", method="GET",
                           url=url) from None
    assert conn.sock is not None
    return conn.sock


def _close_quietly(sock: Optional[socket.socket]) -> None:
    if sock is not None:
        try:
            sock.close()
        except OSError:
            pass


def _refused(exc: websocket.WebSocketBadStatusException, url: str) -> ApiError:
    """The ``ApiError`` for an upgrade the server answered with an error status."""
    headers = {str(k): str(v) for k, v in (exc.resp_headers or {}).items()}
    lower = {k.lower(): v for k, v in headers.items()}
    status = decode_status(exc.resp_body or b"", exc.status_code, lower.get("content-type"))
    return error_for_status(status, method="GET", url=url, headers=headers,
                            retry_after=retry_after(lower.get("retry-after")))


def websocket_error(exc: BaseException, url: str, *, opening: bool = False) -> TransportError:
    """Our exception for a websocket-client/socket/TLS failure (its text without secrets)."""
    import websocket

    text = _USERINFO.sub(r"\1***@", str(exc) or type(exc).__name__)
    cls: type = TransportError
    if isinstance(exc, (ssl.SSLError, ssl.CertificateError)):
        cls, text = TLSError, f"TLS handshake failed: {text}"
    elif isinstance(exc, (websocket.WebSocketTimeoutException, socket.timeout, TimeoutError)):
        cls = ConnectTimeout if opening else RequestTimeout
        text = f"{'connect' if opening else 'read'} timed out: {text}"
    elif isinstance(exc, (websocket.WebSocketProtocolException,
                          websocket.WebSocketPayloadException)):
        cls, text = ProtocolError, f"a broken WebSocket frame: {text}"
    elif isinstance(exc, websocket.WebSocketConnectionClosedException):
        text = f"the connection closed mid-stream: {text}"
    elif opening and isinstance(exc, (websocket.WebSocketAddressException, OSError)):
        cls, text = ConnectError, f"cannot connect: {text}"
    else:
        text = f"WebSocket failed: {text}"
    error: TransportError = cls(text, method="GET", url=url)
    return error
