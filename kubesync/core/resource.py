"""``ApiResource``: what the server calls a resource type, and the one URL path builder.

Every model class carries one as ``api_resource`` (kube-rs's ``Resource`` trait, as data);
``Discovery`` returns them for kinds without a model. See
https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-uris for the layout.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple
from urllib.parse import quote

import attrs

from kubesync.errors import UsageError

__all__ = ["ApiResource", "resource_of"]


def _tuple(value: Any) -> Tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class ApiResource:
    """One resource type: group/version/kind, plural, scope, and (when known) its verbs.

    ``group`` is ``""`` for the core group. ``verbs``, ``subresources`` and
    ``short_names`` come from the generator (the spec's paths) or from discovery.
    """

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    verbs: Tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    subresources: Tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    short_names: Tuple[str, ...] = attrs.field(default=(), converter=_tuple)

    @property
    def api_version(self) -> str:
        """``v1`` for the core group, ``GROUP/VERSION`` otherwise (the JSON ``apiVersion``)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def url_path(
        self,
        namespace: Optional[str] = None,
        name: Optional[str] = None,
        subresource: Optional[str] = None,
    ) -> str:
        """The request path; the only place that builds one.

        A namespaced kind without ``namespace`` means all namespaces (list and watch
        only); ``name`` and then ``subresource`` are appended, URL-quoted.
        """
        if self.group:
            path = f"/apis/{self.group}/{self.version}"
        else:
            path = f"/api/{self.version}"
        if namespace is not None:
            if not self.namespaced:
                raise UsageError(f"{self.kind} is cluster-scoped: no namespace (got {namespace!r})")
            path += f"/namespaces/{_segment(namespace, 'namespace')}"
        elif self.namespaced and name is not None:
            raise UsageError(f"{self.kind} is namespaced: naming one object needs a namespace")
        path += f"/{self.plural}"
        if name is not None:
            path += f"/{_segment(name, 'name')}"
        if subresource is not None:
            if name is None:
                raise UsageError(f"subresource {subresource!r} of {self.kind} needs a name")
            path += f"/{_segment(subresource, 'subresource')}"
        return path


def _segment(value: str, what: str) -> str:
    # "." and ".." would be resolved as path steps by proxies; Kubernetes forbids them as
    # names anyway, so refusing them here costs nothing and closes a traversal.
    if not isinstance(value, str) or value in ("", ".", ".."):
        raise UsageError(f"invalid {what}: {value!r}")
    return quote(value, safe="")


def resource_of(kind: Any) -> ApiResource:
    """The ``ApiResource`` of a model class or instance (or of a ``DynamicObject``)."""
    found = getattr(kind, "api_resource", None)
    if isinstance(found, ApiResource):
        return found
    name = kind.__name__ if isinstance(kind, type) else type(kind).__name__
    raise UsageError(
        f"{name} is not a resource kind (it has no api_resource); "
        "use a top-level model class, or give an ApiResource"
    )
