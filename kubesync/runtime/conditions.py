"""Ready-made conditions for ``await_condition``, as kube-runtime's ``conditions``.

Each ``is_*`` returns a ``Condition``: a function of the object, or of None while the
object does not exist. ``from kubesync.runtime import conditions`` then
``await_condition(pods, "web", conditions.is_pod_running())``.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

__all__ = [
    "Condition",
    "find_condition",
    "is_crd_established",
    "is_crd_established_or_refused",
    "is_deleted",
    "is_deployment_rolled_out",
    "is_job_completed",
    "is_pod_running",
]

#: What ``await_condition`` checks: the object (None while absent) -> done?
Condition = Callable[[Optional[Any]], bool]


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
    """True while the pod's phase is ``Running``."""
    return lambda obj: obj is not None and getattr(obj.status, "phase", None) == "Running"


def is_job_completed() -> Condition:
    """True once the job has the condition ``Complete``."""
    return lambda obj: obj is not None and _has_condition(obj, "Complete")


def is_crd_established() -> Condition:
    """True once the CustomResourceDefinition is ``Established`` (its kind is served)."""
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
