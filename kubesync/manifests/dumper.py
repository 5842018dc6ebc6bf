"""Writing manifests: objects -> YAML documents in kubectl's reading order. Pure."""

from __future__ import annotations

from typing import IO, Any, Dict, List, Mapping, Optional, Tuple, overload

import yaml

from kubesync.core.convert import ObjectList, encode
from kubesync.core.dynamic import DynamicObject
from kubesync.core.model import Model
from kubesync.core.resource import ApiResource
from kubesync.errors import UsageError

__all__ = ["dump"]


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
