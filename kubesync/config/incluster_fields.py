"""The in-cluster configuration's fields: a pod's service account, as ``Config`` keywords.

The API server's address comes from ``KUBERNETES_SERVICE_HOST``/``_PORT``; the token, CA
and namespace from the files the kubelet mounts. The token is re-read whenever the kubelet
rotates it (bound service-account tokens expire after about an hour).
https://kubernetes.io/docs/tasks/run-application/access-api-from-pod/
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any, Dict, Mapping, Optional

from kubesync.config.auth import TokenFileAuth
from kubesync.errors import ConfigError

__all__ = ["SERVICE_ACCOUNT_DIR", "available", "resolve"]

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
HOST_ENV, PORT_ENV = "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"


def available(env: Optional[Mapping[str, str]] = None) -> bool:
    """Whether the environment looks like a pod's (the service host variable is set)."""
    env = os.environ if env is None else env
    return bool(env.get(HOST_ENV))


def resolve(
    env: Optional[Mapping[str, str]] = None, folder: Optional[str] = None
) -> Dict[str, Any]:
    """The ``Config`` keyword arguments of this pod's service account (``env`` and
    ``folder`` for tests): plain data, so this module needs no ``Config``."""
    env = os.environ if env is None else env
    folder = SERVICE_ACCOUNT_DIR if folder is None else folder
    host, port = env.get(HOST_ENV, ""), env.get(PORT_ENV, "")
    for name, value in ((HOST_ENV, host), (PORT_ENV, port)):
        if not value:
            raise ConfigError(
                "not running in a cluster: the variable is not set", source="environment", key=name
            )
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a DNS name
    ca_path = os.path.join(folder, "ca.crt")
    try:
        with open(ca_path, "rb") as f:
            ca = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read the cluster CA: {exc.strerror}", source=ca_path) from None
    token_path = os.path.join(folder, "token")
    auth = TokenFileAuth(token_path, source=token_path)
    try:
        with open(os.path.join(folder, "namespace"), encoding="utf-8") as f:
            namespace = f.read().strip()
    except OSError:
        namespace = ""
    return dict(
        server=f"https://{host}:{port}",
        namespace=namespace or "default",
        ca_pem=ca,
        ca_file=ca_path,
        auth=auth,
        source=folder,
        context="in-cluster",
    )
