"""``await_condition``: block until one object meets a condition, and ready conditions."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar

from kubesync.errors import KubeError
from kubesync.runtime.threads import unique_name
from kubesync.runtime.watcher import (
    Apply,
    Delete,
    InitApply,
    InitDone,
    Watcher,
    WatcherConfig,
)

if TYPE_CHECKING:
    from kubesync.client.api import Api

__all__ = [
    "WaitTimeout",
    "await_condition",
    "find_condition",
    "is_crd_established",
    "is_crd_established_or_refused",
    "is_deleted",
    "is_deployment_rolled_out",
    "is_job_completed",
    "is_pod_running",
]

K = TypeVar("K")
Condition = Callable[[Optional[Any]], bool]


class WaitTimeout(KubeError, TimeoutError):
    """The condition did not hold within the timeout."""


def await_condition(
    api: Api[K], name: str, condition: Condition, *, timeout: Optional[float] = None,
    progress: Optional[bool] = None,
) -> Optional[K]:
    """Watch ``name`` until ``condition(obj)`` is true; the object (None if absent).

    ``condition`` sees None while the object does not exist. Raises ``WaitTimeout``
    after ``timeout`` seconds (None: wait forever). ``progress``: a line showing the wait;
    None shows it only in Jupyter or a terminal (see ``kubesync.display.progress``).
    """
    from kubesync.display.progress import REFRESH, Progress  # presentation: loaded on use

    config = WatcherConfig(field_selector=f"metadata.name={name}")
    deadline = None if timeout is None else time.monotonic() + timeout
    current: Optional[K] = None
    listed: Optional[K] = None
    what = f"{api.resource.kind} {name!r}"
    bar = Progress(f"Waiting for {what}", enabled=progress)
    with bar, Watcher(api, config,
                      name=unique_name(f"kubesync-wait-{api.resource.plural}-{name}"[:56])) as w:
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                bar.close(f"{what}: condition not met in {timeout}s")
                raise WaitTimeout(f"{what}: condition not met in {timeout}s")
            if bar.active:  # wake up now and then to keep the elapsed time fresh
                left = REFRESH if left is None else min(left, REFRESH)
            ev = w.next_event(timeout=left)
            bar.update()
            if ev is None:
                continue
            if isinstance(ev, InitApply):
                listed = ev.object
                continue
            if isinstance(ev, InitDone):
                current, listed = listed, None
            elif isinstance(ev, Apply):
                current = ev.object
            elif isinstance(ev, Delete):
                current = None
            else:
                continue
            if condition(current):
                bar.close(f"{what}: condition met after {bar.elapsed}")
                return current


def find_condition(obj: Any, ctype: str) -> Any:
    """The entry of ``obj.status.conditions`` whose type is ``ctype``, or None."""
    status = getattr(obj, "status", None)
    return next((c for c in getattr(status, "conditions", None) or [] if c.type == ctype),
                None)


def _has_condition(obj: Any, ctype: str, value: str = "True") -> bool:
    c = find_condition(obj, ctype)
    return c is not None and c.status == value


def is_deleted(uid: str) -> Condition:
    """True once the object with ``uid`` is gone (absent, or replaced by a new uid)."""
    return lambda obj: obj is None or obj.metadata.uid != uid


def is_pod_running() -> Condition:
    return lambda obj: obj is not None and getattr(obj.status, "phase", None) == "Running"


def is_job_completed() -> Condition:
    return lambda obj: obj is not None and _has_condition(obj, "Complete")


def is_crd_established() -> Condition:
    return lambda obj: obj is not None and _has_condition(obj, "Established")


def is_crd_established_or_refused() -> Condition:
    """Established, or settled without it: the server refused its names
    (NamesAccepted=False, e.g. a plural another CRD has), so waiting longer is pointless."""
    return lambda obj: obj is not None and (
        _has_condition(obj, "Established") or _has_condition(obj, "NamesAccepted", "False"))


def is_deployment_rolled_out() -> Condition:
    """As ``kubectl rollout status``: the controller saw the latest spec and every replica
    is updated and available."""

    def check(obj: Any) -> bool:
        if obj is None or obj.status is None:
            return False
        spec_replicas = obj.spec.replicas if obj.spec.replicas is not None else 1
        st = obj.status
        return bool(
            (st.observed_generation or 0) >= (obj.metadata.generation or 0)
            and (st.updated_replicas or 0) == spec_replicas
            and (st.replicas or 0) == spec_replicas
            and (st.available_replicas or 0) == spec_replicas
        )

    return check
