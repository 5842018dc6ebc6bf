"""RFC 3339 timestamps as the API server writes them (meta/v1 ``Time`` and ``MicroTime``)."""

from __future__ import annotations

import datetime
import re
from typing import Optional

__all__ = ["format_time", "parse_time"]

_UTC = datetime.timezone.utc

_TIME_RE = re.compile(
    r"(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d:\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:?\d\d)?$"
)


def parse_time(text: str) -> datetime.datetime:
    """An RFC 3339 timestamp as a tz-aware datetime (no zone given means UTC)."""
    body = text[:-1] if text[-1:] in ("Z", "z") else text
    try:
        value = datetime.datetime.fromisoformat(body)
    except ValueError:
        # Python < 3.11 takes only 3 or 6 fraction digits; servers may send 1-9.
        m = _TIME_RE.match(text)
        if m is None:
            raise ValueError(f"not an RFC 3339 time: {text!r}") from None
        day, clock, fraction, zone = m.groups()
        micro = (fraction or "")[:6].ljust(6, "0")
        offset = "" if zone in (None, "Z", "z") else zone
        value = datetime.datetime.fromisoformat(f"{day}T{clock}.{micro}{offset}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=_UTC)
    return value


def format_time(value: datetime.datetime, micro: Optional[bool] = None) -> str:
    """RFC 3339 in UTC with ``Z``: seconds (``Time``) or microseconds (``MicroTime``).

    ``micro=None`` writes microseconds only when there are some. A naive datetime is
    taken as UTC.
    """
    if value.tzinfo is not None:
        value = value.astimezone(_UTC).replace(tzinfo=None)
    if micro is None:
        micro = value.microsecond != 0
    return value.isoformat(timespec="microseconds" if micro else "seconds") + "Z"
