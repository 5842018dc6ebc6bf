"""The health app through a Flask test client, and the standalone server thread."""

from __future__ import annotations

import threading
import urllib.request
from typing import Any

import pytest
from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from kubesync.errors import Forbidden, Status
from kubesync.runtime.health import HealthApp, HealthServer
from kubesync.runtime.store import StoreWriter
from kubesync.runtime.watcher import Init, InitDone


def mounted(health: HealthApp) -> Any:
    app = Flask(__name__)
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/kube": health})  # type: ignore[method-assign]
    return app.test_client()


def test_a_store_still_loading_is_alive_but_not_ready_and_says_why() -> None:
    writer: StoreWriter[Any] = StoreWriter()
    writer.record_error(Forbidden(Status(code=403, reason="Forbidden",
                                         message="configmaps is forbidden")))
    client = mounted(HealthApp(stores={"configmaps": writer.store}))
    assert client.get("/kube/healthz").status_code == 200
    ready = client.get("/kube/readyz")
    assert ready.status_code == 503
    assert "[-]store configmaps not ready: " in ready.text and "forbidden" in ready.text
    writer.apply_event(Init())
    writer.apply_event(InitDone())
    ready = client.get("/kube/readyz")
    assert ready.status_code == 200 and "[+]store configmaps ok" in ready.text


def test_a_stopped_store_fails_liveness() -> None:
    writer: StoreWriter[Any] = StoreWriter()
    writer.close()
    assert mounted(HealthApp(stores={"x": writer.store})).get("/kube/healthz").status_code == 503


def test_metrics_are_prometheus_text() -> None:
    writer: StoreWriter[Any] = StoreWriter()
    text = mounted(HealthApp(stores={"x": writer.store})).get("/kube/metrics").text
    assert "# TYPE kubesync_store_ready gauge\nkubesync_store_ready{store=\"x\"} 0.0" in text
    assert 'kubesync_store_objects{store="x"} 0.0' in text


def test_the_standalone_server_thread_is_named_answers_and_is_joined_on_stop() -> None:
    writer: StoreWriter[Any] = StoreWriter()
    server = HealthServer(HealthApp(stores={"x": writer.store}), host="127.0.0.1", port=0)
    with server:
        name = f"kubesync-health-{server.port}"
        assert any(t.name == name for t in threading.enumerate())
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=10) as r:
            assert r.status == 200 and b"[+]store x loading" in r.read()
    assert not any(t.name == name for t in threading.enumerate())


def test_a_server_serving_at_a_fork_keeps_serving_in_the_parent_and_refuses_in_the_child(
) -> None:
    from kubesync.errors import UsageError
    from tests.unit.test_fork import in_child

    writer: StoreWriter[Any] = StoreWriter()
    server = HealthServer(HealthApp(stores={"x": writer.store}), host="127.0.0.1", port=0)
    url = f"http://127.0.0.1:{server.port}/healthz"
    with server:
        def child() -> None:
            with pytest.raises(UsageError, match="create a new one in the child"):
                server.start()
            server.stop(timeout=5)  # returns: it never waits for a thread it does not have

        in_child(child, timeout=20)
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.status == 200
