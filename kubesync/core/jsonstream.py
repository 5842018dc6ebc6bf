"""Decoding a JSON body while it arrives, so that a LIST's items are parsed as they come.

A LIST of thousands of objects streams for as long as the server takes to make it; parsing
it only once the last byte is in leaves all the parsing for after the wait. ``BodyDecoder``
takes the body in parts (``feed``) and parses each item of a LIST as soon as its text is
complete, in the gaps between reads: when the body ends, only its last part is left.

How items are found, without a JSON scanner of our own: kube-apiserver writes a LIST as
``{"kind":...,"metadata":{...},"items":[{...},{...}]}`` with no whitespace. The envelope
is what comes before the first ``"items":[``; it is taken only if, closed with ``]}``, it
parses as an object whose last key is ``items``. The items then begin alike: the first
item's text up to its second key (``{"metadata":{"name":`` for built-in kinds,
``{"apiVersion":"x.io/v1","kind":`` for custom ones), after ``},``, marks a candidate end
of an item. A candidate may be the end of an object nested deeper that begins the same
way (a StatefulSet's ``volumeClaimTemplates``), or even sit in a string, so none is
trusted: the text from an item's start up to a candidate counts only if it parses. A
part's items are parsed at once, up to its last candidate, as one JSON array; if that
does not parse, items are parsed one by one from then on, and a piece cut short at a
nested end (brackets left open) is kept and extended to the next candidate. After the
last item, ``]`` and the envelope's end (any keys after the items too) are parsed with it.
Every byte of the body is in exactly one parsed part, each parsed at the depth it has in
the body (the parser's nesting limit applies as it would), so the result equals parsing
the whole body, key order and duplicate keys included, and a body that is not JSON
raises ``ValueError`` as parsing it whole does.

Anything else (no envelope in the first 64 KiB, items that are not objects, a body with
whitespace between items, an item larger than 4 MiB or with more than 8 candidate ends
that do not parse) is kept as it comes and parsed whole at the end, as before.

``ItemConverter`` makes what a LIST's items become (a model object each) as they are
parsed, so that this too is done while the server is still sending.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from kubesync.core.json import loads
from kubesync.errors import DecodeError

__all__ = ["BodyDecoder", "ItemConverter"]

#: The envelope of a LIST (kind, apiVersion, metadata) must end within this much text.
HEAD_LIMIT = 64 * 1024
#: Text after the last parsed item beyond this goes to the end-of-body parse.
PIECE_LIMIT = 4 * 1024 * 1024
#: Candidate ends that do not parse, within one item, before the rest of the body goes to
#: the end-of-body parse: each costs a parse of the item so far, so an item with many
#: nested objects that begin as items do costs at most this many parses more.
MISSES_LIMIT = 8
#: The opening of an item, as text (``{"metadata":{"name":``), must fit in this.
OPENING_LIMIT = 80

_ITEMS = b'"items":['
_NONE: Any = object()


def _parse_items(*text: Any) -> List[Any]:
    """The items in the joined ``text`` (one or more, comma-separated; one copy), parsed
    two levels deep, as a LIST's items sit in its body, so that the parser's nesting
    limit applies as in a parse of the whole body."""
    items: List[Any] = loads(b"".join((b"[[", *text, b"]]")))[0]
    return items


class BodyDecoder:
    """Takes a JSON body in parts and gives the decoded document: ``feed(part)`` for each
    part as it arrives, then ``result()``. A LIST's items are parsed as they complete (see
    the module's docstring). Not thread-safe: one reader feeds it."""

    __slots__ = ("_by_item", "_head", "_items", "_misses", "_opening", "_rest", "_result",
                 "_scan", "_tail", "size")

    def __init__(self) -> None:
        self.size = 0  # bytes fed
        self._head: Optional[Dict[str, Any]] = None  # the LIST's envelope, items empty
        self._items: List[Any] = []
        self._tail = b""  # text after the last part parsed
        self._scan = 0  # where in _tail the search for the next item's end resumes
        self._misses = 0  # candidate ends of the current item that did not parse
        self._by_item = False  # a candidate end was a nested one: items one by one
        self._opening: Optional[bytes] = None  # "}," + how an item begins
        self._rest: Optional[List[bytes]] = None  # text for the end-of-body parse
        self._result: Any = _NONE

    @property
    def items(self) -> List[Any]:
        """The LIST items parsed so far, in body order. The list only grows; when the
        result's ``items`` is this same list, it holds them all (otherwise, as when the
        body is not a LIST's or a later ``items`` key wins, it is not the answer's)."""
        return self._items

    def feed(self, data: bytes) -> None:
        """The next part of the body (any size)."""
        self.size += len(data)
        if self._rest is not None:
            self._rest.append(data)
            return
        if self._opening is not None and not self._by_item \
                and self._take_block(self._tail, data, 0, 0):
            return
        buf = self._tail + data if self._tail else data
        start = 0
        if self._head is None:
            start = self._take_head(buf)
            if start < 0:
                return
        if self._opening is None:
            opening = self._learn_opening(buf, start)
            if opening is None:
                return
            self._opening = opening
        self._take_items(buf, start)

    def _take_head(self, buf: bytes) -> int:
        """Where the items start, with the envelope taken; -1 (the text kept) if not yet
        known, or not a LIST's (then everything goes to the end-of-body parse)."""
        at = buf.find(_ITEMS, 0, HEAD_LIMIT + len(_ITEMS))
        if at < 0:
            if len(buf) > HEAD_LIMIT:
                self._rest, self._tail = [buf], b""
            else:
                self._tail = buf
            return -1
        end = at + len(_ITEMS)
        try:
            head = loads(buf[:end] + b"]}")
        except ValueError:
            head = None
        if type(head) is not dict or next(reversed(head), None) != "items" \
                or head["items"] != []:
            self._rest, self._tail = [buf], b""
            return -1
        self._head = head
        self._scan = end
        return end

    def _learn_opening(self, buf: bytes, start: int) -> Optional[bytes]:
        """``},`` + the first item's text up to its second key, or up to its first when
        the second is not near or its first value is neither an object nor a string;
        None when there is not enough text yet (it is kept), or the items are not
        objects (then they go to the end-of-body parse)."""
        rest = buf[start:]
        first = rest.find(b'":', 2, OPENING_LIMIT)
        if not rest.startswith(b'{"') or first < 0:
            if len(rest) >= OPENING_LIMIT or not b'{"'.startswith(rest[:2]):
                self._rest, self._tail = [rest], b""  # no items, or not objects
            else:
                self._tail, self._scan = rest, 0
            return None
        second = rest.find(b'":', first + 2, OPENING_LIMIT)
        if second < 0 and len(rest) < OPENING_LIMIT:
            self._tail, self._scan = rest, 0
            return None
        value = rest[first + 2:second]
        if second > 0 and value[:1] in (b"{", b'"') and b"}" not in value:
            return b"}," + rest[:second + 2]
        return b"}," + rest[:first + 2]

    def _take_block(self, kept: bytes, data: bytes, start: int, lo: int) -> bool:
        """The items that ``data`` completes, in one parse: ``kept`` and ``data`` from
        ``start`` up to its last candidate end (searched from ``lo``), as one JSON array
        (one copy of the text, with the brackets). False, with nothing taken, if there is
        no candidate there, or if the array does not parse (the candidate was a nested
        end: items are then taken one by one, from ``start``)."""
        opening = self._opening
        assert opening is not None
        end = data.rfind(opening, lo)
        if end < 0:
            return False
        try:
            items = _parse_items(kept, memoryview(data)[start:end + 1])
        except ValueError:
            self._by_item = True
            self._scan = start
            return False
        self._items.extend(items)
        self._keep(data, end + 2, len(data))
        return True

    def _take_items(self, buf: bytes, start: int) -> None:
        opening = self._opening
        assert opening is not None
        if not self._by_item:
            # The part's items at once; a candidate straddling the kept text and the part
            # is found here, in the two joined (``feed`` tried the part alone first).
            if self._take_block(b"", buf, start, max(start, self._scan - len(opening) + 1)):
                return
            if not self._by_item:  # no candidate yet
                self._keep(buf, start, len(buf))
                return
        piece = memoryview(buf)
        find, items = buf.find, self._items
        pos = max(self._scan, start)
        while True:
            end = find(opening, pos)
            if end < 0:
                break
            pos = end + 2
            try:
                items.extend(_parse_items(piece[start:end + 1]))
            except ValueError:  # a nested object's end: the item goes on to a later one
                self._misses += 1
                if self._misses > MISSES_LIMIT:
                    self._rest, self._tail = [buf[start:]], b""
                    return
                continue
            start = pos
            self._misses = 0
        # Resume after the last candidate, or where one could straddle the next part.
        self._keep(buf, start, max(pos, len(buf) - len(opening) + 1))

    def _keep(self, buf: bytes, start: int, scan: int) -> None:
        """The text from ``start`` on waits for the next part (or the end-of-body parse,
        when it has grown past ``PIECE_LIMIT``)."""
        tail = buf[start:]
        if len(tail) > PIECE_LIMIT:
            self._rest, self._tail = [tail], b""
        else:
            self._tail, self._scan = tail, scan - start

    def result(self) -> Any:
        """The decoded body; None for an empty one. ``ValueError`` if it is not JSON."""
        if self._result is _NONE:
            self._result = self._finish()
        return self._result

    def _finish(self) -> Any:
        rest = self._tail if self._rest is None else b"".join(self._rest)
        head = self._head
        if head is None:
            return loads(rest) if self.size else None
        # The last item and the envelope's end: "{...}]}" (or "]}" with no items).
        end = loads(b"".join((b'{"items":[', rest)))
        if (b"items" in rest or b"\\u" in rest) and "items" in loads(b"".join((b'{"":[', rest))):
            head.update(end)  # a later "items" key: its value wins, as in a whole parse
            return head
        self._items.extend(end.pop("items"))
        head["items"] = self._items
        head.update(end)  # keys after the items, as a whole parse would keep them
        return head


