"""API discovery: which groups, versions and resources the server serves, and ``resolve()``.

Reads ``/api`` and ``/apis``, then each group's preferred version (other versions when a
name asks for them). Cached; ``refresh()`` forgets. A group version that cannot be read
(typically an aggregated API whose backend is down: 503 on
``/apis/metrics.k8s.io/v1beta1``) is logged and listed in ``failures``; the rest works.
See https://kubernetes.io/docs/reference/using-api/#api-groups
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

import attrs

from kubesync.core.convert import decode
from kubesync.core.resource import ApiResource
from kubesync.errors import KubeError, NotFound, UsageError

if TYPE_CHECKING:
    from kubesync.client.client import Client

__all__ = ["ApiGroup", "Discovery"]

log = logging.getLogger(__name__)


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

    Thread-safe; reads happen on first use and after ``refresh()``.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._groups: Optional[Dict[str, ApiGroup]] = None
        self._resources: Dict[str, List[_Served]] = {}  # group version -> resources
        self._failures: Dict[str, KubeError] = {}

    def refresh(self) -> Discovery:
        """Forget what was read; the next call reads the server again."""
        with self._lock:
            self._groups = None
            self._resources = {}
            self._failures = {}
        return self

    # -- reading ---------------------------------------------------------------------------

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

    def _load_groups(self) -> Dict[str, ApiGroup]:
        groups = self._groups
        if groups is not None:
            return groups
        from kubesync.models.meta_v1 import APIGroupList, APIVersions

        core = decode(APIVersions, self._client.request("GET", "/api"))
        loaded = {}
        if core.versions:
            loaded[""] = ApiGroup("", tuple(core.versions), core.versions[0])
        for g in decode(APIGroupList, self._client.request("GET", "/apis")).groups or []:
            versions = tuple(v.version for v in g.versions or [])
            preferred = g.preferred_version.version if g.preferred_version else None
            loaded[g.name] = ApiGroup(g.name, versions, preferred or versions[0])
        with self._lock:
            if self._groups is None:
                self._groups = loaded
            return self._groups

    def _load_preferred(self) -> List[_Served]:
        served: List[_Served] = []
        for group in self._load_groups().values():
            gv = f"{group.name}/{group.preferred_version}" if group.name else "v1"
            served.extend(self._read(gv, sweep=True))
        return served

    def _read(self, group_version: str, sweep: bool = False) -> List[_Served]:
        """The resources of one group version. In a ``sweep`` over all groups, one that
        cannot be read is logged and skipped; asked for by name, its error is raised."""
        with self._lock:
            if group_version in self._resources:
                return self._resources[group_version]
            failed = self._failures.get(group_version)
        if failed is not None:
            if sweep:
                return []
            raise failed
        group, _, version = group_version.rpartition("/")
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
        the core group wins (``events`` is core/v1 Event, as in kubectl).
        """
        name = name.strip()
        if not name:
            raise UsageError("an empty resource name")
        parts = name.split("/")
        if len(parts) == 3:
            return self._pick(name, parts[2], self._read(f"{parts[0]}/{parts[1]}"))
        if len(parts) == 2:
            groups = self._load_groups()
            if parts[0] in (groups[""].versions if "" in groups else ()):
                return self._pick(name, parts[1], self._read(parts[0]))
            return self._pick(name, parts[1], self._in_group(parts[0]))
        if len(parts) != 1:
            raise UsageError(f"cannot read {name!r} as a resource name")
        if "." in name:
            word, _, rest = name.partition(".")
            version, _, group = rest.partition(".")
            groups = self._load_groups()
            if group in groups and version in groups[group].versions:
                return self._pick(name, word, self._read(f"{group}/{version}"))
            if rest in groups:
                return self._pick(name, word, self._in_group(rest))
        return self._pick(name, name, self._load_preferred())

    def _in_group(self, group: str) -> List[_Served]:
        found = self._load_groups().get(group)
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
