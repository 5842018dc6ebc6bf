"""Generated models against the real API server: install a CRD users did not write,
generate its module, create and read typed objects, and keep what the module does not
know through get -> replace."""

from __future__ import annotations

import copy
import datetime
import importlib.util
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

from kubesync import Api
from kubesync.codegen import crds_from_cluster, generate, model_from_crd, read_crds
from kubesync.core.convert import decode, encode
from kubesync.core.dynamic import DynamicObject
from kubesync.crd import install, uninstall, wait_established
from kubesync.errors import BadRequest, KubeWarning
from kubesync.models.apiextensions_v1 import CustomResourceDefinition
from kubesync.models.meta_v1 import ObjectMeta
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

CRDS = Path(__file__).resolve().parent.parent / "fixtures" / "crds"
NAME = "backupplans.ops.kubesync.test"
UTC = datetime.timezone.utc


@pytest.fixture(scope="module")
def crd_json() -> Dict[str, Any]:
    return read_crds(CRDS / "backups.yaml")[0]


@pytest.fixture(scope="module")
def installed(kube_client: Any, crd_json: Dict[str, Any]) -> Iterator[None]:
    crd = decode(CustomResourceDefinition, copy.deepcopy(crd_json))
    install(kube_client, crd)
    yield
    uninstall(kube_client, crd)


def _load(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def modules(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, types.ModuleType]]:
    folder = tmp_path_factory.mktemp("generated")
    # As a user runs it: the command line, into a folder.
    subprocess.run([sys.executable, "-m", "kubesync.codegen", str(CRDS / "backups.yaml"),
                    "-o", str(folder)], check=True, capture_output=True)
    out = {v: _load(folder / f"backupplan_{v}.py", f"e2e_generated_backupplan_{v}")
           for v in ("v1", "v2")}
    yield out
    for v in out:
        del sys.modules[f"e2e_generated_backupplan_{v}"]


def _plan(m: types.ModuleType, name: str) -> Any:
    return m.BackupPlan(
        metadata=ObjectMeta(name=name),
        spec=m.BackupPlanSpec(
            schedule="0 3 * * *",
            max_unavailable=2,
            mode="Full",
            not_before=datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            targets=[m.BackupPlanSpecTargets(volume="data", paths=[
                m.BackupPlanSpecTargetsPaths(path="/db", exclude=["*.tmp"], class_="hot")])],
            destinations={"s3": m.BackupPlanSpecDestinations(
                url="s3://bucket", credentials=m.BackupPlanSpecDestinationsCredentials(
                    secret_ref="s3-key"))},
            hooks={"pre": [{"exec": ["sync"]}], "timeoutSeconds": 30},
            template=m.BackupPlanSpecTemplate(api_version="v1", kind="Pod",
                                              metadata=ObjectMeta(name="runner"),
                                              spec={"containers": [{"name": "c"}]}),
        ),
    )


def test_typed_objects_are_created_and_read_back_typed(
    kube_client: Any, kube_namespace: str, installed: None,
    modules: Dict[str, types.ModuleType],
) -> None:
    m = modules["v2"]
    api = Api(kube_client, m.BackupPlan, namespace=kube_namespace)
    api.create(_plan(m, "nightly"))
    got = api.get("nightly")
    assert isinstance(got, m.BackupPlan)
    path = got.spec.targets[0].paths[0]
    assert isinstance(path, m.BackupPlanSpecTargetsPaths)
    assert (path.path, path.exclude, path.class_) == ("/db", ["*.tmp"], "hot")
    assert got.spec.destinations["s3"].credentials.secret_ref == "s3-key"
    assert got.spec.max_unavailable == 2
    assert got.spec.not_before == datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert got.spec.hooks == {"pre": [{"exec": ["sync"]}], "timeoutSeconds": 30}
    assert got.spec.template.metadata.name == "runner"
    assert got.spec.suspend is False  # the default we sent, as the server would set it
    # The same object in the other served version, typed by its own module.
    with pytest.warns(KubeWarning, match="v1 BackupPlan is deprecated"):
        old = Api(kube_client, modules["v1"].BackupPlan, namespace=kube_namespace).get(
            "nightly")
    assert isinstance(old, modules["v1"].BackupPlan)
    assert old.api_version == "ops.kubesync.test/v1" and old.spec.schedule == "0 3 * * *"
    # The status and scale subresources the module declares are served.
    got.status = m.BackupPlanStatus(phase="Running", replicas=1)
    assert api.replace_status("nightly", got).status.phase == "Running"


def test_a_field_the_module_does_not_name_survives_get_then_replace(
    kube_client: Any, kube_namespace: str, installed: None,
    modules: Dict[str, types.ModuleType], crd_json: Dict[str, Any],
) -> None:
    # The operator is upgraded: its CRD gains spec.compression, the module is not
    # regenerated. Objects written by the new operator carry the field.
    newer = copy.deepcopy(crd_json)
    v2 = next(v for v in newer["spec"]["versions"] if v["name"] == "v2")
    v2["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["compression"] = {
        "type": "object", "properties": {"level": {"type": "integer"}}}
    install(kube_client, decode(CustomResourceDefinition, newer))
    try:
        resource = modules["v2"].BackupPlan.api_resource
        raw = Api(kube_client, resource, namespace=kube_namespace)
        body = encode(_plan(modules["v2"], "upgraded"))
        body["spec"]["compression"] = {"level": 9}

        def new_schema_served() -> bool:
            # An updated CRD's schema applies a moment later. Until then the strict
            # (default) create refuses the field the old schema does not know.
            try:
                made = raw.create(DynamicObject(copy.deepcopy(body), resource), dry_run=True)
            except BadRequest as error:
                if 'unknown field "spec.compression"' not in str(error):
                    raise
                return False
            return "compression" in made["spec"]

        eventually(new_schema_served, 30, "the CRD's new schema to be served")
        raw.create(DynamicObject(body, resource))
        api = Api(kube_client, modules["v2"].BackupPlan, namespace=kube_namespace)
        plan = api.get("upgraded")
        plan.spec.schedule = "@hourly"
        api.replace("upgraded", plan)
        again = raw.get("upgraded")
        assert again["spec"]["schedule"] == "@hourly"
        assert again["spec"]["compression"] == {"level": 9}
    finally:
        install(kube_client, decode(CustomResourceDefinition, copy.deepcopy(crd_json)))
        wait_established(kube_client, NAME)


def test_a_class_built_from_the_live_crd_reads_typed(
    kube_client: Any, kube_namespace: str, installed: None,
    modules: Dict[str, types.ModuleType],
) -> None:
    live = crds_from_cluster(kube_client, [NAME])
    # The served CRD (with the server's defaults filled in) gives the same classes.
    from_file = generate(read_crds(CRDS / "backups.yaml"))["backupplan_v2.py"]
    from_cluster = generate(live)["backupplan_v2.py"]
    assert from_file.splitlines()[3:] == from_cluster.splitlines()[3:]
    cls = model_from_crd(live[0])
    api = Api(kube_client, cls, namespace=kube_namespace)
    api.create(decode(cls, encode(_plan(modules["v2"], "live"))))
    got = api.get("live")
    assert type(got) is cls and got.spec.targets[0].paths[0].path == "/db"
