"""kubesync.codegen: typed model modules from CRDs, checked by running and type-checking
what it writes."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
import responses
import yaml

from kubesync import Api, Client
from kubesync.codegen import CodegenError, generate, model_from_crd, models_from_crd, read_crds
from kubesync.codegen.__main__ import main
from kubesync.core.convert import decode, encode
from kubesync.errors import DecodeError
from kubesync.models.meta_v1 import ObjectMeta
from tests.unit.conftest import CANNED_SERVER

REPO = Path(__file__).resolve().parent.parent.parent
CRDS = REPO / "tests" / "fixtures" / "crds"


@pytest.fixture()
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    assert main([str(CRDS), "-o", str(folder)]) == 0
    return folder


def load(path: Path, name: str) -> Iterator[types.ModuleType]:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[name]


@pytest.fixture()
def v2(out: Path) -> Iterator[types.ModuleType]:
    yield from load(out / "backupplan_v2.py", "generated_backupplan_v2")


def backup_json(**spec: Any) -> Dict[str, Any]:
    body: Dict[str, Any] = {
        "schedule": "0 3 * * *",
        "targets": [{"volume": "data", "paths": [{"path": "/db", "exclude": ["*.tmp"],
                                                  "class": "hot", "future": 1}]}],
        "destinations": {"s3": {"url": "s3://b", "credentials": {"secretRef": "k"}}},
        "maxUnavailable": "25%", "mode": "Full", "notBefore": "2026-01-02T03:04:05Z",
        "hooks": {"pre": [{"exec": "sync"}]}, "extra": [1, "two"],
        "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "t"},
                     "spec": {"containers": []}},
        "unnamed": {"kept": True},
    }
    body.update(spec)
    return {"apiVersion": "ops.kubesync.test/v2", "kind": "BackupPlan",
            "metadata": {"name": "nightly", "namespace": "ns"}, "spec": body,
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}


def test_one_module_per_crd_version_is_written(out: Path) -> None:
    assert sorted(p.name for p in out.iterdir()) == [
        "backupplan_v1.py", "backupplan_v2.py", "objectstore_v1alpha1.py"]


def test_the_header_names_the_crd_its_version_and_its_hash(out: Path) -> None:
    head = (out / "backupplan_v2.py").read_text().splitlines()[:3]
    crd = read_crds(CRDS / "backups.yaml")[0]
    import hashlib

    digest = hashlib.sha256(json.dumps(crd["spec"], sort_keys=True, separators=(",", ":"))
                            .encode()).hexdigest()
    assert "backupplans.ops.kubesync.test" in head[1] and "version v2" in head[1]
    assert digest in head[2]


def test_running_it_again_writes_the_same_bytes(out: Path, tmp_path: Path) -> None:
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    assert main([str(CRDS), "-o", str(out)]) == 0
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == before
    other = tmp_path / "again"
    assert main([str(CRDS), "-o", str(other)]) == 0
    assert {p.name: p.read_bytes() for p in other.iterdir()} == {
        k: v[0] for k, v in before.items()}


def test_every_schema_feature_gets_its_type(v2: types.ModuleType) -> None:
    import typing

    hints = typing.get_type_hints(v2.BackupPlanSpec, vars(v2))
    assert hints["targets"] == typing.List[v2.BackupPlanSpecTargets]
    assert typing.get_type_hints(v2.BackupPlanSpecTargets, vars(v2))["paths"] == \
        typing.Optional[typing.List[v2.BackupPlanSpecTargetsPaths]]
    assert hints["destinations"] == typing.Optional[
        typing.Dict[str, v2.BackupPlanSpecDestinations]]
    assert hints["labels"] == typing.Optional[typing.Dict[str, str]]
    assert hints["mode"] == typing.Optional[typing.Literal["Full", "Incremental"]]
    assert hints["max_unavailable"] == typing.Optional[typing.Union[int, str]]
    assert hints["hooks"] == typing.Optional[typing.Dict[str, typing.Any]]
    assert hints["extra"] is typing.Any
    assert hints["schedule"] is str and hints["ratio"] == typing.Optional[float]
    template = typing.get_type_hints(v2.BackupPlanSpecTemplate, vars(v2))
    assert set(template) >= {"api_version", "kind", "metadata", "spec"}


def test_required_fields_are_required_and_scalar_defaults_kept(v2: types.ModuleType) -> None:
    with pytest.raises(TypeError, match="schedule"):
        v2.BackupPlanSpec(targets=[])
    spec = v2.BackupPlanSpec(schedule="@daily", targets=[])
    assert (spec.mode, spec.suspend, spec.replicas) == ("Incremental", False, None)


@pytest.mark.filterwarnings("ignore::kubesync.errors.InsecureTLSWarning")
def test_the_resource_class_works_with_api(v2: types.ModuleType, canned_client: Client,
                                           rsps: responses.RequestsMock) -> None:
    r = v2.BackupPlan.api_resource
    assert (r.group, r.version, r.plural, r.namespaced, r.subresources, r.short_names) == (
        "ops.kubesync.test", "v2", "backupplans", True, ("status", "scale"), ("bp",))
    rsps.get(f"{CANNED_SERVER}/apis/ops.kubesync.test/v2/namespaces/ns/backupplans/nightly",
             json=backup_json())
    plan = Api(canned_client, v2.BackupPlan, namespace="ns").get("nightly")
    assert isinstance(plan, v2.BackupPlan) and plan.spec.targets[0].volume == "data"


def test_new_objects_carry_their_api_version_kind_and_defaults(v2: types.ModuleType) -> None:
    plan = v2.BackupPlan(metadata=ObjectMeta(name="a"),
                         spec=v2.BackupPlanSpec(schedule="@daily", targets=[]))
    assert encode(plan) == {"apiVersion": "ops.kubesync.test/v2", "kind": "BackupPlan",
                            "metadata": {"name": "a"},
                            "spec": {"mode": "Incremental", "schedule": "@daily",
                                     "suspend": False, "targets": []}}


def test_objects_decode_typed_and_lossless(v2: types.ModuleType) -> None:
    data = backup_json()
    original = json.loads(json.dumps(data))
    plan = decode(v2.BackupPlan, data)
    path = plan.spec.targets[0].paths[0]
    assert isinstance(path, v2.BackupPlanSpecTargetsPaths)
    assert (path.path, path.class_, path.exclude) == ("/db", "hot", ["*.tmp"])
    assert plan.spec.destinations["s3"].credentials.secret_ref == "k"
    assert plan.spec.max_unavailable == "25%" and plan.spec.not_before.year == 2026
    assert plan.spec.template.metadata.name == "t"
    assert plan.spec.hooks == {"pre": [{"exec": "sync"}]}
    assert plan.status.conditions[0].type == "Ready"
    plan.spec.schedule = "@hourly"
    out = encode(plan)
    original["spec"]["schedule"] = "@hourly"
    assert out == original  # unnamed fields (spec.unnamed, paths[0].future) kept


def test_an_enum_value_a_newer_server_adds_still_reads(v2: types.ModuleType) -> None:
    plan = decode(v2.BackupPlan, backup_json(mode="Snapshot"))
    assert plan.spec.mode == "Snapshot"
    with pytest.raises(DecodeError, match=r"spec\.mode"):
        decode(v2.BackupPlan, backup_json(mode=3)).spec.mode  # noqa: B018


def test_python_keywords_and_odd_json_names_become_attributes(out: Path) -> None:
    for module in load(out / "objectstore_v1alpha1.py", "generated_objectstore"):
        spec = decode(module.ObjectStoreSpec, {"class": "c", "from": "f", "x-endpoint": "e",
                                               "3zones": True, "tls.enabled": False})
        assert (spec.class_, spec.from_, spec.x_endpoint, spec.f_3_zones,
                spec.tls_enabled) == ("c", "f", "e", True, False)
        assert module.ObjectStore.api_resource.namespaced is False


def test_descriptions_are_left_out_unless_asked_for() -> None:
    crds = read_crds(CRDS / "backups.yaml")
    assert "cron syntax" not in generate(crds)["backupplan_v2.py"]
    with_docs = generate(crds, docs=True)["backupplan_v2.py"]
    assert "#: When to run, in cron syntax." in with_docs
    assert "A plan for backing up volumes on a schedule." in with_docs


def test_generated_modules_pass_mypy_strict_in_a_user_script(out: Path, tmp_path: Path) -> None:
    script = tmp_path / "user.py"
    script.write_text(
        "from models.backupplan_v2 import BackupPlan, BackupPlanSpec, BackupPlanSpecTargets\n"
        "from kubesync.models.meta_v1 import ObjectMeta\n"
        "plan = BackupPlan(metadata=ObjectMeta(name='a'), spec=BackupPlanSpec(\n"
        "    schedule='@daily', targets=[BackupPlanSpecTargets(volume='v')], mode='Full'))\n"
        "n: int = len(plan.spec.targets)\n"
        "mode: str = plan.spec.mode or ''\n"
    )
    bad = tmp_path / "bad.py"
    bad.write_text("from models.backupplan_v2 import BackupPlanSpec\n"
                   "BackupPlanSpec(schedule=1, targets=[], mode='Weekly')\n")
    # As a user's project sees it: kubesync an installed package (its internals checked
    # under its own settings, not reported here), the generated modules and the script
    # strictly. MYPYPATH finds this checkout, which an editable install hides from mypy.
    cmd = [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
           "--follow-imports=silent"]
    env = {**os.environ, "MYPYPATH": str(REPO)}
    good = subprocess.run([*cmd, "-m", "user", "-p", "models"], cwd=tmp_path,
                          capture_output=True, text=True, env=env)
    assert good.returncode == 0, good.stdout + good.stderr
    wrong = subprocess.run([*cmd, "-m", "bad"], cwd=tmp_path, capture_output=True, text=True,
                           env=env)
    assert '"schedule"' in wrong.stdout and "'Weekly'" in wrong.stdout, wrong.stdout


def test_a_class_built_at_run_time_is_the_same_shape_and_the_same_each_time() -> None:
    crd = read_crds(CRDS / "backups.yaml")[0]
    cls = model_from_crd(crd)
    assert cls is model_from_crd(json.loads(json.dumps(crd)))
    assert cls.api_resource.version == "v2"  # the storage version by default
    assert model_from_crd(crd, "v1").api_resource.version == "v1"
    plan = decode(cls, backup_json())
    assert plan.spec.targets[0].paths[0].path == "/db"
    again = pickle.loads(pickle.dumps(plan))
    assert type(again) is cls and encode(again) == encode(plan)
    assert models_from_crd(crd).BackupPlanSpecTargets.__name__ == "BackupPlanSpecTargets"


def test_stdin_prints_the_one_module(monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO((CRDS / "stores.yaml").read_text()))
    assert main(["-"]) == 0
    assert "class ObjectStore(Model):" in capsys.readouterr().out


def test_several_modules_need_a_folder(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(CRDS / "backups.yaml")]) == 2
    assert "name a folder with -o" in capsys.readouterr().err
    assert main([str(CRDS / "backups.yaml"), "--version", "v1"]) == 0


@pytest.mark.parametrize(("edit", "message"), [
    (lambda c: c.update(apiVersion="apiextensions.k8s.io/v1beta1"), "only apiextensions.k8s.io/v1"),
    (lambda c: c["spec"]["versions"][1].pop("schema"), "version v2: schema.openAPIV3Schema"),
    (lambda c: c["spec"]["names"].pop("kind"), "spec.names: kind must be"),
    (lambda c: c["spec"]["versions"][1]["schema"]["openAPIV3Schema"]["properties"]["spec"]
     ["properties"].update(odd={"type": "tuple"}), "version v2: spec.odd: unknown type"),
])
def test_bad_crds_name_the_crd_and_the_place(edit: Any, message: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    crd = read_crds(CRDS / "backups.yaml")[0]
    edit(crd)
    path = tmp_path / "crd.yaml"
    path.write_text(yaml.safe_dump(crd))
    assert main([str(path), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_no_crd_in_the_input_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    with pytest.raises(CodegenError, match="no CustomResourceDefinition found"):
        read_crds(tmp_path)


def test_one_kind_in_two_groups_is_refused_rather_than_overwritten() -> None:
    crd = read_crds(CRDS / "stores.yaml")[0]
    other = json.loads(json.dumps(crd))
    other["metadata"]["name"] = "objectstores.other.test"
    other["spec"]["group"] = "other.test"
    with pytest.raises(CodegenError, match=r"would both be written to objectstore_v1alpha1\.py"):
        generate([crd, other])


def test_an_unknown_version_is_named() -> None:
    with pytest.raises(CodegenError, match=r"no version 'v9'.*\['v1', 'v2'\]"):
        model_from_crd(read_crds(CRDS / "backups.yaml")[0], "v9")
