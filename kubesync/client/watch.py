"""``WatchStream``: one open watch call, read as ``WatchEvent`` values. No threads here.

The resilient, relisting watcher built on it is ``kubesync.runtime.watcher``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, Generic, Iterator, Optional, TypeVar

from kubesync.core.events import WatchEvent, parse_event
from kubesync.core.json import loads
from kubesync.core.request import Request
from kubesync.errors import DecodeError, TransportError

if TYPE_CHECKING:
    from kubesync.client.client import Client, LineStream

__all__ = ["WatchStream"]

K = TypeVar("K")


class WatchStream(Generic[K]):
    """An open watch: iterate for ``WatchEvent`` values; ``close()`` (from any thread) ends it.

    The call starts when iteration does. ERROR events raise their ``ApiError``; objects
    are decoded with ``decode_obj``; ``kind`` names the resource in error messages;
    ``read_timeout`` (seconds without a byte) overrides the client's stream read timeout.
    """

    def __init__(self, client: Client, request: Request, decode_obj: Callable[[Any], K], *,
                 kind: str, read_timeout: Optional[float] = None):
        self._client = client
        self._req = request
        self._decode_obj = decode_obj
        self._kind = kind
        self._read_timeout = read_timeout
        self._lines: Optional[LineStream] = None
        self._closed = False
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._lines is not None

    def __iter__(self) -> Iterator[WatchEvent[K]]:
        req = self._req
        lines = self._client.send_lines(req, read_timeout=self._read_timeout)
        with self._lock:
            if self._closed:  # closed while we were connecting
                lines.close()
                return
            self._lines = lines
        decode_obj, kind = self._decode_obj, self._kind
        try:
            for line in lines:
                if self._closed:
                    return
                yield parse_event(_decode_line(line, req), decode_obj, kind=kind,
                                  method=req.method, url=req.path)
        except TransportError:
            # close() from another thread breaks the read: that is an end, not an error.
            if not self._closed:
                raise
        finally:
            self.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            lines, self._lines = self._lines, None
        if lines is not None:
            lines.close()

    def __enter__(self) -> WatchStream[K]:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _decode_line(line: bytes, req: Request) -> Any:
    """One watch line as JSON; a malformed one is a ``DecodeError`` naming the call (not
    quoting the line: it may hold a Secret's data)."""
    try:
        return loads(line)
    except ValueError as exc:
        raise DecodeError(
            f"a malformed watch line ({len(line)} bytes) in the answer to {req.method} "
            f"{req.path}: {exc}"
        ) from None
