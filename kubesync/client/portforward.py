"""Port-forwarding to pods over the ``v4.channel.k8s.io`` WebSocket protocol, as
``kubectl port-forward`` does. ``Api.port_forward``/``Api.port_forward_stream`` call these.

One WebSocket carries one TCP connection to one port of the pod (``?ports=P``): channel 0
its data both ways, channel 1 the server's error text (nothing listening, the pod gone).
The server's first message on each channel is the port number (2 bytes, little-endian),
which is checked and stripped. The protocol has no half-close: a local client that stops
sending ends its connection. See
https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#get-connect-portforward-pod-v1
"""

from __future__ import annotations

import itertools
import logging
import selectors
import socket
import struct
import threading
from types import TracebackType
from typing import TYPE_CHECKING, List, Optional, Set, Type, Union

from kubesync.client import fork
from kubesync.client.channels import PIPE_LIMIT, ChannelStream, Pipe
from kubesync.client.pods import require_pods
from kubesync.core.request import RequestBuilder
from kubesync.errors import (
    KubeError,
    PortForwardError,
    ProtocolError,
    RequestTimeout,
    TransportError,
    UsageError,
)

if TYPE_CHECKING:
    from kubesync.client.client import Client

__all__ = ["PortForward", "PortForwardStream", "open_listener", "open_stream"]

logger = logging.getLogger("kubesync.client")

#: Offered in this order; the server picks the first it speaks (the kubelet's WebSocket
#: port-forward speaks both, with the same framing).
SUBPROTOCOLS = ("v4.channel.k8s.io", "portforward.k8s.io")
DATA, ERROR = 0, 1
# Data is sent in messages of at most this size (as exec's stdin).
SEND_CHUNK = 64 * 1024
# The error channel holds a line of text; more than this from a server is cut off.
ERROR_TEXT_LIMIT = 64 * 1024
# How many connections may wait to be accepted (the kernel's backlog).
BACKLOG = 128
# How long a failed send waits for the reader to record why the stream ended.
END_WAIT = 5.0
# After a failed accept (no file descriptors left), wait this long before the next one.
ACCEPT_RETRY = 0.1

_numbers = itertools.count(1)


class _PortChannel(Pipe):
    """A channel whose first bytes from the server are the port number, little-endian.

    The prefix is checked and stripped; a wrong port is a ``ProtocolError`` that ends the
    stream. ``cap`` keeps at most that many bytes (the error channel's text).
    """

    def __init__(self, port: int, channel: int, url: str, *, limit: Optional[int],
                 cap: Optional[int] = None):
        super().__init__(limit)
        self._port, self._channel, self._url, self._cap = port, channel, url, cap
        self._prefix: Optional[bytearray] = bytearray()  # None once checked
        self._kept = 0

    def feed(self, data: bytes) -> None:
        if self._prefix is not None:  # only the reader thread feeds: no lock needed
            need = 2 - len(self._prefix)
            self._prefix += data[:need]
            data = data[need:]
            if len(self._prefix) < 2:
                return
            (port,) = struct.unpack("<H", self._prefix)
            self._prefix = None
            if port != self._port:
                raise ProtocolError(
                    f"channel {self._channel} began with port {port}, not {self._port}",
                    method="GET", url=self._url)
        if self._cap is not None:
            data = data[:max(0, self._cap - self._kept)]
            self._kept += len(data)
        if data:
            super().feed(data)


