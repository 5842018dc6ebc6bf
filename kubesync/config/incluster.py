"""The in-cluster configuration: a pod's service account.

The API server's address comes from ``KUBERNETES_SERVICE_HOST``/``_PORT``; the token, CA
and namespace from the files the kubelet mounts. The token is re-read whenever the kubelet
rotates it (bound service-account tokens expire after about an hour).
https://kubernetes.io/docs/tasks/run-application/access-api-from-pod/
The reading is ``kubesync.config.incluster_fields``, which yields plain keyword data so
that ``Config.in_cluster`` can use it without importing this module.
"""

from __future__ import annotations

from typing import Mapping, Optional

from kubesync.config.config import Config
from kubesync.config.incluster_fields import SERVICE_ACCOUNT_DIR, available, resolve

__all__ = ["SERVICE_ACCOUNT_DIR", "available", "load"]


def load(env: Optional[Mapping[str, str]] = None, folder: Optional[str] = None) -> Config:
    """The ``Config`` of this pod's service account (``env`` and ``folder`` for tests)."""
    return Config(**resolve(env, folder))
