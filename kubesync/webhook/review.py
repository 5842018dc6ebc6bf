"""AdmissionReview (admission.k8s.io/v1): the request the API server sends, the answer.

``parse_admission_review`` checks the envelope and gives an ``AdmissionRequest`` whose
``object`` and ``old_object`` are our models (looked up by apiVersion and kind) or
``DynamicObject``; a handler answers with ``request.allow()``, ``request.deny(...)`` or
``request.patch(ops)``. See
https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/
"""

from __future__ import annotations

import base64
from typing import Any, Dict, Generic, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union

import attrs

from kubesync.core.convert import decode, json_copy
from kubesync.core.dynamic import DynamicObject
from kubesync.core.json import dumps, loads
from kubesync.errors import KubeError
from kubesync.models import model_for
from kubesync.webhook.jsonpatch import Operation

__all__ = [
    "ADMISSION_API_VERSION",
    "AdmissionRequest",
    "AdmissionResponse",
    "GroupVersionKind",
    "GroupVersionResource",
    "ReviewError",
    "parse_admission_review",
    "parse_json_body",
]

ADMISSION_API_VERSION = "admission.k8s.io/v1"
#: The operations an admission rule names.
OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")

K = TypeVar("K")


class ReviewError(KubeError, ValueError):
    """A review we cannot answer: not JSON, the wrong apiVersion or kind, no uid.

    ``uid`` is the request's uid when it could be read (so the answer can still name
    it); ``status`` is the HTTP status to answer with.
    """

    def __init__(self, message: str, *, uid: str = "", status: int = 400) -> None:
        super().__init__(message)
        self.uid = uid
        self.status = status

    def __reduce__(self) -> Any:
        return (_review_error, (str(self), self.uid, self.status))


def _review_error(message: str, uid: str, status: int) -> ReviewError:
    return ReviewError(message, uid=uid, status=status)


@attrs.frozen
class GroupVersionKind:
    group: str
    version: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


@attrs.frozen
class GroupVersionResource:
    group: str
    version: str
    resource: str


@attrs.define
class AdmissionResponse:
    """The answer to one AdmissionReview. ``patch`` (JSON Patch operations) only from
    mutating webhooks; ``code`` and ``message`` become the error the API client sees."""

    uid: str
    allowed: bool
    code: Optional[int] = None
    message: Optional[str] = None
    reason: Optional[str] = None
    warnings: List[str] = attrs.Factory(list)
    patch: Optional[List[Operation]] = None
    audit_annotations: Dict[str, str] = attrs.Factory(dict)

    def warn(self, *messages: str) -> AdmissionResponse:
        """Add warnings (shown by kubectl as ``Warning: ...``); returns self."""
        self.warnings.extend(messages)
        return self

    def to_dict(self) -> Dict[str, Any]:
        """The ``response`` stanza of the AdmissionReview."""
        out: Dict[str, Any] = {"uid": self.uid, "allowed": self.allowed}
        if self.code is not None or self.message is not None:
            status: Dict[str, Any] = {}
            if self.code is not None:
                status["code"] = self.code
            if self.message is not None:
                status["message"] = self.message
            if self.reason is not None:
                status["reason"] = self.reason
            out["status"] = status
        if self.warnings:
            out["warnings"] = list(self.warnings)
        if self.patch:
            out["patchType"] = "JSONPatch"
            out["patch"] = base64.b64encode(dumps(self.patch)).decode("ascii")
        if self.audit_annotations:
            out["auditAnnotations"] = dict(self.audit_annotations)
        return out

    def to_review(self) -> Dict[str, Any]:
        """The whole AdmissionReview to send back."""
        return {"apiVersion": ADMISSION_API_VERSION, "kind": "AdmissionReview",
                "response": self.to_dict()}


def _decode_object(raw: Any, model: Optional[type], where: str) -> Any:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ReviewError(f"request.{where} must be an object, not {type(raw).__name__}")
    cls = model
    if cls is None:
        api_version, kind = raw.get("apiVersion"), raw.get("kind")
        if isinstance(api_version, str) and isinstance(kind, str):
            cls = model_for(api_version, kind)
    if cls is None:
        return DynamicObject(raw)
    return decode(cls, raw)