class PortForwardStream:
    """One TCP connection to a port of a pod, socket-like: ``sendall``/``send``,
    ``recv``, ``close``, and a context manager.

    ``recv(n)`` returns what came (at most ``n`` bytes) as soon as any did, ``b""`` when
    the pod's side closed the connection, and raises ``PortForwardError`` when the server
    reported a failure (nothing listening on the port) and ``RequestTimeout`` when the
    connection went silent (the server stopped answering pings). Thread-safe: one thread
    may send while another receives. One named daemon thread reads the WebSocket; close
    joins it.
    """

    def __init__(self, client: Client, rb: RequestBuilder, name: str, port: int):
        self.pod = name
        self.port = port
        req = rb.connect(name, "portforward", {"ports": str(port)})
        ws = client.send_websocket(req, subprotocols=SUBPROTOCOLS)
        self.protocol = ws.subprotocol
        self._url = ws.url
        self._data = _PortChannel(port, DATA, ws.url, limit=PIPE_LIMIT)
        self._errors = _PortChannel(port, ERROR, ws.url, limit=None, cap=ERROR_TEXT_LIMIT)
        self._error: Optional[KubeError] = None
        self._stream = ChannelStream(
            ws, {DATA: self._data, ERROR: self._errors},
            name=f"port-forward-{name}-{port}", on_end=self._ended)

    def _ended(self, error: Optional[KubeError]) -> None:
        self._errors.finish()
        text = self._errors.read().decode("utf-8", "replace").strip()
        if text:
            failure = PortForwardError(text, pod=self.pod, port=self.port)
            logger.warning("%s", failure)
            error = failure if error is None or not isinstance(error, ProtocolError) else error
        self._error = error
        self._data.finish(error)

    @property
    def error(self) -> Optional[KubeError]:
        """What ended the connection (``PortForwardError``, ...) once it ended; else None."""
        return self._error if self._stream.ended.is_set() else None

    @property
    def thread_name(self) -> str:
        return self._stream.thread_name

    def sendall(self, data: Union[bytes, bytearray, memoryview]) -> None:
        """Send all of ``data`` to the pod's port. Once the connection ended this raises
        what ended it (``PortForwardError``, ...), or ``TransportError``."""
        raw = bytes(data)
        try:
            for start in range(0, len(raw), SEND_CHUNK):
                self._stream.send(DATA, raw[start:start + SEND_CHUNK])
        except TransportError:
            # The reader closes the WebSocket just before it records why the stream
            # ended: wait for that (it is under way) and raise the reason itself.
            self._stream.ended.wait(END_WAIT)
            if self._error is not None:
                raise self._error from None
            raise

    def send(self, data: Union[bytes, bytearray, memoryview]) -> int:
        """Send ``data``; the number of bytes sent (all of them, as ``sendall``)."""
        self.sendall(data)
        return len(data)

    def recv(self, bufsize: int = SEND_CHUNK, timeout: Optional[float] = None) -> bytes:
        """At most ``bufsize`` bytes from the pod's port; ``b""`` once it closed.

        ``timeout``: ``RequestTimeout`` when nothing came for that many seconds (the
        connection stays usable); None waits as long as the connection lives.
        """
        if bufsize <= 0:
            raise UsageError("bufsize must be positive")
        if timeout is not None and not self._data.wait_readable(timeout):
            raise RequestTimeout(f"nothing came from port {self.port} of pod {self.pod} "
                                 f"within {timeout:g} s", method="GET", url=self._url)
        return self._data.read(bufsize)

    def close(self) -> None:
        """Close the connection and join the reader thread (safe more than once)."""
        self._stream.close()

    def __enter__(self) -> PortForwardStream:
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._stream.ended.is_set() else "open"
        return f"<PortForwardStream {self.pod}:{self.port} {state}>"


class _Connection:
    """One accepted local connection and its WebSocket, pumped by two named threads:
    ``up`` opens the WebSocket and copies local -> pod, ``down`` copies pod -> local.
    Whichever ends first ends the other: the local socket is shut down (waking ``up``)
    and the WebSocket closed (waking ``down``). ``up`` ends last: it joins ``down`` and
    closes the stream and the socket, so a finished connection holds no descriptor."""

    def __init__(self, forward: PortForward, sock: socket.socket, number: int):
        self._forward = forward
        self._sock = sock
        self._lock = threading.Lock()
        self._stream: Optional[PortForwardStream] = None
        self._done = False
        base = f"kubesync-port-forward-{forward.pod}-{forward.port}-c{number}"
        self._up = threading.Thread(target=self._pump_up, name=f"{base}-up", daemon=True)
        self._down: Optional[threading.Thread] = None
        self._down_name = f"{base}-down"
        self._up.start()

    def alive(self) -> bool:
        return self._up.is_alive()  # up outlives down

    def _pump_up(self) -> None:
        try:
            self._forward_up()
        finally:  # the owner of the connection: it ends last and releases everything
            self.end()
            down, stream = self._down, self._stream
            if down is not None:
                down.join()
            if stream is not None:
                stream.close()
            self._sock.close()

    def _forward_up(self) -> None:
        fw = self._forward
        try:
            stream = PortForwardStream(fw._client, fw._rb, fw.pod, fw.port)
        except KubeError as exc:
            logger.warning("port-forward %s: cannot connect to port %d of pod %s: %s",
                           fw.address_text, fw.port, fw.pod, exc)
            return
        with self._lock:
            if self._done:  # stopped while connecting
                stream.close()
                return
            self._stream = stream
            self._down = threading.Thread(target=self._pump_down, name=self._down_name,
                                          daemon=True)
            self._down.start()
        try:
            while True:
                data = self._sock.recv(SEND_CHUNK)
                if not data:
                    return  # the local client is done: no half-close in this protocol
                stream.sendall(data)
        except (OSError, KubeError):
            pass  # the other side ended first, or the connection broke; down reports it

    def _pump_down(self) -> None:
        stream = self._stream
        assert stream is not None
        try:
            while True:
                data = stream.recv(SEND_CHUNK)
                if not data:
                    break
                self._sock.sendall(data)
        except PortForwardError:
            pass  # logged by the stream when it ended
        except KubeError as exc:
            logger.warning("port-forward %s to port %d of pod %s ended: %s",
                           self._forward.address_text, self._forward.port,
                           self._forward.pod, exc)
        except OSError:
            pass  # the local client went away
        finally:
            self.end()

    def end(self) -> None:
        """End both directions (from any thread, more than once)."""
        with self._lock:
            self._done = True
            stream = self._stream
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if stream is not None:
            stream.close()  # wakes down: its reads end

    def join(self) -> None:
        """End the connection and wait until its threads have released it."""
        self.end()
        if self._up is not threading.current_thread():
            self._up.join()  # up joins down and closes the stream and the socket


