"""The objects that point the API server at our webhooks: Validating- and
MutatingWebhookConfiguration (rules from the registered handlers) and the conversion
stanza of a CRD. They are values: apply them with ``Api`` or write them out as YAML.
"""

from __future__ import annotations

import base64
import os
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
)

import attrs

from kubesync.core.convert import decode, encode, json_copy
from kubesync.errors import UsageError
from kubesync.webhook.app import PATHS
from kubesync.webhook.registry import AdmissionWebhooks, FailurePolicy

if TYPE_CHECKING:
    from kubesync.models.admissionregistration_v1 import (
        MutatingWebhookConfiguration,
        ValidatingWebhookConfiguration,
    )
    from kubesync.models.apiextensions_v1 import CustomResourceDefinition

__all__ = [
    "Endpoint",
    "conversion_webhook",
    "mutating_webhook_configuration",
    "namespace_selector",
    "validating_webhook_configuration",
]

C = TypeVar("C")

#: The API server's own default; a webhook slower than this fails the request.
TIMEOUT_SECONDS = 10


def _pem(ca: Union[str, bytes, os.PathLike[str], None]) -> Optional[str]:
    if ca is None:
        return None
    if isinstance(ca, os.PathLike) or (isinstance(ca, str) and "-----BEGIN" not in ca):
        with open(ca, "rb") as f:
            data = f.read()
    else:
        data = ca.encode("ascii") if isinstance(ca, str) else ca
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise UsageError("the CA bundle is not a PEM certificate")
    return base64.b64encode(data).decode("ascii")


@attrs.frozen
class Endpoint:
    """Where the API server reaches the webhook app, and the CA it trusts to verify it.

    ``Endpoint.url("https://127.0.0.1:8443", ca=...)`` (outside the cluster, or a test),
    or ``Endpoint.service("ns", "name", port=443, ca=...)``; ``prefix`` is the app's
    mount point. The review paths (``/validate``...) are appended.
    """

    base_url: Optional[str] = None
    service_namespace: Optional[str] = None
    service_name: Optional[str] = None
    service_port: int = 443
    prefix: str = ""
    ca_bundle: Optional[str] = None  # base64 of the PEM, as the API wants it

    @classmethod
    def url(cls, base_url: str, *, ca: Union[str, bytes, os.PathLike[str], None] = None,
            prefix: str = "") -> Endpoint:
        """An endpoint by URL; ``ca`` is PEM text or bytes, or a file's path."""
        if not base_url.startswith("https://"):
            raise UsageError(f"a webhook URL must be https://, not {base_url!r}")
        return cls(base_url=base_url.rstrip("/"), prefix=prefix.rstrip("/"), ca_bundle=_pem(ca))

    @classmethod
    def service(cls, namespace: str, name: str, *, port: int = 443,
                ca: Union[str, bytes, os.PathLike[str], None] = None,
                prefix: str = "") -> Endpoint:
        """An endpoint by in-cluster Service (its certificate names
        ``NAME.NAMESPACE.svc``)."""
        return cls(service_namespace=namespace, service_name=name, service_port=port,
                   prefix=prefix.rstrip("/"), ca_bundle=_pem(ca))

    def client_config(self, path: str) -> Dict[str, Any]:
        """The ``clientConfig`` for the review at ``path`` (e.g. ``/validate``)."""
        full = self.prefix + path
        out: Dict[str, Any]
        if self.base_url is not None:
            out = {"url": self.base_url + full}
        else:
            out = {"service": {"namespace": self.service_namespace, "name": self.service_name,
                               "port": self.service_port, "path": full}}
        if self.ca_bundle:
            out["caBundle"] = self.ca_bundle
        return out


def namespace_selector(*namespaces: str) -> Dict[str, Any]:
    """A selector matching these namespaces by their ``kubernetes.io/metadata.name`` label
    (set by the API server on every namespace since 1.21)."""
    return {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In",
                                  "values": list(namespaces)}]}


def _rules(hooks: AdmissionWebhooks, mutating: bool) -> List[Dict[str, Any]]:
    rules: List[Dict[str, Any]] = []
    seen: List[Tuple[Any, ...]] = []
    for reg in hooks.registrations(mutating=mutating):
        r = reg.resource
        key = (r.group, r.version, r.plural, tuple(sorted(reg.operations)))
        if key in seen:
            continue
        seen.append(key)
        rules.append({"apiGroups": [r.group], "apiVersions": [r.version],
                      "resources": [r.plural], "operations": list(key[3]),
                      "scope": "Namespaced" if r.namespaced else "Cluster"})
    if not rules:
        kind = "mutating" if mutating else "validating"
        raise UsageError(f"no {kind} handlers are registered: the configuration would match "
                         "nothing")
    return rules