class AdmissionRequest(Generic[K]):
    """One admission request: who does what to which object.

    ``object`` is the object as it would be stored (None for DELETE), ``old_object`` the
    one stored before (None for CREATE), both decoded on first read. A mutating handler
    changes ``object`` in place; the webhook computes the JSON Patch. ``raw`` is the
    ``request`` stanza as sent.
    """

    def __init__(self, raw: Dict[str, Any], model: Optional[type] = None) -> None:
        self.raw = raw
        self.uid: str = raw["uid"]
        self.kind = _gvk(raw.get("kind"), "kind", self.uid)
        self.resource = _gvr(raw.get("resource"), "resource", self.uid)
        self.sub_resource: Optional[str] = raw.get("subResource") or None
        self.request_kind = _gvk(raw.get("requestKind") or raw.get("kind"), "requestKind",
                                 self.uid)
        self.request_resource = _gvr(raw.get("requestResource") or raw.get("resource"),
                                     "requestResource", self.uid)
        self.name: Optional[str] = raw.get("name") or None
        self.namespace: Optional[str] = raw.get("namespace") or None
        self.operation: str = raw.get("operation", "")
        if self.operation not in OPERATIONS:
            raise ReviewError(f"request.operation must be one of {list(OPERATIONS)}, "
                              f"not {self.operation!r}", uid=self.uid)
        self.dry_run = bool(raw.get("dryRun", False))
        self.options: Optional[Dict[str, Any]] = raw.get("options")
        self._model = model
        self._decoded: Dict[str, Any] = {}

    def _object(self, key: str) -> Any:
        if key not in self._decoded:
            where = "object" if key == "object" else "oldObject"
            try:
                self._decoded[key] = _decode_object(self.raw.get(where), self._model, where)
            except ReviewError as e:
                raise ReviewError(str(e), uid=self.uid) from None
        return self._decoded[key]

    @property
    def object(self) -> Optional[K]:
        value: Optional[K] = self._object("object")
        return value

    @object.setter
    def object(self, value: Optional[K]) -> None:
        self._decoded["object"] = value

    @property
    def old_object(self) -> Optional[K]:
        value: Optional[K] = self._object("oldObject")
        return value

    @property
    def user_info(self) -> Any:
        """The requesting user as ``authentication/v1 UserInfo`` (username, groups...)."""
        from kubesync.models.authentication_v1 import UserInfo

        return decode(UserInfo, self.raw.get("userInfo") or {})

    def with_model(self, model: Optional[type], object_raw: Any = None) -> AdmissionRequest[Any]:
        """The same request decoding its objects as ``model``; ``object_raw`` replaces
        the sent object (how mutating handlers see the changes of those before them)."""
        raw = self.raw if object_raw is None else dict(self.raw, object=object_raw)
        return AdmissionRequest(raw, model)

    def allow(self, *, warnings: Sequence[str] = ()) -> AdmissionResponse:
        """Admit the request."""
        return AdmissionResponse(self.uid, True, warnings=list(warnings))

    def deny(self, message: str, code: int = 403, *, reason: Optional[str] = None,
             warnings: Sequence[str] = ()) -> AdmissionResponse:
        """Refuse the request; the client sees ``message`` (and HTTP ``code``)."""
        return AdmissionResponse(self.uid, False, code=code, message=message, reason=reason,
                                 warnings=list(warnings))

    def patch(self, ops: Sequence[Operation], *, warnings: Sequence[str] = ()) -> AdmissionResponse:
        """Admit the request changed by these RFC 6902 operations (mutating webhooks)."""
        return AdmissionResponse(self.uid, True, warnings=list(warnings),
                                 patch=json_copy(list(ops)))

    def __repr__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else (self.name or "")
        return (f"AdmissionRequest({self.operation} {self.kind.api_version} {self.kind.kind}"
                f" {where!r}, uid={self.uid!r})")


def _gvk(raw: Any, where: str, uid: str) -> GroupVersionKind:
    if not isinstance(raw, dict):
        raise ReviewError(f"request.{where} must be an object with group, version, kind",
                          uid=uid)
    return GroupVersionKind(str(raw.get("group", "")), str(raw.get("version", "")),
                            str(raw.get("kind", "")))


def _gvr(raw: Any, where: str, uid: str) -> GroupVersionResource:
    if not isinstance(raw, dict):
        raise ReviewError(f"request.{where} must be an object with group, version, "
                          "resource", uid=uid)
    return GroupVersionResource(str(raw.get("group", "")), str(raw.get("version", "")),
                                str(raw.get("resource", "")))


def parse_json_body(body: Union[bytes, str, Mapping[str, Any]], api_version: str,
                    kind: str) -> Tuple[Dict[str, Any], str]:
    """Decode a review body, check its apiVersion and kind; returns ``(request, uid)``.

    Raises ``ReviewError`` saying what is wrong (and naming the uid once it is known).
    """
    if isinstance(body, Mapping):
        data: Any = body
    else:
        try:
            data = loads(body)
        except ValueError as e:
            raise ReviewError(f"the body is not JSON: {e}") from None
    if not isinstance(data, Mapping):
        raise ReviewError(f"the body must be a JSON object, not {type(data).__name__}")
    request = data.get("request")
    uid = request.get("uid") if isinstance(request, Mapping) else None
    uid = uid if isinstance(uid, str) else ""
    if data.get("apiVersion") != api_version or data.get("kind") != kind:
        raise ReviewError(f"expected apiVersion {api_version!r} kind {kind!r}, got "
                          f"{data.get('apiVersion')!r} {data.get('kind')!r}", uid=uid)
    if not isinstance(request, Mapping):
        raise ReviewError(f"the {kind} has no request object")
    if not uid:
        raise ReviewError(f"the {kind}'s request has no uid")
    return dict(request), uid


def parse_admission_review(body: Union[bytes, str, Mapping[str, Any]],
                           model: Optional[type] = None) -> AdmissionRequest[Any]:
    """The request of an AdmissionReview body (bytes, str or decoded JSON); objects are
    decoded as ``model``, else as the model of their apiVersion/kind, else DynamicObject."""
    request, _ = parse_json_body(body, ADMISSION_API_VERSION, "AdmissionReview")
    return AdmissionRequest(request, model)