class PortForward:
    """A local listening port that forwards every connection to a port of a pod, like
    ``kubectl port-forward``; a context manager.

    ``local_port`` and ``address`` are where to connect (``127.0.0.1`` and a free port
    unless asked for one). Each accepted connection gets its own WebSocket, so many run
    at once; a failure on the pod's side (nothing listening) closes that connection and is
    logged, and the listener keeps going. ``stop()`` (or leaving the ``with`` block)
    closes the listener and every connection and joins all their threads.
    """

    def __init__(self, client: Client, rb: RequestBuilder, name: str, port: int, *,
                 local_port: int = 0, address: str = "127.0.0.1"):
        self._client, self._rb = client, rb
        self.pod = name
        self.port = port
        self._listener = socket.create_server((address, local_port), backlog=BACKLOG)
        self.address, self.local_port = self._listener.getsockname()[:2]
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()
        self._connections: Set[_Connection] = set()  # guarded by _lock
        self._stopped = threading.Event()
        self._numbers = itertools.count(1)
        self._thread = threading.Thread(
            target=self._serve, daemon=True,
            name=f"kubesync-port-forward-{name}-{port}-listener-{next(_numbers)}")
        fork.register(self)
        self._thread.start()

    def _after_fork_in_child(self) -> None:
        # The listener and its connections keep running in the parent. The child only
        # drops its copies of their sockets: no wake-up byte (the parent's listener would
        # read it and stop), no shutdown of a connection under the parent.
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._stopped.set()
        for conn in self._connections:
            conn._sock.close()
        self._connections = set()
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()

    @property
    def address_text(self) -> str:
        return f"{self.address}:{self.local_port}"

    @property
    def thread_name(self) -> str:
        return self._thread.name

    def _serve(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self._listener, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopped.is_set():
                ready = [key.fileobj for key, _ in sel.select()]
                if self._wake_r in ready or self._stopped.is_set():
                    return
                try:
                    sock, _ = self._listener.accept()
                except OSError as exc:  # out of file descriptors, say: keep listening
                    logger.warning("port-forward %s: accept failed: %s", self.address_text,
                                   exc)
                    self._stopped.wait(ACCEPT_RETRY)  # not a hot loop while it lasts
                    continue
                self._add(sock)

    def _add(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            # finished ones have released their sockets already: only forget them
            self._connections = {c for c in self._connections if c.alive()}
            if self._stopped.is_set():
                sock.close()
                return
            self._connections.add(_Connection(self, sock, next(self._numbers)))

    @property
    def connections(self) -> int:
        """How many forwarded connections are open now."""
        with self._lock:
            return sum(1 for c in self._connections if c.alive())

    def stop(self) -> None:
        """Close the listener and every connection; join all their threads (in a forked
        child, where they do not run, nothing is left to do: the parent's keep going)."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if threading.current_thread() is not self._thread:
            self._thread.join()
        with self._lock:
            connections: List[_Connection] = list(self._connections)
            self._connections.clear()
        for conn in connections:
            conn.end()
        for conn in connections:
            conn.join()
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()

    def __enter__(self) -> PortForward:
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped.is_set() else "listening"
        return f"<PortForward {self.address_text} -> {self.pod}:{self.port} {state}>"


def _require_pod_port(rb: RequestBuilder, port: int) -> None:
    require_pods(rb, "port-forward is")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise UsageError(f"port must be a TCP port number (1-65535), not {port!r}")


def open_stream(client: Client, rb: RequestBuilder, name: str, port: int
                ) -> PortForwardStream:
    """One connection to ``port`` of pod ``name`` (see ``Api.port_forward_stream``)."""
    _require_pod_port(rb, port)
    return PortForwardStream(client, rb, name, port)


def open_listener(client: Client, rb: RequestBuilder, name: str, port: int, *,
                  local_port: int = 0, address: str = "127.0.0.1") -> PortForward:
    """A local listener forwarding to ``port`` of pod ``name`` (see ``Api.port_forward``)."""
    _require_pod_port(rb, port)
    return PortForward(client, rb, name, port, local_port=local_port, address=address)
