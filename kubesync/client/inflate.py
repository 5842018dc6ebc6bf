"""Inflating a gzip response body: with ISA-L (the ``isal`` package) where it is installed,
zlib otherwise.

kube-apiserver gzips a response above 128 KiB when asked (every ``Client`` asks unless
``disable_compression``), at a fast level: a LIST of 5000 ConfigMaps is 3.2 MB on the
wire and 7.6 MB inflated. zlib inflates that in about 32 ms, ISA-L in about 14 ms, the
same bytes. The body is read in large blocks as sent (compressed) and inflated here,
instead of urllib3 inflating each HTTP chunk of a few KiB as it arrives, and each
inflated part is handed on at once (a LIST's items are parsed as they come:
core/jsonstream.py).
"""

from __future__ import annotations

import zlib
from typing import Any, Callable, Iterator

_inflater: Any
try:  # a platform without an isal wheel (setup.cfg lists the ones with) inflates with zlib
    from isal import isal_zlib

    _inflater, BACKEND = isal_zlib, "isal"
except ImportError:  # pragma: no cover - isal is installed where it has wheels
    _inflater, BACKEND = zlib, "zlib"

__all__ = ["BACKEND", "InflateError", "inflated"]

#: wbits for a gzip stream (header and trailer checked, CRC included).
GZIP_WBITS = 16 + zlib.MAX_WBITS
#: How much compressed body one read asks for.
BLOCK = 256 * 1024

_ERRORS = (zlib.error, getattr(_inflater, "error", zlib.error))


class InflateError(ValueError):
    """A gzip body that does not inflate: corrupt, or cut short."""


def inflated(read: Callable[[int], bytes]) -> Iterator[bytes]:
    """The inflated parts of a gzip stream that ``read(n)`` returns in parts (``b""`` at
    its end), as they come. Several gzip members are inflated one after the other, and
    zero padding after one is skipped, as ``gzip.decompress`` does; anything else that
    is not whole members raises ``InflateError`` (urllib3 ignored bytes after the first
    member)."""
    inflater: Any = _inflater.decompressobj(GZIP_WBITS)
    started = False
    try:
        while True:
            block = read(BLOCK)
            if not block:
                break
            started = True
            while block:
                out = inflater.decompress(block)
                if out:
                    yield out
                if not inflater.eof:
                    break
                # The next member, if any; zero padding after a member is skipped, as
                # gzip.decompress skips it.
                block = inflater.unused_data.lstrip(b"\0")
                if block:
                    inflater = _inflater.decompressobj(GZIP_WBITS)
        out = inflater.flush()
    except _ERRORS as exc:
        raise InflateError(f"the gzip body does not inflate: {exc}") from None
    if started and not inflater.eof:
        raise InflateError("the gzip body ends before its last member does")
    if out:
        yield out
