"""Which resource types the fake serves, and the discovery documents that say so.

Built-in kinds come from the generated models' index (no model class is built until a
request needs one); custom resources are added when a CRD is created on the fake and
removed with it. See https://kubernetes.io/docs/reference/using-api/api-concepts/
"""

from __future__ import annotations

import threading
from typing import Any, Dict, List, Mapping, Optional, Tuple

import attrs

from kubesync.testing.fake.schema import UNTYPED, ModelType, SchemaType, TypeInfo

#: Subresources the fake serves; the others real servers have (exec, log, eviction...)
#: answer 501 and are left out of discovery.
SERVED_SUBRESOURCES = ("status", "scale")
#: Built-in kinds whose ``metadata.generation`` moves with their spec (the rest of the
#: built-ins leave it unset, like ConfigMap and Secret on a real server).
_NO_GENERATION = {"Namespace", "Node", "PersistentVolume", "PersistentVolumeClaim"}


@attrs.frozen
class ScalePaths:
    """Where a kind keeps what its scale subresource shows (JSON paths, ``.spec.x``)."""

    spec_replicas: str = ".spec.replicas"
    status_replicas: str = ".status.replicas"
    label_selector: Optional[str] = None


@attrs.frozen
class ResourceType:
    """One served resource of one version."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: Tuple[str, ...]
    subresources: Tuple[str, ...]
    short_names: Tuple[str, ...] = ()
    scale: Optional[ScalePaths] = None
    schema: Optional[Mapping[str, Any]] = None  # a CRD version's openAPIV3Schema
    crd: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def collection(self) -> Tuple[str, str]:
        return (self.group, self.plural)

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def tracks_generation(self) -> bool:
        return self.crd or (self.has_status and self.kind not in _NO_GENERATION)

    def type_info(self) -> TypeInfo:
        """The merge type of this kind's objects."""
        if self.crd:
            return SchemaType(self.schema) if self.schema else UNTYPED
        from kubesync.models import model_for

        cls = model_for(self.api_version, self.kind)
        return ModelType(cls) if cls is not None else UNTYPED


def _builtin() -> List[ResourceType]:
    from kubesync.models._index import RESOURCES

    out = []
    for (api_version, kind), (plural, namespaced, verbs, subs, shorts) in RESOURCES.items():
        group, _, version = api_version.rpartition("/")
        served = tuple(s for s in subs if s in SERVED_SUBRESOURCES)
        scale = None
        if "scale" in served:
            selector = ".status.selector" if kind == "ReplicationController" else ".spec.selector"
            scale = ScalePaths(label_selector=selector)
        out.append(ResourceType(group, version, kind, plural, namespaced, verbs, served,
                                shorts, scale))
    return out


_CRD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update",
              "watch")


def crd_resources(crd: Mapping[str, Any]) -> List[ResourceType]:
    """The served versions of a CRD object, one ``ResourceType`` each."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out = []
    for v in spec.get("versions") or []:
        if not v.get("served", True):
            continue
        subs = v.get("subresources") or {}
        scale = None
        if "scale" in subs:
            s = subs["scale"] or {}
            scale = ScalePaths(s.get("specReplicasPath", ".spec.replicas"),
                               s.get("statusReplicasPath", ".status.replicas"),
                               s.get("labelSelectorPath"))
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        out.append(ResourceType(
            spec.get("group", ""), v.get("name", ""), names.get("kind", ""),
            names.get("plural", ""), spec.get("scope", "Namespaced") == "Namespaced",
            _CRD_VERBS, tuple(s for s in ("scale", "status") if s in subs),
            tuple(names.get("shortNames") or ()), scale, schema, crd=True))
    return out


class Registry:
    """The served resource types; thread-safe (CRDs come and go while requests run)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_path: Dict[Tuple[str, str, str], ResourceType] = {}
        self._crds: Dict[str, List[ResourceType]] = {}
        for r in _builtin():
            self._by_path[(r.group, r.version, r.plural)] = r

    def find(self, group: str, version: str, plural: str) -> Optional[ResourceType]:
        with self._lock:
            return self._by_path.get((group, version, plural))

    def versions_of(self, group: str, plural: str) -> List[ResourceType]:
        with self._lock:
            return [r for (g, _, p), r in self._by_path.items() if (g, p) == (group, plural)]

    def set_crd(self, name: str, crd: Optional[Mapping[str, Any]]) -> None:
        """Serve ``crd``'s versions (None: stop serving those of the CRD ``name``)."""
        with self._lock:
            for r in self._crds.pop(name, []):
                self._by_path.pop((r.group, r.version, r.plural), None)
            if crd is not None:
                served = crd_resources(crd)
                self._crds[name] = served
                for r in served:
                    self._by_path[(r.group, r.version, r.plural)] = r

    def _groups(self) -> Dict[str, List[str]]:
        """group -> versions, newest-looking first (v2 > v1 > v1beta1 > v1alpha1)."""
        with self._lock:
            found: Dict[str, set] = {}
            for g, v, _ in self._by_path:
                found.setdefault(g, set()).add(v)
        return {g: sorted(vs, key=_version_rank) for g, vs in sorted(found.items())}

    # -- discovery documents --------------------------------------------------------

    def api_versions(self) -> Dict[str, Any]:
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                "serverAddress": "127.0.0.1"}]}

    def _group_doc(self, group: str, versions: List[str]) -> Dict[str, Any]:
        vs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": vs, "preferredVersion": vs[0]}

    def group_list(self) -> Dict[str, Any]:
        groups = [self._group_doc(g, vs) for g, vs in self._groups().items() if g]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def group(self, group: str) -> Optional[Dict[str, Any]]:
        versions = self._groups().get(group)
        if not versions or not group:
            return None
        return dict(self._group_doc(group, versions), kind="APIGroup", apiVersion="v1")

    def resource_list(self, group: str, version: str) -> Optional[Dict[str, Any]]:
        with self._lock:
            types = sorted((r for (g, v, _), r in self._by_path.items()
                            if (g, v) == (group, version)), key=lambda r: r.plural)
        if not types:
            return None
        resources: List[Dict[str, Any]] = []
        for r in types:
            resources.append({"name": r.plural, "singularName": r.kind.lower(),
                              "namespaced": r.namespaced, "kind": r.kind,
                              "verbs": list(r.verbs), "shortNames": list(r.short_names)})
            for sub in r.subresources:
                kind = "Scale" if sub == "scale" else r.kind
                resources.append({"name": f"{r.plural}/{sub}", "singularName": "",
                                  "namespaced": r.namespaced, "kind": kind,
                                  "verbs": ["get", "patch", "update"]})
                if sub == "scale":
                    resources[-1].update(group="autoscaling", version="v1")
        gv = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                "resources": resources}


def _version_rank(version: str) -> Tuple[int, int, int]:
    """Sort key putting GA before beta before alpha, higher numbers first."""
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if m is None:
        return (3, 0, 0)
    stage = {"alpha": 2, "beta": 1, None: 0}[m.group(2)]
    return (stage, -int(m.group(1)), -int(m.group(3) or 0))
