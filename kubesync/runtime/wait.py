"""``await_condition``: block until one object meets a condition.

The conditions themselves are in ``kubesync.runtime.conditions``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, TypeVar

from kubesync.core.clock import SYSTEM_CLOCK, Clock
from kubesync.core.deprecation import deprecated_names
from kubesync.errors import KubeError
from kubesync.runtime import conditions
from kubesync.runtime.conditions import Condition
from kubesync.runtime.threads import unique_name
from kubesync.runtime.watcher import Apply, Delete, InitApply, InitDone, Watcher, WatcherConfig

if TYPE_CHECKING:
    from kubesync.client.api import Api

    # The old homes of the conditions, still valid for type checkers for one release.
    from kubesync.runtime.conditions import find_condition as find_condition
    from kubesync.runtime.conditions import is_crd_established as is_crd_established
    from kubesync.runtime.conditions import (
        is_crd_established_or_refused as is_crd_established_or_refused,
    )
    from kubesync.runtime.conditions import is_deleted as is_deleted
    from kubesync.runtime.conditions import is_deployment_rolled_out as is_deployment_rolled_out
    from kubesync.runtime.conditions import is_job_completed as is_job_completed
    from kubesync.runtime.conditions import is_pod_running as is_pod_running

__all__ = ["WaitTimeout", "await_condition"]

K = TypeVar("K")


class WaitTimeout(KubeError, TimeoutError):
    """The condition did not hold within the timeout."""


def await_condition(
    api: Api[K], name: str, condition: Condition, *, timeout: Optional[float] = None,
    progress: Optional[bool] = None, clock: Clock = SYSTEM_CLOCK,
) -> Optional[K]:
    """Watch ``name`` until ``condition(obj)`` is true; the object (None if absent).

    ``condition`` sees None while the object does not exist. Raises ``WaitTimeout``
    after ``timeout`` seconds (None: wait forever). ``progress``: a line showing the wait;
    None shows it only in Jupyter or a terminal (see ``kubesync.display.progress``).
    The deadline and the watcher's backoff read ``clock``.
    """
    from kubesync.display.progress import REFRESH, Progress  # presentation: loaded on use

    config = WatcherConfig(field_selector=f"metadata.name={name}")
    deadline = None if timeout is None else clock.monotonic() + timeout
    current: Optional[K] = None
    listed: Optional[K] = None
    what = f"{api.resource.kind} {name!r}"
    bar = Progress(f"Waiting for {what}", enabled=progress)
    with bar, Watcher(api, config, clock=clock,
                      name=unique_name(f"kubesync-wait-{api.resource.plural}-{name}"[:56])) as w:
        while True:
            left = None if deadline is None else deadline - clock.monotonic()
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


# The conditions moved to kubesync.runtime.conditions; their old names here warn.
__getattr__ = deprecated_names(__name__, {
    name: (f"kubesync.runtime.conditions.{name}", getattr(conditions, name))
    for name in conditions.__all__ if name != "Condition"
})
