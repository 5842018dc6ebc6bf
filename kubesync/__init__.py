"""kubesync: a synchronous, thread-based Kubernetes SDK for Python."""

import logging
from typing import TYPE_CHECKING, Any

from kubesync._version import __version__
from kubesync.client import Client
from kubesync.client.api import Api
from kubesync.client.discovery import Discovery
from kubesync.client.features import Feature
from kubesync.config import Config
from kubesync.core.convert import ObjectList
from kubesync.core.deprecation import warn_renamed
from kubesync.core.dynamic import DynamicObject
from kubesync.core.params import LabelQuery, Patch
from kubesync.core.resource import ApiResource
from kubesync.crd import CustomResource, custom_resource
from kubesync.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    ConfigError,
    Conflict,
    DecodeError,
    Forbidden,
    Gone,
    Invalid,
    KubeError,
    NotFound,
    RequestTimeout,
    TooManyRequests,
    TransportError,
    Unauthorized,
    UsageError,
)

if TYPE_CHECKING:
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
    "CustomResource",
    "DecodeError",
    "Discovery",
    "DynamicObject",
    "Feature",
    "Forbidden",
    "Gone",
    "Invalid",
    "KubeError",
    "LabelQuery",
    "NotFound",
    "ObjectList",
    "Patch",
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
    if name == "LabelSelector":
        warn_renamed("kubesync.LabelSelector", "kubesync.LabelQuery")
        return LabelQuery
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
