"""``Config``: everything a ``Client`` needs to reach and authenticate to one API server."""

from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import attrs

from kubesync.config import incluster_fields, kubeconfig_fields
from kubesync.config.auth import Auth, Impersonation
from kubesync.config.tls import ClientCert
from kubesync.config.urls import redact_url, server_url_problem
from kubesync.errors import ConfigError

__all__ = ["Config", "Impersonation", "redact_url"]

PathArg = Union[str, "os.PathLike[str]"]


@attrs.define(frozen=True)
class Config:
    """Where the API server is, how to trust it and who we are to it.

    Build one with ``infer()``, ``from_kubeconfig()`` or ``in_cluster()``; it is a frozen
    value (``attrs.evolve(config, namespace="x")`` gives a changed copy). Secrets (key,
    token) never appear in its ``repr``; a ``server`` URL that is not a plain http(s) URL
    with a host, or that carries a user name or password, is a ``ConfigError`` here.
    """

    server: str
    namespace: str = "default"
    ca_pem: Optional[bytes] = attrs.field(default=None, repr=False)
    client_cert: Optional[ClientCert] = None
    auth: Optional[Auth] = None
    insecure_skip_tls_verify: bool = False
    tls_server_name: Optional[str] = None
    proxy_url: Optional[str] = attrs.field(default=None, repr=lambda u: repr(redact_url(u)))
    impersonate: Optional[Impersonation] = None
    disable_compression: bool = False
    context: Optional[str] = None
    source: str = ""
    #: A CA file to re-read when it changes (the in-cluster ``ca.crt``, which the kubelet
    #: updates on service-account CA rotation); its contents replace ``ca_pem``.
    ca_file: Optional[str] = None

    def __attrs_post_init__(self) -> None:
        problem = server_url_problem(self.server)
        if problem is not None:
            raise ConfigError(f"the server URL {problem}", source=self.source or None,
                              key="server")

    @classmethod
    def infer(cls, *, exec_allowlist: Optional[Sequence[str]] = None) -> Config:
        """``KUBECONFIG`` (merged), else ``~/.kube/config``, else the in-cluster service account.

        ``exec_allowlist`` names the exec credential plugins a kubeconfig may run (bare
        names as on PATH, or exact paths); None allows any, as kubectl does.
        """
        paths = [p for p in kubeconfig_fields.default_paths() if os.path.exists(p)]
        if paths:
            return Config(**kubeconfig_fields.resolve(paths, exec_allowlist=exec_allowlist))
        if incluster_fields.available():
            return Config(**incluster_fields.resolve())
        tried = ", ".join(kubeconfig_fields.default_paths())
        raise ConfigError(
            f"no Kubernetes configuration found: no kubeconfig at {tried}, and not in a "
            "cluster (KUBERNETES_SERVICE_HOST is not set)"
        )

    @classmethod
    def from_kubeconfig(
        cls,
        path: Union[PathArg, Sequence[PathArg], None] = None,
        context: Optional[str] = None,
        cluster: Optional[str] = None,
        user: Optional[str] = None,
        *,
        exec_allowlist: Optional[Sequence[str]] = None,
    ) -> Config:
        """Read a kubeconfig (or merge a list, by kubectl's rules) and pick a context.

        ``path`` None means ``KUBECONFIG`` or ``~/.kube/config``; ``context`` None means
        its ``current-context``; ``cluster``/``user`` override the context's choice.
        ``exec_allowlist`` names the exec credential plugins it may run (``["aws",
        "/usr/local/bin/gke-gcloud-auth-plugin"]``): a kubeconfig you did not write then
        cannot run any other command; None allows any, as kubectl does.
        """
        if path is None:  # missing files in a KUBECONFIG list are skipped, as kubectl does
            return Config(**kubeconfig_fields.resolve(
                kubeconfig_fields.default_paths(),
                context=context,
                cluster=cluster,
                user=user,
                skip_missing=True,
                exec_allowlist=exec_allowlist,
            ))
        if isinstance(path, (str, os.PathLike)):
            paths = [os.fspath(path)]
        else:
            paths = [os.fspath(p) for p in path]
        return Config(**kubeconfig_fields.resolve(paths, context=context, cluster=cluster,
                                                  user=user, exec_allowlist=exec_allowlist))

    @classmethod
    def in_cluster(cls) -> Config:
        """The pod's service account: API host from the environment, token, CA, namespace."""
        return Config(**incluster_fields.resolve())
