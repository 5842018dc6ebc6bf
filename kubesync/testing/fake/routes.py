"""Request routing: a path and method become one backend call and its answer.

Paths as the real server lays them out (``/api/v1/namespaces/NS/configmaps/NAME/status``,
``/apis/GROUP/VERSION/...``, the legacy ``/watch/`` prefix), discovery documents,
``/version`` and the health endpoints. Verbs the fake does not serve answer 501 (a
subresource such as ``exec``) or 405 (a verb the resource does not have).
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional, Tuple

import attrs

from kubesync.testing.fake.backend import Backend
from kubesync.testing.fake.objects import partial
from kubesync.testing.fake.resources import ResourceType
from kubesync.testing.fake.status import (
    StatusError,
    bad_request,
    method_not_allowed,
    not_implemented,
)

#: What ``/version`` says: the API level of the generated models the fake serves.
VERSION = {"major": "1", "minor": "36", "gitVersion": "v1.36.0-kubesync-fake",
           "gitCommit": "", "gitTreeState": "clean", "buildDate": "", "goVersion": "",
           "compiler": "", "platform": ""}
_REAL_SUBRESOURCES = {"exec", "attach", "log", "portforward", "proxy", "eviction",
                      "binding", "ephemeralcontainers", "resize", "token", "approval",
                      "finalize"}
_NOT_FOUND = StatusError(404, "NotFound", "the server could not find the requested resource")


@attrs.frozen
class Target:
    """A resource request, parsed."""

    rt: ResourceType
    namespace: Optional[str]
    name: Optional[str]
    subresource: str
    watch: bool


@attrs.frozen
class Answer:
    code: int
    body: Any
    watch: Optional[Target] = None  # set: stream a watch instead


def media(accept: str) -> Optional[str]:
    """The representation to answer in: ``"full"``, ``"partial"`` (PartialObjectMetadata),
    or None when the client accepts nothing the fake can send (406)."""
    if not accept.strip():
        return "full"
    for item in accept.split(","):
        kind, *params = [p.strip() for p in item.split(";")]
        if kind not in ("application/json", "*/*", "application/*", "application/yaml"):
            continue
        opts = dict(p.split("=", 1) for p in params if "=" in p)
        as_ = opts.get("as")
        if as_ is None:
            return "full"
        if as_ in ("PartialObjectMetadata", "PartialObjectMetadataList"):
            return "partial"
    return None


def parse(backend: Backend, path: str, query: Mapping[str, str]) -> Tuple[str, Any]:
    """``("doc", body)`` for a discovery or info path, ``("resource", Target)`` else."""
    segs = [s for s in path.split("/") if s]
    if path in ("/healthz", "/readyz", "/livez"):
        return "text", "ok"
    if path == "/version":
        return "doc", VERSION
    reg = backend.registry
    if segs == ["api"]:
        return "doc", reg.api_versions()
    if segs == ["apis"]:
        return "doc", reg.group_list()
    if segs[:1] == ["api"] and len(segs) >= 2:
        group, version, rest = "", segs[1], segs[2:]
    elif segs[:1] == ["apis"] and len(segs) == 2:
        doc = reg.group(segs[1])
        if doc is None:
            raise _NOT_FOUND
        return "doc", doc
    elif segs[:1] == ["apis"] and len(segs) >= 3:
        group, version, rest = segs[1], segs[2], segs[3:]
    else:
        raise _NOT_FOUND
    if not rest:
        doc = reg.resource_list(group, version)
        if doc is None:
            raise _NOT_FOUND
        return "doc", doc
    watch = query.get("watch") in ("true", "1")
    if rest[0] == "watch":
        watch, rest = True, rest[1:]
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        candidate = reg.find(group, version, rest[2])
        if candidate is not None and candidate.namespaced:
            namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise _NOT_FOUND
    rt = reg.find(group, version, rest[0])
    if rt is None:
        raise _NOT_FOUND
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else ""
    if rt.namespaced and namespace is None and name is not None:
        raise _NOT_FOUND
    if sub and sub not in rt.subresources:
        if sub in _REAL_SUBRESOURCES:
            raise not_implemented(f"the {rt.plural}/{sub} subresource")
        raise _NOT_FOUND
    return "resource", Target(rt, namespace, name, sub, watch)


def _verb_allowed(rt: ResourceType, verb: str, method: str, path: str) -> None:
    if rt.verbs and verb not in rt.verbs:
        raise method_not_allowed(method, path)


def dispatch(backend: Backend, method: str, path: str, query: Mapping[str, str],
             body: bytes, content_type: str, user_agent: str, representation: str
             ) -> Answer:
    """Serve one request; raises ``StatusError`` for refusals."""
    what, parsed = parse(backend, path, query)
    if what != "resource":
        if method != "GET":
            raise method_not_allowed(method, path)
        return Answer(200, parsed)
    t: Target = parsed
    rt = t.rt
    if method == "GET":
        if t.name is None:
            _verb_allowed(rt, "watch" if t.watch else "list", method, path)
            if t.watch:
                return Answer(200, None, watch=t)
            return Answer(200, backend.list(rt, t.namespace, query,
                                            metadata_only=representation == "partial"))
        if t.watch:
            raise _NOT_FOUND
        _verb_allowed(rt, "get", method, path)
        return _shown(200, backend.get(rt, t.namespace, t.name, t.subresource), representation)
    if t.watch:
        raise method_not_allowed(method, path)
    if method in ("POST", "PUT") and "protobuf" in content_type:
        raise StatusError(415, "UnsupportedMediaType",
                          f"the body of the request was in an unknown format - accepted "
                          f"media types include: application/json (not {content_type})")
    doc = _json(body) if method in ("POST", "PUT") or (method == "DELETE" and body) else None
    if method == "POST":
        if t.name is not None:
            raise method_not_allowed(method, path)
        _verb_allowed(rt, "create", method, path)
        return _shown(201, backend.create(rt, t.namespace, doc, query, user_agent),
                      representation)
    if method == "DELETE":
        if t.name is None:
            _verb_allowed(rt, "deletecollection", method, path)
            return Answer(200, backend.delete_collection(rt, t.namespace, query, doc))
        if t.subresource:
            raise method_not_allowed(method, path)
        _verb_allowed(rt, "delete", method, path)
        return _shown(200, backend.delete(rt, t.namespace, t.name, query, doc), representation)
    if t.name is None:
        raise method_not_allowed(method, path)
    if method == "PUT":
        _verb_allowed(rt, "update", method, path)
        return _shown(200, backend.replace(rt, t.namespace, t.name, t.subresource, doc, query,
                                           user_agent), representation)
    if method == "PATCH":
        _verb_allowed(rt, "patch", method, path)
        with backend.storage.lock:
            existed = backend.storage.get((rt.group, rt.plural, t.namespace or "", t.name))
            result = backend.patch(rt, t.namespace, t.name, t.subresource, body, content_type,
                                   query, user_agent)
        return _shown(200 if existed is not None else 201, result, representation)
    raise method_not_allowed(method, path)


def _shown(code: int, obj: Dict[str, Any], representation: str) -> Answer:
    if representation == "partial" and obj.get("kind") not in ("Status", "Scale"):
        return Answer(code, partial(obj))
    return Answer(code, obj)


def _json(body: bytes) -> Any:
    if not body:
        raise bad_request("the request needs a body")
    try:
        return json.loads(body)
    except ValueError as e:
        raise bad_request(f"the body is not valid JSON: {e}") from e


def query_of(pairs: List[Tuple[str, str]]) -> Dict[str, str]:
    """The query as a dict; a repeated key keeps its last value."""
    return dict(pairs)
