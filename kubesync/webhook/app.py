"""``WebhookApp``: the webhooks as one WSGI application (Flask, Django, gunicorn, or our
TLS server), and as ``handle()`` for frameworks that hand over the body themselves.

Paths, relative to where the app is mounted: ``/validate`` and ``/mutate`` (an
AdmissionReview for the validating or the mutating handlers), ``/convert`` (a
ConversionReview), ``/healthz``. Every answer is JSON; nothing becomes a 500.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

import attrs

from kubesync.core.json import dumps
from kubesync.errors import UsageError
from kubesync.webhook.conversion import Conversions
from kubesync.webhook.registry import AdmissionWebhooks

__all__ = ["MAX_BODY", "PATHS", "WebhookApp", "WebhookResponse"]

logger = logging.getLogger("kubesync.webhook")

#: The API server refuses objects over 3 MiB; an AdmissionReview holds the object and the
#: old one plus the envelope, so 7 MiB fits every real review (controller-runtime's limit).
MAX_BODY = 7 * 1024 * 1024
#: Where each review is answered, below the app's mount point.
PATHS = {"validate": "/validate", "mutate": "/mutate", "convert": "/convert",
         "health": "/healthz"}

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            411: "Length Required", 413: "Payload Too Large", 500: "Internal Server Error"}

StartResponse = Callable[..., Any]


@attrs.frozen
class WebhookResponse:
    """An answer: HTTP status, headers and the JSON body."""

    status: int
    body: bytes
    headers: Tuple[Tuple[str, str], ...] = (("Content-Type", "application/json"),)

    @property
    def status_line(self) -> str:
        return f"{self.status} {_REASONS.get(self.status, '')}".strip()


def _error(status: int, message: str) -> WebhookResponse:
    # Shaped like a meta/v1 Status so a person (or curl) reading it knows what went wrong.
    return WebhookResponse(status, dumps({"kind": "Status", "apiVersion": "v1",
                                          "status": "Failure", "code": status,
                                          "message": message}))


class WebhookApp:
    """Serves ``admission`` handlers and ``conversion`` functions over HTTP.

    Mount it under a prefix (Flask: werkzeug's ``DispatcherMiddleware``; Django: a view
    calling ``handle``); give ``max_body`` to change the body limit (``MAX_BODY``).
    """

    def __init__(self, admission: Optional[AdmissionWebhooks] = None,
                 conversion: Optional[Conversions] = None, *, max_body: int = MAX_BODY) -> None:
        if admission is None and conversion is None:
            raise UsageError("WebhookApp needs admission handlers or conversions (or both)")
        self.admission = admission
        self.conversion = conversion
        self.max_body = max_body

    def handle(self, method: str, path: str, body: bytes) -> WebhookResponse:
        """Answer one request; ``path`` is relative to the mount point."""
        path = "/" + path.strip("/")
        if path == PATHS["health"]:
            return WebhookResponse(200, b'{"status":"ok"}')
        if path not in (PATHS["validate"], PATHS["mutate"], PATHS["convert"]):
            return _error(404, f"no webhook at {path}; the paths are "
                          f"{sorted(p for p in PATHS.values())}")
        if method.upper() != "POST":
            return WebhookResponse(405, _error(405, f"{path} answers POST only").body,
                                   (("Content-Type", "application/json"), ("Allow", "POST")))
        if len(body) > self.max_body:
            return _error(413, f"the body ({len(body)} bytes) is over the limit of "
                          f"{self.max_body} bytes")
        try:
            if path == PATHS["convert"]:
                if self.conversion is None:
                    return _error(404, "this app has no conversions")
                status, review = self.conversion.review(body)
            else:
                if self.admission is None:
                    return _error(404, "this app has no admission handlers")
                status, review = self.admission.review(body, mutating=path == PATHS["mutate"])
        except Exception:  # our own bug: answer it, never a traceback to the API server
            logger.exception("webhook %s failed", path)
            return _error(500, f"the webhook at {path} failed; see its log")
        return WebhookResponse(status, dumps(review))

    def __call__(self, environ: Dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        answer = self._wsgi(environ)
        headers: List[Tuple[str, str]] = [*answer.headers,
                                          ("Content-Length", str(len(answer.body)))]
        start_response(answer.status_line, headers)
        return [answer.body]

    def _wsgi(self, environ: Mapping[str, Any]) -> WebhookResponse:
        method = str(environ.get("REQUEST_METHOD", "GET"))
        path = str(environ.get("PATH_INFO", "/"))
        if method.upper() != "POST":
            return self.handle(method, path, b"")
        length_text = environ.get("CONTENT_LENGTH") or ""
        stream = environ.get("wsgi.input")
        try:
            length = int(length_text) if length_text else None
        except ValueError:
            return _error(400, f"bad Content-Length {length_text!r}")
        if length is not None and length > self.max_body:
            return _error(413, f"the body ({length} bytes) is over the limit of "
                          f"{self.max_body} bytes")
        if stream is None:
            return _error(400, "no request body")
        # Without a length, read one byte past the limit to tell "too big" from "just fits".
        body = stream.read(length if length is not None else self.max_body + 1)
        return self.handle(method, path, body)
