"""API discovery: which groups, versions and resources the server serves, and ``resolve()``.

Aggregated discovery first (``apidiscovery.k8s.io/v2``, GA in Kubernetes 1.30; ``v2beta1``
from 1.26): ``/api`` and ``/apis`` each answer every group, version and resource in one
response, so a whole discovery is two requests. Older servers ignore the Accept header and
answer the per-group lists (``APIVersions``/``APIGroupList``); then each group's preferred
version is read on its own (other versions when a name asks for them), as before. The
choice is made from the answer's ``kind``, so the fallback costs no extra request.

Cached; ``refresh()`` forgets, and ``resolve()`` refreshes once by itself when a name is
not found in an answer it had cached before the call (a CRD installed since). A group
version that cannot be read (typically an aggregated API whose backend is down: 503 on
``/apis/metrics.k8s.io/v1beta1``, or ``freshness: Stale`` in the aggregated answer) is
logged and listed in ``failures``; the rest works.
See https://kubernetes.io/docs/reference/using-api/#api-groups and
https://kubernetes.io/docs/concepts/overview/kubernetes-api/#aggregated-discovery
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, Tuple

import attrs

from kubesync.core.convert import decode
from kubesync.core.resource import ApiResource
from kubesync.errors import KubeError, NotFound, ServerError, Status, UsageError


class _Requester(Protocol):
    """What discovery needs of a ``Client`` (a Protocol: the client module imports this one)."""

    def request(self, method: str, path: str, *, headers: Optional[Mapping[str, str]] = None
                ) -> Any: ...

__all__ = ["AGGREGATED_ACCEPT", "ApiGroup", "Discovery"]

log = logging.getLogger(__name__)

#: The Accept header of a root read: aggregated v2, else v2beta1 (1.26-1.29), else plain
#: JSON, which every server answers with the per-group lists (kubectl sends the same).
AGGREGATED_ACCEPT = ", ".join((
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
    "application/json",
))
_AGGREGATED_KIND = "APIGroupDiscoveryList"
_ROOTS = ("/api", "/apis")


@attrs.frozen
class ApiGroup:
    """One API group: its name (``""`` for core), versions served, and the preferred one."""

    name: str
    versions: Tuple[str, ...]
    preferred_version: str


@attrs.frozen
class _Served:
    resource: ApiResource
    singular: str


class Discovery:
    """What the server serves, for kinds without a model and for names users type.

    Thread-safe; reads happen on first use and after ``refresh()``. ``client.discovery``
    is the one a ``Client`` shares between its users (``resolve``, ``manifests.apply``).
    """

    def __init__(self, client: _Requester) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._roots: Dict[str, Dict[str, ApiGroup]] = {}  # "/api" or "/apis" -> its groups
        self._aggregated: Dict[str, bool] = {}  # root -> whether it answered aggregated
        self._resources: Dict[str, List[_Served]] = {}  # group version -> resources
        self._failures: Dict[str, KubeError] = {}

    def refresh(self) -> Discovery:
        """Forget what was read; the next call reads the server again."""
        with self._lock:
            self._roots = {}
            self._aggregated = {}
            self._resources = {}
            self._failures = {}
        return self

    # -- reading ---------------------------------------------------------------------------

    @property
    def aggregated(self) -> bool:
        """Whether the server answered with aggregated discovery (reads ``/apis`` if not
        read yet); False means the per-group fallback is in use."""
        self._root("/apis")
        return self._aggregated.get("/apis", False)

    @property
    def groups(self) -> List[ApiGroup]:
        """The served groups, core (``""``) first, then in the server's order."""
        return list(self._load_groups().values())

    @property
    def failures(self) -> Dict[str, KubeError]:
        """Group versions that could not be read (``"metrics.k8s.io/v1beta1"`` -> error)."""
        self._load_preferred()
        return dict(self._failures)

    def resources(self, group_version: Optional[str] = None) -> List[ApiResource]:
        """The resources of one group version (``"apps/v1"``, ``"v1"``), or of every
        group's preferred version."""
        if group_version is not None:
            return [s.resource for s in self._read(group_version)]
        return [s.resource for s in self._load_preferred()]

    def _root(self, root: str) -> Dict[str, ApiGroup]:
        """The groups under ``root`` (one request, then cached); aggregated answers fill
        the resources of every version as well."""
        groups = self._roots.get(root)
        if groups is not None:
            return groups
        data = self._client.request("GET", root, headers={"Accept": AGGREGATED_ACCEPT})
        data = data if isinstance(data, Mapping) else {}
        resources: Dict[str, List[_Served]] = {}
        failures: Dict[str, KubeError] = {}
        aggregated = data.get("kind") == _AGGREGATED_KIND
        if aggregated:
            groups = _parse_aggregated(data, resources, failures)
        elif root == "/api":
            groups = _parse_core_versions(data)
        else:
            groups = _parse_group_list(data)
        for gv, error in failures.items():
            log.warning("discovery: %s could not be read, skipping it: %s", gv, error)
        with self._lock:
            if root not in self._roots:
                self._roots[root] = groups
                self._aggregated[root] = aggregated
                for gv, served in resources.items():
                    self._resources.setdefault(gv, served)
                for gv, error in failures.items():
                    self._failures.setdefault(gv, error)
            return self._roots[root]

    def _load_groups(self) -> Dict[str, ApiGroup]:
        loaded = dict(self._root("/api"))
        loaded.update(self._root("/apis"))
        return loaded

    def _group(self, name: str) -> Optional[ApiGroup]:
        """One group, reading only the root that holds it."""
        return self._root("/api" if name == "" else "/apis").get(name)

    def _load_preferred(self) -> List[_Served]:
        served: List[_Served] = []
        for group in self._load_groups().values():
            gv = f"{group.name}/{group.preferred_version}" if group.name else "v1"
            served.extend(self._read(gv, sweep=True))
        return served

    def _read(self, group_version: str, sweep: bool = False) -> List[_Served]:
        """The resources of one group version. In a ``sweep`` over all groups, one that
        cannot be read is logged and skipped; asked for by name, its error is raised."""
        group, _, version = group_version.rpartition("/")
        root = "/apis" if group else "/api"
        self._root(root)
        with self._lock:
            if group_version in self._resources:
                return self._resources[group_version]
            failed = self._failures.get(group_version)
            aggregated = self._aggregated.get(root, False)
        if failed is not None:
            if sweep:
                return []
            raise failed
        if aggregated:  # the one answer held every served version: this one is not
            if not sweep:
                raise UsageError(f"the server does not serve {group_version}")
            return []
        path = f"/apis/{group_version}" if group else f"/api/{version}"
        try:
            data = self._client.request("GET", path)
        except NotFound:
            if not sweep:
                raise UsageError(f"the server does not serve {group_version}") from None
            data = {}
        except KubeError as e:
            log.warning("discovery: %s could not be read, skipping it: %s", group_version, e)
            with self._lock:
                self._failures[group_version] = e
            if sweep:
                return []
            raise
        served = _parse(group, version, data)
        with self._lock:
            self._resources[group_version] = served
        return served

    # -- resolve -----------------------------------------------------------------------------

    def resolve(self, name: str) -> ApiResource:
        """The resource a user means by ``name``.

        Takes a plural (``deployments``), singular or kind (``deployment``, ``Deployment``),
        short name (``deploy``), any of those with a group (``deployment.apps``,
        ``deployments.v1.apps``), or a path form (``apps/v1/deployments``, ``v1/pods``).
        Names matching in several groups raise ``UsageError`` listing them, except that
        the core group wins (``events`` is core/v1 Event, as in kubectl). A name not found
        in answers cached before this call is looked up once more after a refresh.
        """
        name = name.strip()
        if not name:
            raise UsageError("an empty resource name")
        return self._refreshing_on_miss(name, lambda: self._resolve(name))

    def resource_for(self, api_version: str, kind: str) -> ApiResource:
        """The resource of ``kind`` in ``api_version`` (``"apps/v1"``, ``"Deployment"``), as a
        manifest names it; ``UsageError`` if the server serves no such kind (after one
        refresh when the answer was cached before this call)."""
        def find() -> ApiResource:
            try:
                served = self._read(api_version)
            except UsageError:
                served = []
            for s in served:
                if s.resource.kind == kind:
                    return s.resource
            raise UsageError(f"the server has no kind {kind!r} in {api_version!r}")

        return self._refreshing_on_miss(f"{api_version} {kind}", find)

    def _refreshing_on_miss(self, what: str, find: Callable[[], ApiResource]) -> ApiResource:
        with self._lock:
            cached = bool(self._roots)
        try:
            return find()
        except UsageError:
            if not cached:
                raise
        log.debug("discovery: %s not in the cached answers; reading the server again", what)
        self.refresh()
        return find()

    def _resolve(self, name: str) -> ApiResource:
        parts = name.split("/")
        if len(parts) == 3:
            return self._pick(name, parts[2], self._read(f"{parts[0]}/{parts[1]}"))
        if len(parts) == 2:
            core = self._group("")
            if parts[0] in (core.versions if core is not None else ()):
                return self._pick(name, parts[1], self._read(parts[0]))
            return self._pick(name, parts[1], self._in_group(parts[0]))
        if len(parts) != 1:
            raise UsageError(f"cannot read {name!r} as a resource name")
        if "." in name:
            word, _, rest = name.partition(".")
            version, _, group = rest.partition(".")
            found = self._group(group) if group else None
            if found is not None and version in found.versions:
                return self._pick(name, word, self._read(f"{group}/{version}"))
            if self._group(rest) is not None:
                return self._pick(name, word, self._in_group(rest))
        return self._pick(name, name, self._load_preferred())

    def _in_group(self, group: str) -> List[_Served]:
        found = self._group(group)
        if found is None:
            raise UsageError(f"the server has no API group {group!r}")
        return self._read(f"{group}/{found.preferred_version}" if group else "v1")

    def _pick(self, asked: str, word: str, served: List[_Served]) -> ApiResource:
        lowered = word.lower()
        matches = [
            s.resource for s in served
            if lowered in (s.resource.plural, s.singular, s.resource.kind.lower())
            or lowered in s.resource.short_names
        ]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            failed = ", ".join(sorted(self._failures))
            hint = f" (could not read: {failed})" if failed else ""
            raise UsageError(f"the server has no resource {asked!r}{hint}")
        core = [r for r in matches if r.group == ""]
        if len(core) == 1:
            return core[0]
        names = ", ".join(sorted(
            f"{r.plural}.{r.version}.{r.group}" if r.group else f"{r.plural} (core/{r.version})"
            for r in matches
        ))
        raise UsageError(f"{asked!r} is ambiguous: {names}; name the group")


