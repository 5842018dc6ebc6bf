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

from kubesync.core.lazy import View, decode, encode, filler
from kubesync.core.location import kind_name, type_name
from kubesync.errors import DecodeError

if TYPE_CHECKING:
    from kubesync.models.meta_v1 import ListMeta

__all__ = ["ObjectList", "decode_list"]

K = TypeVar("K")

_new = object.__new__


@attrs.define(slots=True, repr=False)
class ObjectList(Generic[K]):
    """The answer of a LIST: ``items`` and the list ``metadata`` (resourceVersion, continue).

    Iterating, ``len()`` and indexing go to ``items``.
    """

    items: List[K]
    metadata: ListMeta
    api_version: Optional[str] = None
    kind: Optional[str] = None

    @property
    def resource_version(self) -> Optional[str]:
        """The list's resourceVersion: watch from here to see every later change."""
        return self.metadata.resource_version

    @property
    def continue_(self) -> Optional[str]:
        """The token of the next page, or None on the last one."""
        return self.metadata.continue_ or None

    @property
    def remaining_item_count(self) -> Optional[int]:
        """How many items the following pages hold (an estimate; often absent)."""
        return self.metadata.remaining_item_count

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


def decode_list(cls: Type[K], data: Any) -> ObjectList[K]:
    """Decode a list response (``{"items": [...], "metadata": {...}}``); items are lazy."""
    if not isinstance(data, Mapping):
        raise DecodeError(f"expected a list object, got {type_name(data)}",
                          kind=kind_name(cls))
    raw_items = data.get("items") or []
    if not isinstance(raw_items, list):
        raise DecodeError(f"expected an array, got {type_name(raw_items)}",
                          kind=kind_name(cls), path="items")
    items: List[Any] = []
    append = items.append
    if isinstance(cls, type) and issubclass(cls, View):
        # The hot path of every LIST: one object per item, nothing converted (its plain
        # fields and metadata put in their slots, see lazy.filler).
        fill = filler(cls, True)
        for i, raw in enumerate(raw_items):
            if raw.__class__ is not dict:
                raise DecodeError(f"expected an object, got {type_name(raw)}",
                                  kind=kind_name(cls), path=f"items[{i}]")
            obj: Any = _new(cls)
            obj._kube_raw = raw
            obj._kube_at = None
            fill(obj, raw)
            append(obj)
    else:
        for raw in raw_items:
            append(decode(cls, raw))
    # The list metadata is a generated meta/v1 class (see the layering test's exceptions).
    from kubesync.models.meta_v1 import ListMeta

    metadata = decode(ListMeta, data.get("metadata") or {})
    return ObjectList(items, metadata, data.get("apiVersion"), data.get("kind"))
