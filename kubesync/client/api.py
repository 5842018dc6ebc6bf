"""``Api[K]``: the verbs of one resource type in one namespace scope. No threads here.

One implementation for every kind: generated models, custom resources and
``DynamicObject`` (give an ``ApiResource`` instead of a class). Each call is built as a
``Request`` value by ``core.request`` and sent by the ``Client``; answers are decoded
into the kind's model.
"""

from __future__ import annotations

import os
import random
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Generic,
    Iterator,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Type,
    TypeVar,
    Union,
    overload,
)

from kubesync.client import podcopy, podexec, pods, portforward
from kubesync.client.gcpause import gc_paused
from kubesync.client.watch import WatchStream
from kubesync.core.backoff import UPDATE_CONFLICT
from kubesync.core.clock import SYSTEM_CLOCK, Clock
from kubesync.core.convert import decode, decode_list, encode
from kubesync.core.dynamic import DynamicObject
from kubesync.core.jsonstream import ItemConverter
from kubesync.core.objectlist import item_converter
from kubesync.core.params import (
    DEFAULT_FIELD_VALIDATION,
    DEFAULT_PAGE_SIZE,
    DeleteOptions,
    FieldValidation,
    ListParams,
    Patch,
    Selector,
    WriteParams,
)
from kubesync.core.request import (
    ACCEPT_METADATA,
    ACCEPT_METADATA_LIST,
    Request,
    RequestBuilder,
    metadata_list_of,
    metadata_of,
)
from kubesync.core.resource import ApiResource, resource_of
from kubesync.errors import (
    Conflict,
    NotFound,
    Status,
    UsageError,
)

if TYPE_CHECKING:
    from kubesync.client.client import Client
    from kubesync.client.podexec import ExecProcess, ExecResult
    from kubesync.client.portforward import PortForward, PortForwardStream
    from kubesync.core.convert import ObjectList
    from kubesync.models.autoscaling_v1 import Scale
    from kubesync.models.meta_v1 import PartialObjectMetadata

__all__ = ["Api", "WatchStream"]

K = TypeVar("K")

#: RetryOnConflict: client-go's DefaultRetry tries 5 times 10 ms apart; we allow more
#: tries with exponential backoff and jitter (``kubesync.core.backoff.UPDATE_CONFLICT``),
#: because a script's read-modify-write often races with a controller (and 8 racing
#: writers need up to 8 rounds).
UPDATE_RETRIES = 12


