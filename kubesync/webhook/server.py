"""``WebhookServer``: a ``WebhookApp`` served over HTTPS by threads of our own, for use in
the cluster (a Deployment behind a Service) or next to a test cluster.

The certificate and key files are re-read when they change (cert-manager and the kubelet
replace mounted Secret files atomically), checked as each connection is accepted, so
there is no watcher thread and a renewed certificate is used by the next connection.
"""

from __future__ import annotations

import http.server
import logging
import os
import socket
import socketserver
import ssl
import threading
from typing import Any, Dict, Optional, Tuple, Union

from kubesync.client import fork
from kubesync.config.tls import ForkSafeContext
from kubesync.core.forkgate import guarded
from kubesync.errors import KubeError, UsageError
from kubesync.runtime.threads import join_thread, unique_name
from kubesync.webhook.app import WebhookApp

__all__ = ["WebhookServer"]

logger = logging.getLogger("kubesync.webhook")

PathLike = Union[str, "os.PathLike[str]"]

#: The API server gives a webhook 10 s by default (30 s at most): a connection idle or
#: stuck for longer than the longest allowed call is dead.
REQUEST_TIMEOUT = 30.0
#: Connections served at once; the accept loop waits for a free slot beyond this, so a
#: flood cannot start unbounded threads.
MAX_CONNECTIONS = 64


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the API server reuses connections
    server: _TlsServer

    def _serve(self) -> None:
        app = self.server.app
        body = b""
        if self.command == "POST":
            text = self.headers.get("Content-Length")
            if text is None or not text.isdigit():
                self._send(411, b'{"message":"a Content-Length is required"}', close=True)
                return
            length = int(text)
            if length > app.max_body:
                body_msg = (f'{{"message":"the body ({length} bytes) is over the limit of '
                            f'{app.max_body} bytes"}}').encode()
                self._send(413, body_msg, close=True)
                return
            body = self.rfile.read(length)
        answer = app.handle(self.command, self.path.split("?", 1)[0], body)
        self._send(answer.status, answer.body, headers=answer.headers)

    def _send(self, status: int, body: bytes, *, headers: Any = (), close: bool = False) -> None:
        self.send_response(status)
        sent = {name.lower() for name, _ in headers}
        for name, value in headers:
            self.send_header(name, value)
        if "content-type" not in sent:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("webhook %s: " + format, self.client_address[0], *args)


class _TlsServer(socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, owner: WebhookServer, address: Tuple[str, int]) -> None:
        self.owner = owner
        self.app = owner.app
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.owner._serve_connection(request, client_address)


