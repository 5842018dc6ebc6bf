"""Put a CRD on a cluster and wait until its API is served; take it away again.

``wait_established`` is the one CRD wait (``install`` and ``kubesync.manifests.apply`` use
it). It polls with a GET, which needs neither a watch nor a thread, so ``crd`` stays below
the runtime package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional, Type, Union, cast

from kubesync.core.backoff import CRD_WAIT
from kubesync.core.clock import SYSTEM_CLOCK, Clock
from kubesync.errors import KubeError, NotFound

# Api and the models are imported when called: ``import kubesync`` (which exports
# custom_resource) should not pay for the API client and the apiextensions models.
if TYPE_CHECKING:
    from kubesync.client.client import Client
    from kubesync.crd.resource import CustomResource
    from kubesync.models.apiextensions_v1 import CustomResourceDefinition

__all__ = [
    "CrdNotAccepted",
    "CrdNotEstablished",
    "CrdWaitTimeout",
    "install",
    "uninstall",
    "wait_established",
]

#: The field manager ``install`` applies as.
FIELD_MANAGER = "kubesync"

CrdSource = Union["Type[CustomResource[Any, Any]]", "CustomResourceDefinition"]


class CrdNotEstablished(KubeError):
    """A CRD's API is not served: the server refused its names, or it took too long.

    ``name`` is the CRD's name. Catch this one for both; the subclasses tell them apart.
    """

    def __init__(self, message: str, *, name: str = ""):
        self.name = name
        super().__init__(message)

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), str(self), self.name))


def _rebuild(cls: Type[CrdNotEstablished], message: str, name: str) -> CrdNotEstablished:
    return cls(message, name=name)


class CrdNotAccepted(CrdNotEstablished):
    """The server refused the CRD's names (NamesAccepted=False), e.g. a plural in use."""


class CrdWaitTimeout(CrdNotEstablished, TimeoutError):
    """The CRD was not Established (or not gone, for ``uninstall``) within the timeout."""


def _condition(crd: Any, ctype: str) -> Any:
    status = getattr(crd, "status", None)
    return next((c for c in getattr(status, "conditions", None) or [] if c.type == ctype),
                None)


def _poll(
    client: Client, name: str, done: Callable[[Any], bool], *, timeout: Optional[float],
    clock: Clock, what: str,
) -> Any:
    """GET the CRD ``name`` until ``done(crd or None)``, backing off as ``CRD_WAIT``."""
    from kubesync.client.api import Api
    from kubesync.models.apiextensions_v1 import CustomResourceDefinition

    api = Api(client, CustomResourceDefinition)
    deadline = None if timeout is None else clock.monotonic() + timeout
    attempt = 0
    while True:
        crd = api.get_opt(name)
        if done(crd):
            return crd
        now = clock.monotonic()
        if deadline is not None and now >= deadline:
            raise CrdWaitTimeout(f"CRD {name}: {what} within {timeout}s", name=name)
        delay = CRD_WAIT.delay(attempt)
        attempt += 1
        clock.sleep(delay if deadline is None else min(delay, deadline - now))


def wait_established(
    client: Client, name: str, *, timeout: Optional[float] = 60.0,
    clock: Clock = SYSTEM_CLOCK,
) -> CustomResourceDefinition:
    """Wait until the CRD ``name`` is Established (its API is served) and return it.

    Raises ``CrdNotAccepted`` as soon as the server refuses its names, ``CrdWaitTimeout``
    after ``timeout`` seconds (None: no limit); both are ``CrdNotEstablished``.
    """

    def settled(crd: Any) -> bool:
        if crd is None:
            return False
        established = _condition(crd, "Established")
        names = _condition(crd, "NamesAccepted")
        return (established is not None and established.status == "True") or (
            names is not None and names.status == "False")

    crd = _poll(client, name, settled, timeout=timeout, clock=clock, what="not Established")
    established = _condition(crd, "Established")
    if established is None or established.status != "True":
        names = _condition(crd, "NamesAccepted")
        why = ": ".join(str(p) for p in (names.reason, names.message) if p)
        raise CrdNotAccepted(f"CRD {name}: names not accepted: {why}", name=name)
    return cast("CustomResourceDefinition", crd)


def install(
    client: Client,
    resource: CrdSource,
    *,
    timeout: Optional[float] = 60.0,
    field_manager: str = FIELD_MANAGER,
    force: bool = True,
    clock: Clock = SYSTEM_CLOCK,
) -> CustomResourceDefinition:
    """Server-side apply the CRD of ``resource`` (a resource class, or a CRD such as
    ``merge_crds`` gives) and wait until it is Established, i.e. its API is served.

    ``force`` takes over fields another manager set (re-installing over ``kubectl
    apply``). A CRD using CEL rules or selectable fields on a server too old to keep them
    raises ``FeatureUnavailable`` before anything is sent. Raises ``CrdNotAccepted`` if
    the server refuses the names, ``CrdWaitTimeout``
    after ``timeout`` seconds (see ``wait_established``).

    Re-installing a CRD that is Established already returns at once, but the API server
    applies a changed schema a moment later (nothing in the CRD's status says when): a
    write right after an upgrade may still be pruned by the old schema.
    """
    from kubesync.client.api import Api
    from kubesync.models.apiextensions_v1 import CustomResourceDefinition

    crd = resource.crd() if isinstance(resource, type) else resource
    _check_server_offers(client, crd)
    api = Api(client, CustomResourceDefinition)
    applied = api.apply(crd, field_manager=field_manager, force=force)
    name = applied.metadata.name if applied.metadata else None
    if not name:
        raise KubeError("the server answered the CRD apply without a name")
    return wait_established(client, name, timeout=timeout, clock=clock)


def _check_server_offers(client: Client, crd: CustomResourceDefinition) -> None:
    """Refuse a CRD using what the server's version lacks: an old server would drop CEL
    rules and selectable fields without a word (its schema pruning), leaving a CRD that
    validates less than written, or field selectors that fail later."""
    from kubesync.client.features import Feature
    from kubesync.core.convert import encode

    body = encode(crd)
    name = body.get("metadata", {}).get("name", "the CRD")
    for v in body.get("spec", {}).get("versions") or []:
        where = f"CRD {name} version {v.get('name')}"
        rules = list(_rules_in(v.get("schema") or {}))
        if rules:
            client.require(Feature.CRD_VALIDATION_RULES,
                           f"{where}: CEL validation rules (x-kubernetes-validations)")
        if any(k in r for r in rules for k in ("reason", "fieldPath")):
            client.require(Feature.CRD_VALIDATION_REASON,
                           f"{where}: reason and fieldPath of CEL rules")
        if v.get("selectableFields"):
            client.require(Feature.CRD_SELECTABLE_FIELDS, f"{where}: selectableFields")


def _rules_in(node: Any) -> Any:
    """Every x-kubernetes-validations entry under a schema node."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "x-kubernetes-validations" and isinstance(value, list):
                yield from (r for r in value if isinstance(r, dict))
            else:
                yield from _rules_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from _rules_in(item)


def uninstall(
    client: Client, resource: CrdSource, *, wait: bool = True, timeout: Optional[float] = 60.0,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """Delete the CRD of ``resource`` (and so every object of it); with ``wait``, return
    once it is gone (``CrdWaitTimeout`` after ``timeout`` seconds). Absent already is fine."""
    from kubesync.client.api import Api
    from kubesync.models.apiextensions_v1 import CustomResourceDefinition

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
        uid = current.metadata.uid
        _poll(client, name, lambda crd: crd is None or crd.metadata.uid != uid,
              timeout=timeout, clock=clock, what="not deleted")
