"""The special field types of the Kubernetes models, as annotations.

Generated models and hand-written ones (custom resources) use these names; the field
codecs in ``kubesync.core.lazy`` give them their JSON form.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Union

import attrs

__all__ = ["IntOrString", "MicroTime", "Quantity", "Time", "TimeFormat"]


@attrs.frozen
class TimeFormat:
    """How a datetime field is written: ``Time`` in seconds, ``MicroTime`` in microseconds."""

    micro: bool


#: meta/v1 Time: RFC 3339, seconds, UTC (``2024-05-01T10:00:00Z``); a tz-aware datetime.
Time = Annotated[datetime.datetime, TimeFormat(micro=False)]
#: meta/v1 MicroTime: RFC 3339 with microseconds (``2024-05-01T10:00:00.123456Z``).
MicroTime = Annotated[datetime.datetime, TimeFormat(micro=True)]
#: intstr.IntOrString: a port number or name, a count or a percentage.
IntOrString = Union[int, str]
#: resource.Quantity as the server writes it (``500m``, ``1Gi``); see ``parse_quantity``.
Quantity = str
