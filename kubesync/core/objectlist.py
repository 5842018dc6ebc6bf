"""``ObjectList``: the answer of a LIST, and ``decode_list`` that makes one.

Items are lazy views (nothing is converted until read), so a LIST of thousands costs one
small object per item.
"""

from __future__ import annotations

from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    Generic,
    Iterator,
    List,
    Mapping,
    Optional,
    Type,
    TypeVar,
    get_args,
)

import attrs

from kubesync.core.jsonstream import ItemConverter
from kubesync.core.lazy import View, decode, encode, list_filler
from kubesync.core.location import kind_name, type_name
from kubesync.errors import DecodeError

if TYPE_CHECKING:
    from kubesync.models.meta_v1 import ListMeta

__all__ = ["ObjectList", "decode_list", "item_converter"]

K = TypeVar("K")



def _same_json(a: Any, b: Any) -> bool:
    return bool((a if a.__class__ is dict else encode(a)) ==
                (b if b.__class__ is dict else encode(b)))


@attrs.define(slots=True, repr=False)
class ObjectList(Generic[K]):
    """The answer of a LIST: ``items`` and the list ``metadata`` (resourceVersion, continue).

    Iterating, ``len()`` and indexing go to ``items``.
    """

    items: List[K]
    # The list metadata as a ListMeta, or as its JSON until first read: a LIST decoded
    # in a fresh process would otherwise build the ListMeta class for nothing (about 2%
    # of decoding 5000 ConfigMaps), and the properties below read the JSON directly.
    _metadata: Any = attrs.field(
        alias="metadata", eq=attrs.cmp_using(eq=_same_json, require_same_type=False))
    api_version: Optional[str] = None
    kind: Optional[str] = None

    @property
    def metadata(self) -> ListMeta:
        """The list metadata (resourceVersion, continue, remainingItemCount)."""
        meta = self._metadata
        if meta.__class__ is dict:
            # The list metadata is a generated meta/v1 class (see the layering test).
            from kubesync.models.meta_v1 import ListMeta

            meta = self._metadata = decode(ListMeta, meta)
        return meta

    @metadata.setter
    def metadata(self, value: ListMeta) -> None:
        self._metadata = value

    def _field(self, key: str, attr: str, kind: type) -> Any:
        meta = self._metadata
        if meta.__class__ is dict:
            value = meta.get(key)
            if value is None or value.__class__ is kind:
                return value
            meta = self.metadata  # of another type: decoding reports it
        return getattr(meta, attr)

    @property
    def resource_version(self) -> Optional[str]:
        """The list's resourceVersion: watch from here to see every later change."""
        return self._field("resourceVersion", "resource_version", str)

    @property
    def continue_(self) -> Optional[str]:
        """The token of the next page, or None on the last one."""
        return self._field("continue", "continue_", str) or None

    @property
    def remaining_item_count(self) -> Optional[int]:
        """How many items the following pages hold (an estimate; often absent)."""
        return self._field("remainingItemCount", "remaining_item_count", int)

    def __iter__(self) -> Iterator[K]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> K:
        return self.items[index]

    def __repr__(self) -> str:
        rv = self.resource_version
        return f"<ObjectList {self.kind or ''} items={len(self.items)} resourceVersion={rv!r}>"

    def to_dict(self) -> Dict[str, Any]:
        """The JSON form, as the server writes a list."""
        out: Dict[str, Any] = {}
        if self.kind is not None:
            out["kind"] = self.kind
        if self.api_version is not None:
            out["apiVersion"] = self.api_version
        out["metadata"] = encode(self.metadata)
        out["items"] = [encode(item) for item in self.items]
        return out

    @classmethod
    def _kube_decode(cls, data: Any, tp: Any = None) -> ObjectList[Any]:
        (item,) = get_args(tp) or (Any,)
        return decode_list(item, data)

    def _kube_encode(self) -> Dict[str, Any]:
        return self.to_dict()

    def _repr_html_(self) -> str:
        # Presentation lives in kubesync.display, above core (see Model._repr_html_).
        from kubesync.display import list_html

        return list_html(self)


def item_converter(cls: Type[Any]) -> Optional[ItemConverter]:
    """What converts a LIST's items of ``cls`` while the answer arrives, for
    ``Client.send(converter=...)`` and then ``decode_list(converter=...)``; None for a
    class that is not a lazy view (its items are decoded after the answer, one by one).
    One per request."""
    if isinstance(cls, type) and issubclass(cls, View):
        return ItemConverter(list_filler(cls))
    return None


def decode_list(cls: Type[K], data: Any, *,
                converter: Optional[ItemConverter] = None) -> ObjectList[K]:
    """Decode a list response (``{"items": [...], "metadata": {...}}``); items are lazy.
    With ``converter`` (the ``item_converter(cls)`` that ``data`` was read with), its
    items are taken when they were made from ``data``'s own items list, instead of
    being made again."""
    if converter is not None and converter.items is not None \
            and isinstance(data, Mapping) and data.get("items") is converter.raws:
        return _list_of(cls, data, converter.items)
    if not isinstance(data, Mapping):
        raise DecodeError(f"expected a list object, got {type_name(data)}",
                          kind=kind_name(cls))
    raw_items = data.get("items") or []
    if not isinstance(raw_items, list):
        raise DecodeError(f"expected an array, got {type_name(raw_items)}",
                          kind=kind_name(cls), path="items")
    items: List[Any]
    if isinstance(cls, type) and issubclass(cls, View):
        # The hot path of every LIST: one object per item, nothing converted (its plain
        # fields and metadata put in their slots, see lazy.list_filler).
        items = list_filler(cls)(raw_items)
    else:
        items = [decode(cls, raw) for raw in raw_items]
    return _list_of(cls, data, items)


def _list_of(cls: Type[K], data: Mapping[str, Any], items: List[Any]) -> ObjectList[K]:
    metadata = data.get("metadata") or {}
    if metadata.__class__ is not dict:
        raise DecodeError(f"expected an object, got {type_name(metadata)}",
                          kind=kind_name(cls), path="metadata")
    return ObjectList(items, metadata, data.get("apiVersion"), data.get("kind"))
