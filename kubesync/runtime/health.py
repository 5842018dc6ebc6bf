"""Health endpoints for controllers and reflector stores: ``/healthz``, ``/readyz``, ``/metrics``.

``HealthApp`` is a plain WSGI app, so a Flask or Django app mounts it (or calls
``answer(path)``) and a plain controller process serves it with ``HealthServer``, a named,
stoppable thread. Liveness (``/healthz``) fails only when restarting the process would help
(a dead thread, a stopped controller); readiness (``/readyz``) also waits for complete
caches, and a store's ``last_error`` says why one is not complete yet.
"""

from __future__ import annotations

import logging
import threading
import wsgiref.simple_server
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
)

from kubesync.client import fork
from kubesync.errors import UsageError
from kubesync.runtime.metrics import controller_samples
from kubesync.runtime.threads import join_thread

if TYPE_CHECKING:
    from kubesync.runtime.controller import Controller
    from kubesync.runtime.store import Store

__all__ = ["HealthApp", "HealthServer"]

log = logging.getLogger("kubesync.runtime.health")

#: Port for a standalone health server: controller-runtime's default health probe address.
DEFAULT_PORT = 8081
#: A probe client that sends nothing for this long is dropped (the server answers one at a time).
REQUEST_TIMEOUT = 10.0

_TEXT = "text/plain; charset=utf-8"
_PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"
StartResponse = Callable[[str, List[Tuple[str, str]]], Any]


