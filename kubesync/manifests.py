"""Manifests: YAML and JSON files as typed objects, applied like ``kubectl apply --server-side``.

``load()`` reads a file, a folder, a string or a stream (many documents per file, ``List``
kinds flattened) into models for the kinds we know and ``DynamicObject`` for the rest.
``apply()`` server-side applies them in dependency order: Namespaces and
CustomResourceDefinitions first, then (once every CRD is Established) cluster-scoped
objects, then namespaced ones. ``dump()`` writes objects back as YAML.
See https://kubernetes.io/docs/reference/using-api/server-side-apply/
"""

from __future__ import annotations

import base64
import math
import os
import time
from pathlib import Path
from typing import (
    IO,
    TYPE_CHECKING,
    Any,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Tuple,
    Union,
    overload,
)

import attrs
import yaml

from kubesync.core.convert import ObjectList, encode
from kubesync.core.dynamic import DynamicObject
from kubesync.core.model import Model
from kubesync.core.resource import ApiResource
from kubesync.errors import KubeError, NotFound, UsageError

if TYPE_CHECKING:
    from kubesync.client.client import Client

__all__ = ["ApplyError", "ManifestError", "apply", "dump", "load"]

#: What ``load`` reads: a path (file or folder), YAML/JSON text, or an open stream.
Source = Union[str, "os.PathLike[str]", IO[str], IO[bytes]]
#: File names a folder contributes, as ``kubectl apply -f DIR`` reads them.
EXTENSIONS = (".yaml", ".yml", ".json")

_CRD_GROUP = "apiextensions.k8s.io"


class ManifestError(KubeError, ValueError):
    """A manifest cannot be read or used.

    ``source`` names the file (``<string>``/``<stream>`` otherwise), ``document`` the
    document's number in it (1 for the first), ``line`` where that document starts.
    """

    def __init__(
        self, message: str, *, source: Optional[str] = None, document: Optional[int] = None,
        line: Optional[int] = None,
    ):
        self.message = message
        self.source = source
        self.document = document
        self.line = line
        where = _where(source, document, line)
        super().__init__(f"{where}: {message}" if where else message)


class ApplyError(ManifestError):
    """The server refused one object; ``error`` is its ``KubeError`` (also ``__cause__``).

    Objects before it in dependency order were applied; none after it.
    """

    def __init__(self, message: str, *, error: KubeError, source: Optional[str] = None,
                 document: Optional[int] = None, line: Optional[int] = None):
        self.error = error
        super().__init__(message, source=source, document=document, line=line)


def _where(source: Optional[str], document: Optional[int], line: Optional[int]) -> str:
    parts = [source] if source else []
    if document is not None:
        parts.append(f"document {document}" + (f" (line {line})" if line else ""))
    return ", ".join(parts)


@attrs.frozen
class _Origin:
    """Where an object came from, for error messages."""

    source: Optional[str] = None
    document: Optional[int] = None
    line: Optional[int] = None
    item: Optional[int] = None  # its index in a List document's items

    def error(self, message: str) -> ManifestError:
        if self.item is not None:
            message = f"items[{self.item}]: {message}"
        return ManifestError(message, source=self.source, document=self.document,
                             line=self.line)


# -- load -----------------------------------------------------------------------------------

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):
    """PyYAML's safe loader, keeping timestamps as the strings they are in JSON (the
    server's YAML reader does the same; a datetime would not encode)."""


_Loader.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
)


def load(source: Source) -> List[Any]:
    """The objects in ``source``: a file, a folder (its ``*.yaml``, ``*.yml`` and
    ``*.json`` files in name order), YAML or JSON text, or an open stream.

    Known kinds (``kubesync.models.model_for``) come back as their models, others as
    ``DynamicObject``. Empty documents are skipped; ``List`` kinds are flattened.
    A document that is not an object with ``apiVersion`` and ``kind`` raises
    ``ManifestError`` naming the file, the document and what is wrong.
    """
    return [obj for obj, _ in _load(source)]


