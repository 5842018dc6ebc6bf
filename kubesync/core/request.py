"""(resource, namespace, name, options, body) -> a ``Request`` value; nothing is sent here.

``Api`` builds one of these per call and hands it to ``Client.send``. Keeping the
building pure makes most of the Api testable without HTTP: a test compares the described
call with what it expects, and only one function sends.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

import attrs

from kubesync.core.params import DeleteOptions, ListParams, Patch, WriteParams
from kubesync.core.resource import ApiResource
from kubesync.errors import UsageError

__all__ = ["Request", "RequestBuilder", "metadata_list_of", "metadata_of"]

#: Ask for PartialObjectMetadata(List) instead of the full objects (metadata-only calls),
#: with plain JSON as the fallback a server that cannot convert (some aggregated API
#: servers) answers with instead of 406; ``metadata_of`` cuts such an answer down.
ACCEPT_METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
ACCEPT_METADATA_LIST = (
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json")
ACCEPT_TABLE = "application/json;as=Table;g=meta.k8s.io;v=v1"


@attrs.frozen
class Request:
    """One HTTP call, described: what ``Client.send`` needs, and nothing else.

    ``path`` is absolute (``/api/v1/namespaces``); ``query`` values may be lists (the key
    repeats), booleans or None (dropped). ``body`` is bytes (sent as they are) or a
    JSON-able value, sent as ``content_type`` (default ``application/json``).
    ``extra_headers`` are further request headers; ``accept`` is the Accept header.
    """

    method: str
    path: str
    query: Mapping[str, Any] = attrs.field(factory=dict)
    body: Any = None
    content_type: Optional[str] = None
    accept: Optional[str] = None
    extra_headers: Mapping[str, str] = attrs.field(factory=dict, kw_only=True)

    @property
    def headers(self) -> Dict[str, str]:
        """The headers this request sets itself (Accept and ``extra_headers``)."""
        out = {"Accept": self.accept} if self.accept else {}
        out.update(self.extra_headers)
        return out


@attrs.frozen
class RequestBuilder:
    """Builds the requests of one resource in one namespace scope.

    ``namespace`` None means: cluster-scoped kind, or all namespaces of a namespaced kind
    (only list, watch and delete_collection make sense there).
    """

    resource: ApiResource
    namespace: Optional[str] = None

    def _path(self, name: Optional[str] = None, subresource: Optional[str] = None) -> str:
        if name is not None and not name:
            raise UsageError(f"an empty name for {self.resource.kind}")
        if self.resource.namespaced and self.namespace is None and name is not None:
            raise UsageError(
                f"{self.resource.kind} is namespaced: a call on one object needs a namespace "
                "(this Api was made for all namespaces)"
            )
        return self.resource.url_path(
            namespace=self.namespace, name=name, subresource=subresource
        )

    # -- reads ---------------------------------------------------------------------------

    def get(self, name: str, *, subresource: Optional[str] = None,
            accept: Optional[str] = None) -> Request:
        return Request("GET", self._path(name, subresource), accept=accept)

    def list(self, params: ListParams, *, accept: Optional[str] = None) -> Request:
        return Request("GET", self._path(), params.query(), accept=accept)

    def watch(self, params: ListParams, *, bookmarks: bool = True,
              send_initial_events: bool = False, accept: Optional[str] = None) -> Request:
        q = params.query()
        q["watch"] = "1"
        if bookmarks:
            q["allowWatchBookmarks"] = "true"
        if send_initial_events:
            q["sendInitialEvents"] = "true"
        return Request("GET", self._path(), q, accept=accept)

    # -- writes --------------------------------------------------------------------------

    def create(self, body: Any, wp: WriteParams, *, subresource: Optional[str] = None,
               name: Optional[str] = None) -> Request:
        path = self._path(name, subresource) if subresource else self._collection_path()
        return Request("POST", path, wp.query(), body, "application/json")

    def _collection_path(self) -> str:
        if self.resource.namespaced and self.namespace is None:
            raise UsageError(
                f"{self.resource.kind} is namespaced: writes need a namespace "
                "(this Api was made for all namespaces)"
            )
        return self._path()

    def replace(self, name: str, body: Any, wp: WriteParams, *,
                subresource: Optional[str] = None) -> Request:
        return Request("PUT", self._path(name, subresource), wp.query(), body, "application/json")

    def patch(self, name: str, patch: Patch, wp: WriteParams, *, force: bool = False,
              subresource: Optional[str] = None) -> Request:
        q = wp.query()
        if patch.is_apply:
            if not wp.field_manager:
                raise UsageError("server-side apply needs a field_manager")
            if force:
                q["force"] = "true"
        elif force:
            raise UsageError("force is only for server-side apply patches")
        return Request("PATCH", self._path(name, subresource), q, patch.body, patch.content_type)

    def delete(self, name: str, opts: DeleteOptions) -> Request:
        return Request("DELETE", self._path(name), {}, opts.body(), "application/json")

    def delete_collection(self, params: ListParams, opts: DeleteOptions) -> Request:
        return Request(
            "DELETE", self._collection_path(), params.query(), opts.body(), "application/json"
        )

    def logs(self, name: str, query: Mapping[str, Any]) -> Request:
        return Request("GET", self._path(name, "log"), dict(query))

    def connect(self, name: str, subresource: str, query: Mapping[str, Any]) -> Request:
        """A GET on a connect subresource (``exec``, ``attach``, ``portforward``): the
        request a WebSocket upgrade carries."""
        return Request("GET", self._path(name, subresource), dict(query))

def metadata_of(data: Any) -> Any:
    """One object answered to ``ACCEPT_METADATA``, as ``PartialObjectMetadata``: a whole
    object (the fallback) is cut down to its metadata, so nothing else is kept in memory."""
    if not isinstance(data, Mapping) or data.get("kind") == "PartialObjectMetadata":
        return data
    return {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
            "metadata": data.get("metadata") or {}}


def metadata_list_of(data: Any) -> Any:
    """A list answered to ``ACCEPT_METADATA_LIST``, as ``PartialObjectMetadataList`` (each
    item of a whole-object fallback cut down as ``metadata_of`` does)."""
    if not isinstance(data, Mapping) or data.get("kind") == "PartialObjectMetadataList":
        return data
    items = data.get("items")
    return {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
            "metadata": data.get("metadata") or {},
            "items": [metadata_of(i) for i in items] if isinstance(items, list) else items}
