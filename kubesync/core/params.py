"""Options of list, watch, write, patch and delete calls, as query dicts and bodies.

Pure values: nothing here talks to a server. See
https://kubernetes.io/docs/reference/using-api/api-concepts/ for what each option means.
"""

from __future__ import annotations

from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    Iterable,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Union,
)

import attrs

from kubesync.core.deprecation import deprecated_names
from kubesync.errors import UsageError

__all__ = [
    "DEFAULT_FIELD_VALIDATION",
    "DeleteOptions",
    "FieldValidation",
    "LabelQuery",
    "ListParams",
    "Patch",
    "WriteParams",
    "selector_string",
]

#: Page size for ``list_all`` and the watcher's initial list: the same as client-go's
#: reflector and kube-rs's watcher.
DEFAULT_PAGE_SIZE = 500

#: How the server treats fields it does not know, or duplicates, in a write's body:
#: ``Strict`` refuses the write naming the field, ``Warn`` accepts it and answers with a
#: warning per field, ``Ignore`` drops them silently (the behaviour before Kubernetes 1.25).
FieldValidation = Literal["Strict", "Warn", "Ignore"]
#: Writes validate strictly unless told otherwise, as kubectl does since 1.25: a typo or a
#: field the server's version lacks would otherwise be dropped without a word (data loss).
#: Objects read from the same server and written back carry only fields it knows, so a
#: get -> replace of a typed object (which keeps unknown fields) is never refused for
#: them; an object carried to an older cluster is refused naming the field, not truncated.
DEFAULT_FIELD_VALIDATION: FieldValidation = "Strict"

_PROPAGATION = ("Orphan", "Background", "Foreground")
_VALIDATION = ("Ignore", "Warn", "Strict")
_RV_MATCH = ("NotOlderThan", "Exact")


class LabelQuery:
    """A small builder for label selectors: ``LabelQuery(app="web").exists("tier")``.

    Not the ``meta/v1 LabelSelector`` model (``match_labels``/``match_expressions``), an
    object field: this builds the ``labelSelector`` query string of list and watch.

    ``str()`` gives the selector string the server takes.
    """

    def __init__(self, **equals: str):
        self._terms: List[str] = [f"{k}={v}" for k, v in equals.items()]

    def _add(self, term: str) -> LabelQuery:
        self._terms.append(term)
        return self

    def eq(self, key: str, value: str) -> LabelQuery:
        return self._add(f"{key}={value}")

    def ne(self, key: str, value: str) -> LabelQuery:
        return self._add(f"{key}!={value}")

    def in_(self, key: str, values: Iterable[str]) -> LabelQuery:
        return self._add(f"{key} in ({','.join(values)})")

    def not_in(self, key: str, values: Iterable[str]) -> LabelQuery:
        return self._add(f"{key} notin ({','.join(values)})")

    def exists(self, key: str) -> LabelQuery:
        return self._add(key)

    def absent(self, key: str) -> LabelQuery:
        return self._add(f"!{key}")

    def __str__(self) -> str:
        return ",".join(self._terms)

    def __repr__(self) -> str:
        return f"LabelQuery({str(self)!r})"


Selector = Union[str, LabelQuery, Mapping[str, str], None]


def selector_string(sel: Selector) -> Optional[str]:
    """A selector as the server's string: a string, a ``LabelQuery`` or ``{key: value}``."""
    if sel is None:
        return None
    if isinstance(sel, str):
        return sel
    if isinstance(sel, LabelQuery):
        return str(sel)
    if isinstance(sel, Mapping):
        return ",".join(f"{k}={v}" for k, v in sel.items())
    raise UsageError(f"a selector is a str, LabelQuery or mapping, not {type(sel).__name__}")


def _choice(name: str, value: Optional[str], allowed: Sequence[str]) -> None:
    if value is not None and value not in allowed:
        raise UsageError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")


