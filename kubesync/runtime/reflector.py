"""The reflector: watcher events -> a ``Store``, inline or in the background."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional, TypeVar

from kubesync.core.convert import drop_field
from kubesync.core.params import Selector
from kubesync.runtime.informer import subscribe_to
from kubesync.runtime.store import Store, StoreWriter
from kubesync.runtime.watcher import Event, WatcherConfig, watcher_config

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
    config: Optional[WatcherConfig] = None,
    *,
    label_selector: Selector = None,
    field_selector: Selector = None,
    transform: Optional[Callable[[K], K]] = None,
    on_error: Optional[Callable[[BaseException], None]] = None,
    metadata_only: Optional[bool] = None,
    shared: bool = True,
) -> Store[K]:
    """Keep a ``Store`` of ``api``'s objects up to date from a background thread.

    For web apps and notebooks: returns at once with the (read-only) store; use
    ``store.wait_until_ready(timeout)`` before trusting it, ``store.stop()`` to end it.
    Watch options come in ``config``; the keywords override its fields. Errors are kept
    as ``store.last_error`` (and passed to ``on_error``).

    The store is the client's shared informer's (``kubesync.runtime.informer``): reflectors
    and controllers on the same query share one watch and one store; each ``store.stop()``
    ends one of the reflectors that returned it, and the last one ends the watch.
    ``shared=False`` (or a ``transform``) gives a private watch and store.

    Fork-safe: in a child forked after this call (gunicorn ``--preload``, multiprocessing's
    ``fork``) the parent's thread is gone, so the store stops claiming to be ready and, on
    its first use in the child, starts a reflector of its own there (a fresh list over the
    child's own connections). ``store.stop()`` in the child never touches the parent's watch.
    """
    config = watcher_config(config, label_selector=label_selector,
                            field_selector=field_selector, metadata_only=metadata_only)
    sub = subscribe_to(api, config, shared=shared, transform=transform, on_error=on_error)
    return sub.informer.hold_store(sub)


def writer_errors(
    writer: StoreWriter[Any], on_error: Optional[Callable[[BaseException], None]] = None
) -> Callable[[BaseException], None]:
    """A watcher ``on_error`` hook that keeps each error on ``writer``'s store, then calls
    ``on_error``."""

    def failed(error: BaseException) -> None:
        writer.record_error(error)
        if on_error is not None:
            on_error(error)

    return failed
