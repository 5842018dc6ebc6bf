"""The API verbs over ``Storage``: create, get, list, replace, patch, apply, delete, and
the status and scale subresources, with the real server's object rules.

What it does as a real server does: uid, creationTimestamp, generateName, generation
(spec changes only), one resourceVersion counter, optimistic concurrency, no-op writes
that change nothing, namespaces that must exist and refuse content while terminating,
finalizers and deletionTimestamp. Cascading deletion is ``lifecycle``'s. What it leaves
out (defaulting, validation beyond names, admission, conversion) is in docs/testing.md.
Every method runs under ``storage.lock``: a request sees and makes one consistent change.
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import yaml

from kubesync.testing.fake import lifecycle, managed
from kubesync.testing.fake.objects import (
    CONTINUE_TOO_OLD,
    Clock,
    check_name,
    decode_continue,
    encode_continue,
    generate_name,
    key_of,
    meta,
    partial,
    scale_of,
    set_path,
    timestamp,
)
from kubesync.testing.fake.patch import json_patch, merge_patch, strategic_merge
from kubesync.testing.fake.resources import Registry, ResourceType
from kubesync.testing.fake.selectors import field_matcher, label_matcher
from kubesync.testing.fake.status import (
    StatusError,
    already_exists,
    bad_request,
    conflict,
    forbidden,
    invalid,
    not_found,
    not_implemented,
)
from kubesync.testing.fake.storage import Key, Storage, TooOld

Query = Mapping[str, str]
_RV_CONFLICT = "the object has been modified; please apply your changes to the latest " \
               "version and try again"
_CRD = ("apiextensions.k8s.io", "customresourcedefinitions")
_NAMESPACES = ("", "namespaces")
PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/json-patch+json": "json",
    "application/apply-patch+yaml": "apply",
}


class Backend:
    """The verbs; one per server, shared by its request threads."""

    def __init__(self, storage: Storage, registry: Registry, clock: Clock,
                 rng: Optional[random.Random] = None) -> None:
        self.storage = storage
        self.registry = registry
        self.clock = clock
        self._rng = rng or random.Random()

    # -- reads ----------------------------------------------------------------------

    def _existing(self, rt: ResourceType, namespace: Optional[str], name: str
                  ) -> Tuple[Key, Dict[str, Any]]:
        key = key_of(rt, namespace, name)
        obj = self.storage.get(key)
        if obj is None:
            raise not_found(rt.plural, rt.group, name)
        return key, obj

    def served(self, rt: ResourceType, obj: Dict[str, Any]) -> Dict[str, Any]:
        """``obj`` as this version serves it (versions of a CRD share storage; the fake
        converts none: only ``apiVersion`` changes)."""
        if obj.get("apiVersion") == rt.api_version:
            return obj
        return dict(obj, apiVersion=rt.api_version)

    def listed(self, rt: ResourceType, obj: Dict[str, Any]) -> Dict[str, Any]:
        """``obj`` as a LIST's item: as the real server lists them, a built-in kind's
        items leave out their ``apiVersion`` and ``kind`` (the list names them once); a
        custom resource's keep them."""
        if rt.crd:
            return self.served(rt, obj)
        return {k: v for k, v in obj.items() if k != "apiVersion" and k != "kind"}

    def get(self, rt: ResourceType, namespace: Optional[str], name: str,
            subresource: str = "") -> Dict[str, Any]:
        with self.storage.lock:
            _, obj = self._existing(rt, namespace, name)
            if subresource == "scale":
                return scale_of(rt, obj)
            return self.served(rt, obj)

    def list(self, rt: ResourceType, namespace: Optional[str], query: Query,
             metadata_only: bool = False) -> Dict[str, Any]:
        limit = _int(query, "limit") or 0
        token = query.get("continue")
        rv_param = query.get("resourceVersion") or ""
        match = query.get("resourceVersionMatch") or ""
        with self.storage.lock:
            current = self.storage.resource_version
            after: Optional[Tuple[str, str]] = None
            try:
                if token:
                    list_rv, after = decode_continue(token)
                    items = self.storage.snapshot(list_rv, rt.collection, namespace)
                elif match == "Exact":
                    list_rv = _rv_number(rv_param)
                    items = self.storage.snapshot(list_rv, rt.collection, namespace)
                else:
                    if match not in ("", "NotOlderThan"):
                        raise bad_request(f"resourceVersionMatch {match!r} is not valid")
                    if rv_param not in ("", "0") and _rv_number(rv_param) > current:
                        raise StatusError(504, "Timeout", f"Too large resource version: "
                                          f"{rv_param}, current: {current}",
                                          details={"causes": [{
                                              "reason": "ResourceVersionTooLarge",
                                              "message": "Too large resource version"}]})
                    list_rv = current
                    items = self.storage.items(rt.collection, namespace)
            except TooOld:
                if token:
                    raise CONTINUE_TOO_OLD from None
                raise StatusError(410, "Expired", f"too old resource version: {rv_param} "
                                  f"({current})") from None
        labels = label_matcher(query.get("labelSelector"))
        fields = field_matcher(query.get("fieldSelector"))
        chosen = [o for o in items
                  if labels(meta(o).get("labels") or {}) and fields(o)]
        if after is not None:
            chosen = [o for o in chosen
                      if (meta(o).get("namespace", ""), meta(o)["name"]) > after]
        list_meta: Dict[str, Any] = {"resourceVersion": str(list_rv)}
        if limit and len(chosen) > limit:
            rest = len(chosen) - limit
            chosen = chosen[:limit]
            last = meta(chosen[-1])
            list_meta["continue"] = encode_continue(list_rv, (last.get("namespace", ""),
                                                              last["name"]))
            if not query.get("labelSelector") and not query.get("fieldSelector"):
                list_meta["remainingItemCount"] = rest
        if metadata_only:
            return {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                    "metadata": list_meta, "items": [partial(o) for o in chosen]}
        return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": list_meta,
                "items": [self.listed(rt, o) for o in chosen]}

    # -- writes ---------------------------------------------------------------------

    def create(self, rt: ResourceType, namespace: Optional[str], body: Any, query: Query,
               user_agent: str, *, applied: Optional[Dict[str, Any]] = None,
               status: Optional[bool] = None) -> Dict[str, Any]:
        """Create; with ``applied`` (an apply that creates) its manager owns as Apply."""
        obj = _object_body(rt, body)
        m = obj["metadata"]
        if namespace is not None:
            if m.get("namespace") not in (None, "", namespace):
                raise bad_request(f"the namespace of the provided object ({m['namespace']}) "
                                  f"does not match the namespace sent on the request "
                                  f"({namespace})")
            m["namespace"] = namespace
        else:
            m.pop("namespace", None)
        if not m.get("name"):
            if not m.get("generateName"):
                raise invalid(rt.kind, rt.group, "", "metadata.name",
                              "name or generateName is required", "")
            m["name"] = generate_name(m["generateName"], self._rng)
        check_name(rt, m["name"])
        manager = _manager(query, user_agent)
        with self.storage.lock:
            self._check_namespace(rt, namespace)
            key = key_of(rt, namespace, m["name"])
            if self.storage.get(key) is not None:
                raise already_exists(rt.plural, rt.group, m["name"])
            for server_field in ("deletionTimestamp", "deletionGracePeriodSeconds",
                                 "resourceVersion", "managedFields", "selfLink"):
                m.pop(server_field, None)
            m["uid"] = str(uuid.uuid4())
            m["creationTimestamp"] = timestamp(self.clock)
            if rt.tracks_generation:
                m["generation"] = 1
            else:
                m.pop("generation", None)
            if rt.has_status:
                obj.pop("status", None)
            lifecycle.prepare_create(rt, obj)
            if applied is None:
                owners = managed.record_update({}, None, obj, manager, rt.api_version,
                                               rt.type_info(), "", None)
            else:
                _, owners = managed.apply({}, applied, {}, manager=manager,
                                          api_version=rt.api_version, force=True,
                                          typ=rt.type_info(), subresource="", status=status)
            return self._commit(rt, key, None, obj, owners, query)

    def _check_namespace(self, rt: ResourceType, namespace: Optional[str]) -> None:
        if namespace is None:
            return
        ns = self.storage.get(("", "namespaces", "", namespace))
        if ns is None:
            raise not_found("namespaces", "", namespace)
        if meta(ns).get("deletionTimestamp"):
            raise forbidden(f'{rt.plural} "{""}" is forbidden: unable to create new content '
                            f"in namespace {namespace} because it is being terminated")

    def replace(self, rt: ResourceType, namespace: Optional[str], name: str,
                subresource: str, body: Any, query: Query, user_agent: str
                ) -> Dict[str, Any]:
        with self.storage.lock:
            key, old = self._existing(rt, namespace, name)
            if subresource == "scale":
                new = self._from_scale(rt, old, body)
            else:
                new = _object_body(rt, body)
                given = meta(new).get("name")
                if given and given != name:
                    raise bad_request(f"the name of the object ({given}) does not match the "
                                      f"name on the URL ({name})")
            return self._update(rt, key, old, new, subresource, query, user_agent)

    def _from_scale(self, rt: ResourceType, old: Dict[str, Any], scale: Any
                    ) -> Dict[str, Any]:
        assert rt.scale is not None
        if not isinstance(scale, Mapping):
            raise bad_request("a Scale object is expected")
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise invalid("Scale", "autoscaling", meta(old)["name"], "spec.replicas",
                          "must be greater than or equal to 0", replicas)
        new = copy.deepcopy(old)
        rv = meta(scale).get("resourceVersion")
        if rv:
            new["metadata"]["resourceVersion"] = rv
        set_path(new, rt.scale.spec_replicas, replicas)
        return new

    def patch(self, rt: ResourceType, namespace: Optional[str], name: str, subresource: str,
              body: bytes, content_type: str, query: Query, user_agent: str
              ) -> Dict[str, Any]:
        kind = PATCH_TYPES.get(content_type.split(";")[0].strip())
        if kind is None:
            raise StatusError(415, "UnsupportedMediaType",
                              f"the body of the request was in an unknown format - accepted "
                              f"media types include: {', '.join(PATCH_TYPES)}")
        if kind == "strategic" and rt.crd:
            raise StatusError(415, "UnsupportedMediaType",
                              "strategic merge patch is not supported for custom resources")
        try:
            doc = yaml.safe_load(body) if kind == "apply" else json.loads(body or b"null")
        except (ValueError, yaml.YAMLError) as e:
            raise bad_request(f"the patch body is not valid: {e}") from e
        if kind == "apply":
            return self.apply(rt, namespace, name, subresource, doc, query)
        with self.storage.lock:
            key, old = self._existing(rt, namespace, name)
            base = scale_of(rt, old) if subresource == "scale" else old
            if kind == "merge":
                result = merge_patch(base, doc)
            elif kind == "json":
                result = json_patch(base, doc)
            else:
                if not isinstance(doc, Mapping):
                    raise bad_request("a strategic merge patch must be a JSON object")
                result = strategic_merge(base, doc, rt.type_info())
            if not isinstance(result, dict):
                raise bad_request("the patched object is not a JSON object")
            if subresource == "scale":
                result = self._from_scale(rt, old, result)
            elif meta(result).get("name") != name:
                raise bad_request("a patch cannot change metadata.name")
            return self._update(rt, key, old, result, subresource, query, user_agent)

    def apply(self, rt: ResourceType, namespace: Optional[str], name: str, subresource: str,
              config: Any, query: Query) -> Dict[str, Any]:
        manager = query.get("fieldManager")
        if not manager:
            raise bad_request("PATCH of type apply requires the fieldManager parameter")
        if subresource == "scale":
            raise not_implemented("server-side apply to the scale subresource")
        force = query.get("force") == "true"
        config = _object_body(rt, config)
        if meta(config).get("name") not in (None, name):
            raise bad_request("the name in the applied configuration differs from the URL")
        status = True if subresource == "status" else (False if rt.has_status else None)
        with self.storage.lock:
            key = key_of(rt, namespace, name)
            old = self.storage.get(key)
            if old is None:
                if subresource:
                    raise not_found(rt.plural, rt.group, name)
                body = copy.deepcopy(config)
                body.setdefault("metadata", {})["name"] = name
                return self.create(rt, namespace, body, query, manager, applied=config,
                                   status=status)
            rv = meta(config).get("resourceVersion")
            if rv and rv != meta(old).get("resourceVersion"):
                raise conflict(rt.plural, rt.group, name, _RV_CONFLICT)
            new, owners = managed.apply(old, config, managed.owners_of(old), manager=manager,
                                        api_version=rt.api_version, force=force,
                                        typ=rt.type_info(), subresource=subresource,
                                        status=status)
            new["metadata"]["resourceVersion"] = meta(old).get("resourceVersion")
            return self._update(rt, key, old, new, subresource, query, manager, owners=owners)

    def _update(self, rt: ResourceType, key: Key, old: Dict[str, Any], new: Dict[str, Any],
                subresource: str, query: Query, user_agent: str,
                owners: Optional[managed.Owners] = None) -> Dict[str, Any]:
        """The write of a PUT, PATCH or apply: server-owned fields kept, status split off,
        generation moved, ownership recorded, then committed (or nothing, if no change)."""
        name = meta(old)["name"]
        new = copy.deepcopy(new)
        new.setdefault("apiVersion", old.get("apiVersion"))
        new["kind"] = rt.kind
        m = new.setdefault("metadata", {})
        om = meta(old)
        rv = m.get("resourceVersion")
        if rv and rv != om.get("resourceVersion"):
            raise conflict(rt.plural, rt.group, name, _RV_CONFLICT)
        if subresource == "status":
            new = dict(copy.deepcopy(old), status=new.get("status"))
            if new["status"] is None:
                del new["status"]
            m = new["metadata"]
        elif subresource == "scale":
            pass
        elif rt.has_status:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        for kept in ("uid", "creationTimestamp", "name", "namespace", "deletionTimestamp",
                     "deletionGracePeriodSeconds", "generation"):
            if kept in om:
                m[kept] = om[kept]
            else:
                m.pop(kept, None)
        if om.get("deletionTimestamp"):
            added = set(m.get("finalizers") or ()) - set(om.get("finalizers") or ())
            if added:
                raise invalid(rt.kind, rt.group, name, "metadata.finalizers",
                              "no new finalizers can be added if the object is being deleted",
                              sorted(added))
        if not m.get("finalizers"):
            m.pop("finalizers", None)
        if rt.tracks_generation and _spec(old) != _spec(new):
            m["generation"] = int(om.get("generation") or 0) + 1
        status = True if subresource == "status" else (False if rt.has_status else None)
        if owners is None:
            owners = managed.record_update(managed.owners_of(old), old, new,
                                           _manager(query, user_agent), rt.api_version,
                                           rt.type_info(), subresource, status)
        return self._commit(rt, key, old, new, owners, query)

    def _commit(self, rt: ResourceType, key: Key, old: Optional[Dict[str, Any]],
                new: Dict[str, Any], owners: managed.Owners, query: Query) -> Dict[str, Any]:
        m = new["metadata"]
        m["managedFields"] = managed.render(owners, timestamp(self.clock), old or {})
        if not m["managedFields"]:
            del m["managedFields"]
        if old is not None:
            m["resourceVersion"] = meta(old).get("resourceVersion")
            if new == old:
                return self.served(rt, old)  # a no-op write changes nothing, not even rv
        if query.get("dryRun"):
            return self.served(rt, new)
        rv = self.storage.next_rv()
        m["resourceVersion"] = str(rv)
        self.storage.put(key, new, rv)
        lifecycle.after_write(self, rt, key, old, new)
        return self.served(rt, new)

    # -- delete ---------------------------------------------------------------------

    def delete(self, rt: ResourceType, namespace: Optional[str], name: str, query: Query,
               body: Any) -> Dict[str, Any]:
        opts = _delete_options(query, body)
        with self.storage.lock:
            key, obj = self._existing(rt, namespace, name)
            pre = opts.get("preconditions") or {}
            m = meta(obj)
            if pre.get("uid") and pre["uid"] != m.get("uid"):
                raise conflict(rt.plural, rt.group, name,
                               f"Precondition failed: UID in precondition: {pre['uid']}, "
                               f"UID in object meta: {m.get('uid')}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != m.get("resourceVersion"):
                raise conflict(rt.plural, rt.group, name,
                               f"Precondition failed: ResourceVersion in precondition: "
                               f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                               f"{m.get('resourceVersion')}")
            if opts.get("dryRun"):
                return self.served(rt, obj)
            return lifecycle.delete(self, rt, key, obj, opts.get("propagationPolicy"))

    def delete_collection(self, rt: ResourceType, namespace: Optional[str], query: Query,
                          body: Any) -> Dict[str, Any]:
        opts = _delete_options(query, body)
        with self.storage.lock:
            listed = self.list(rt, namespace, {k: v for k, v in query.items()
                                               if k in ("labelSelector", "fieldSelector")})
            if not opts.get("dryRun"):
                for obj in listed["items"]:
                    m = meta(obj)
                    current = self.storage.get(key_of(rt, m.get("namespace"), m["name"]))
                    if current is not None:
                        lifecycle.delete(self, rt, key_of(rt, m.get("namespace"), m["name"]),
                                         current, opts.get("propagationPolicy"))
            return listed

    # -- helpers for lifecycle --------------------------------------------------------

    def write_as_server(self, rt: ResourceType, key: Key, old: Dict[str, Any],
                        change: Callable[[Dict[str, Any]], None], manager: str
                        ) -> Dict[str, Any]:
        """A write the server's own controllers make (finalizers, ownerReferences)."""
        new = copy.deepcopy(old)
        change(new)
        return self._update(rt, key, old, new, "", {"fieldManager": manager}, manager)

    def type_for(self, key: Key, obj: Mapping[str, Any]) -> Optional[ResourceType]:
        version = str(obj.get("apiVersion", "")).rpartition("/")[2]
        return self.registry.find(key[0], version, key[1]) or next(
            iter(self.registry.versions_of(key[0], key[1])), None)


def _spec(obj: Mapping[str, Any]) -> Dict[str, Any]:
    """What moves ``generation``: everything but metadata, status, apiVersion and kind."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion",
                                                      "kind")}


def _object_body(rt: ResourceType, body: Any) -> Dict[str, Any]:
    if not isinstance(body, Mapping):
        raise bad_request(f"the body must be a {rt.kind} object")
    obj = copy.deepcopy(dict(body))
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if kind not in (None, "", rt.kind) or api_version not in (None, "", rt.api_version):
        raise bad_request(f"the API version in the data ({api_version}) and kind ({kind}) "
                          f"do not match the request's {rt.api_version} {rt.kind}")
    obj["kind"] = rt.kind
    obj["apiVersion"] = rt.api_version
    if not isinstance(obj.get("metadata"), dict):
        obj["metadata"] = {}
    return obj


def _manager(query: Query, user_agent: str) -> str:
    """The fieldManager parameter, or (as the real server does) the client's User-Agent
    up to its first ``/``."""
    return (query.get("fieldManager") or user_agent.split("/")[0] or "unknown")[:128]


def _int(query: Query, name: str) -> Optional[int]:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(str(raw))
    except ValueError:
        raise bad_request(f"{name}: {raw!r} is not an integer") from None


def _rv_number(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"resourceVersion {raw!r} is not valid") from None


def _delete_options(query: Query, body: Any) -> Dict[str, Any]:
    opts: Dict[str, Any] = dict(body) if isinstance(body, Mapping) else {}
    if query.get("propagationPolicy"):
        opts["propagationPolicy"] = query["propagationPolicy"]
    if query.get("dryRun"):
        opts["dryRun"] = query["dryRun"]
    policy = opts.get("propagationPolicy")
    if policy not in (None, "Background", "Foreground", "Orphan"):
        raise bad_request(f"propagationPolicy {policy!r} is not one of Background, "
                          f"Foreground, Orphan")
    return opts

