"""Which image runs where: the cluster's Deployments and their images, as JSON (as version-rs).

A background reflector keeps a ``Store`` of every Deployment up to date from one watch;
requests read the store, so a page view costs no API call. The reflector starts once,
when the app is created, and stops when the process exits.

Run it against any cluster KUBECONFIG points at, or a throwaway local one:
    python -m kubesync.testing flask --app examples/flask_app.py run

    GET /  or  /versions              [{"namespace", "name", "container", "image", "version"}]
    GET /versions/<namespace>/<name>  the containers of one Deployment (404 if unknown)
    GET /health                       200 once the first complete list is in, else 503
    GET /kube/healthz, /kube/readyz, /kube/metrics   probes and Prometheus metrics

Under gunicorn, with or without ``--preload`` (each response names its worker process in
``X-Process-Id``):
    gunicorn -w 2 --preload -b 127.0.0.1:8000 'examples.flask_app:create_app()'
With ``--preload`` the master builds the app once and forks the workers; each worker's
store then starts its own reflector on first use (a fresh list over its own connections),
since the master's thread does not survive the fork.
"""

from __future__ import annotations

import atexit
import os
from typing import Any, Dict, List, Optional

from flask import Flask, Response, abort, jsonify
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from kubesync import Api, Client
from kubesync.models.apps_v1 import Deployment
from kubesync.runtime.health import HealthApp
from kubesync.runtime.reflector import drop_managed_fields, start_reflector
from kubesync.runtime.store import Store

#: How long a request waits for the first list after start-up before answering 503.
READY_TIMEOUT = 5.0


def image_version(image: str) -> str:
    """The tag (or digest) of an image reference; ``latest`` when it names none."""
    if "@" in image:
        return image.rsplit("@", 1)[1]
    last = image.rsplit("/", 1)[-1]  # a registry's port (host:5000/app) is not a tag
    return last.rsplit(":", 1)[1] if ":" in last else "latest"


def entries(deployment: Any) -> List[Dict[str, str]]:
    """One entry per container of a Deployment's pod template."""
    meta, spec = deployment.metadata, deployment.spec
    containers = spec.template.spec.containers if spec and spec.template.spec else []
    return [
        {"namespace": meta.namespace, "name": meta.name, "container": c.name,
         "image": c.image or "", "version": image_version(c.image or "")}
        for c in containers
    ]


def create_app(client: Optional[Client] = None) -> Flask:
    """The app, with its reflector running (``app.extensions["deployments"]`` is the store).

    ``client`` defaults to one from KUBECONFIG / ~/.kube/config / in-cluster.
    """
    owned = client is None
    kube = client if client is not None else Client.from_config()
    # managedFields are half of a small object's memory, and nothing here reads them.
    store: Store[Deployment] = start_reflector(Api.all(kube, Deployment),
                                               transform=drop_managed_fields)
    atexit.register(store.stop)
    if owned:
        atexit.register(kube.close)

    app = Flask(__name__)
    app.extensions["deployments"] = store
    probes = HealthApp(stores={"deployments": store})
    app.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, {"/kube": probes})

    @app.after_request
    def worker(response: Response) -> Response:
        response.headers["X-Process-Id"] = str(os.getpid())
        return response

    def ready() -> None:
        if not store.wait_until_ready(READY_TIMEOUT):
            abort(503, description="the Deployment cache is still loading")

    @app.get("/")
    @app.get("/versions")
    def versions() -> Any:
        ready()
        found = sorted(store.list(), key=lambda d: (d.metadata.namespace, d.metadata.name))
        return jsonify([e for d in found for e in entries(d)])

    @app.get("/versions/<namespace>/<name>")
    def version(namespace: str, name: str) -> Any:
        ready()
        found = store.get(name, namespace)
        if found is None:
            abort(404, description=f"no Deployment {namespace}/{name}")
        return jsonify(entries(found))

    @app.get("/health")
    def health() -> Any:
        if store.is_ready:
            return jsonify(ready=True, deployments=len(store))
        return jsonify(ready=False), 503

    return app


if __name__ == "__main__":
    create_app().run(host="127.0.0.1", port=8000)
