"""Where credentials come from: kubeconfig files, the in-cluster service account, plugins."""

from kubesync.config.auth import (
    Auth,
    BasicAuth,
    Credentials,
    ExecAuth,
    ExecSpec,
    TokenAuth,
    TokenFileAuth,
)
from kubesync.config.config import Config, Impersonation
from kubesync.config.tls import ClientCert

__all__ = [
    "Auth",
    "BasicAuth",
    "ClientCert",
    "Config",
    "Credentials",
    "ExecAuth",
    "ExecSpec",
    "Impersonation",
    "TokenAuth",
    "TokenFileAuth",
]
