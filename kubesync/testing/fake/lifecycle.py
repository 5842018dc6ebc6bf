"""What the real control plane does around deletion, done at once inside the request:
finalizers and deletionTimestamp, ownerReference cascade (background, foreground,
orphan, as the garbage collector does), namespace termination, and CRDs becoming
served (and their objects going with them).

A real cluster does the cascade in kube-controller-manager, seconds later; the fake does
it before the DELETE answers (the answer is still the object as marked, like the real
one's). Tests that wait for the outcome pass on both. A dependent whose owner never
existed is kept (the real collector deletes it). See
https://kubernetes.io/docs/concepts/architecture/garbage-collection/
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol

from kubesync.testing.fake.objects import Clock, meta, timestamp
from kubesync.testing.fake.resources import Registry, ResourceType
from kubesync.testing.fake.storage import Key, Storage


class Backend(Protocol):
    """What the lifecycle needs of the backend (which calls it after each write)."""

    storage: Storage
    registry: Registry
    clock: Clock

    def served(self, rt: ResourceType, obj: Dict[str, Any]) -> Dict[str, Any]: ...

    def write_as_server(self, rt: ResourceType, key: Key, old: Dict[str, Any],
                        change: Callable[[Dict[str, Any]], None], manager: str
                        ) -> Dict[str, Any]: ...

    def type_for(self, key: Key, obj: Mapping[str, Any]) -> Optional[ResourceType]: ...

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
#: The manager name the server's own writes carry, as the real collector's do.
GC_MANAGER = "kube-controller-manager"
_CRD = ("apiextensions.k8s.io", "customresourcedefinitions")
_NAMESPACES = ("", "namespaces")


def prepare_create(rt: ResourceType, obj: Dict[str, Any]) -> None:
    """What the server sets on creation for a few kinds (namespaces, CRDs)."""
    if rt.collection == _NAMESPACES:
        m = obj["metadata"]
        m.setdefault("labels", {})["kubernetes.io/metadata.name"] = m["name"]
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["status"] = {"phase": "Active"}
    elif rt.collection == _CRD:
        spec = obj.get("spec") or {}
        stored = [v.get("name") for v in spec.get("versions") or [] if v.get("storage")]
        obj["status"] = {
            "acceptedNames": spec.get("names") or {},
            "storedVersions": stored,
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "message": "no conflicts found",
                 "lastTransitionTime": obj["metadata"]["creationTimestamp"]},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted",
                 "lastTransitionTime": obj["metadata"]["creationTimestamp"]},
            ],
        }


def after_write(backend: Backend, rt: ResourceType, key: Key, old: Optional[Dict[str, Any]],
                new: Dict[str, Any]) -> None:
    """A write is stored: serve a new CRD, and finish a deletion no finalizer holds."""
    if rt.collection == _CRD:
        backend.registry.set_crd(meta(new)["name"], new)
    m = meta(new)
    if m.get("deletionTimestamp") and not m.get("finalizers"):
        _remove(backend, rt, key, new)


def delete(backend: Backend, rt: ResourceType, key: Key, obj: Dict[str, Any],
           policy: Optional[str]) -> Dict[str, Any]:
    """DELETE: mark (finalizers or a foreground/orphan policy) or remove, then cascade.

    Returns what the DELETE answers: the object as marked, or a Success Status.
    """
    m = meta(obj)
    if m.get("deletionTimestamp"):
        return backend.served(rt, obj)
    finalizers = list(m.get("finalizers") or [])
    if policy == "Foreground" and FOREGROUND not in finalizers:
        finalizers.append(FOREGROUND)
    if policy == "Orphan" and ORPHAN not in finalizers:
        finalizers.append(ORPHAN)
    if rt.collection == _NAMESPACES:
        return _terminate_namespace(backend, rt, key, obj)
    if not finalizers:
        _remove(backend, rt, key, obj)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": m["name"], "group": rt.group, "kind": rt.plural,
                            "uid": m.get("uid")}}
    marked = _mark(backend, rt, key, obj, finalizers)
    answer = backend.served(rt, marked)
    if FOREGROUND in finalizers:
        _delete_dependents(backend, m.get("uid"))
        _check_foreground(backend, m.get("uid"))
    if ORPHAN in finalizers:
        _orphan(backend, rt, key, m.get("uid"))
    return answer


def _mark(backend: Backend, rt: ResourceType, key: Key, obj: Dict[str, Any],
          finalizers: List[str]) -> Dict[str, Any]:
    """Set deletionTimestamp (generation moves too, as on a real server)."""
    new = dict(obj, metadata=dict(meta(obj)))
    nm = new["metadata"]
    nm["deletionTimestamp"] = timestamp(backend.clock)
    nm["deletionGracePeriodSeconds"] = 0
    nm["finalizers"] = finalizers
    if nm.get("generation"):
        nm["generation"] = int(nm["generation"]) + 1
    rv = backend.storage.next_rv()
    nm["resourceVersion"] = str(rv)
    backend.storage.put(key, new, rv)
    return new


def _remove(backend: Backend, rt: ResourceType, key: Key, obj: Dict[str, Any]) -> None:
    """The object is gone: record it, then everything that follows from that."""
    rv = backend.storage.next_rv()
    last = dict(obj, metadata=dict(meta(obj), resourceVersion=str(rv)))
    backend.storage.remove(key, last, rv)
    uid = meta(obj).get("uid")
    if rt.collection == _CRD:
        _drop_crd(backend, obj)
    # Dependents of a removed owner: the collector deletes them in the background.
    for dkey, dep in _dependents(backend, uid):
        _release(backend, dkey, dep, uid)
    for ref in meta(obj).get("ownerReferences") or []:
        _check_foreground(backend, ref.get("uid"))
    if key[2]:
        ns_key = ("", "namespaces", "", key[2])
        ns = backend.storage.get(ns_key)
        if ns is not None and meta(ns).get("deletionTimestamp"):
            _finish_namespace(backend, ns_key, ns)


def _dependents(backend: Backend, uid: Any) -> List[tuple]:
    if not uid:
        return []
    return [(k, o) for k, o in backend.storage.all_items()
            if any(r.get("uid") == uid for r in meta(o).get("ownerReferences") or [])]


def _uids(backend: Backend) -> set:
    return {meta(o).get("uid") for _, o in backend.storage.all_items()}


def _release(backend: Backend, key: Key, dep: Dict[str, Any], owner_uid: Any) -> None:
    """An owner is gone: keep a dependent that has another live owner (dropping the dead
    reference), else delete it in the background."""
    rt = backend.type_for(key, dep)
    if rt is None:
        return
    refs = meta(dep).get("ownerReferences") or []
    alive = _uids(backend)
    if any(r.get("uid") != owner_uid and r.get("uid") in alive for r in refs):
        def drop(o: Dict[str, Any]) -> None:
            o["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != owner_uid]
        backend.write_as_server(rt, key, dep, drop, GC_MANAGER)
    elif not meta(dep).get("deletionTimestamp"):
        delete(backend, rt, key, dep, None)


def _delete_dependents(backend: Backend, uid: Any) -> None:
    for key, dep in _dependents(backend, uid):
        current = backend.storage.get(key)
        rt = backend.type_for(key, dep)
        if current is None or rt is None or meta(current).get("deletionTimestamp"):
            continue
        policy = "Foreground" if _dependents(backend, meta(current).get("uid")) else None
        delete(backend, rt, key, current, policy)


def _check_foreground(backend: Backend, uid: Any) -> None:
    """An owner deleting in the foreground goes once no blocking dependent is left."""
    if not uid:
        return
    found = next(((k, o) for k, o in backend.storage.all_items()
                  if meta(o).get("uid") == uid), None)
    if found is None:
        return
    key, owner = found
    m = meta(owner)
    if not m.get("deletionTimestamp") or FOREGROUND not in (m.get("finalizers") or []):
        return
    blocking = [d for _, d in _dependents(backend, uid)
                if any(r.get("uid") == uid and r.get("blockOwnerDeletion")
                       for r in meta(d).get("ownerReferences") or [])]
    if blocking:
        return
    rt = backend.type_for(key, owner)
    if rt is not None:
        _drop_finalizer(backend, rt, key, owner, FOREGROUND)


def _orphan(backend: Backend, rt: ResourceType, key: Key, uid: Any) -> None:
    for dkey, dep in _dependents(backend, uid):
        drt = backend.type_for(dkey, dep)
        if drt is None:
            continue
        def drop(o: Dict[str, Any]) -> None:
            o["metadata"]["ownerReferences"] = [
                r for r in meta(o).get("ownerReferences") or [] if r.get("uid") != uid]
            if not o["metadata"]["ownerReferences"]:
                del o["metadata"]["ownerReferences"]
        backend.write_as_server(drt, dkey, dep, drop, GC_MANAGER)
    owner = backend.storage.get(key)
    if owner is not None:
        _drop_finalizer(backend, rt, key, owner, ORPHAN)


def _drop_finalizer(backend: Backend, rt: ResourceType, key: Key, obj: Dict[str, Any],
                    name: str) -> None:
    def drop(o: Dict[str, Any]) -> None:
        o["metadata"]["finalizers"] = [f for f in meta(o).get("finalizers") or [] if f != name]
    backend.write_as_server(rt, key, obj, drop, GC_MANAGER)


def _terminate_namespace(backend: Backend, rt: ResourceType, key: Key,
                         ns: Dict[str, Any]) -> Dict[str, Any]:
    """A namespace goes Terminating, its content is deleted, then it goes."""
    new = dict(ns, metadata=dict(meta(ns)), status={"phase": "Terminating"})
    new["metadata"]["deletionTimestamp"] = timestamp(backend.clock)
    new["metadata"]["deletionGracePeriodSeconds"] = 0
    rv = backend.storage.next_rv()
    new["metadata"]["resourceVersion"] = str(rv)
    backend.storage.put(key, new, rv)
    answer = backend.served(rt, new)
    name = key[3]
    for okey, _obj in backend.storage.all_items():
        current = backend.storage.get(okey)
        if okey[2] != name or current is None or meta(current).get("deletionTimestamp"):
            continue
        ort = backend.type_for(okey, current)
        if ort is not None:
            delete(backend, ort, okey, current, None)
    current_ns = backend.storage.get(key)
    if current_ns is not None:
        _finish_namespace(backend, key, current_ns)
    return answer


def _finish_namespace(backend: Backend, key: Key, ns: Mapping[str, Any]) -> None:
    if any(k[2] == key[3] for k, _ in backend.storage.all_items()):
        return
    rt = backend.type_for(key, ns)
    if rt is not None:
        _remove(backend, rt, key, dict(ns))


def _drop_crd(backend: Backend, crd: Mapping[str, Any]) -> None:
    """A CRD is gone: its objects go with it (finalizers notwithstanding, as the real
    server's clean-up does), then its resources stop being served."""
    spec = crd.get("spec") or {}
    collection = (spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
    for key, obj in backend.storage.all_items():
        if key[:2] == collection:
            rv = backend.storage.next_rv()
            backend.storage.remove(key, dict(obj, metadata=dict(meta(obj),
                                                                resourceVersion=str(rv))), rv)
    backend.registry.set_crd(meta(crd)["name"], None)
