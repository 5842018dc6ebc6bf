"""kubesync: a synchronous, thread-based Kubernetes SDK for Python."""

import logging

from kubesync._version import __version__
from kubesync.client import Client
from kubesync.config import Config
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
    "ApiError",
    "Client",
    "Config",
    "ConfigError",
    "Conflict",
    "DecodeError",
    "Forbidden",
    "Gone",
    "Invalid",
    "KubeError",
    "NotFound",
    "TransportError",
    "Unauthorized",
    "__version__",
]
