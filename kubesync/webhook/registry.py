"""``AdmissionWebhooks``: validating and mutating handlers by kind and operation, and the
dispatch of one AdmissionReview to them.

Handlers run on the server's request threads, possibly at once: they must be thread-safe.
A handler that raises is logged; under ``failure_policy="Fail"`` the request is denied
with the error's message, under ``"Ignore"`` it is admitted with a warning (the same
words the webhook configurations use for an unreachable webhook).
"""

from __future__ import annotations

import logging
import threading
from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    Iterable,
    List,
    Literal,
    Mapping,
    Optional,
    Tuple,
    Type,
    TypeVar,
    Union,
    overload,
)

import attrs

from kubesync.core.convert import encode, json_copy
from kubesync.core.dynamic import DynamicObject
from kubesync.core.resource import ApiResource, resource_of
from kubesync.errors import UsageError
from kubesync.webhook.jsonpatch import apply_patch, json_patch
from kubesync.webhook.review import (
    ADMISSION_API_VERSION,
    OPERATIONS,
    AdmissionRequest,
    AdmissionResponse,
    ReviewError,
    parse_json_body,
)

__all__ = ["AdmissionWebhooks", "FailurePolicy"]

logger = logging.getLogger("kubesync.webhook")

K = TypeVar("K")
FailurePolicy = Literal["Fail", "Ignore"]
Handler = Callable[[AdmissionRequest[Any]], Optional[AdmissionResponse]]
Decorator = Callable[[Callable[[AdmissionRequest[K]], Any]], Callable[[AdmissionRequest[K]], Any]]


@attrs.frozen
class Registration:
    """One handler: the resource it serves, the model its objects decode as, its operations."""

    resource: ApiResource
    model: Optional[type]
    operations: FrozenSet[str]
    handler: Handler
    mutating: bool

    @property
    def name(self) -> str:
        return getattr(self.handler, "__qualname__", repr(self.handler))

    def matches(self, request: AdmissionRequest[Any]) -> bool:
        r = self.resource
        return (request.kind.group, request.kind.version, request.kind.kind) == (
            r.group, r.version, r.kind) and request.operation in self.operations


def _resource(kind: Any) -> Tuple[ApiResource, Optional[type]]:
    if isinstance(kind, ApiResource):
        return kind, None
    resource = resource_of(kind)
    return resource, (kind if isinstance(kind, type) else None)


def _operations(operations: Iterable[str]) -> FrozenSet[str]:
    ops = frozenset(o.upper() for o in ([operations] if isinstance(operations, str)
                                        else operations))
    bad = sorted(ops - set(OPERATIONS))
    if bad or not ops:
        raise UsageError(f"operations must be some of {list(OPERATIONS)}, not {sorted(ops)}")
    return ops


