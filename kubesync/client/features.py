"""What a server offers, from its version: ``ServerVersion`` and ``Feature``.

``Client.server_version()`` reads ``/version`` once; ``Client.supports(Feature.X)``
compares it with the release in which the feature became on by default (beta or GA), so
code can pick a path without trying one and reading the error. A cluster admin can still
switch a beta feature off; the server's own error then reaches the caller as usual.
"""

from __future__ import annotations

import enum
import re
from typing import Any, Mapping, Optional, Tuple

import attrs

from kubesync.errors import DecodeError

__all__ = ["Feature", "ServerVersion"]

_LEADING_DIGITS = re.compile(r"\d+")
_GIT_VERSION = re.compile(r"v?(\d+)\.(\d+)")


class Feature(enum.Enum):
    """A server feature, valued by the (major, minor) release that turned it on by default.

    Sources: the Kubernetes feature-gate table
    (https://kubernetes.io/docs/reference/command-line-tools-reference/feature-gates/)
    and the API references of each kind.
    """

    #: apidiscovery.k8s.io: v2beta1 on by default in 1.26, v2 GA in 1.30.
    AGGREGATED_DISCOVERY = (1, 26)
    #: The fieldValidation query parameter of writes: beta (on) in 1.25, GA in 1.27.
    FIELD_VALIDATION = (1, 25)
    #: Streaming lists (watch with sendInitialEvents, WatchList): beta and on in 1.32, off
    #: again by default in 1.33, on from 1.34.
    STREAMING_LIST = (1, 34)
    #: policy/v1 Eviction (1.22; policy/v1beta1 before).
    POLICY_V1_EVICTION = (1, 22)
    #: CEL rules in CRD schemas (x-kubernetes-validations): beta (on) in 1.25, GA in 1.29.
    CRD_VALIDATION_RULES = (1, 25)
    #: messageExpression in CEL rules: 1.27; reason and fieldPath: 1.28.
    CRD_VALIDATION_REASON = (1, 28)
    #: selectableFields of CRD versions: beta (on) in 1.31, GA in 1.32.
    CRD_SELECTABLE_FIELDS = (1, 31)
    #: The ephemeralcontainers subresource of Pods: beta (on) in 1.23, GA in 1.25.
    EPHEMERAL_CONTAINERS = (1, 23)
    #: The resize subresource of Pods (in-place resize): beta (on) in 1.33, GA in 1.35.
    POD_RESIZE = (1, 33)

    @property
    def since(self) -> Tuple[int, int]:
        """The (major, minor) release from which servers offer it by default."""
        major, minor = self.value
        return major, minor

    @property
    def release(self) -> str:
        """``since`` as text (``"1.30"``)."""
        major, minor = self.since
        return f"{major}.{minor}"


@attrs.frozen
class ServerVersion:
    """The API server's ``/version``: ``major``/``minor`` as numbers, ``git_version`` as
    reported (``v1.30.2``, ``v1.29.4-gke.100``)."""

    major: int
    minor: int
    git_version: str = ""
    platform: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerVersion:
        """Parse a ``version.Info``; providers' ``minor`` like ``"29+"`` count as 29."""
        git = str(data.get("gitVersion") or "")
        major, minor = _number(data.get("major")), _number(data.get("minor"))
        if major is None or minor is None:
            found = _GIT_VERSION.match(git)
            if found is None:
                raise DecodeError(f"the server's /version has no version number: {dict(data)!r}")
            major, minor = int(found.group(1)), int(found.group(2))
        return cls(major, minor, git, str(data.get("platform") or ""))

    def at_least(self, major: int, minor: int) -> bool:
        return (self.major, self.minor) >= (major, minor)

    def supports(self, feature: Feature) -> bool:
        """Whether a server of this version offers ``feature`` by default."""
        return self.at_least(*feature.since)

    def __str__(self) -> str:
        return self.git_version or f"{self.major}.{self.minor}"


def _number(value: Any) -> Optional[int]:
    found = _LEADING_DIGITS.match(str(value or ""))
    return int(found.group()) if found else None