def _webhook(name: str, hooks: AdmissionWebhooks, endpoint: Endpoint, mutating: bool,
             failure_policy: FailurePolicy, namespace_selector: Optional[Mapping[str, Any]],
             object_selector: Optional[Mapping[str, Any]], timeout_seconds: int,
             side_effects: str) -> Dict[str, Any]:
    if name.count(".") < 2:
        raise UsageError(f"webhook name {name!r}: the API server wants a fully qualified "
                         "name of at least three segments, like validate.example.com")
    hook: Dict[str, Any] = {
        "name": name,
        "clientConfig": endpoint.client_config(PATHS["mutate" if mutating else "validate"]),
        "rules": _rules(hooks, mutating),
        "admissionReviewVersions": ["v1"],
        "sideEffects": side_effects,
        "failurePolicy": failure_policy,
        "matchPolicy": "Equivalent",
        "timeoutSeconds": timeout_seconds,
    }
    if namespace_selector is not None:
        hook["namespaceSelector"] = json_copy(dict(namespace_selector))
    if object_selector is not None:
        hook["objectSelector"] = json_copy(dict(object_selector))
    return hook


def _configuration(cls: Type[C], name: str, hook: Dict[str, Any]) -> C:
    return decode(cls, {"apiVersion": "admissionregistration.k8s.io/v1", "kind": cls.__name__,
                        "metadata": {"name": name}, "webhooks": [hook]})


def validating_webhook_configuration(
    name: str, hooks: AdmissionWebhooks, endpoint: Endpoint, *,
    failure_policy: FailurePolicy = "Fail",
    namespace_selector: Optional[Mapping[str, Any]] = None,
    object_selector: Optional[Mapping[str, Any]] = None,
    timeout_seconds: int = TIMEOUT_SECONDS,
    side_effects: Literal["None", "NoneOnDryRun"] = "None",
) -> ValidatingWebhookConfiguration:
    """A ValidatingWebhookConfiguration ``name`` with one webhook (named ``name`` too)
    whose rules are the kinds and operations of the validating handlers of ``hooks``."""
    from kubesync.models.admissionregistration_v1 import ValidatingWebhookConfiguration

    hook = _webhook(name, hooks, endpoint, False, failure_policy, namespace_selector,
                    object_selector, timeout_seconds, side_effects)
    return _configuration(ValidatingWebhookConfiguration, name, hook)


def mutating_webhook_configuration(
    name: str, hooks: AdmissionWebhooks, endpoint: Endpoint, *,
    failure_policy: FailurePolicy = "Fail",
    namespace_selector: Optional[Mapping[str, Any]] = None,
    object_selector: Optional[Mapping[str, Any]] = None,
    timeout_seconds: int = TIMEOUT_SECONDS,
    side_effects: Literal["None", "NoneOnDryRun"] = "None",
    reinvocation_policy: Literal["Never", "IfNeeded"] = "Never",
) -> MutatingWebhookConfiguration:
    """A MutatingWebhookConfiguration, like ``validating_webhook_configuration`` for the
    mutating handlers of ``hooks``."""
    from kubesync.models.admissionregistration_v1 import MutatingWebhookConfiguration

    hook = _webhook(name, hooks, endpoint, True, failure_policy, namespace_selector,
                    object_selector, timeout_seconds, side_effects)
    hook["reinvocationPolicy"] = reinvocation_policy
    return _configuration(MutatingWebhookConfiguration, name, hook)


def conversion_webhook(crd: CustomResourceDefinition, endpoint: Endpoint, *,
                       review_versions: Sequence[str] = ("v1",)) -> CustomResourceDefinition:
    """A copy of ``crd`` whose versions are converted by our webhook (``strategy:
    Webhook``) at ``endpoint``'s ``/convert``."""
    from kubesync.models.apiextensions_v1 import CustomResourceDefinition

    body = json_copy(encode(crd))
    body["spec"]["conversion"] = {
        "strategy": "Webhook",
        "webhook": {"clientConfig": endpoint.client_config(PATHS["convert"]),
                    "conversionReviewVersions": list(review_versions)},
    }
    return decode(CustomResourceDefinition, body)
