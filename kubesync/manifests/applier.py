"""Applying manifests: server-side apply in dependency order, like
``kubectl apply --server-side``.

Namespaces and CustomResourceDefinitions first, then (once every CRD is Established)
cluster-scoped objects, then namespaced ones. The only networked part of ``manifests``.
See https://kubernetes.io/docs/reference/using-api/server-side-apply/
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import attrs

from kubesync.core.backoff import NEW_KIND_RETRY
from kubesync.core.clock import SYSTEM_CLOCK, Clock
from kubesync.core.convert import encode
from kubesync.core.dynamic import DynamicObject
from kubesync.core.model import Model
from kubesync.core.resource import ApiResource
from kubesync.errors import KubeError, NotFound, UsageError
from kubesync.manifests.loader import ManifestError, Source, _json, _load, _Origin, _typed

if TYPE_CHECKING:
    from kubesync.client.client import Client

__all__ = ["ApplyError", "apply"]

_CRD_GROUP = "apiextensions.k8s.io"


class ApplyError(ManifestError):
    """The server refused one object; ``error`` is its ``KubeError`` (also ``__cause__``).

    Objects before it in dependency order were applied; none after it.
    """

    def __init__(self, message: str, *, error: KubeError, source: Optional[str] = None,
                 document: Optional[int] = None, line: Optional[int] = None):
        self.error = error
        super().__init__(message, source=source, document=document, line=line)


@attrs.define
class _Planned:
    index: int  # position in the caller's order
    obj: Any
    origin: _Origin
    resource: ApiResource
    namespace: Optional[str]
    name: str

    @property
    def tier(self) -> int:
        # Namespaces, then CRDs (the rest waits for them), then other cluster-scoped
        # objects (ClusterRoles, PriorityClasses... that namespaced ones may use).
        r = self.resource
        if r.group == "" and r.kind == "Namespace":
            return 0
        if _is_crd(r.group, r.kind):
            return 1
        return 2 if not r.namespaced else 3

    def describe(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.resource.kind} {where}"


def _is_crd(group: str, kind: str) -> bool:
    return group == _CRD_GROUP and kind == "CustomResourceDefinition"


def apply(
    client: Client,
    objs_or_source: Union[Source, Any, Iterable[Any]],
    *,
    field_manager: str = "kubesync",
    force: bool = False,
    namespace: Optional[str] = None,
    wait_crds_timeout: float = 60.0,
    progress: Optional[bool] = None,
    clock: Clock = SYSTEM_CLOCK,
) -> List[Any]:
    """Server-side apply objects (or what ``load(source)`` reads), in dependency order.

    Namespaces and CustomResourceDefinitions go first; then, once each CRD is
    Established (within ``wait_crds_timeout`` seconds), cluster-scoped objects, then
    namespaced ones. Namespaced objects that name no namespace go to ``namespace`` (the
    client's default when None); one naming a different namespace than a given
    ``namespace`` is an error, as with ``kubectl apply -n``. Every kind is checked before
    anything is written. Applying the same objects again changes nothing.

    Returns the server's objects in the order given. ``force`` takes fields another
    manager owns (otherwise ``ApplyError`` wrapping a ``Conflict`` names it). The first
    refused object raises ``ApplyError``; the objects applied before it stay applied.
    ``progress`` as in ``kubesync.display.progress`` (None: only where a person watches).
    """
    entries = _entries(objs_or_source)
    batch_crds = _batch_crd_resources(entries)
    plan = _plan(client, entries, batch_crds, namespace)
    results: List[Any] = [None] * len(plan)
    ordered = sorted(plan, key=lambda p: p.tier)  # stable: the given order within a tier
    first = [p for p in ordered if p.tier <= 1]  # namespaces and CRDs
    rest = ordered[len(first):]
    crds = [p for p in first if p.tier == 1]

    from kubesync.display import Progress

    with Progress("Applying", total=len(ordered), unit="objects", enabled=progress) as bar:
        for done, p in enumerate(first, 1):
            results[p.index] = _apply_one(client, p, field_manager, force, None, clock)
            bar.update(done, note=p.describe())
        deadline = clock.monotonic() + wait_crds_timeout
        _await_crds(client, crds, deadline, bar, clock)
        for done, p in enumerate(rest, len(first) + 1):
            new_kind = (p.resource.api_version, p.resource.kind) in batch_crds
            results[p.index] = _apply_one(client, p, field_manager, force,
                                          deadline if new_kind else None, clock)
            bar.update(done, note=p.describe())
    return results


def _entries(objs_or_source: Any) -> List[Tuple[Any, _Origin]]:
    if isinstance(objs_or_source, (str, bytes, os.PathLike)) or hasattr(objs_or_source, "read"):
        return _load(objs_or_source)
    if isinstance(objs_or_source, (Model, DynamicObject, Mapping)):
        objs: List[Any] = [objs_or_source]
    else:
        try:
            objs = list(objs_or_source)
        except TypeError:
            raise UsageError(
                "apply takes objects, a path, YAML text or a stream, "
                f"not {type(objs_or_source).__name__}"
            ) from None
    out: List[Tuple[Any, _Origin]] = []
    for i, obj in enumerate(objs, 1):
        origin = _Origin(f"object {i}")
        if isinstance(obj, Mapping) and not isinstance(obj, DynamicObject):
            obj = _typed(_json(dict(obj), origin, ""), origin)
        elif not isinstance(obj, (Model, DynamicObject)):
            raise UsageError(f"object {i}: apply takes models, DynamicObjects or dicts, "
                             f"not {type(obj).__name__}")
        out.append((obj, origin))
    return out


def _plan(client: Client, entries: List[Tuple[Any, _Origin]],
          batch_crds: Dict[Tuple[str, str], ApiResource],
          namespace: Optional[str]) -> List[_Planned]:
    """Resolve every object's resource, name and namespace before anything is written."""
    default_ns = namespace or client.default_namespace
    plan = []
    for i, (obj, origin) in enumerate(entries):
        resource = getattr(obj, "api_resource", None)
        if not isinstance(resource, ApiResource):
            api_version, kind = obj.api_version, obj.kind
            resource = batch_crds.get((api_version, kind))
            if resource is None:
                resource = _discover(client, api_version, kind, origin)
        meta = obj.metadata
        name = meta.name if meta is not None else None
        if not name:
            raise origin.error(f"the {resource.kind} has no metadata.name "
                               "(server-side apply needs one; generateName is not enough)")
        ns = meta.namespace or None
        if resource.namespaced:
            if namespace is not None and ns not in (None, namespace):
                raise origin.error(
                    f"{resource.kind} {name!r} is in namespace {ns!r}, "
                    f"but the namespace given is {namespace!r}"
                )
            ns = ns or default_ns
        else:
            ns = None
        plan.append(_Planned(i, obj, origin, resource, ns, name))
    return plan


def _discover(client: Client, api_version: Optional[str], kind: Optional[str],
              origin: _Origin) -> ApiResource:
    """The served resource of a manifest's kind, from the client's cached discovery."""
    if api_version and kind:
        try:
            return client.discovery.resource_for(api_version, kind)
        except UsageError:
            pass
    raise origin.error(f"the server has no kind {kind!r} in {api_version!r} "
                       "(a custom resource whose CRD is not installed?)")


def _batch_crd_resources(
    entries: List[Tuple[Any, _Origin]]
) -> Dict[Tuple[str, str], ApiResource]:
    """The resources the CRDs among ``entries`` define, per (apiVersion, kind): known
    before the server serves them, so objects of new kinds can be checked up front."""
    found: Dict[Tuple[str, str], ApiResource] = {}
    for obj, origin in entries:
        group = (obj.api_version or "").rpartition("/")[0]
        if not _is_crd(group, obj.kind or ""):
            continue
        spec = encode(obj).get("spec")
        names = spec.get("names") if isinstance(spec, dict) else None
        if not isinstance(names, dict) or not isinstance(spec.get("group"), str) \
                or not names.get("kind") or not names.get("plural"):
            raise origin.error("the CustomResourceDefinition needs spec.group, "
                               "spec.names.kind and spec.names.plural")
        versions = [v.get("name") for v in spec.get("versions") or []
                    if isinstance(v, dict) and v.get("served", True)]
        if not versions and spec.get("version"):  # apiextensions.k8s.io/v1beta1
            versions = [spec["version"]]
        for version in versions:
            r = ApiResource(spec["group"], str(version), names["kind"], names["plural"],
                            spec.get("scope", "Namespaced") == "Namespaced",
                            short_names=names.get("shortNames") or ())
            found[(r.api_version, r.kind)] = r
    return found


def _await_crds(client: Client, crds: List[_Planned], deadline: float, bar: Any,
                clock: Clock) -> None:
    """Wait until each CRD is Established by ``deadline``; a CRD that is not (its names
    refused, or too slow) raises ``ApplyError`` wrapping the ``CrdNotEstablished``."""
    from kubesync.crd.install import CrdNotEstablished, CrdWaitTimeout, wait_established

    for p in crds:
        bar.update(note=f"waiting for {p.describe()} to be Established")
        try:
            wait_established(client, p.name, timeout=max(0.0, deadline - clock.monotonic()),
                             clock=clock)
        except CrdWaitTimeout as e:
            raise _apply_error(p, e, f"{p.describe()} was not Established in time "
                                     "(wait_crds_timeout)") from e
        except CrdNotEstablished as e:
            # The error reads "CRD <name>: <why>"; the origin names the CRD already.
            raise _apply_error(p, e, f"{p.describe()}: {str(e).partition(': ')[2]}") from e


def _apply_one(client: Client, p: _Planned, field_manager: str, force: bool,
               retry_until: Optional[float], clock: Clock) -> Any:
    """Apply one object; one whose kind a CRD of this batch defines is retried on 404
    (``NEW_KIND_RETRY``) until ``retry_until``."""
    from kubesync.client.api import Api

    kind: Any = type(p.obj) if isinstance(p.obj, Model) else p.resource
    api: Any = Api(client, kind, p.namespace)
    attempt = 0
    while True:
        try:
            result = api.apply(p.obj, field_manager=field_manager, force=force)
            break
        except NotFound as e:
            delay = NEW_KIND_RETRY.delay(attempt)
            if retry_until is None or clock.monotonic() + delay > retry_until:
                raise _apply_error(p, e) from e
            clock.sleep(delay)
            attempt += 1
        except KubeError as e:
            raise _apply_error(p, e) from e
    if isinstance(result, DynamicObject):
        result.api_resource = p.resource
    return result


def _apply_error(p: _Planned, e: KubeError, message: Optional[str] = None) -> ApplyError:
    """``e`` as the ApplyError of ``p``'s origin (``message``: applying ... failed)."""
    if message is None:
        message = f"applying {p.describe()}: {e}"
    if p.origin.item is not None:
        message = f"items[{p.origin.item}]: {message}"
    o = p.origin
    return ApplyError(message, error=e, source=o.source, document=o.document, line=o.line)
