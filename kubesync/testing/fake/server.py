"""``FakeApiServer``: the in-memory Kubernetes API on a loopback HTTP(S) port.

The HTTP side only: sockets, threads, authentication, faults, the request log and the
kubeconfig; every request becomes one ``routes.dispatch`` call, and a watch streams
from ``watch.serve``. Each connection gets a named daemon thread; ``stop()`` wakes and
cuts every open connection and joins them all.
"""

from __future__ import annotations

import hmac
import itertools
import json
import logging
import secrets
import shutil
import socket
import ssl
import tempfile
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, List, Mapping, Optional, Set
from urllib.parse import parse_qsl, urlsplit

import attrs
import yaml

from kubesync.testing.fake import routes, watch
from kubesync.testing.fake.backend import Backend
from kubesync.testing.fake.faults import Faults
from kubesync.testing.fake.resources import Registry
from kubesync.testing.fake.status import StatusError
from kubesync.testing.fake.storage import DEFAULT_HISTORY, Storage

if TYPE_CHECKING:
    from kubesync.client.client import Client

logger = logging.getLogger("kubesync.testing.fake")

#: How often a watch that allows bookmarks gets one. Real servers send one about every
#: minute; a test wants to see them without waiting that long.
DEFAULT_BOOKMARK_INTERVAL = 1.0
#: Requests remembered in ``FakeApiServer.requests`` (bounded: a long test stays small).
REQUEST_LOG = 1000
#: An idle keep-alive connection is closed after this long.
IDLE_TIMEOUT = 300.0
#: How long ``stop()`` waits for each connection thread to end.
JOIN_TIMEOUT = 5.0
_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@attrs.frozen
class RequestRecord:
    """One request the fake served: for tests that check what a client sent."""

    method: str
    path: str
    query: Mapping[str, str]
    code: int


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # we join our own threads, by name, in FakeApiServer.stop()

    def __init__(self, fake: FakeApiServer, address: Any) -> None:
        self.fake = fake
        self._ids = itertools.count(1)
        self.threads: Set[threading.Thread] = set()
        self.connections: Set[socket.socket] = set()
        self.track = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        t = threading.Thread(target=self._serve, args=(request, client_address),
                             name=f"kubesync-fake-apiserver-conn-{next(self._ids)}",
                             daemon=True)
        with self.track:
            self.threads.add(t)
            self.connections.add(request)
        t.start()

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self.track:
                self.threads.discard(threading.current_thread())
                self.connections.discard(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("fake apiserver: connection error", exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpServer
    timeout = IDLE_TIMEOUT
    # Headers and body go out in two writes: without this, Nagle and delayed ACKs add
    # ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake apiserver: " + format, *args)

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def do_HEAD(self) -> None:
        self._handle()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        query = routes.query_of(parse_qsl(url.query, keep_blank_values=True))
        body = self._read_body()
        fake.faults.wait_while_silent()
        if fake.stopping:
            self.close_connection = True
            return
        code = 500
        try:
            fault = fake.faults.take(self.command, url.path)
            if fault is not None:
                code = fault["code"]
                extra = {"Retry-After": str(fault["retry_after"])} if fault["retry_after"] \
                    else {}
                err = StatusError(code, fault["reason"], fault["message"])
                self._send_json(code, err.body(), extra)
                return
            fake._authenticate(self.headers.get("Authorization", ""))
            representation = routes.media(self.headers.get("Accept", ""))
            if representation is None:
                raise StatusError(406, "NotAcceptable",
                                  "only application/json is served (no protobuf, no Table)")
            answer = routes.dispatch(fake.backend, self.command, url.path, query, body,
                                     self.headers.get("Content-Type", ""),
                                     self.headers.get("User-Agent", ""), representation)
            code = answer.code
            if answer.watch is not None:
                fake._log(self.command, url.path, query, 200)
                self._stream(answer.watch, query, representation)
                return
            if isinstance(answer.body, str):
                self._send(code, answer.body.encode(), "text/plain")
            else:
                self._send_json(code, answer.body)
        except StatusError as e:
            code = e.code
            self._send_json(e.code, e.body())
        except Exception:  # a bug in the fake: answer 500, and say where in the log
            logger.exception("fake apiserver: %s %s failed", self.command, url.path)
            code = 500
            self._send_json(500, StatusError(500, "InternalError",
                                             "the fake apiserver failed; see its log").body())
        finally:
            if code and not (code == 200 and query.get("watch")):
                fake._log(self.command, url.path, query, code)

    def _send(self, code: int, data: bytes, content_type: str,
              extra: Optional[Dict[str, str]] = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_json(self, code: int, body: Any, extra: Optional[Dict[str, str]] = None
                   ) -> None:
        self._send(code, json.dumps(body, separators=(",", ":")).encode(),
                   "application/json", extra)

    def _stream(self, target: routes.Target, query: Dict[str, str],
                representation: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        fake = self.server.fake

        def send(event: Mapping[str, Any]) -> None:
            line = json.dumps(event, separators=(",", ":")).encode() + b"\n"
            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.flush()

        try:
            why = watch.serve(fake.backend, target.rt, target.namespace, query,
                              metadata_only=representation == "partial", send=send,
                              faults=fake.faults, stopping=lambda: fake.stopping,
                              bookmark_interval=fake.bookmark_interval)
        except StatusError as e:
            send({"type": "ERROR", "object": e.body()})
            why = "error"
        except OSError:  # the client went away
            self.close_connection = True
            return
        except Exception:  # a bug in the fake: the stream is open, so cut it
            logger.exception("fake apiserver: watch of %s failed", target.rt.plural)
            why = "dropped"
        if why == "dropped" or why == "stopped":
            # Cut the connection without the closing chunk, as a broken network does.
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True


class FakeApiServer:
    """An in-memory Kubernetes API server on loopback, for unit tests.

    Real HTTP(S), so every client works through the kubeconfig it writes
    (``kubeconfig_path``): kubesync, kubectl, others. It serves the built-in kinds of the
    generated models and the CRDs created on it, with resourceVersion, watch, patch,
    apply, finalizer and cascade semantics close to a real server; docs/testing.md lists
    what it simplifies and what it refuses (501). Starts in milliseconds, needs no root.

    ``tls``: serve HTTPS with a fresh CA (needs the ``openssl`` command) and require the
    kubeconfig's bearer token; plain HTTP on loopback requires nothing. ``history``:
    how many changes watches can resume over before 410 Gone. ``clock``: the wall clock
    for timestamps. Thread-safe; ``faults`` injects failures.
    """

    #: The pytest plugin's ``kube_namespace`` waits for a ServiceAccount only when true.
    service_account_admission = False

    def __init__(self, *, tls: bool = False, history: int = DEFAULT_HISTORY,
                 bookmark_interval: float = DEFAULT_BOOKMARK_INTERVAL,
                 clock: Callable[[], float] = time.time, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.tls = tls
        self.bookmark_interval = bookmark_interval
        self._address = (host, port)
        self._stopping = threading.Event()
        self.storage = Storage(history)
        self.backend = Backend(self.storage, Registry(), clock)
        self.faults = Faults(self._stopping)
        self._token = secrets.token_urlsafe(24)
        self._requests: Deque[RequestRecord] = deque(maxlen=REQUEST_LOG)
        self._log_lock = threading.Lock()
        self._httpd: Optional[_HttpServer] = None
        self._thread: Optional[threading.Thread] = None
        self._dir: Optional[Path] = None
        self._ca = ""
        for name in _NAMESPACES:
            self._seed_namespace(name)

    def __repr__(self) -> str:
        state = self.server if self._httpd is not None else "stopped"
        return f"<FakeApiServer {state}>"

    def _seed_namespace(self, name: str) -> None:
        rt = self.backend.registry.find("", "v1", "namespaces")
        assert rt is not None
        self.backend.create(rt, None, {"metadata": {"name": name}}, {}, "kubesync-fake")

    # -- lifecycle ------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def start(self) -> FakeApiServer:
        """Listen and serve in a named thread; returns self."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._dir = Path(tempfile.mkdtemp(prefix="kubesync-fake-"))
        httpd = _HttpServer(self, self._address)
        if self.tls:
            from kubesync.testing.pki import make_pki

            pki = make_pki(self._dir)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(pki.serving.cert), str(pki.serving.key))
            httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
            self._ca = str(pki.ca.cert)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="kubesync-fake-apiserver", daemon=True)
        self._thread.start()
        self._write_kubeconfig()
        return self

    def stop(self) -> None:
        """Stop serving: open watches and requests end, every thread is joined, the
        kubeconfig's folder is removed. The stored objects stay (``start()`` again)."""
        httpd = self._httpd
        if httpd is None:
            return
        self._stopping.set()
        self.faults.wake()
        with self.storage.lock:
            self.storage.lock.notify_all()
        httpd.shutdown()
        with httpd.track:
            connections = list(httpd.connections)
            threads = list(httpd.threads)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(JOIN_TIMEOUT)
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT)
        httpd.server_close()
        self._httpd = None
        self._thread = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def threads(self) -> List[threading.Thread]:
        """The server's live threads (the listener and one per open connection)."""
        if self._httpd is None:
            return []
        with self._httpd.track:
            out = list(self._httpd.threads)
        return out + ([self._thread] if self._thread is not None else [])

    # -- what tests use -------------------------------------------------------------

    @property
    def server(self) -> str:
        """The base URL (``http://127.0.0.1:PORT``)."""
        if self._httpd is None:
            raise RuntimeError("the FakeApiServer is not started")
        host, port = self._httpd.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    @property
    def kubeconfig_path(self) -> str:
        if self._dir is None:
            raise RuntimeError("the FakeApiServer is not started")
        return str(self._dir / "kubeconfig")

    def client(self) -> Client:
        """A kubesync ``Client`` of this server (close it when done)."""
        from kubesync.client.client import Client
        from kubesync.config import Config

        return Client(Config.from_kubeconfig(self.kubeconfig_path))

    @property
    def resource_version(self) -> int:
        """The newest resourceVersion handed out."""
        return self.storage.resource_version

    def compact(self, *, drop_watches: bool = True) -> int:
        """Forget the change history: a watch or list from any older resourceVersion now
        gets 410 Gone. Like ``LocalCluster.compact()`` (which restarts its apiserver),
        open watches are cut too unless ``drop_watches=False``. Returns the current
        resourceVersion."""
        rv = self.storage.compact()
        if drop_watches:
            self.faults.drop_watches()
        return rv

    @property
    def requests(self) -> List[RequestRecord]:
        """The latest requests served, oldest first (at most ``REQUEST_LOG``)."""
        with self._log_lock:
            return list(self._requests)

    def _log(self, method: str, path: str, query: Mapping[str, str], code: int) -> None:
        with self._log_lock:
            self._requests.append(RequestRecord(method, path, dict(query), code))

    def _authenticate(self, header: str) -> None:
        """Over HTTPS a bearer token is required; plain HTTP (loopback only) takes any
        request, because client-go (kubectl) sends no token to a plain-HTTP server."""
        if not self.tls:
            return
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), self._token):
            raise StatusError(401, "Unauthorized", "Unauthorized")

    def _write_kubeconfig(self) -> None:
        assert self._dir is not None
        cluster: Dict[str, Any] = {"server": self.server}
        if self.tls:
            cluster["certificate-authority"] = self._ca
        doc = {
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": cluster}],
            "users": [{"name": "fake-admin",
                       "user": {"token": self._token} if self.tls else {}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake-admin",
                                                     "namespace": "default"}}],
        }
        path = self._dir / "kubeconfig"
        path.write_text(yaml.safe_dump(doc), encoding="utf-8")
        path.chmod(0o600)