# -- the answers -------------------------------------------------------------------------------


def _parse_core_versions(data: Mapping[str, Any]) -> Dict[str, ApiGroup]:
    """``/api``'s legacy answer (APIVersions)."""
    from kubesync.models.meta_v1 import APIVersions

    core = decode(APIVersions, dict(data))
    if not core.versions:
        return {}
    return {"": ApiGroup("", tuple(core.versions), core.versions[0])}


def _parse_group_list(data: Mapping[str, Any]) -> Dict[str, ApiGroup]:
    """``/apis``'s legacy answer (APIGroupList)."""
    from kubesync.models.meta_v1 import APIGroupList

    loaded = {}
    for g in decode(APIGroupList, dict(data)).groups or []:
        versions = tuple(v.version for v in g.versions or [])
        if not versions:
            continue
        preferred = g.preferred_version.version if g.preferred_version else None
        loaded[g.name] = ApiGroup(g.name, versions, preferred or versions[0])
    return loaded


def _parse_aggregated(
    data: Mapping[str, Any],
    resources: Dict[str, List[_Served]],
    failures: Dict[str, KubeError],
) -> Dict[str, ApiGroup]:
    """An APIGroupDiscoveryList: the groups (versions in preference order, as the server
    sorts them), every version's resources into ``resources``, and the versions whose
    backend the server could not reach (``freshness: Stale``) into ``failures``."""
    groups: Dict[str, ApiGroup] = {}
    for item in _dicts(data.get("items")):
        name = str((item.get("metadata") or {}).get("name") or "")
        versions: List[str] = []
        for entry in _dicts(item.get("versions")):
            version = str(entry.get("version") or "")
            if not version:
                continue
            versions.append(version)
            gv = f"{name}/{version}" if name else version
            if entry.get("freshness") == "Stale":
                status = Status(code=503, reason="ServiceUnavailable", status="Failure",
                                message=f"the aggregated API {gv} is stale (its backend "
                                        "did not answer the API server)")
                path = f"/apis/{gv}" if name else "/api/v1"
                failures[gv] = ServerError(status, method="GET", url=path)
                continue
            resources[gv] = _parse_aggregated_resources(name, version, entry)
        if versions:
            groups[name] = ApiGroup(name, tuple(versions), versions[0])
    return groups


