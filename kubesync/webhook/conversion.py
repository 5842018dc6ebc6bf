"""ConversionReview (apiextensions.k8s.io/v1): converting custom objects between the
versions of a CRD, one function per version pair.

The API server sends objects and the ``desiredAPIVersion``; each object is converted by
the function registered for its (kind, from, to), or along a chain of registered pairs
(v1 -> v2 -> v3) when there is no direct one. See
https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definition-versioning/
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, TypeVar, Union

import attrs

from kubesync.core.convert import decode, encode
from kubesync.core.dynamic import DynamicObject
from kubesync.core.resource import resource_of
from kubesync.errors import UsageError
from kubesync.webhook.review import ReviewError, parse_json_body

__all__ = ["CONVERSION_API_VERSION", "ConversionError", "Conversions"]

logger = logging.getLogger("kubesync.webhook")

CONVERSION_API_VERSION = "apiextensions.k8s.io/v1"

F = TypeVar("F", bound=Callable[..., Any])


class ConversionError(ReviewError):
    """An object that cannot be converted (no function for its versions, or one failed)."""


@attrs.frozen
class _Step:
    kind: str
    source: str
    target: str
    model: Optional[type]
    fn: Callable[[Any], Any]


def _version_of(version: Any) -> Tuple[str, Optional[str], Optional[type]]:
    """(apiVersion, kind, model) of a version given as a resource class or an apiVersion."""
    if isinstance(version, str):
        return version, None, None
    r = resource_of(version)
    return r.api_version, r.kind, version if isinstance(version, type) else None


class Conversions:
    """Conversion functions between the versions of custom resources::

        conversions = Conversions()

        @conversions.register(WidgetV1, WidgetV2)
        def up(old: WidgetV1) -> WidgetV2: ...

    With resource classes the function gets and returns objects of those classes; with
    apiVersion strings (and ``kind=``) it gets a ``DynamicObject`` and returns a mapping.
    The result's ``apiVersion`` is set for it; the API server checks that ``metadata``
    stays the same (labels and annotations may change). Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._steps: Dict[Tuple[str, str, str], _Step] = {}

    def register(self, source: Any, target: Any, *, kind: Optional[str] = None) -> Callable[[F], F]:
        """Register the decorated function as the conversion from ``source`` to ``target``."""
        src, src_kind, model = _version_of(source)
        dst, dst_kind, _ = _version_of(target)
        kinds = {k for k in (src_kind, dst_kind, kind) if k}
        if len(kinds) != 1:
            raise UsageError(f"a conversion {src} -> {dst} needs one kind (got "
                             f"{sorted(kinds) or 'none'}; pass kind= with apiVersion strings)")
        (the_kind,) = kinds
        if src == dst:
            raise UsageError(f"a conversion from {src} to itself is not needed")

        def add(fn: F) -> F:
            with self._lock:
                key = (the_kind, src, dst)
                if key in self._steps:
                    raise UsageError(f"a conversion of {the_kind} {src} -> {dst} is "
                                     "registered already")
                self._steps[key] = _Step(the_kind, src, dst, model, fn)
            return fn

        return add

    def _path(self, kind: str, source: str, target: str) -> Optional[List[_Step]]:
        with self._lock:
            steps = [s for s in self._steps.values() if s.kind == kind]
        # Breadth first: the shortest chain of registered conversions.
        came: Dict[str, Optional[_Step]] = {source: None}
        todo = collections.deque([source])
        while todo:
            at = todo.popleft()
            if at == target:
                path: List[_Step] = []
                step = came[at]
                while step is not None:
                    path.append(step)
                    step = came[step.source]
                return path[::-1]
            for s in steps:
                if s.source == at and s.target not in came:
                    came[s.target] = s
                    todo.append(s.target)
        return None

    def convert(self, obj: Mapping[str, Any], desired_api_version: str) -> Dict[str, Any]:
        """``obj`` (JSON) as ``desired_api_version``; raises ``ConversionError``."""
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        name = (obj.get("metadata") or {}).get("name")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            raise ConversionError(f"object {name!r} has no apiVersion and kind")
        out: Dict[str, Any] = dict(obj)
        if api_version == desired_api_version:
            return out
        path = self._path(kind, api_version, desired_api_version)
        if path is None:
            raise ConversionError(f"no conversion of {kind} from {api_version} to "
                                  f"{desired_api_version} is registered")
        for step in path:
            value: Any = decode(step.model, out) if step.model else DynamicObject(out)
            try:
                result = step.fn(value)
            except Exception as e:  # a user function: its error is the answer
                logger.error("converting %s %r from %s to %s failed", kind, name,
                             step.source, step.target, exc_info=True)
                raise ConversionError(f"converting {kind} {name!r} from {step.source} to "
                                      f"{step.target}: {e or type(e).__name__}") from None
            try:
                encoded = dict(result) if isinstance(result, Mapping) else encode(result)
            except Exception:  # not an object we can encode: say so below
                encoded = None
            if not isinstance(encoded, dict):
                raise ConversionError(f"the conversion {step.source} -> {step.target} of "
                                      f"{kind} returned {type(result).__name__}, not an object")
            out = dict(encoded, apiVersion=step.target, kind=kind)
        return out

    def review(self, body: Union[bytes, str, Mapping[str, Any]]) -> Tuple[int, Dict[str, Any]]:
        """Answer a ConversionReview body: ``(HTTP status, ConversionReview)``; bad input
        gets 400, a failed conversion a ``Failure`` result with its message."""
        try:
            request, uid = parse_json_body(body, CONVERSION_API_VERSION, "ConversionReview")
        except ReviewError as e:
            logger.warning("bad ConversionReview: %s", e)
            return e.status, _answer(e.uid, None, f"bad ConversionReview: {e}")
        desired, objects = request.get("desiredAPIVersion"), request.get("objects")
        if not isinstance(desired, str) or not isinstance(objects, list):
            return 400, _answer(uid, None, "bad ConversionReview: the request needs "
                                "desiredAPIVersion (a string) and objects (a list)")
        try:
            converted = [self.convert(_object(o, i), desired) for i, o in enumerate(objects)]
        except ConversionError as e:
            return 200, _answer(uid, None, str(e))
        return 200, _answer(uid, converted, None)


def _object(obj: Any, i: int) -> Mapping[str, Any]:
    if not isinstance(obj, dict):
        raise ConversionError(f"request.objects[{i}] is not an object")
    return obj


def _answer(uid: str, converted: Optional[List[Dict[str, Any]]],
            failure: Optional[str]) -> Dict[str, Any]:
    response: Dict[str, Any] = {"uid": uid}
    if failure is None:
        response["convertedObjects"] = converted or []
        response["result"] = {"status": "Success"}
    else:
        response["result"] = {"status": "Failure", "message": failure}
    return {"apiVersion": CONVERSION_API_VERSION, "kind": "ConversionReview",
            "response": response}