def _load(source: Source) -> List[Tuple[Any, _Origin]]:
    if hasattr(source, "read"):
        text = source.read()
        name = getattr(source, "name", None)
        return list(_objects(text, name if isinstance(name, str) else "<stream>"))
    if isinstance(source, bytes):
        return list(_objects(source, "<string>"))
    if isinstance(source, os.PathLike):
        return _load_path(Path(source))
    if not isinstance(source, str):
        raise UsageError(
            f"load takes a path, YAML text or a stream, not {type(source).__name__}"
        )
    if "\n" not in source and (
        source.lower().endswith(EXTENSIONS) or os.path.exists(source)
    ):
        return _load_path(Path(source))
    return list(_objects(source, "<string>"))


def _load_path(path: Path) -> List[Tuple[Any, _Origin]]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir()
                       if p.is_file() and p.suffix.lower() in EXTENSIONS)
        return [entry for f in files for entry in _load_path(f)]
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ManifestError(f"cannot read it: {e.strerror or e}", source=str(path)) from None
    return list(_objects(data, str(path)))


def _objects(text: Union[str, bytes], source: str) -> Iterator[Tuple[Any, _Origin]]:
    """Each object of each document of ``text`` with its origin."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise ManifestError(f"not UTF-8 text: {e}", source=source) from None
    loader = _Loader(text)
    number = 0
    try:
        while True:
            number += 1
            try:
                if not loader.check_node():
                    return
                node = loader.get_node()
                data = loader.construct_document(node) if node is not None else None
            except yaml.YAMLError as e:
                raise ManifestError(_yaml_problem(e), source=source, document=number) from None
            if data is None:  # an empty document, as kubectl skips them
                continue
            line = node.start_mark.line + 1 if node is not None else None
            origin = _Origin(source, number, line)
            yield from _typed_objects(_json(data, origin, ""), origin)
    finally:
        loader.dispose()


def _yaml_problem(e: yaml.YAMLError) -> str:
    """A YAML error as one line: what, and the line and column in the whole file."""
    if not isinstance(e, yaml.MarkedYAMLError):
        return f"invalid YAML: {e}"
    mark = e.problem_mark or e.context_mark
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = "; ".join(str(p) for p in (e.context, e.problem) if p)
    return f"invalid YAML{at}: {what}"


def _json(value: Any, origin: _Origin, path: str) -> Any:
    """``value`` as JSON data: fresh dicts and lists (YAML anchors share them), string
    keys (as the server's YAML reader writes ``1:`` or ``true:``)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            key = _key(k, origin, path)
            out[key] = _json(v, origin, f"{path}.{key}" if path else key)
        return out
    if isinstance(value, list):
        return [_json(v, origin, f"{path}[{i}]") for i, v in enumerate(value)]
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise origin.error(f"{path or 'the document'}: {value} is not a JSON number")
        return value
    if isinstance(value, bytes):  # !!binary: base64 text, as a []byte field takes it
        return base64.b64encode(value).decode("ascii")
    raise origin.error(f"{path or 'the document'}: a {type(value).__name__} is not JSON data")


def _key(key: Any, origin: _Origin, path: str) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, (int, float)):
        return str(key)
    raise origin.error(f"{path or 'the document'}: a {type(key).__name__} key is not allowed")


def _typed_objects(data: Any, origin: _Origin) -> Iterator[Tuple[Any, _Origin]]:
    if not isinstance(data, dict):
        raise origin.error(f"expected an object, got {_a(data)}")
    kind = data.get("kind")
    if origin.item is None and isinstance(kind, str) and kind.endswith("List") \
            and isinstance(data.get("items"), list):
        for i, item in enumerate(data["items"]):
            yield from _typed_objects(item, attrs.evolve(origin, item=i))
        return
    yield _typed(data, origin), origin