class WebhookServer:
    """HTTPS for a ``WebhookApp`` on ``host:port`` (port 0: any free port, see ``port``).

    ``start()`` binds and starts the accept thread (``kubesync-webhook-server-N``); each
    connection gets its own thread (``kubesync-webhook-conn-N``), at most
    ``max_connections`` at once. ``stop()`` closes the listener and open connections and
    joins every thread. A context manager. The key never appears in logs or reprs.
    """

    def __init__(self, app: WebhookApp, *, cert_file: PathLike, key_file: PathLike,
                 host: str = "0.0.0.0", port: int = 8443,
                 request_timeout: float = REQUEST_TIMEOUT,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        self.app = app
        self.cert_file = os.fspath(cert_file)
        self.key_file = os.fspath(key_file)
        self.host = host
        self._port = port
        self.request_timeout = request_timeout
        self._max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        self._lock = threading.Lock()
        self._server: Optional[_TlsServer] = None
        self._thread: Optional[threading.Thread] = None
        self._connections: Dict[threading.Thread, socket.socket] = {}
        self._context: Optional[ssl.SSLContext] = None
        self._stamp: Optional[Tuple[Any, ...]] = None
        self._stopping = threading.Event()
        fork.register(self)

    def _after_fork_in_child(self) -> None:
        """A forked child's copy serves nothing (its threads did not survive the fork): it
        closes its copies of the sockets, never shutting them down under the parent, so
        ``stop()`` in the child returns at once and ``start()`` binds anew."""
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self._max_connections)
        self._stopping = threading.Event()
        server, self._server, self._thread = self._server, None, None
        for sock in self._connections.values():
            _close(sock)
        self._connections = {}
        if server is not None:
            _close(server.socket)

    def __repr__(self) -> str:
        state = "serving" if self._thread is not None else "stopped"
        return f"WebhookServer({self.host}:{self.port}, cert={self.cert_file!r}, {state})"

    @property
    def port(self) -> int:
        """The bound port (known after ``start()`` when 0 was asked for)."""
        server = self._server
        return int(server.server_address[1]) if server is not None else self._port

    # -- certificates ---------------------------------------------------------------------

    def _file_stamp(self) -> Tuple[Any, ...]:
        out: Tuple[Any, ...] = ()
        for path in (self.cert_file, self.key_file):
            st = os.stat(path)  # follows the ..data symlink a mounted Secret swaps
            out += (st.st_ino, st.st_mtime_ns, st.st_size)
        return out

    def _load_context(self) -> ssl.SSLContext:
        with guarded():  # a fork now would leave OpenSSL's locks held in the child
            ctx = ForkSafeContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx

    def _current_context(self) -> ssl.SSLContext:
        """The TLS context, reloaded first if the files changed; a failed reload keeps
        the old certificate (a half-written pair must not take the webhook down)."""
        with self._lock:
            try:
                stamp = self._file_stamp()
                if stamp != self._stamp or self._context is None:
                    self._context = self._load_context()
                    if self._stamp is not None:
                        logger.info("webhook certificate %s reloaded", self.cert_file)
                    self._stamp = stamp
            except (OSError, ssl.SSLError) as e:
                if self._context is None:
                    raise KubeError(f"cannot load the webhook certificate {self.cert_file} "
                                    f"and key {self.key_file}: {e}") from None
                logger.warning("webhook certificate %s not reloaded (keeping the old one):"
                               " %s", self.cert_file, e)
            return self._context

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> WebhookServer:
        """Load the certificate, bind, and serve in the background; returns self."""
        if self._thread is not None:
            raise UsageError("the webhook server is running already")
        self._current_context()  # fail here, not on the first connection
        self._stopping.clear()
        server = _TlsServer(self, (self.host, self._port))
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={
            "poll_interval": 0.2}, name=unique_name("kubesync-webhook-server"), daemon=True)
        self._thread.start()
        logger.info("webhook server on https://%s:%d", self.host, self.port)
        return self

    def _serve_connection(self, sock: socket.socket, address: Any) -> None:
        # In the accept thread: wait for a slot, then hand the socket to a new thread.
        while not self._slots.acquire(timeout=0.2):
            if self._stopping.is_set():
                sock.close()
                return
        thread = threading.Thread(target=self._connection, args=(sock, address),
                                  name=unique_name("kubesync-webhook-conn"), daemon=True)
        with self._lock:
            self._connections[thread] = sock
        thread.start()

    def _connection(self, sock: socket.socket, address: Any) -> None:
        server = self._server
        try:
            sock.settimeout(self.request_timeout)
            ctx = self._current_context()
            try:
                tls = ctx.wrap_socket(sock, server_side=True)
            except (OSError, ssl.SSLError) as e:
                logger.debug("webhook TLS handshake with %s failed: %s", address, e)
                return
            with self._lock:
                self._connections[threading.current_thread()] = tls
            if server is not None:
                try:
                    _Handler(tls, address, server)
                except OSError as e:  # a peer gone or timed out mid-request
                    logger.debug("webhook connection from %s ended: %s", address, e)
                except Exception:  # never lose a failure silently with the thread
                    logger.exception("webhook connection from %s failed", address)
        finally:
            with self._lock:
                current = self._connections.pop(threading.current_thread(), sock)
            _close(current)
            self._slots.release()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop accepting, close open connections, join every thread; returns whether all
        ended within ``timeout`` seconds each."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return True
        self._stopping.set()
        server.shutdown()
        ok = join_thread(thread, timeout, logger)
        server.server_close()
        with self._lock:
            connections = dict(self._connections)
        for sock in connections.values():
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked reading
            except OSError:
                pass
        for conn in connections:
            ok = join_thread(conn, timeout, logger) and ok
        self._server = self._thread = None
        return ok

    def __enter__(self) -> WebhookServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