def _parse_aggregated_resources(group: str, version: str,
                                entry: Mapping[str, Any]) -> List[_Served]:
    served = []
    for r in _dicts(entry.get("resources")):
        plural = str(r.get("resource") or "")
        kind_of = r.get("responseKind") or {}
        kind = str(kind_of.get("kind") or "")
        if not plural or not kind:
            continue
        subresources = sorted(str(s.get("subresource")) for s in _dicts(r.get("subresources"))
                              if s.get("subresource"))
        resource = ApiResource(
            str(kind_of.get("group") or group), str(kind_of.get("version") or version), kind,
            plural, r.get("scope") == "Namespaced", tuple(r.get("verbs") or ()),
            tuple(subresources), tuple(r.get("shortNames") or ()),
        )
        served.append(_Served(resource, str(r.get("singularResource") or kind).lower()))
    return served


def _dicts(value: Any) -> List[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _parse(group: str, version: str, data: Dict[str, object]) -> List[_Served]:
    """An APIResourceList as ApiResources (subresources folded into their parent)."""
    from kubesync.models.meta_v1 import APIResourceList

    entries = decode(APIResourceList, data).resources or []
    subresources: Dict[str, List[str]] = {}
    for r in entries:
        parent, _, sub = r.name.partition("/")
        if sub:
            subresources.setdefault(parent, []).append(sub)
    served = []
    for r in entries:
        if "/" in r.name:
            continue
        resource = ApiResource(
            r.group or group, r.version or version, r.kind, r.name, bool(r.namespaced),
            tuple(r.verbs or ()), tuple(sorted(subresources.get(r.name, ()))),
            tuple(r.short_names or ()),
        )
        served.append(_Served(resource, (r.singular_name or r.kind).lower()))
    return served