class AdmissionWebhooks:
    """Validating and mutating handlers, registered with decorators::

        hooks = AdmissionWebhooks()

        @hooks.validating(ConfigMap, operations=["CREATE", "UPDATE"])
        def no_passwords(req: AdmissionRequest[ConfigMap]) -> AdmissionResponse:
            cm = req.object
            if cm is not None and "password" in (cm.data or {}):
                return req.deny("ConfigMaps may not hold a password; use a Secret")
            return req.allow()

    ``kind`` is a model class (objects decode as it) or an ``ApiResource`` (objects are
    ``DynamicObject``). A validating handler returns ``req.allow()`` or ``req.deny()``;
    a mutating one changes ``req.object`` and returns None (or a response). Thread-safe.
    """

    def __init__(self, *, failure_policy: FailurePolicy = "Fail") -> None:
        if failure_policy not in ("Fail", "Ignore"):
            raise UsageError(f"failure_policy must be 'Fail' or 'Ignore', not {failure_policy!r}")
        self.failure_policy = failure_policy
        self._lock = threading.Lock()
        self._handlers: Tuple[Registration, ...] = ()

    @overload
    def validating(self, kind: Type[K], *, operations: Iterable[str] = ...) -> Decorator[K]: ...
    @overload
    def validating(self, kind: ApiResource, *,
                   operations: Iterable[str] = ...) -> Decorator[DynamicObject]: ...
    def validating(self, kind: Any, *,
                   operations: Iterable[str] = ("CREATE", "UPDATE")) -> Any:
        """Register a validating handler of ``kind`` for ``operations``."""
        return self._decorator(kind, operations, mutating=False)

    @overload
    def mutating(self, kind: Type[K], *, operations: Iterable[str] = ...) -> Decorator[K]: ...
    @overload
    def mutating(self, kind: ApiResource, *,
                 operations: Iterable[str] = ...) -> Decorator[DynamicObject]: ...
    def mutating(self, kind: Any, *, operations: Iterable[str] = ("CREATE", "UPDATE")) -> Any:
        """Register a mutating handler of ``kind`` for ``operations``; handlers of one
        kind run in registration order, each seeing the changes of those before."""
        return self._decorator(kind, operations, mutating=True)

    def _decorator(self, kind: Any, operations: Iterable[str], *, mutating: bool) -> Any:
        resource, model = _resource(kind)
        ops = _operations(operations)

        def register(handler: Any) -> Any:
            if not callable(handler):
                raise UsageError(f"a webhook handler must be callable, not {handler!r}")
            with self._lock:
                self._handlers += (Registration(resource, model, ops, handler, mutating),)
            return handler

        return register

    def registrations(self, *, mutating: bool) -> Tuple[Registration, ...]:
        """The validating (or mutating) handlers, in registration order."""
        with self._lock:
            handlers = self._handlers
        return tuple(h for h in handlers if h.mutating == mutating)

    # -- dispatch -------------------------------------------------------------------------

    def review(self, body: Union[bytes, str, Mapping[str, Any]], *,
               mutating: bool) -> Tuple[int, Dict[str, Any]]:
        """Answer an AdmissionReview body: ``(HTTP status, AdmissionReview)``.

        Malformed input gets status 400 and a denying AdmissionReview saying what is
        wrong; handler errors follow the failure policy. Never raises for bad input.
        """
        try:
            raw, _ = parse_json_body(body, ADMISSION_API_VERSION, "AdmissionReview")
            request: AdmissionRequest[Any] = AdmissionRequest(raw)
        except ReviewError as e:
            logger.warning("bad AdmissionReview: %s", e)
            return e.status, AdmissionResponse(e.uid, False, code=400,
                                               message=f"bad AdmissionReview: {e}",
                                               reason="BadRequest").to_review()
        if mutating:
            response = self._mutate(request)
        else:
            response = self._validate(request)
        return 200, response.to_review()

    def _failed(self, request: AdmissionRequest[Any], reg: Registration,
                error: BaseException) -> AdmissionResponse:
        message = str(error) or type(error).__name__
        logger.error("webhook handler %s failed on %r", reg.name, request,
                     exc_info=error if isinstance(error, Exception) else None)
        if self.failure_policy == "Ignore":
            return request.allow(warnings=[
                f"webhook handler {reg.name} failed ({message}); admitted (failure policy "
                "Ignore)"])
        return request.deny(message)

    def _validate(self, request: AdmissionRequest[Any]) -> AdmissionResponse:
        warnings: List[str] = []
        for reg in self.registrations(mutating=False):
            if not reg.matches(request):
                continue
            try:
                response = reg.handler(request.with_model(reg.model))
                if not isinstance(response, AdmissionResponse):
                    raise TypeError(f"validating handler {reg.name} returned {response!r};"
                                    " return req.allow() or req.deny(message)")
                if response.patch:
                    raise TypeError(f"validating handler {reg.name} returned a patch; "
                                    "register it with mutating()")
            except Exception as e:  # a user handler: any error is its answer
                response = self._failed(request, reg, e)
            warnings += response.warnings
            if not response.allowed:
                response.uid = request.uid
                response.warnings = warnings
                return response
        return request.allow(warnings=warnings)

    def _mutate(self, request: AdmissionRequest[Any]) -> AdmissionResponse:
        original = request.raw.get("object")
        current = json_copy(original)
        warnings: List[str] = []
        for reg in self.registrations(mutating=True):
            if not reg.matches(request):
                continue
            try:
                view = request.with_model(reg.model, json_copy(current))
                response = reg.handler(view)
                if response is not None and not isinstance(response, AdmissionResponse):
                    raise TypeError(f"mutating handler {reg.name} returned {response!r}; "
                                    "return None, req.allow(), req.deny() or req.patch()")
                if response is not None and not response.allowed:
                    response.uid = request.uid
                    response.warnings = warnings + response.warnings
                    return response
                if response is not None and response.patch:
                    current = apply_patch(encode(view.object), response.patch)
                elif view.object is not None:
                    current = encode(view.object)
                if response is not None:
                    warnings += response.warnings
            except Exception as e:  # a user handler: any error is its answer
                response = self._failed(request, reg, e)
                if not response.allowed:
                    response.warnings = warnings + response.warnings
                    return response
                warnings += response.warnings
        ops = json_patch(original, current) if original is not None else []
        return AdmissionResponse(request.uid, True, warnings=warnings, patch=ops or None)