class Api(Generic[K]):
    """The verbs of one resource type, in one namespace or across all of them.

    Thread-safe: an ``Api`` holds no mutable state; share it between threads like the
    ``Client`` it wraps. Objects returned are the caller's own.
    """

    @overload
    def __init__(
        self: Api[DynamicObject], client: Client, kind: ApiResource,
        namespace: Optional[str] = None,
    ) -> None: ...

    @overload
    def __init__(
        self: Api[DynamicObject], client: Client, kind: str, namespace: Optional[str] = None,
    ) -> None: ...

    @overload
    def __init__(self, client: Client, kind: Type[K], namespace: Optional[str] = None) -> None: ...

    def __init__(self, client: Client, kind: Any, namespace: Optional[str] = None) -> None:
        if isinstance(kind, str):  # a name as kubectl takes it: resolved by discovery
            kind = client.resolve(kind)
        if isinstance(kind, ApiResource):
            self.resource = kind
            self.model: Type[Any] = DynamicObject
        elif isinstance(kind, type):
            self.resource = resource_of(kind)
            self.model = kind
        else:
            raise UsageError(
                f"Api takes a resource class, an ApiResource or a resource name, "
                f"not {type(kind).__name__}"
            )
        if namespace is not None and not self.resource.namespaced:
            raise UsageError(
                f"{self.resource.kind} is cluster-scoped: it takes no namespace "
                f"(given {namespace!r})"
            )
        if namespace is not None and not namespace:
            raise UsageError("an empty namespace; use Api.all() for all namespaces")
        self.client = client
        self.namespace = namespace
        self._rb = RequestBuilder(self.resource, namespace)

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def namespaced(cls, client: Client, kind: Type[K], namespace: str) -> Api[K]:
        """An Api for one namespace of a namespaced kind."""
        api: Api[K] = cls(client, kind, namespace)
        if not api.resource.namespaced:
            raise UsageError(f"{api.resource.kind} is cluster-scoped, not namespaced")
        return api

    @classmethod
    def default_namespaced(cls, client: Client, kind: Type[K]) -> Api[K]:
        """An Api for the config's namespace (the context's, or the pod's in-cluster)."""
        return cls.namespaced(client, kind, client.default_namespace)

    @classmethod
    def all(cls, client: Client, kind: Type[K]) -> Api[K]:
        """Cluster-scoped kinds; or list/watch of a namespaced kind across namespaces."""
        return cls(client, kind, None)

    def __repr__(self) -> str:
        where = f"namespace={self.namespace!r}" if self.namespace else "all namespaces"
        if not self.resource.namespaced:
            where = "cluster"
        return f"<Api {self.resource.api_version} {self.resource.plural} ({where})>"

    # -- plumbing -----------------------------------------------------------------------

    def _send(self, req: Request, converter: Optional[ItemConverter] = None) -> Any:
        if converter is None:
            return self.client.send(req)
        return self.client.send(req, converter=converter)

    def _decode(self, data: Any) -> K:
        return decode(self.model, data)

    def _body(self, obj: Any, *, name: Optional[str] = None) -> Dict[str, Any]:
        """Encode ``obj`` for a write, checking its kind, name and namespace first."""
        if isinstance(obj, Mapping) and self.model is DynamicObject:
            body = dict(obj)
        elif isinstance(obj, self.model):
            body = encode(obj)
        else:
            raise UsageError(
                f"this Api is for {self.resource.kind}, not {type(obj).__name__}"
            )
        kind = body.get("kind")
        if kind is not None and kind != self.resource.kind:
            raise UsageError(f"this Api is for {self.resource.kind}, the object is a {kind}")
        body.setdefault("apiVersion", self.resource.api_version)
        body.setdefault("kind", self.resource.kind)
        meta = dict(body.get("metadata") or {})
        if name is not None:
            given = meta.get("name")
            if given is not None and given != name:
                raise UsageError(f"the object is named {given!r}, the call names {name!r}")
            meta["name"] = name
        ns = meta.get("namespace")
        if self.resource.namespaced and ns is not None and self.namespace not in (None, ns):
            raise UsageError(
                f"the object is in namespace {ns!r}, this Api is for {self.namespace!r}"
            )
        body["metadata"] = meta
        return body

    @staticmethod
    def _name_of(body: Mapping[str, Any]) -> str:
        name = (body.get("metadata") or {}).get("name")
        if not name:
            raise UsageError("the object has no metadata.name")
        return str(name)

    # -- reads --------------------------------------------------------------------------

    def get(self, name: str) -> K:
        """The object named ``name``; ``NotFound`` if there is none."""
        return self._decode(self._send(self._rb.get(name)))

    def get_opt(self, name: str) -> Optional[K]:
        """The object named ``name``, or None if there is none."""
        try:
            return self.get(name)
        except NotFound:
            return None

    def get_metadata(self, name: str) -> PartialObjectMetadata:
        """Only the object's metadata (``PartialObjectMetadata``): cheap for big objects."""
        from kubesync.models.meta_v1 import PartialObjectMetadata

        data = self._send(self._rb.get(name, accept=ACCEPT_METADATA))
        return decode(PartialObjectMetadata, metadata_of(data))

    def list(
        self,
        *,
        label_selector: Selector = None,
        field_selector: Selector = None,
        limit: Optional[int] = None,
        continue_: Optional[str] = None,
        resource_version: Optional[str] = None,
        resource_version_match: Optional[str] = None,
        timeout_seconds: Optional[int] = None,
    ) -> ObjectList[K]:
        """One LIST call: ``items`` plus list metadata (``resource_version``, ``continue_``...)."""
        params = ListParams(label_selector, field_selector, limit, continue_,
                            resource_version, resource_version_match, timeout_seconds)
        return self._list(params)

    def _list(self, params: ListParams) -> ObjectList[K]:
        # The items are made while the answer arrives (core/jsonstream.py), the rest after.
        converter = item_converter(self.model)
        data = self._send(self._rb.list(params), converter)
        with gc_paused():  # thousands of wrappers, no cycles: see client/gcpause.py
            return decode_list(self.model, data, converter=converter)

    def list_metadata(
        self,
        *,
        label_selector: Selector = None,
        field_selector: Selector = None,
        limit: Optional[int] = None,
        continue_: Optional[str] = None,
        resource_version: Optional[str] = None,
        resource_version_match: Optional[str] = None,
    ) -> ObjectList[PartialObjectMetadata]:
        """LIST returning only metadata (``PartialObjectMetadataList``)."""
        from kubesync.models.meta_v1 import PartialObjectMetadata

        params = ListParams(label_selector, field_selector, limit, continue_, resource_version,
                            resource_version_match)
        data = self._send(self._rb.list(params, accept=ACCEPT_METADATA_LIST))
        return decode_list(PartialObjectMetadata, metadata_list_of(data))

    def list_all(
        self,
        *,
        label_selector: Selector = None,
        field_selector: Selector = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        progress: Optional[bool] = None,
    ) -> Iterator[K]:
        """Every object, page by page (``limit``/``continue``), as one iterator.

        ``progress``: a progress line while paging; None shows it only in Jupyter or a
        terminal (see ``kubesync.display.progress``).
        """
        from kubesync.display.progress import Progress  # presentation: loaded on use

        continue_: Optional[str] = None
        done = 0
        plural = self.resource.plural
        with Progress(f"Listing {plural}", unit=plural, enabled=progress) as bar:
            while True:
                page = self._list(ListParams(label_selector, field_selector, page_size,
                                             continue_))
                yield from page.items
                continue_ = page.metadata.continue_ if page.metadata is not None else None
                done += len(page.items)
                remaining = page.remaining_item_count if continue_ else 0
                bar.update(done, total=None if remaining is None else done + remaining)
                if not continue_:
                    return

    # -- writes -------------------------------------------------------------------------

    def create(
        self, obj: K, *, dry_run: bool = False, field_manager: Optional[str] = None,
        field_validation: Optional[FieldValidation] = DEFAULT_FIELD_VALIDATION,
    ) -> K:
        """Create ``obj``; ``AlreadyExists`` if the name is taken.

        Writes (create, replace, patch, apply) validate fields on the server:
        ``field_validation`` ``Strict`` (the default, as kubectl's) refuses unknown or
        duplicate fields with ``BadRequest`` naming them; ``Warn`` writes and reports each
        as a ``KubeWarning``; ``Ignore``, or None (send nothing), drops them silently.
        """
        body = self._body(obj)
        meta = body["metadata"]
        if not meta.get("name") and not meta.get("generateName"):
            raise UsageError("create needs metadata.name or metadata.generateName")
        wp = WriteParams(dry_run, field_manager, field_validation)
        return self._decode(self._send(self._rb.create(body, wp)))

    def replace(
        self, name: str, obj: K, *, dry_run: bool = False, field_manager: Optional[str] = None,
        field_validation: Optional[FieldValidation] = DEFAULT_FIELD_VALIDATION,
    ) -> K:
        """Replace the whole object (PUT). A stale ``resourceVersion`` raises ``Conflict``."""
        body = self._body(obj, name=name)
        wp = WriteParams(dry_run, field_manager, field_validation)
        return self._decode(self._send(self._rb.replace(name, body, wp)))

    def patch(
        self, name: str, patch: Patch, *, dry_run: bool = False,
        field_manager: Optional[str] = None,
        field_validation: Optional[FieldValidation] = DEFAULT_FIELD_VALIDATION,
        force: bool = False,
    ) -> K:
        """Patch with a ``Patch`` (merge, strategic, json or apply)."""
        patch = self._apply_body(patch, name)
        wp = WriteParams(dry_run, field_manager, field_validation)
        return self._decode(self._send(self._rb.patch(name, patch, wp, force=force)))

    def _apply_body(self, patch: Patch, name: str) -> Patch:
        if not isinstance(patch, Patch):
            raise UsageError(
                f"patch takes a Patch (Patch.merge/strategic/json/apply), "
                f"not {type(patch).__name__}"
            )
        if patch.is_apply and not isinstance(patch.body, Mapping):
            return Patch.apply(self._body(patch.body, name=name))
        return patch

    def apply(
        self, obj: Union[K, Mapping[str, Any]], *, field_manager: str, force: bool = False,
        dry_run: bool = False,
        field_validation: Optional[FieldValidation] = DEFAULT_FIELD_VALIDATION,
    ) -> K:
        """Server-side apply ``obj`` as ``field_manager``.

        ``obj`` is the kind's model, or any mapping (a dict, a ``DynamicObject``) holding
        the partial manifest to apply: its ``apiVersion`` and ``kind``, when given, must be
        this Api's. Fields another manager owns raise ``Conflict`` naming it;
        ``force=True`` takes them.
        """
        if isinstance(obj, Mapping) and not isinstance(obj, self.model):
            api_version = obj.get("apiVersion", self.resource.api_version)
            kind = obj.get("kind", self.resource.kind)
            if (api_version, kind) != (self.resource.api_version, self.resource.kind):
                raise UsageError(
                    f"this Api is for {self.resource.api_version} {self.resource.kind}, "
                    f"the manifest is {api_version} {kind}"
                )
            # Decoding is lazy and keeps every field, so the body is the manifest as given.
            obj = self._decode(dict(obj))
        body = self._body(obj)
        name = self._name_of(body)
        wp = WriteParams(dry_run, field_manager, field_validation)
        req = self._rb.patch(name, Patch.apply(body), wp, force=force)
        return self._decode(self._send(req))

    def delete(
        self, name: str, *, propagation_policy: Optional[str] = None,
        grace_period_seconds: Optional[int] = None, precondition_uid: Optional[str] = None,
        precondition_resource_version: Optional[str] = None, dry_run: bool = False,
    ) -> Union[K, Status]:
        """Delete; the object while it still finalizes, or the server's Status when gone."""
        opts = DeleteOptions(propagation_policy, grace_period_seconds, precondition_uid,
                             precondition_resource_version, dry_run)
        return self._object_or_status(self._send(self._rb.delete(name, opts)))

    def delete_collection(
        self, *, label_selector: Selector = None, field_selector: Selector = None,
        propagation_policy: Optional[str] = None, grace_period_seconds: Optional[int] = None,
        dry_run: bool = False,
    ) -> Union[ObjectList[K], Status]:
        """Delete every object the selectors match (in this Api's namespace)."""
        opts = DeleteOptions(propagation_policy, grace_period_seconds, dry_run=dry_run)
        params = ListParams(label_selector, field_selector)
        data = self._send(self._rb.delete_collection(params, opts))
        if isinstance(data, Mapping) and data.get("kind") == "Status":
            return Status.from_dict(data)
        return decode_list(self.model, data)

    def _object_or_status(self, data: Any) -> Union[K, Status]:
        if isinstance(data, Mapping) and data.get("kind") == "Status":
            return Status.from_dict(data)
        return self._decode(data)

    def update(
        self, name: str, mutate: Callable[[K], Optional[K]], *,
        retries: int = UPDATE_RETRIES, field_manager: Optional[str] = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> K:
        """Read-modify-write: get, ``mutate`` (in place, or return a new object), replace.

        On ``Conflict`` (someone wrote in between) it starts over from a fresh get, with
        exponential backoff and jitter, up to ``retries`` times; the last Conflict is
        raised. ``mutate`` may run more than once: keep it free of side effects. The
        pauses go through ``clock`` (a ``FakeClock`` in tests).
        """
        for attempt in range(retries + 1):
            current = self.get(name)
            changed = mutate(current)
            target = current if changed is None else changed
            try:
                return self.replace(name, target, field_manager=field_manager)
            except Conflict:
                if attempt == retries:
                    raise
                clock.sleep(UPDATE_CONFLICT.delay(attempt, random.random()))
        raise AssertionError("unreachable")  # pragma: no cover

    # -- subresources -------------------------------------------------------------------

    def get_status(self, name: str) -> K:
        return self._decode(self._send(self._rb.get(name, subresource="status")))

    def replace_status(self, name: str, obj: K, *, field_manager: Optional[str] = None) -> K:
        """Replace the status (the spec in ``obj`` is ignored by the server)."""
        body = self._body(obj, name=name)
        req = self._rb.replace(name, body, WriteParams(field_manager=field_manager),
                               subresource="status")
        return self._decode(self._send(req))

    def patch_status(
        self, name: str, patch: Patch, *, field_manager: Optional[str] = None,
        force: bool = False,
    ) -> K:
        patch = self._apply_body(patch, name)
        req = self._rb.patch(name, patch, WriteParams(field_manager=field_manager),
                             force=force, subresource="status")
        return self._decode(self._send(req))

    def get_scale(self, name: str) -> Scale:
        from kubesync.models.autoscaling_v1 import Scale

        return decode(Scale, self._send(self._rb.get(name, subresource="scale")))

    def replace_scale(self, name: str, scale: Scale) -> Scale:
        from kubesync.models.autoscaling_v1 import Scale

        body = encode(scale)
        body.setdefault("apiVersion", "autoscaling/v1")
        body.setdefault("kind", "Scale")
        body.setdefault("metadata", {}).setdefault("name", name)
        req = self._rb.replace(name, body, WriteParams(), subresource="scale")
        return decode(Scale, self._send(req))

    def patch_scale(self, name: str, patch: Patch) -> Scale:
        from kubesync.models.autoscaling_v1 import Scale

        req = self._rb.patch(name, patch, WriteParams(), subresource="scale")
        return decode(Scale, self._send(req))

    def get_subresource(self, name: str, subresource: str) -> DynamicObject:
        """GET any subresource of object ``name`` (``"status"``, ``"scale"``, ``"resize"``...)
        as a ``DynamicObject``; for those without a method of their own."""
        return decode(DynamicObject, self._send(self._rb.get(name, subresource=subresource)))

    def patch_subresource(
        self, name: str, subresource: str, patch: Patch, *, dry_run: bool = False,
        field_manager: Optional[str] = None,
        field_validation: Optional[FieldValidation] = DEFAULT_FIELD_VALIDATION,
        force: bool = False,
    ) -> DynamicObject:
        """PATCH any subresource of object ``name``; the server's answer."""
        wp = WriteParams(dry_run, field_manager, field_validation)
        req = self._rb.patch(name, patch, wp, force=force, subresource=subresource)
        return decode(DynamicObject, self._send(req))

    def replace_subresource(
        self, name: str, subresource: str, body: Mapping[str, Any], *, dry_run: bool = False,
        field_manager: Optional[str] = None,
        field_validation: Optional[FieldValidation] = DEFAULT_FIELD_VALIDATION,
    ) -> DynamicObject:
        """PUT any subresource of object ``name`` (``body`` is its JSON); the answer."""
        wp = WriteParams(dry_run, field_manager, field_validation)
        req = self._rb.replace(name, dict(body), wp, subresource=subresource)
        return decode(DynamicObject, self._send(req))

    def create_subresource(
        self, name: str, subresource: str, body: Mapping[str, Any], *, dry_run: bool = False,
        field_manager: Optional[str] = None,
    ) -> DynamicObject:
        """POST to any subresource of object ``name`` (``binding``, ``token``...); the answer."""
        req = self._rb.create(dict(body), WriteParams(dry_run, field_manager), name=name,
                              subresource=subresource)
        return decode(DynamicObject, self._send(req))

    def add_ephemeral_container(
        self, name: str, container: Any, *, field_manager: Optional[str] = None,
    ) -> K:
        """Add a debug container to running pod ``name`` (``kubectl debug``): ``container``
        is an ``EphemeralContainer`` (or its mapping) with a name and an image, and maybe
        ``target_container_name`` to share that container's process namespace. Returns
        the pod; watch ``status.ephemeral_container_statuses`` for it to run. Servers
        before 1.23 raise ``FeatureUnavailable``."""
        from kubesync.client.pod_updates import ephemeral_container_request

        req = ephemeral_container_request(self.client, self._rb, name, container,
                                          field_manager=field_manager)
        return self._decode(self._send(req))

    def resize(
        self, name: str, resources: Mapping[str, Any], *, field_manager: Optional[str] = None,
    ) -> K:
        """Change container resources of running pod ``name`` in place (the ``resize``
        subresource): ``{container: ResourceRequirements or mapping}``. Returns the pod;
        ``status.container_statuses[].resources`` shows when the kubelet applied it.
        Servers before 1.33 raise ``FeatureUnavailable``."""
        from kubesync.client.pod_updates import resize_request

        req = resize_request(self.client, self._rb, name, resources,
                             field_manager=field_manager)
        return self._decode(self._send(req))

    def evict(
        self, name: str, *, grace_period_seconds: Optional[int] = None,
        dry_run: bool = False,
    ) -> Status:
        """Evict a pod (policy/v1 Eviction, respecting PodDisruptionBudgets).

        A budget that forbids it raises ``TooManyRequests``. Servers older than 1.22 know
        only policy/v1beta1 Eviction; that is used when v1 is refused.
        """
        return pods.evict(self.client, self._rb, name,
                          grace_period_seconds=grace_period_seconds, dry_run=dry_run)

    @overload
    def logs(
        self, name: str, *, container: Optional[str] = None, follow: Literal[False] = False,
        tail_lines: Optional[int] = None, since_seconds: Optional[int] = None,
        timestamps: bool = False, previous: bool = False,
    ) -> str: ...

    @overload
    def logs(
        self, name: str, *, container: Optional[str] = None, follow: Literal[True],
        tail_lines: Optional[int] = None, since_seconds: Optional[int] = None,
        timestamps: bool = False, previous: bool = False,
    ) -> Iterator[str]: ...

    @overload
    def logs(
        self, name: str, *, container: Optional[str] = None, follow: bool,
        tail_lines: Optional[int] = None, since_seconds: Optional[int] = None,
        timestamps: bool = False, previous: bool = False,
    ) -> Union[str, Iterator[str]]: ...

    def logs(
        self, name: str, *, container: Optional[str] = None, follow: bool = False,
        tail_lines: Optional[int] = None, since_seconds: Optional[int] = None,
        timestamps: bool = False, previous: bool = False,
    ) -> Union[str, Iterator[str]]:
        """A pod's log as one string; with ``follow=True`` an iterator of lines (str)."""
        return pods.logs(self.client, self._rb, name, container=container, follow=follow,
                         tail_lines=tail_lines, since_seconds=since_seconds,
                         timestamps=timestamps, previous=previous)

    def exec(
        self, name: str, command: Sequence[str], *, container: Optional[str] = None,
        stdin: Union[bytes, str, None] = None, tty: bool = False,
        timeout: Optional[float] = None, check: bool = False,
    ) -> ExecResult:
        """Run ``command`` in pod ``name`` to its end, as ``subprocess.run`` does.

        ``stdin`` (bytes or str) is sent, then closed so the command sees EOF (on
        servers before Kubernetes 1.30, which speak only ``v4.channel.k8s.io``, it cannot
        be closed: give a command that does not read to EOF). ``timeout`` bounds the whole
        command (``RequestTimeout``); ``check=True`` raises ``ExecError`` on a non-zero
        exit. A command that cannot be run raises ``ExecError`` with ``returncode`` None.
        Without the ``create`` verb on ``pods/exec``, ``Forbidden``.
        """
        return podexec.exec_command(self.client, self._rb, name, command,
                                    container=container, stdin=stdin, tty=tty,
                                    timeout=timeout, check=check)

    def exec_stream(
        self, name: str, command: Sequence[str], *, container: Optional[str] = None,
        stdin: bool = False, tty: bool = False, timeout: Optional[float] = None,
    ) -> ExecProcess:
        """Start ``command`` in pod ``name``: a process-like ``ExecProcess`` to use in ``with``.

        ``stdin=True`` gives ``proc.stdin`` (``write``, ``close``: the v5 close signal; a
        v4 server cannot half-close it). ``proc.stdout``/``proc.stderr`` read as binary
        files; ``proc.wait(timeout)`` returns the exit code; ``proc.resize(cols, rows)``
        with ``tty=True``. ``timeout`` bounds the whole session.
        """
        return podexec.open_process(self.client, self._rb, name, command,
                                    container=container, stdin=stdin, tty=tty,
                                    timeout=timeout)

    def attach(
        self, name: str, *, container: Optional[str] = None, stdin: bool = False,
        tty: bool = False, timeout: Optional[float] = None,
    ) -> ExecProcess:
        """Attach to the running main process of pod ``name`` (its container's stdio).

        The same ``ExecProcess`` as ``exec_stream``; its ``stdin`` reaches the process
        only if the container sets ``stdin: true`` (and ``tty: true`` for a TTY).
        """
        return podexec.open_process(self.client, self._rb, name, None, container=container,
                                    stdin=stdin, tty=tty, timeout=timeout)

    def port_forward(self, name: str, port: int, *, local_port: int = 0,
                     address: str = "127.0.0.1") -> PortForward:
        """Forward a local port to ``port`` of pod ``name``, like ``kubectl port-forward``.

        A ``PortForward`` to use in ``with``: connect to ``pf.address``/``pf.local_port``
        (a free port unless ``local_port`` is given). Every connection gets its own
        WebSocket, many at once; one the pod's side refuses (nothing listening) is
        closed and logged, and the rest go on. Without the ``create`` verb on
        ``pods/portforward``, connections are refused (logged as ``Forbidden``);
        ``port_forward_stream`` raises it.
        """
        return portforward.open_listener(self.client, self._rb, name, port,
                                         local_port=local_port, address=address)

    def port_forward_stream(self, name: str, port: int) -> PortForwardStream:
        """One TCP connection to ``port`` of pod ``name``, socket-like (``sendall``,
        ``recv``, ``close``; a context manager). ``recv`` raises ``PortForwardError``
        when the pod's side fails (nothing listening), ``RequestTimeout`` on a stall."""
        return portforward.open_stream(self.client, self._rb, name, port)

    def copy_to(
        self, name: str, local_path: Union[str, os.PathLike[str]], remote_path: str, *,
        container: Optional[str] = None, timeout: Optional[float] = None,
    ) -> None:
        """Copy a local file or folder into pod ``name``, as ``kubectl cp``: it becomes
        ``remote_path`` (a folder is merged into a folder there; its parent must exist).

        Streamed as a tar archive to ``tar`` in the container (which must have one).
        Symlinks inside are sent as symlinks, never followed; permission bits and mtimes
        are kept, ownership is not. ``CopyError`` carries tar's exit code and stderr when
        it fails (a missing remote folder); ``FileNotFoundError`` for a missing local path.
        ``timeout`` bounds the whole copy.
        """
        podcopy.copy_to(self.client, self._rb, name, local_path, remote_path,
                        container=container, timeout=timeout)

    def copy_from(
        self, name: str, remote_path: str, local_path: Union[str, os.PathLike[str]], *,
        container: Optional[str] = None, timeout: Optional[float] = None,
    ) -> None:
        """Copy a file or folder out of pod ``name``, as ``kubectl cp``: it becomes
        ``local_path`` (a file replaces a file there, a folder is merged into a folder).

        The container's archive is not trusted: a member that would land outside
        ``local_path`` (an absolute path, ``..``, a symlink or hard link pointing out, a
        device file) fails the whole copy with ``CopyError`` naming it, and nothing is
        written: the archive is extracted beside the destination and moved into place
        only when all of it was accepted and tar exited 0.
        """
        podcopy.copy_from(self.client, self._rb, name, remote_path, local_path,
                          container=container, timeout=timeout)

    # -- watch --------------------------------------------------------------------------

    @overload
    def watch(
        self, *, resource_version: Optional[str] = None, label_selector: Selector = None,
        field_selector: Selector = None, timeout_seconds: Optional[int] = None,
        bookmarks: bool = True, send_initial_events: bool = False,
        resource_version_match: Optional[str] = None, metadata_only: Literal[False] = False,
        read_timeout: Optional[float] = None,
    ) -> WatchStream[K]: ...

    @overload
    def watch(
        self, *, resource_version: Optional[str] = None, label_selector: Selector = None,
        field_selector: Selector = None, timeout_seconds: Optional[int] = None,
        bookmarks: bool = True, send_initial_events: bool = False,
        resource_version_match: Optional[str] = None, metadata_only: Literal[True],
        read_timeout: Optional[float] = None,
    ) -> WatchStream[PartialObjectMetadata]: ...

    @overload
    def watch(
        self, *, resource_version: Optional[str] = None, label_selector: Selector = None,
        field_selector: Selector = None, timeout_seconds: Optional[int] = None,
        bookmarks: bool = True, send_initial_events: bool = False,
        resource_version_match: Optional[str] = None, metadata_only: bool,
        read_timeout: Optional[float] = None,
    ) -> WatchStream[Any]: ...

    def watch(
        self, *, resource_version: Optional[str] = None, label_selector: Selector = None,
        field_selector: Selector = None, timeout_seconds: Optional[int] = None,
        bookmarks: bool = True, send_initial_events: bool = False,
        resource_version_match: Optional[str] = None, metadata_only: bool = False,
        read_timeout: Optional[float] = None,
    ) -> Union[WatchStream[K], WatchStream[PartialObjectMetadata]]:
        """The raw event stream from ``resource_version``: a ``WatchStream`` to iterate.

        ERROR events raise their ``ApiError`` (410 as ``Gone``: relist and start over).
        The resilient, relisting watcher is ``kubesync.runtime.watch()``. With
        ``metadata_only`` the events carry ``PartialObjectMetadata``. ``read_timeout``:
        seconds without a byte after which the stream fails with ``RequestTimeout``
        (default: ``timeout_seconds`` plus a margin).
        """
        params = ListParams(label_selector, field_selector, None, None, resource_version,
                            resource_version_match, timeout_seconds)
        req = self._rb.watch(params, bookmarks=bookmarks,
                             send_initial_events=send_initial_events,
                             accept=ACCEPT_METADATA if metadata_only else None)
        if metadata_only:
            from kubesync.models.meta_v1 import PartialObjectMetadata

            return WatchStream(self.client, req,
                               lambda d: decode(PartialObjectMetadata, metadata_of(d)),
                               kind=self.resource.kind, read_timeout=read_timeout)
        return WatchStream(self.client, req, self._decode, kind=self.resource.kind,
                           read_timeout=read_timeout)

