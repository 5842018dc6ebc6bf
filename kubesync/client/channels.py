"""Numbered channels over one WebSocket (the ``*.channel.k8s.io`` and port-forward framing).

Each binary message starts with its channel's number; the rest is that channel's data.
One named reader thread per stream reads every message and feeds the payload to its
channel's ``Pipe`` (bounded: a consumer that stops reading holds the server back through
TCP, instead of filling memory). The same thread keeps the connection honest: it pings the
server every ``HEARTBEAT_PERIOD`` and ends the stream with ``RequestTimeout`` when nothing
at all (data or pong) came for the WebSocket's read timeout, or when the stream's deadline
passed. Exec/attach (``podexec.py``) and port-forward build on this.
See https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#get-connect-exec-pod-v1
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import Callable, Dict, Iterator, Mapping, Optional

from kubesync.client import fork
from kubesync.client.wstransport import FORKED, WebSocket
from kubesync.errors import KubeError, ProtocolError, RequestTimeout, UsageError

__all__ = ["ChannelStream", "Pipe", "ReadStream"]

logger = logging.getLogger("kubesync.client")

# client-go's WebSocket executor pings every 5 s (remotecommand/websocket.go, pingPeriod);
# its read deadline is 12 missed pings plus 1 s, close to our default read timeout (60 s).
HEARTBEAT_PERIOD = 5.0
# Bytes a channel buffers before the reader thread waits for its consumer.
PIPE_LIMIT = 1 << 20

_numbers = itertools.count(1)


class Pipe:
    """A byte buffer between the reader thread (``feed``, ``finish``) and a consumer
    (``read``, ``readline``). ``limit`` None never blocks the feeder (``exec`` collects
    everything anyway); ``close`` drops the consumer's side and wakes a waiting feeder.
    """

    def __init__(self, limit: Optional[int] = PIPE_LIMIT):
        self._limit = limit
        self._cond = threading.Condition()
        # Invariants: _buf holds data not yet read; once _eof, no feed adds to it; _error
        # is raised to readers after _buf is drained; _closed implies _eof.
        self._buf = bytearray()
        self._eof = False
        self._error: Optional[KubeError] = None
        self._closed = False

    def end_in_forked_child(self, error: KubeError) -> None:
        """In a forked child, where no reader feeds it: readers get ``error`` at once
        (never what the parent's reader buffered, which the parent reads)."""
        self._cond = threading.Condition()  # a parent's thread may have held the old one
        self._buf = bytearray()
        self._eof, self._error = True, error

    def feed(self, data: bytes) -> None:
        """Add ``data``; waits while the buffer is full (until read from or closed)."""
        with self._cond:
            while self._limit is not None and len(self._buf) >= self._limit \
                    and not self._closed:
                self._cond.wait()
            if not self._eof:
                self._buf += data
                self._cond.notify_all()

    def finish(self, error: Optional[KubeError] = None) -> None:
        """No more data: readers get what is left, then EOF (or ``error``)."""
        with self._cond:
            if not self._eof:
                self._eof, self._error = True, error
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = self._eof = True
            self._cond.notify_all()

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes as soon as any are there; ``n < 0``: everything until EOF.

        ``b""`` at EOF; the stream's error (a stall, a broken protocol) once drained.
        """
        with self._cond:
            while not self._eof and (n < 0 or not self._buf):
                self._cond.wait()
            return self._take_locked(len(self._buf) if n < 0 else n)

    def wait_readable(self, timeout: Optional[float]) -> bool:
        """Whether data (or EOF, or the error) is there, waiting at most ``timeout`` s."""
        with self._cond:
            return self._cond.wait_for(lambda: self._eof or bool(self._buf), timeout)

    def readline(self) -> bytes:
        """One line with its ``\\n`` (the last may lack it); ``b""`` at EOF."""
        with self._cond:
            while not self._eof and b"\n" not in self._buf:
                self._cond.wait()
            end = self._buf.find(b"\n")
            return self._take_locked(len(self._buf) if end < 0 else end + 1)

    def _take_locked(self, n: int) -> bytes:
        if not self._buf and self._error is not None:
            raise self._error
        out = bytes(self._buf[:n])
        del self._buf[:n]
        self._cond.notify_all()  # a feeder may wait for room
        return out


class ReadStream:
    """A readable output of a command (``stdout``, ``stderr``), like a binary file.

    ``read(n)``, ``readline()``, and iteration by lines (bytes). Reading waits for data;
    it never hangs on a dead connection: the stream's heartbeat ends it with an error.
    """

    def __init__(self, pipe: Pipe, name: str):
        self._pipe = pipe
        self.name = name

    def read(self, n: int = -1) -> bytes:
        return self._pipe.read(n)

    def readline(self) -> bytes:
        return self._pipe.readline()

    def __iter__(self) -> Iterator[bytes]:
        while True:
            line = self._pipe.readline()
            if not line:
                return
            yield line

    def __repr__(self) -> str:
        return f"<ReadStream {self.name}>"


class ChannelStream:
    """The reader thread of one WebSocket, demultiplexing channels into ``Pipe`` objects.

    ``on_end(error)`` runs once in the reader thread when the stream ends: ``error`` None
    after the server's close (or ``close()``), else the ``KubeError`` that ended it.
    ``deadline`` (``time.monotonic()`` seconds) bounds the whole stream.
    """

    def __init__(
        self,
        ws: WebSocket,
        pipes: Mapping[int, Pipe],
        *,
        name: str,
        on_end: Callable[[Optional[KubeError]], None],
        deadline: Optional[float] = None,
        deadline_text: str = "the stream passed its timeout",
        clock: Callable[[], float] = time.monotonic,
    ):
        self.ws = ws
        self._pipes: Dict[int, Pipe] = dict(pipes)
        self._on_end = on_end
        self._deadline = deadline
        self._deadline_text = deadline_text
        self._clock = clock
        self._stop = threading.Event()
        self.ended = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"kubesync-{name}-{next(_numbers)}", daemon=True)
        fork.register(self)
        self._thread.start()

    def _after_fork_in_child(self) -> None:
        # The reader thread stayed in the parent: end every channel here, with a reason.
        error = UsageError(f"{FORKED} ({self.ws.url})")
        for pipe in self._pipes.values():
            pipe.end_in_forked_child(error)
        self._stop = threading.Event()
        self._stop.set()
        self.ended = threading.Event()
        self.ended.set()

    @property
    def thread_name(self) -> str:
        return self._thread.name

    def send(self, channel: int, data: bytes = b"") -> None:
        self.ws.send(bytes((channel,)) + data)

    def close(self) -> None:
        """Stop the reader, close the WebSocket, join the thread (from any thread)."""
        self._stop.set()
        self.ws.close()
        for pipe in self._pipes.values():
            pipe.close()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _run(self) -> None:
        error: Optional[KubeError] = None
        try:
            self._loop()
        except KubeError as exc:
            if not self._stop.is_set():
                error = exc
        except Exception as exc:  # a bug of ours: end the stream, never die silently
            logger.error("%s failed", self._thread.name, exc_info=True)
            error = ProtocolError(f"the stream's reader failed: {exc!r}", method="GET",
                                  url=self.ws.url)
        finally:
            self.ws.close()  # nothing more to read; a later send raises TransportError
            try:
                self._on_end(error)
            finally:
                self.ended.set()

    def _loop(self) -> None:
        ws, clock = self.ws, self._clock
        silence = ws.read_timeout
        period = min(HEARTBEAT_PERIOD, silence / 4)
        heard = pinged = clock()
        while not self._stop.is_set():
            now = clock()
            if self._deadline is not None and now >= self._deadline:
                raise RequestTimeout(self._deadline_text, method="GET", url=ws.url)
            if now - heard >= silence:
                raise RequestTimeout(
                    f"the server sent nothing, not even an answer to a ping, for "
                    f"{silence:g} s", method="GET", url=ws.url)
            if now - pinged >= period:
                ws.ping()
                pinged = now
            wait = min(period - (now - pinged), silence - (now - heard))
            if self._deadline is not None:
                wait = min(wait, self._deadline - now)
            if not ws.readable(wait):
                continue
            kind, data = ws.receive()
            heard = clock()
            if kind == "close":
                return
            if kind == "data":
                self._dispatch(data)

    def _dispatch(self, message: bytes) -> None:
        if not message:
            raise ProtocolError("a WebSocket message without a channel byte", method="GET",
                                url=self.ws.url)
        pipe = self._pipes.get(message[0])
        if pipe is None:
            raise ProtocolError(f"a message on channel {message[0]}, which this stream "
                                f"does not have", method="GET", url=self.ws.url)
        if len(message) > 1:
            pipe.feed(message[1:])
