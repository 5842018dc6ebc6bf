"""The reflector: watcher events -> a ``Store``, inline or in the background."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional, TypeVar

from kubesync.core.convert import drop_field
from kubesync.core.params import Selector
from kubesync.runtime.store import Store, StoreWriter
from kubesync.runtime.watcher import Event, Watcher, WatcherConfig

if TYPE_CHECKING:
    from kubesync.client.api import Api

__all__ = ["drop_managed_fields", "reflect", "start_reflector"]

K = TypeVar("K")


def reflect(writer: StoreWriter[K], events: Iterable[Event[K]]) -> Iterator[Event[K]]:
    """Apply each event to ``writer``'s store, then pass it on (the store leads)."""
    for ev in events:
        writer.apply_event(ev)
        yield ev


def drop_managed_fields(obj: K) -> K:
    """A store transform: forget ``metadata.managedFields`` (about half of a small
    object's memory; a cache rarely needs it)."""
    meta = getattr(obj, "metadata", None)
    if meta is not None:
        drop_field(meta, "managed_fields")
    return obj


def start_reflector(
    api: Api[K],
    *,
    label_selector: Selector = None,
    field_selector: Selector = None,
    transform: Optional[Callable[[K], K]] = None,
    on_error: Optional[Callable[[BaseException], None]] = None,
    metadata_only: bool = False,
) -> Store[K]:
    """Keep a ``Store`` of ``api``'s objects up to date from a background thread.

    For web apps and notebooks: returns at once with the (read-only) store; use
    ``store.wait_until_ready(timeout)`` before trusting it, ``store.stop()`` to end it.
    """
    writer: StoreWriter[K] = StoreWriter(transform=transform)
    config = WatcherConfig(label_selector, field_selector, metadata_only=metadata_only)
    w: Watcher[Any] = Watcher(api, config, sink=writer.apply_event, on_error=on_error)
    writer.store._stopper = w.stop
    w.start()
    return writer.store
