"""Put a CRD on a cluster and wait until its API is served; take it away again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Type, Union, cast

from kubesync.errors import KubeError, NotFound

# Api and the waiting helpers are imported when called: ``import kubesync`` (which exports
# custom_resource) should not pay for the runtime package's threads and watchers.
if TYPE_CHECKING:
    from kubesync.client.client import Client
    from kubesync.crd.resource import CustomResource
    from kubesync.models.apiextensions_v1 import CustomResourceDefinition

__all__ = ["CrdNotAccepted", "install", "uninstall"]

#: The field manager ``install`` applies as.
FIELD_MANAGER = "kubesync"

CrdSource = Union["Type[CustomResource[Any, Any]]", "CustomResourceDefinition"]


class CrdNotAccepted(KubeError):
    """The server refused the CRD's names (NamesAccepted=False), e.g. a plural in use."""


def install(
    client: Client,
    resource: CrdSource,
    *,
    timeout: Optional[float] = 60.0,
    field_manager: str = FIELD_MANAGER,
    force: bool = True,
) -> CustomResourceDefinition:
    """Server-side apply the CRD of ``resource`` (a resource class, or a CRD such as
    ``merge_crds`` gives) and wait until it is Established, i.e. its API is served.

    ``force`` takes over fields another manager set (re-installing over ``kubectl
    apply``). Raises ``CrdNotAccepted`` if the server refuses the names, ``WaitTimeout``
    after ``timeout`` seconds.
    """
    from kubesync.client.api import Api
    from kubesync.models.apiextensions_v1 import CustomResourceDefinition
    from kubesync.runtime.conditions import find_condition, is_crd_established_or_refused
    from kubesync.runtime.wait import await_condition

    crd = resource.crd() if isinstance(resource, type) else resource
    api = Api(client, CustomResourceDefinition)
    applied = api.apply(crd, field_manager=field_manager, force=force)
    name = applied.metadata.name if applied.metadata else None
    if not name:
        raise KubeError("the server answered the CRD apply without a name")
    done = await_condition(api, name, is_crd_established_or_refused(), timeout=timeout)
    refused = find_condition(done, "NamesAccepted")
    if refused is not None and refused.status == "False":
        raise CrdNotAccepted(f"CRD {name}: {refused.reason}: {refused.message}")
    return cast("CustomResourceDefinition", done)  # the condition holds only for an object


def uninstall(
    client: Client, resource: CrdSource, *, wait: bool = True, timeout: Optional[float] = 60.0
) -> None:
    """Delete the CRD of ``resource`` (and so every object of it); with ``wait``, return
    once it is gone. Absent already is fine."""
    from kubesync.client.api import Api
    from kubesync.models.apiextensions_v1 import CustomResourceDefinition
    from kubesync.runtime.conditions import is_deleted
    from kubesync.runtime.wait import await_condition

    crd = resource.crd() if isinstance(resource, type) else resource
    name = crd.metadata.name if crd.metadata else None
    if not name:
        raise KubeError("the CRD has no metadata.name")
    api = Api(client, CustomResourceDefinition)
    current = api.get_opt(name)
    if current is None or current.metadata is None or current.metadata.uid is None:
        return
    try:
        api.delete(name)
    except NotFound:
        return
    if wait:
        await_condition(api, name, is_deleted(current.metadata.uid), timeout=timeout)
