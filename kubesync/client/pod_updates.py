"""Pod changes made through subresources: ephemeral (debug) containers and in-place resize.

``Api.add_ephemeral_container`` and ``Api.resize`` call these. Both are strategic merge
patches of the pod's ``spec`` sent to a subresource, so nothing else of the pod changes and
no resourceVersion is needed. The server's version is checked first (one cached
``/version``), so an old server gives ``FeatureUnavailable`` instead of a bare 404.
See https://kubernetes.io/docs/concepts/workloads/pods/ephemeral-containers/ and
https://kubernetes.io/docs/tasks/configure-pod-container/resize-container-resources/
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional

from kubesync.client.features import Feature
from kubesync.core.convert import encode
from kubesync.core.params import Patch, WriteParams
from kubesync.core.request import Request, RequestBuilder
from kubesync.errors import UsageError

if TYPE_CHECKING:
    from kubesync.client.client import Client

__all__ = ["ephemeral_container_request", "resize_request"]


def _require_pods(rb: RequestBuilder, what: str) -> None:
    if rb.resource.kind != "Pod" or rb.resource.group:
        raise UsageError(f"{what} is for Pods, not {rb.resource.kind}")


def _json(value: Any, what: str) -> Dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    try:
        body = encode(value)
    except Exception:
        raise UsageError(f"{what} is a model or a mapping, not {type(value).__name__}") from None
    if not isinstance(body, dict):
        raise UsageError(f"{what} is a model or a mapping, not {type(value).__name__}")
    return body


def ephemeral_container_request(
    client: Client, rb: RequestBuilder, name: str, container: Any, *,
    field_manager: Optional[str] = None,
) -> Request:
    """The patch adding ``container`` (an ``EphemeralContainer`` or its mapping, with a
    ``name`` and an ``image``) to pod ``name``'s ephemeral containers."""
    _require_pods(rb, "add_ephemeral_container")
    body = _json(container, "the ephemeral container")
    if not body.get("name") or not body.get("image"):
        raise UsageError("an ephemeral container needs a name and an image")
    client.require(Feature.EPHEMERAL_CONTAINERS, "adding an ephemeral container")
    # Strategic merge keys ephemeralContainers by name: the others stay as they are.
    patch = Patch.strategic({"spec": {"ephemeralContainers": [body]}})
    return rb.patch(name, patch, WriteParams(field_manager=field_manager),
                    subresource="ephemeralcontainers")


def resize_request(
    client: Client, rb: RequestBuilder, name: str, resources: Mapping[str, Any], *,
    field_manager: Optional[str] = None,
) -> Request:
    """The patch setting the ``resources`` of pod ``name``'s containers in place, from
    ``{container name: ResourceRequirements or its mapping}``."""
    _require_pods(rb, "resize")
    if not resources:
        raise UsageError("resize needs at least one container's resources")
    containers = [{"name": c, "resources": _json(r, f"the resources of {c!r}")}
                  for c, r in resources.items()]
    client.require(Feature.POD_RESIZE, "resizing a pod in place")
    patch = Patch.strategic({"spec": {"containers": containers}})
    return rb.patch(name, patch, WriteParams(field_manager=field_manager), subresource="resize")