def _typed(data: Dict[str, Any], origin: _Origin) -> Any:
    """One object as its model or a DynamicObject, after the checks every object needs."""
    kind, api_version = data.get("kind"), data.get("apiVersion")
    for key, value in (("apiVersion", api_version), ("kind", kind)):
        if value is None or value == "":
            raise origin.error(f"the object has no {key}")
        if not isinstance(value, str):
            raise origin.error(f"{key} must be a string, not {_a(value)}")
    metadata = data.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise origin.error(f"metadata must be an object, not {_a(metadata)}")
    for key in ("name", "namespace", "generateName"):
        value = (metadata or {}).get(key)
        if value is not None and not isinstance(value, str):
            raise origin.error(f"metadata.{key} must be a string, not {_a(value)}")
    from kubesync.core.convert import decode
    from kubesync.models import model_for

    cls = model_for(api_version, kind)  # type: ignore[arg-type]
    if cls is not None and getattr(cls, "api_resource", None) is not None:
        return decode(cls, data)
    return DynamicObject(data)


def _a(value: Any) -> str:
    """What a JSON value is, with its article: ``an array``, ``a string``."""
    words = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return words.get(type(value), f"a {type(value).__name__}")


# -- apply ----------------------------------------------------------------------------------


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
    ``progress`` as in ``kubesync.core.progress`` (None: only where a person watches).
    """
    entries = _entries(objs_or_source)
    batch_crds = _batch_crd_resources(entries)
    plan = _plan(client, entries, batch_crds, namespace)
    results: List[Any] = [None] * len(plan)
    ordered = sorted(plan, key=lambda p: p.tier)  # stable: the given order within a tier
    first = [p for p in ordered if p.tier <= 1]  # namespaces and CRDs
    rest = ordered[len(first):]
    crds = [p for p in first if p.tier == 1]

    from kubesync.core.progress import Progress

    with Progress("Applying", total=len(ordered), unit="objects", enabled=progress) as bar:
        for done, p in enumerate(first, 1):
            results[p.index] = _apply_one(client, p, field_manager, force, None)
            bar.update(done, note=p.describe())
        deadline = time.monotonic() + wait_crds_timeout
        _await_crds(client, crds, deadline, bar)
        for done, p in enumerate(rest, len(first) + 1):
            new_kind = (p.resource.api_version, p.resource.kind) in batch_crds
            results[p.index] = _apply_one(client, p, field_manager, force,
                                          deadline if new_kind else None)
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
    discovery: Any = None
    plan = []
    for i, (obj, origin) in enumerate(entries):
        resource = getattr(obj, "api_resource", None)
        if not isinstance(resource, ApiResource):
            api_version, kind = obj.api_version, obj.kind
            resource = batch_crds.get((api_version, kind))
            if resource is None:
                if discovery is None:
                    from kubesync.client.discovery import Discovery

                    discovery = Discovery(client)
                resource = _discover(discovery, api_version, kind, origin)
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


def _discover(discovery: Any, api_version: Optional[str], kind: Optional[str],
              origin: _Origin) -> ApiResource:
    try:
        served = discovery.resources(api_version)
    except UsageError:
        served = []
    for r in served:
        if r.kind == kind:
            return r
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


def _await_crds(client: Client, crds: List[_Planned], deadline: float, bar: Any) -> None:
    """Wait until each CRD is Established (or refused its names) by ``deadline``."""
    from kubesync.client.api import Api
    from kubesync.models.apiextensions_v1 import CustomResourceDefinition
    from kubesync.runtime.conditions import find_condition, is_crd_established_or_refused
    from kubesync.runtime.wait import WaitTimeout, await_condition

    api = Api(client, CustomResourceDefinition)
    settled = is_crd_established_or_refused()
    for p in crds:
        bar.update(note=f"waiting for {p.describe()} to be Established")
        try:
            crd = await_condition(api, p.name, settled,
                                  timeout=max(0.0, deadline - time.monotonic()), progress=False)
        except WaitTimeout:
            raise p.origin.error(
                f"{p.describe()} was not Established in time (wait_crds_timeout)"
            ) from None
        established = find_condition(crd, "Established")
        if established is None or established.status != "True":
            names = find_condition(crd, "NamesAccepted")
            message = names.message if names is not None else None
            raise p.origin.error(f"{p.describe()}: names not accepted: {message}")


#: How often to retry an object whose kind a CRD of the same call has just defined: the
#: server may answer 404 for a moment after Established, until its handler sees the CRD.
_NEW_KIND_RETRY = 0.1


def _apply_one(client: Client, p: _Planned, field_manager: str, force: bool,
               retry_until: Optional[float]) -> Any:
    from kubesync.client.api import Api

    kind: Any = type(p.obj) if isinstance(p.obj, Model) else p.resource
    api: Any = Api(client, kind, p.namespace)
    delay = _NEW_KIND_RETRY
    while True:
        try:
            result = api.apply(p.obj, field_manager=field_manager, force=force)
            break
        except NotFound as e:
            if retry_until is None or time.monotonic() + delay > retry_until:
                raise _apply_error(p, e) from e
            time.sleep(delay)
            delay = min(1.0, delay * 2)
        except KubeError as e:
            raise _apply_error(p, e) from e
    if isinstance(result, DynamicObject):
        result.api_resource = p.resource
    return result


def _apply_error(p: _Planned, e: KubeError) -> ApplyError:
    message = f"applying {p.describe()}: {e}"
    if p.origin.item is not None:
        message = f"items[{p.origin.item}]: {message}"
    o = p.origin
    return ApplyError(message, error=e, source=o.source, document=o.document, line=o.line)


# -- dump -----------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block style, no anchors (encoded objects share unread parts), and ``|`` blocks for
    multi-line strings (scripts and config files in ConfigMaps stay readable)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)

_FIRST = ("apiVersion", "kind", "metadata")
_META_FIRST = ("name", "generateName", "namespace")


@overload
def dump(objs: Any, stream: None = None, *, show_managed_fields: bool = False) -> str: ...


@overload
def dump(objs: Any, stream: IO[str], *, show_managed_fields: bool = False) -> None: ...


def dump(objs: Any, stream: Optional[IO[str]] = None, *,
         show_managed_fields: bool = False) -> Optional[str]:
    """``objs`` (one object, a list of them, or an ``ObjectList``) as YAML documents.

    Keys in kubectl's reading order (apiVersion, kind, metadata, the rest, status last),
    no nulls, ``apiVersion``/``kind`` filled in for list items. ``managedFields`` are left
    out unless ``show_managed_fields`` (as ``kubectl get -o yaml`` does). Returns the text,
    or writes it to ``stream`` and returns None.
    """
    if isinstance(objs, (Model, DynamicObject, Mapping)):
        items: List[Any] = [objs]
    else:
        items = list(objs.items if isinstance(objs, ObjectList) else objs)
    docs = [_document(obj, show_managed_fields) for obj in items]
    text: str = yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                              allow_unicode=True, width=100)
    if stream is None:
        return text
    stream.write(text)
    return None


def _document(obj: Any, show_managed_fields: bool) -> Dict[str, Any]:
    data = dict(obj) if isinstance(obj, Mapping) and not isinstance(obj, DynamicObject) \
        else encode(obj)
    if not isinstance(data, dict):
        raise UsageError(f"dump takes Kubernetes objects, not {type(obj).__name__}")
    resource = getattr(obj, "api_resource", None)
    if isinstance(resource, ApiResource):  # list items come without them
        data.setdefault("apiVersion", resource.api_version)
        data.setdefault("kind", resource.kind)
    data = _without_nulls(data)
    meta = data.get("metadata")
    if isinstance(meta, dict):
        if not show_managed_fields:
            meta.pop("managedFields", None)
        data["metadata"] = _ordered(meta, _META_FIRST, ())
    return _ordered(data, _FIRST, ("status",))


def _ordered(data: Dict[str, Any], first: Tuple[str, ...], last: Tuple[str, ...]
             ) -> Dict[str, Any]:
    keys = [k for k in first if k in data]
    keys += [k for k in data if k not in first and k not in last]
    keys += [k for k in last if k in data]
    return {k: data[k] for k in keys}


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
