"""The fake's refusals: one exception carrying a Kubernetes ``Status``, and its makers.

Every failure the fake answers goes through :class:`StatusError`, so a client sees the
same ``kind: Status`` body (code, reason, message, details, causes) a real server sends.
See https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional


class StatusError(Exception):
    """A request the fake refuses, with the HTTP code and Status body to answer."""

    def __init__(self, code: int, reason: str, message: str, *,
                 details: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def body(self) -> Dict[str, Any]:
        """The ``Status`` object to send."""
        out: Dict[str, Any] = {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        }
        if self.details:
            out["details"] = self.details
        return out


def _details(kind: str, name: Optional[str], group: str = "",
             causes: Optional[List[Dict[str, str]]] = None) -> Dict[str, Any]:
    out: Dict[str, Any] = {"kind": kind}
    if name:
        out["name"] = name
    if group:
        out["group"] = group
    if causes:
        out["causes"] = causes
    return out


def _what(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(plural: str, group: str, name: str) -> StatusError:
    return StatusError(404, "NotFound", f'{_what(plural, group)} "{name}" not found',
                       details=_details(plural, name, group))


def already_exists(plural: str, group: str, name: str) -> StatusError:
    return StatusError(409, "AlreadyExists",
                       f'{_what(plural, group)} "{name}" already exists',
                       details=_details(plural, name, group))


def conflict(plural: str, group: str, name: str, why: str) -> StatusError:
    return StatusError(409, "Conflict",
                       f'Operation cannot be fulfilled on {_what(plural, group)} "{name}": {why}',
                       details=_details(plural, name, group))


def invalid(kind: str, group: str, name: str, field: str, why: str,
            value: Any = None) -> StatusError:
    cause = {"reason": "FieldValueInvalid", "message": f"Invalid value: {value!r}: {why}",
             "field": field}
    return StatusError(422, "Invalid",
                       f'{kind} "{name}" is invalid: {field}: Invalid value: {value!r}: {why}',
                       details=_details(kind, name, group, [cause]))


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def gone(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def forbidden(message: str) -> StatusError:
    return StatusError(403, "Forbidden", message)


def not_implemented(what: str) -> StatusError:
    """What the fake does not do: a clear 501 rather than a silent approximation."""
    return StatusError(501, "NotImplemented",
                       f"FakeApiServer does not implement {what} (see docs/testing.md)")


def method_not_allowed(method: str, path: str) -> StatusError:
    return StatusError(405, "MethodNotAllowed",
                       f"the server does not allow this method on the requested resource: "
                       f"{method} {path}")
