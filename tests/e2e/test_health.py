"""Health endpoints of a real controller and reflector, through a Flask test client."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from kubesync import Api
from kubesync.models.core_v1 import ConfigMap
from kubesync.models.meta_v1 import ObjectMeta
from kubesync.runtime.controller import Controller
from kubesync.runtime.health import HealthApp
from kubesync.runtime.reflector import start_reflector
from tests.helpers import eventually

pytestmark = pytest.mark.e2e


def test_controller_and_store_health_through_flask(kube_client: Any, kube_namespace: str) -> None:
    api = Api(kube_client, ConfigMap, namespace=kube_namespace)
    api.create(ConfigMap(metadata=ObjectMeta(name="seen")))
    reconciled = []
    ctl: Controller[ConfigMap] = Controller(api)
    store = start_reflector(api)
    app = Flask(__name__)
    health = HealthApp([ctl], {"configmaps": store})
    app.add_url_rule("/<path:path>", view_func=lambda path: _flask(health, path))
    client = app.test_client()
    assert client.get("/healthz").status_code == 503  # not started: nothing to be alive
    ctl.start(lambda obj, ctx: reconciled.append(obj.metadata.name))
    try:
        eventually(lambda: client.get("/readyz").status_code == 200, 30, "ready")
        assert client.get("/healthz").status_code == 200
        eventually(lambda: "seen" in reconciled, 30, "reconciled")
        text = client.get("/metrics").text
        assert 'kubesync_controller_reconciles_total{controller="configmaps"}' in text
        assert 'kubesync_store_ready{store="configmaps"} 1.0' in text
    finally:
        ctl.stop(10)
        store.stop()
    assert not ctl.healthy() and not ctl.ready()
    assert client.get("/healthz").status_code == 503


def _flask(health: HealthApp, path: str) -> Any:
    code, content_type, body = health.answer("/" + path)
    return body, code, {"Content-Type": content_type}
