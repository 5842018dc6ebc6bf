"""Admission and conversion webhooks, served from a sync app (Flask, Django) or our own
TLS server::

    from kubesync.webhook import AdmissionWebhooks, WebhookApp, WebhookServer

    hooks = AdmissionWebhooks()

    @hooks.validating(ConfigMap)
    def no_passwords(req): ...

    app = WebhookApp(hooks)                       # WSGI: mount it, or
    WebhookServer(app, cert_file=..., key_file=...).start()

``validating_webhook_configuration`` and friends write the objects that point the API
server at it; ``Conversions`` converts custom resources between versions.
"""

from kubesync.webhook.app import MAX_BODY, WebhookApp, WebhookResponse
from kubesync.webhook.configuration import (
    Endpoint,
    conversion_webhook,
    mutating_webhook_configuration,
    namespace_selector,
    validating_webhook_configuration,
)
from kubesync.webhook.conversion import ConversionError, Conversions
from kubesync.webhook.jsonpatch import JsonPatchError, apply_patch, json_patch
from kubesync.webhook.registry import AdmissionWebhooks, FailurePolicy
from kubesync.webhook.review import (
    AdmissionRequest,
    AdmissionResponse,
    GroupVersionKind,
    GroupVersionResource,
    ReviewError,
    parse_admission_review,
)
from kubesync.webhook.server import WebhookServer

__all__ = [
    "MAX_BODY",
    "AdmissionRequest",
    "AdmissionResponse",
    "AdmissionWebhooks",
    "ConversionError",
    "Conversions",
    "Endpoint",
    "FailurePolicy",
    "GroupVersionKind",
    "GroupVersionResource",
    "JsonPatchError",
    "ReviewError",
    "WebhookApp",
    "WebhookResponse",
    "WebhookServer",
    "apply_patch",
    "conversion_webhook",
    "json_patch",
    "mutating_webhook_configuration",
    "namespace_selector",
    "parse_admission_review",
    "validating_webhook_configuration",
]
