"""The two examples of docs/testing.md's FakeApiServer section, run: a Flask view and a
controller tested against the fake (through the plugin's ``kube_fake_server``)."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

from kubesync import Api, Client, Patch
from kubesync.models.apps_v1 import Deployment
from kubesync.models.core_v1 import ConfigMap
from kubesync.models.meta_v1 import ObjectMeta
from kubesync.runtime import Action, Controller
from kubesync.testing.fake import FakeApiServer
from tests.helpers import eventually

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _flask_app() -> Any:
    spec = importlib.util.spec_from_file_location("example_flask_app",
                                                  EXAMPLES / "flask_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_versions_lists_each_container_image(kube_fake_server: FakeApiServer) -> None:
    client = kube_fake_server.client()
    deployments = Api(client, Deployment, namespace="default")
    deployments.apply({"metadata": {"name": "web"}, "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
            {"name": "web", "image": "example.com/web:1.2"}]}}}}, field_manager="test")
    app = _flask_app().create_app(client).test_client()
    eventually(lambda: app.get("/health").status_code == 200, timeout=30,
               what="the app's cache loaded")
    body: Any = app.get("/versions/default/web").get_json()
    assert body[0]["version"] == "1.2"


def label_it(cm: ConfigMap, client: Client) -> Action:
    if (cm.metadata.labels or {}).get("seen") != "yes":
        Api(client, ConfigMap, namespace=cm.metadata.namespace or "default").patch(
            cm.metadata.name or "", Patch.merge({"metadata": {"labels": {"seen": "yes"}}}))
    return Action.await_change()


def test_the_controller_labels_configmaps(kube_fake_server: FakeApiServer) -> None:
    client = kube_fake_server.client()
    cms = Api(client, ConfigMap, namespace="default")
    controller = Controller(cms)
    controller.start(label_it, context=client)
    try:
        cms.create(ConfigMap(metadata=ObjectMeta(name="a")))
        kube_fake_server.faults.drop_watches()       # the controller's watch resumes
        cms.create(ConfigMap(metadata=ObjectMeta(name="b")))
        deadline = time.monotonic() + 10
        while not all((cms.get(n).metadata.labels or {}).get("seen") for n in "ab"):
            assert time.monotonic() < deadline
            time.sleep(0.02)  # polling the fake for the controller's write
    finally:
        controller.stop()
        client.close()


def test_the_flask_view_on_the_testing_page_passes_as_written(
        kube_fake_server: FakeApiServer) -> None:
    import re

    page = (EXAMPLES.parent / "docs" / "testing.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"^```python\n(.*?)^```", page, re.S | re.M)
                 if "def test_images_lists_each_container" in b)
    namespace: dict = {"__name__": "docs_testing_flask_view"}
    exec(compile(block, "docs/testing.md", "exec"), namespace)  # the page's own code
    namespace["test_images_lists_each_container"](kube_fake_server)
