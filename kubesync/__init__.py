"""kubesync: a synchronous, thread-based Kubernetes SDK for Python."""

import logging

from kubesync._version import __version__
from kubesync.client import Client
from kubesync.client.api import Api
from kubesync.client.discovery import Discovery
from kubesync.config import Config
from kubesync.core.convert import ObjectList
from kubesync.core.dynamic import DynamicObject
from kubesync.core.params import LabelSelector, Patch
from kubesync.core.resource import ApiResource
from kubesync.crd import custom_resource
from kubesync.errors import (
    AlreadyExists,
    ApiError,
    ConfigError,
    Conflict,
    DecodeError,
    Forbidden,
    Gone,
    Invalid,
    KubeError,
    NotFound,
    TransportError,
    Unauthorized,
)

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "AlreadyExists",
    "Api",
    "ApiError",
    "ApiResource",
    "Client",
    "Config",
    "ConfigError",
    "Conflict",
    "DecodeError",
    "Discovery",
    "DynamicObject",
    "Forbidden",
    "Gone",
    "Invalid",
    "KubeError",
    "LabelSelector",
    "NotFound",
    "ObjectList",
    "Patch",
    "TransportError",
    "Unauthorized",
    "__version__",
    "custom_resource",
]