class ItemConverter:
    """Converts a LIST's items as a ``BodyDecoder`` parses them: ``convert`` is called on
    each run of newly parsed items, in order, and returns one object per item (a list
    filler: ``core.lazy.list_filler``). After the body, ``items`` is the converted items
    of the answer and ``raws`` the answer's own ``items`` list they were made from; both
    None when they could not be made as they came (the body was not parsed in parts, or
    ``convert`` refused a run: then the caller converts the answer's items itself, and
    gets the error as it names the item). Not thread-safe: one reader uses it, through
    ``reset``, ``take`` after each part and ``finish``; one converter per request."""

    __slots__ = ("_convert", "_made", "items", "raws")

    def __init__(self, convert: Callable[[List[Any]], List[Any]]):
        self._convert = convert
        self._made: Optional[List[Any]] = []
        self.items: Optional[List[Any]] = None
        self.raws: Optional[List[Any]] = None

    def reset(self) -> None:
        """Forget a body read before (a retried request reads a new one)."""
        self._made, self.items, self.raws = [], None, None

    def take(self, parsed: List[Any]) -> None:
        """Convert what ``parsed`` (``BodyDecoder.items``) holds past the items taken."""
        made = self._made
        if made is None or len(parsed) <= len(made):
            return
        try:
            made.extend(self._convert(parsed[len(made):]))
        except DecodeError:  # an item is not an object: the caller's whole pass says which
            self._made = None

    def finish(self, result: Any, parsed: List[Any]) -> None:
        """Set ``items`` if ``result``'s items are ``parsed`` (``BodyDecoder.items``)."""
        if self._made is not None and type(result) is dict and result.get("items") is parsed:
            self.take(parsed)
            if self._made is not None and len(self._made) == len(parsed):
                self.items, self.raws = self._made, parsed
