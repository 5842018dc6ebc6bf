"""``DynamicObject``: any kind without a model (custom resources, kinds newer than ours).

A dict with a typed ``metadata`` view; the rest by item access. Encoding gives back the
source with only what was changed changed, like a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterator, Mapping, MutableMapping, Optional, Tuple

from kubesync.core.json import json_copy
from kubesync.core.lazy import decode, encode
from kubesync.core.resource import ApiResource

if TYPE_CHECKING:
    from kubesync.models.meta_v1 import ObjectMeta

__all__ = ["DynamicObject"]

_UNREAD: Any = object()


class DynamicObject(MutableMapping[str, Any]):
    """An object of any kind: ``obj.metadata`` (typed ``ObjectMeta``), ``obj.api_version``,
    ``obj.kind``, and ``obj["spec"]`` for everything else.

    ``api_resource`` is the resource it belongs to, when known (``Api`` and
    ``resource_of`` use it). The source mapping is shared, not copied; ``copy.deepcopy``
    gives a private copy. ``obj["metadata"]`` returns a fresh dict: change metadata
    through ``obj.metadata``.
    """

    __slots__ = ("_data", "_metadata", "api_resource")

    def __init__(
        self, data: Optional[Mapping[str, Any]] = None, resource: Optional[ApiResource] = None
    ) -> None:
        self._data: Dict[str, Any] = data if type(data) is dict else dict(data or {})
        self._metadata: Any = _UNREAD
        self.api_resource = resource

    # -- typed parts ----------------------------------------------------------------------

    @property
    def metadata(self) -> ObjectMeta:
        """The object's metadata as a typed, lazy ``ObjectMeta`` (created empty if absent)."""
        meta = self._metadata
        if meta is _UNREAD or meta is None:
            # A generated meta/v1 class (see the layering test's exceptions).
            from kubesync.models.meta_v1 import ObjectMeta

            raw = self._data.get("metadata")
            if isinstance(raw, dict):
                meta = decode(ObjectMeta, raw)
                meta._kube_at = (self.kind or "DynamicObject", "metadata")  # for errors
            else:
                meta = ObjectMeta()
            self._metadata = meta
        return meta

    @metadata.setter
    def metadata(self, value: Optional[ObjectMeta]) -> None:
        self._metadata = value

    @property
    def api_version(self) -> Optional[str]:
        return self._data.get("apiVersion")

    @api_version.setter
    def api_version(self, value: Optional[str]) -> None:
        self._set("apiVersion", value)

    @property
    def kind(self) -> Optional[str]:
        return self._data.get("kind")

    @kind.setter
    def kind(self, value: Optional[str]) -> None:
        self._set("kind", value)

    def _set(self, key: str, value: Any) -> None:
        if value is None:
            self._data.pop(key, None)
        else:
            self._data[key] = value

    # -- the mapping ----------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        if key == "metadata" and self._metadata is not _UNREAD:
            if self._metadata is None:
                raise KeyError(key)
            return encode(self._metadata)
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if key == "metadata":
            self._metadata = _UNREAD
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        if key == "metadata":
            had = "metadata" in self._data or self._metadata not in (_UNREAD, None)
            self._data.pop(key, None)
            self._metadata = None
            if not had:
                raise KeyError(key)
            return
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def __contains__(self, key: object) -> bool:
        if key == "metadata" and self._metadata is not _UNREAD:
            return self._metadata is not None
        return key in self._data

    def to_dict(self) -> Dict[str, Any]:
        """The JSON form: the source with the metadata view's changes merged in."""
        out = dict(self._data)
        meta = self._metadata
        if meta is None:
            out.pop("metadata", None)
        elif meta is not _UNREAD:
            encoded = encode(meta)
            if encoded or "metadata" in out:
                out["metadata"] = encoded
        return out

    # -- Python protocols -----------------------------------------------------------------

    def __repr__(self) -> str:
        meta = self._data.get("metadata") if self._metadata is _UNREAD else self.to_dict().get(
            "metadata")
        meta = meta if isinstance(meta, dict) else {}
        where = "/".join(str(p) for p in (meta.get("namespace"), meta.get("name")) if p)
        head = " ".join(str(p) for p in (self.api_version, self.kind) if p)
        return f"DynamicObject({head} {where})" if where else f"DynamicObject({head})"

    def __copy__(self) -> DynamicObject:
        return DynamicObject(self.to_dict(), self.api_resource)

    def __deepcopy__(self, memo: Dict[int, Any]) -> DynamicObject:
        return DynamicObject(json_copy(self.to_dict()), self.api_resource)

    def __reduce__(self) -> Tuple[Any, ...]:
        return (DynamicObject, (self.to_dict(), self.api_resource))

    @classmethod
    def _kube_decode(cls, data: Any, tp: Any = None) -> DynamicObject:
        return cls(data)

    def _kube_encode(self) -> Dict[str, Any]:
        return self.to_dict()

    def _repr_html_(self) -> str:
        # Presentation lives in kubesync.display, above core (see Model._repr_html_).
        from kubesync.display import object_html

        return object_html(self)
