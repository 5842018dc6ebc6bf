"""The subresources only Pods have: ``log`` and ``eviction``. ``Api.logs``/``Api.evict``
call these.

See https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/ for
their options.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterator, Mapping, Optional, Union

from kubesync.core.params import DeleteOptions, WriteParams
from kubesync.core.request import Request, RequestBuilder
from kubesync.errors import Status, UsageError

if TYPE_CHECKING:
    from kubesync.client.client import Client

__all__ = ["evict", "log_query", "logs"]

#: Eviction API versions, newest first: policy/v1 from Kubernetes 1.22, v1beta1 before.
EVICTION_VERSIONS = ("policy/v1", "policy/v1beta1")


def require_pods(rb: RequestBuilder, what: str) -> None:
    """``UsageError`` unless ``rb`` is for core Pods (``what``: "logs are", "exec is")."""
    if rb.resource.kind != "Pod" or rb.resource.group:
        raise UsageError(f"{what} for Pods")


def log_query(
    *, container: Optional[str] = None, follow: bool = False,
    tail_lines: Optional[int] = None, since_seconds: Optional[int] = None,
    timestamps: bool = False, previous: bool = False,
) -> Dict[str, Any]:
    """The query of a ``log`` call (only the options given)."""
    q: Dict[str, Any] = {}
    if container:
        q["container"] = container
    if tail_lines is not None:
        q["tailLines"] = tail_lines
    if since_seconds is not None:
        q["sinceSeconds"] = since_seconds
    if timestamps:
        q["timestamps"] = "true"
    if previous:
        q["previous"] = "true"
    if follow:
        q["follow"] = "true"
    return q


def logs(
    client: Client, rb: RequestBuilder, name: str, *, container: Optional[str] = None,
    follow: bool = False, tail_lines: Optional[int] = None,
    since_seconds: Optional[int] = None, timestamps: bool = False, previous: bool = False,
) -> Union[str, Iterator[str]]:
    """A pod's log as one string; with ``follow=True`` an iterator of lines (str)."""
    require_pods(rb, "logs are")
    req = rb.logs(name, log_query(container=container, follow=follow, tail_lines=tail_lines,
                                  since_seconds=since_seconds, timestamps=timestamps,
                                  previous=previous))
    if follow:
        return _follow(client, req)
    return client.send_text(req)


def _follow(client: Client, req: Request) -> Iterator[str]:
    with client.send_lines(req) as lines:
        for line in lines:
            yield line.decode("utf-8", errors="replace")


def evict(
    client: Client, rb: RequestBuilder, name: str, *,
    grace_period_seconds: Optional[int] = None, dry_run: bool = False,
) -> Status:
    """Evict a pod (an Eviction, respecting PodDisruptionBudgets): the server's Status.

    A budget that forbids it raises ``TooManyRequests``. Servers older than 1.22 know only
    policy/v1beta1 Eviction; the server's version picks it (one cached ``/version``).
    """
    from kubesync.client.features import Feature

    require_pods(rb, "evict is")
    opts = DeleteOptions(grace_period_seconds=grace_period_seconds, dry_run=dry_run).body()
    opts.pop("apiVersion"), opts.pop("kind")
    version = EVICTION_VERSIONS[0 if client.supports(Feature.POLICY_V1_EVICTION) else 1]
    body = {"apiVersion": version, "kind": "Eviction",
            "metadata": {"name": name, "namespace": rb.namespace},
            "deleteOptions": opts}
    data = client.send(rb.create(body, WriteParams(), name=name, subresource="eviction"))
    return Status.from_dict(data if isinstance(data, Mapping) else {})
