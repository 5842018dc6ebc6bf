"""``finalize()``: run cleanup before an object goes, exactly once per deletion.

As kube-runtime's finalizer helper: the finalizer is added first (a JSON patch with a
``test`` op, so a concurrent change to the list is never overwritten); while the object
lives, ``apply`` reconciles it; once it is being deleted, ``cleanup`` runs and then the
finalizer is removed (again guarded by ``test``), which lets the deletion finish.
See https://kubernetes.io/docs/concepts/overview/working-with-objects/finalizers/
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, TypeVar

from kubesync.core.params import Patch
from kubesync.runtime.controller import Action

if TYPE_CHECKING:
    from kubesync.client.api import Api

__all__ = ["finalize"]

K = TypeVar("K")


def finalize(
    api: Api[K],
    name: str,
    obj: K,
    *,
    apply: Callable[[K], Optional[Action]],
    cleanup: Callable[[K], Optional[Action]],
) -> Optional[Action]:
    """Reconcile ``obj`` guarded by the finalizer ``name``. Idempotent.

    Returns what ``apply``/``cleanup`` returned, or ``Action.await_change()`` after
    adding or when there is nothing to do. ``cleanup`` must tolerate running again if
    removing the finalizer fails (it is then retried on the next reconcile).
    """
    meta = obj.metadata  # type: ignore[attr-defined]
    finalizers = list(meta.finalizers or [])
    deleting = meta.deletion_timestamp is not None
    if not deleting:
        if name in finalizers:
            return apply(obj)
        ops: List[Dict[str, Any]]
        if finalizers:
            ops = [{"op": "test", "path": "/metadata/finalizers", "value": finalizers},
                   {"op": "add", "path": "/metadata/finalizers/-", "value": name}]
        else:
            # Absent and empty both read as "none"; test the rv so no writer slips between.
            ops = [{"op": "test", "path": "/metadata/resourceVersion",
                    "value": meta.resource_version},
                   {"op": "add", "path": "/metadata/finalizers", "value": [name]}]
        api.patch(meta.name, Patch.json(ops))
        return Action.await_change()  # the patch's own event brings us back to apply
    if name not in finalizers:
        return Action.await_change()  # ours is done; others' finalizers are theirs
    result = cleanup(obj)
    i = finalizers.index(name)
    api.patch(meta.name, Patch.json([
        {"op": "test", "path": f"/metadata/finalizers/{i}", "value": name},
        {"op": "remove", "path": f"/metadata/finalizers/{i}"},
    ]))
    return result

