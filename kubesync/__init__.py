"""kubesync: a synchronous, thread-based Kubernetes SDK for Python."""

import logging
from typing import TYPE_CHECKING, Any

from kubesync._version import __version__
from kubesync.client import Client
from kubesync.client.api import Api
from kubesync.client.discovery import Discovery
from kubesync.client.features import Feature
from kubesync.client.podexec import ExecProcess, ExecResult
from kubesync.client.portforward import PortForward, PortForwardStream
from kubesync.config import Config
from kubesync.core.convert import ObjectList
from kubesync.core.deprecation import warn_renamed
from kubesync.core.dynamic import DynamicObject
from kubesync.core.params import LabelQuery, Patch
from kubesync.core.resource import ApiResource
from kubesync.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    ConfigError,
    Conflict,
    CopyError,
    DecodeError,
    ExecError,
    Forbidden,
    Gone,
    Invalid,
    KubeError,
    NotFound,
    PortForwardError,
    RequestTimeout,
    TooManyRequests,
    TransportError,
    Unauthorized,
    UsageError,
)

if TYPE_CHECKING:
    from kubesync.crd import CustomResource as CustomResource
    from kubesync.crd import custom_resource as custom_resource
    from kubesync.runtime import conditions as conditions

    LabelSelector = LabelQuery  # deprecated spelling, valid for type checkers one release

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "AlreadyExists",
    "Api",
    "ApiError",
    "ApiResource",
    "BadRequest",
    "Client",
    "Config",
    "ConfigError",
    "Conflict",
    "CopyError",
    "CustomResource",
    "DecodeError",
    "Discovery",
    "DynamicObject",
    "ExecError",
    "ExecProcess",
    "ExecResult",
    "Feature",
    "Forbidden",
    "Gone",
    "Invalid",
    "KubeError",
    "LabelQuery",
    "NotFound",
    "ObjectList",
    "Patch",
    "PortForward",
    "PortForwardError",
    "PortForwardStream",
    "RequestTimeout",
    "TooManyRequests",
    "TransportError",
    "Unauthorized",
    "UsageError",
    "__version__",
    "conditions",
    "custom_resource",
]


def __getattr__(name: str) -> Any:
    # ``conditions`` lives in kubesync.runtime, which ``import kubesync`` does not load
    # (it pulls in the threads and the controller): imported on first use instead.
    if name == "conditions":
        from kubesync.runtime import conditions

        return conditions
    if name in ("CustomResource", "custom_resource"):
        # kubesync.crd (schemas, CRD install) is about a tenth of ``import kubesync``;
        # most scripts never define a custom resource, so it loads on first use.
        from kubesync import crd

        return getattr(crd, name)
    if name == "LabelSelector":
        warn_renamed("kubesync.LabelSelector", "kubesync.LabelQuery")
        return LabelQuery
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