@attrs.frozen
class ListParams:
    """Options of list and watch calls."""

    label_selector: Selector = None
    field_selector: Selector = None
    limit: Optional[int] = None
    continue_: Optional[str] = None
    resource_version: Optional[str] = None
    resource_version_match: Optional[str] = None
    timeout_seconds: Optional[int] = None

    def __attrs_post_init__(self) -> None:
        _choice("resource_version_match", self.resource_version_match, _RV_MATCH)
        if self.limit is not None and self.limit < 1:
            raise UsageError(f"limit must be positive, not {self.limit}")
        if self.resource_version_match and self.resource_version is None:
            raise UsageError("resource_version_match needs resource_version")

    def query(self) -> Dict[str, Any]:
        q: Dict[str, Any] = {}
        label = selector_string(self.label_selector)
        field = selector_string(self.field_selector)
        if label:
            q["labelSelector"] = label
        if field:
            q["fieldSelector"] = field
        if self.limit is not None:
            q["limit"] = self.limit
        if self.continue_:
            q["continue"] = self.continue_
        if self.resource_version is not None:
            q["resourceVersion"] = self.resource_version
        if self.resource_version_match:
            q["resourceVersionMatch"] = self.resource_version_match
        if self.timeout_seconds is not None:
            q["timeoutSeconds"] = self.timeout_seconds
        return q


@attrs.frozen
class WriteParams:
    """Options every write takes: dry run, field manager, field validation (None sends no
    ``fieldValidation``, leaving the server's own default)."""

    dry_run: bool = False
    field_manager: Optional[str] = None
    field_validation: Optional[FieldValidation] = None

    def __attrs_post_init__(self) -> None:
        _choice("field_validation", self.field_validation, _VALIDATION)

    def query(self) -> Dict[str, Any]:
        q: Dict[str, Any] = {}
        if self.dry_run:
            q["dryRun"] = "All"
        if self.field_manager:
            q["fieldManager"] = self.field_manager
        if self.field_validation:
            q["fieldValidation"] = self.field_validation
        return q


@attrs.frozen
class DeleteOptions:
    """The body of a delete: propagation, grace period, preconditions, dry run."""

    propagation_policy: Optional[str] = None
    grace_period_seconds: Optional[int] = None
    precondition_uid: Optional[str] = None
    precondition_resource_version: Optional[str] = None
    dry_run: bool = False

    def __attrs_post_init__(self) -> None:
        _choice("propagation_policy", self.propagation_policy, _PROPAGATION)
        if self.grace_period_seconds is not None and self.grace_period_seconds < 0:
            raise UsageError("grace_period_seconds must be >= 0")

    def body(self) -> Dict[str, Any]:
        b: Dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if self.propagation_policy:
            b["propagationPolicy"] = self.propagation_policy
        if self.grace_period_seconds is not None:
            b["gracePeriodSeconds"] = self.grace_period_seconds
        pre: Dict[str, str] = {}
        if self.precondition_uid:
            pre["uid"] = self.precondition_uid
        if self.precondition_resource_version:
            pre["resourceVersion"] = self.precondition_resource_version
        if pre:
            b["preconditions"] = pre
        if self.dry_run:
            b["dryRun"] = ["All"]
        return b


@attrs.frozen
class Patch:
    """A patch body and its content type. Build with the class methods.

    ``Patch.merge({...})`` (RFC 7386), ``Patch.strategic({...})`` (built-in kinds only),
    ``Patch.json([{"op": ...}, ...])`` (RFC 6902), ``Patch.apply(obj_or_dict)``
    (server-side apply; needs a field manager, and ``force`` to take over fields).
    """

    content_type: str
    body: Any
    is_apply: bool = False

    @classmethod
    def merge(cls, body: Mapping[str, Any]) -> Patch:
        return cls("application/merge-patch+json", body)

    @classmethod
    def strategic(cls, body: Mapping[str, Any]) -> Patch:
        return cls("application/strategic-merge-patch+json", body)

    @classmethod
    def json(cls, ops: Sequence[Mapping[str, Any]]) -> Patch:
        if isinstance(ops, Mapping) or not all(isinstance(o, Mapping) and "op" in o for o in ops):
            raise UsageError("a JSON patch is a list of operations, each with an 'op'")
        return cls("application/json-patch+json", list(ops))

    @classmethod
    def apply(cls, body: Any) -> Patch:
        # Server-side apply takes YAML; JSON is YAML, so the JSON encoding is sent.
        return cls("application/apply-patch+yaml", body, is_apply=True)


if TYPE_CHECKING:
    LabelSelector = LabelQuery  # deprecated spelling, valid for type checkers one release
# The builder's old name, shared with the meta/v1 model: it warns for one release.
__getattr__ = deprecated_names(__name__, {"LabelSelector": ("kubesync.LabelQuery", LabelQuery)})
