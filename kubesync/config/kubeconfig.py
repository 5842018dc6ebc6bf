"""Read kubeconfig files, merge them by kubectl's rules and build the ``Config`` of a context.

Merging (https://kubernetes.io/docs/concepts/configuration/organize-cluster-access-kubeconfig/):
files are taken in order; the first file to name a cluster, user or context, or to set
``current-context``, wins, and entries are never combined field by field. Relative paths
(and ``~``) are resolved against the folder of the file that holds them. Every problem is a
``ConfigError`` naming the file and the key, e.g. ``users[alice].user.token``.
The reading is ``kubesync.config.kubeconfig_fields``, which yields plain keyword data so
that ``Config.from_kubeconfig`` can use it without importing this module.
"""

from __future__ import annotations

from typing import Optional, Sequence

from kubesync.config.config import Config
from kubesync.config.kubeconfig_fields import default_paths, resolve

__all__ = ["default_paths", "load"]


def load(
    paths: Sequence[str],
    *,
    context: Optional[str] = None,
    cluster: Optional[str] = None,
    user: Optional[str] = None,
    skip_missing: bool = False,
) -> Config:
    """The ``Config`` for ``context`` (default: ``current-context``) of the merged ``paths``."""
    return Config(**resolve(paths, context=context, cluster=cluster, user=user,
                            skip_missing=skip_missing))