class HealthApp:
    """A WSGI app answering ``/healthz``, ``/readyz`` and ``/metrics`` for ``controllers``
    and ``stores`` (a mapping name -> store, e.g. ``{"deployments": store}``).

    Each check is one line, ``[+]name ok`` or ``[-]name <why>``, as the API server's own
    verbose health pages; 200 when all pass, else 503. ``/metrics`` is the Prometheus text
    format (no ``prometheus_client`` needed). Paths are matched by their end, so the app
    works mounted under any prefix. Thread-safe: it only reads.
    """

    def __init__(self, controllers: Sequence[Controller[Any]] = (),
                 stores: Optional[Mapping[str, Store[Any]]] = None):
        self.controllers = list(controllers)
        self.stores = dict(stores or {})

    # -- checks -------------------------------------------------------------------------

    def _checks(self, readiness: bool) -> List[Tuple[str, bool, str]]:
        out: List[Tuple[str, bool, str]] = []
        for c in self.controllers:
            name = f"controller {_name(c)}"
            if not c.healthy():
                out.append((name, False, "not running (stopped, or a thread died)"))
            elif readiness and not c.ready():
                out.append((name, False, _not_ready(c.store.last_error)))
            else:
                out.append((name, True, "ok"))
        for name, store in self.stores.items():
            error = store.last_error
            if store.is_ready:
                out.append((f"store {name}", True, "ok"))
            elif readiness or _stopped(store):
                out.append((f"store {name}", False, _not_ready(error)))
            else:
                out.append((f"store {name}", True, "loading"))
        return out

    def healthy(self) -> bool:
        """Whether ``/healthz`` would answer 200."""
        return all(ok for _, ok, _ in self._checks(readiness=False))

    def ready(self) -> bool:
        """Whether ``/readyz`` would answer 200."""
        return all(ok for _, ok, _ in self._checks(readiness=True))

    def metrics_text(self) -> str:
        """Every controller's and store's numbers in the Prometheus text format."""
        families: Dict[str, Tuple[str, str, List[str]]] = {}

        def add(name: str, kind: str, doc: str, labels: str, value: float) -> None:
            family = families.setdefault(name, (kind, doc, []))
            suffix = "_total" if kind == "counter" else ""
            family[2].append(f"{name}{suffix}{{{labels}}} {float(value)!r}")

        for c in self.controllers:
            label = f'controller="{_escape(_name(c))}"'
            for s in controller_samples(c):
                add(f"kubesync_controller_{s.name}", s.type, s.doc, label, s.value)
            add("kubesync_controller_ready", "gauge", "1 while the controller is ready", label,
                1.0 if c.ready() else 0.0)
        for name, store in self.stores.items():
            label = f'store="{_escape(name)}"'
            add("kubesync_store_objects", "gauge", "Objects in the store", label, len(store))
            add("kubesync_store_ready", "gauge", "1 once the store's first list is in", label,
                1.0 if store.is_ready else 0.0)
        lines: List[str] = []
        for name, (kind, doc, samples) in families.items():
            lines += [f"# HELP {name} {doc}", f"# TYPE {name} {kind}", *samples]
        return "\n".join(lines) + "\n"

    # -- serving ------------------------------------------------------------------------

    def answer(self, path: str) -> Tuple[int, str, bytes]:
        """(status code, content type, body) for ``path``: for frameworks that want a
        response rather than a WSGI app (a Django view returns ``HttpResponse`` of it)."""
        path = path.rstrip("/")
        if path.endswith("/metrics"):
            return 200, _PROMETHEUS, self.metrics_text().encode()
        if path.endswith("/healthz") or path.endswith("/readyz") or path.endswith("/livez"):
            checks = self._checks(readiness=path.endswith("/readyz"))
            body = "".join(f"[{'+' if ok else '-'}]{name} {why}\n" for name, ok, why in checks)
            ok = all(passed for _, passed, _ in checks)
            verdict = "ok" if ok else "failed"
            return (200 if ok else 503), _TEXT, f"{body}check {verdict}\n".encode()
        return 404, _TEXT, b"not found: try /healthz, /readyz or /metrics\n"

    def __call__(self, environ: Mapping[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        code, content_type, body = self.answer(str(environ.get("PATH_INFO") or "/"))
        reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[code]
        start_response(f"{code} {reason}", [("Content-Type", content_type),
                                            ("Content-Length", str(len(body))),
                                            ("Cache-Control", "no-store")])
        return [body]


class _QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    timeout = REQUEST_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds
        log.debug("health server: " + format, *args)


class HealthServer:
    """Serve a ``HealthApp`` (or any WSGI app) from a background thread, for a controller
    process without a web framework of its own. Opt-in: nothing listens until ``start()``.

    ``host`` defaults to every interface, since the kubelet probes the pod's IP; port 0
    picks a free one (see ``port``). The thread is named ``kubesync-health-<port>``;
    ``stop()`` closes the socket and joins it. Also a context manager.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], *, host: str = "0.0.0.0",
                 port: int = DEFAULT_PORT):
        self._server = wsgiref.simple_server.make_server(
            host, port, app, handler_class=_QuietHandler)
        self.port: int = self._server.server_address[1]
        self._thread: Optional[threading.Thread] = None
        self._forked_while_serving = False
        fork.register(self)

    def _after_fork_in_child(self) -> None:
        # The serving thread stayed in the parent: close this process's copy of the
        # socket (the parent keeps serving on it) instead of pretending to serve.
        if self._thread is not None:
            self._thread = None
            self._forked_while_serving = True
            self._server.socket.close()

    def start(self) -> HealthServer:
        if self._forked_while_serving:
            raise UsageError(
                f"this HealthServer on port {self.port} was serving when the process forked;"
                " it keeps serving in the parent: create a new one in the child")
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, args=(0.5,),
                                            name=f"kubesync-health-{self.port}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, close the socket and join the thread (in a forked child, which
        does not serve, only the child's copy of the socket is closed)."""
        if self._thread is not None:
            self._server.shutdown()
            join_thread(self._thread, timeout, log)
        self._server.server_close()

    def __enter__(self) -> HealthServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _name(controller: Controller[Any]) -> str:
    return controller.api.resource.plural


def _stopped(store: Store[Any]) -> bool:
    from kubesync.runtime.store import StoreStopped

    try:
        store.wait_until_ready(0)
    except StoreStopped:
        return True
    return False


def _not_ready(error: Optional[BaseException]) -> str:
    return f"not ready: {error}" if error is not None else "not ready: the first list is not in"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
