"""The model generator: reproducible, complete, faithful to the spec, no copied prose."""

import ast
import hashlib
import importlib
import json
import sys
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT.parent / "shared" / "k8s-openapi" / "swagger-v1.36.json"
MODELS = ROOT / "kubesync" / "models"

sys.path.insert(0, str(ROOT / "scripts"))
import gen_models  # noqa: E402

from kubesync.models import model_for  # noqa: E402

sys.path.pop(0)


@pytest.fixture(scope="module")
def spec_path():
    if not SPEC.is_file():
        pytest.fail(f"the OpenAPI spec is missing: {SPEC} (the generator tests need it)")
    return SPEC


@pytest.fixture(scope="module")
def spec(spec_path):
    return json.loads(spec_path.read_bytes())


@pytest.fixture(scope="module")
def generated(spec_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    gen_models.generate(spec_path, out)
    return out


def model_files(folder):
    return sorted(p.name for p in folder.glob("*.py*") if p.name != "__init__.py")


def test_a_rerun_gives_a_byte_identical_tree(generated):
    assert model_files(generated) == model_files(MODELS)
    for name in model_files(MODELS):
        assert (generated / name).read_bytes() == (MODELS / name).read_bytes(), name


def test_a_second_run_into_the_same_folder_changes_nothing(spec_path, generated):
    before = {n: (generated / n).read_bytes() for n in model_files(generated)}
    gen_models.generate(spec_path, generated)
    assert {n: (generated / n).read_bytes() for n in model_files(generated)} == before


def test_stale_generated_files_are_removed_and_others_kept(spec_path, tmp_path):
    (tmp_path / "gone_v1.py").write_text(gen_models.GENERATED_MARK + " from old\n")
    (tmp_path / "mine.py").write_text("# hand-written\n")
    gen_models.generate(spec_path, tmp_path)
    assert not (tmp_path / "gone_v1.py").exists()
    assert (tmp_path / "mine.py").exists()


def test_header_names_the_generator_and_the_spec_hash(spec_path):
    digest = hashlib.sha256(spec_path.read_bytes()).hexdigest()
    for name in model_files(MODELS):
        head = (MODELS / name).read_text().splitlines()[:2]
        assert head[0] == f"{gen_models.GENERATED_MARK} from swagger-v1.36.json"
        assert digest in head[1]


def test_expected_modules_exist():
    names = set(model_files(MODELS))
    for module in ("core_v1", "apps_v1", "batch_v1", "meta_v1", "coordination_v1", "events_v1",
                   "apiextensions_v1", "rbac_v1", "apiregistration_v1", "policy_v1",
                   "autoscaling_v1", "networking_v1", "storage_v1", "version"):
        assert {f"{module}.py", f"{module}.pyi"} <= names, module


def resource_kinds(spec):
    kinds = set()
    for path, ops in spec["paths"].items():
        m = gen_models.PATH_RE.match(path.replace("/watch/", "/"))
        if m is None or m["sub"]:
            continue
        for op in ops.values():
            if isinstance(op, dict) and op.get("x-kubernetes-group-version-kind"):
                gvk = op["x-kubernetes-group-version-kind"]
                kinds.add((gvk["group"], gvk["version"], gvk["kind"], m["plural"], bool(m["ns"])))
    return kinds


def test_every_kind_in_the_spec_has_a_model_with_its_resource(spec):
    kinds = resource_kinds(spec)
    assert len({k[:3] for k in kinds}) > 90
    namespaced = {k[:4] for k in kinds if k[4]}
    for group, version, kind, plural, _ in sorted(kinds):
        cls = model_for(f"{group}/{version}" if group else version, kind)
        assert cls is not None, (group, version, kind)
        r = cls.api_resource
        assert (r.kind, r.plural) == (kind, plural)
        assert r.namespaced == ((group, version, kind, plural) in namespaced)
        assert r.verbs, kind


def test_model_for_finds_classes_by_api_version_and_kind():
    from kubesync.models.core_v1 import Pod
    from kubesync.models.policy_v1 import Eviction

    assert model_for("v1", "Pod") is Pod
    assert model_for("policy/v1", "Eviction") is Eviction
    assert model_for("example.com/v1", "Widget") is None
    assert model_for("apps/v1beta1", "Deployment") is None


def test_resource_details_come_from_the_paths():
    from kubesync.models.apps_v1 import Deployment
    from kubesync.models.authentication_v1 import TokenReview
    from kubesync.models.core_v1 import Namespace, Pod

    assert set(Pod.api_resource.subresources) >= {"status", "log", "exec", "eviction", "binding"}
    assert Pod.api_resource.short_names == ("po",)
    assert Deployment.api_resource.subresources == ("scale", "status")
    assert Deployment.api_resource.short_names == ("deploy",)
    assert set(Deployment.api_resource.verbs) == {
        "create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
    assert TokenReview.api_resource.verbs == ("create",)
    assert TokenReview.api_resource.namespaced is False
    assert Namespace.api_resource.namespaced is False
    assert "deletecollection" not in Namespace.api_resource.verbs


def test_extra_kinds_are_there():
    from kubesync.models import autoscaling_v1, meta_v1, policy_v1, version

    for cls in (meta_v1.PartialObjectMetadata, meta_v1.PartialObjectMetadataList,
                meta_v1.ListMeta, meta_v1.Status, meta_v1.WatchEvent, meta_v1.DeleteOptions,
                policy_v1.Eviction, autoscaling_v1.Scale, version.Info):
        assert attrs.has(cls), cls
    assert meta_v1.PartialObjectMetadata().api_version == "meta.k8s.io/v1"
    assert policy_v1.Eviction().kind == "Eviction"


def test_required_fields_have_no_default_and_others_default_none(spec):
    from kubesync.models.core_v1 import Container, ObjectReference
    from kubesync.models.meta_v1 import OwnerReference

    fields = attrs.fields_dict(Container)
    assert fields["name"].default is attrs.NOTHING
    assert fields["image"].default is None
    owner = attrs.fields_dict(OwnerReference)
    meta = "io.k8s.apimachinery.pkg.apis.meta.v1"
    required = spec["definitions"][f"{meta}.OwnerReference"]["required"]
    assert {n for n, a in owner.items() if a.default is attrs.NOTHING} == {
        gen_models.snake(r) for r in required}
    assert all(a.default is None for n, a in attrs.fields_dict(ObjectReference).items()
               if n != "_kube_raw")


def test_no_description_text_from_the_spec_is_copied(spec):
    text = "\n".join((MODELS / n).read_text() for n in model_files(MODELS))
    descriptions = set()
    for definition in spec["definitions"].values():
        descriptions.add(definition.get("description", ""))
        for prop in definition.get("properties", {}).values():
            descriptions.add(prop.get("description", ""))
    long_ones = sorted((d for d in descriptions if len(d) > 60), key=len, reverse=True)
    assert len(long_ones) > 500
    for d in long_ones:
        assert d[:50] not in text, d[:50]


def test_docstrings_point_at_the_reference():
    from kubesync.models.core_v1 import ConfigMap

    assert ConfigMap.__doc__ == (
        "core/v1 ConfigMap; see https://kubernetes.io/docs/reference/kubernetes-api/")


def stub_classes(path):
    tree = ast.parse(path.read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            fields = {}
            for item in node.body:
                if not isinstance(item, ast.AnnAssign):
                    continue
                annotation = ast.unparse(item.annotation)
                if "ClassVar" not in annotation:
                    fields[item.target.id] = (annotation, item.value is None)
            out[node.name] = fields
    return out


def test_stubs_declare_exactly_what_the_runtime_builds():
    for stub in sorted(MODELS.glob("*.pyi")):
        module = importlib.import_module(f"kubesync.models.{stub.stem}")
        declared = stub_classes(stub)
        assert sorted(declared) == sorted(module.__all__), stub.name
        for name, fields in declared.items():
            runtime = {a.name: a for a in attrs.fields(getattr(module, name))
                       if a.name != "_kube_raw"}
            assert sorted(runtime) == sorted(fields), f"{stub.stem}.{name}"
            for attr, (annotation, required) in fields.items():
                assert (runtime[attr].default is attrs.NOTHING) == required
                assert runtime[attr].type.replace("builtins.", "") == annotation.replace(
                    "builtins.", ""), f"{stub.stem}.{name}.{attr}"


@pytest.mark.parametrize(
    ("json_name", "attr"),
    [
        ("apiVersion", "api_version"), ("podIPs", "pod_ips"), ("hostIPC", "host_ipc"),
        ("clusterIP", "cluster_ip"), ("continue", "continue_"), ("not", "not_"),
        ("except", "except_"), ("from", "from_"), ("$ref", "ref"), ("$schema", "schema"),
        ("x-kubernetes-preserve-unknown-fields", "x_kubernetes_preserve_unknown_fields"),
        ("openAPIV3Schema", "open_api_v3_schema"), ("targetCPUUtilizationPercentage",
                                                    "target_cpu_utilization_percentage"),
        ("nonResourceURLs", "non_resource_urls"), ("stubPKCS10Request", "stub_pkcs10_request"),
        ("serverAddressByClientCIDRs", "server_address_by_client_cidrs"),
    ],
)
def test_snake_case_names(json_name, attr):
    assert gen_models.snake(json_name) == attr


def test_missing_spec_is_a_clear_error(tmp_path, capsys):
    assert gen_models.main(["--spec", str(tmp_path / "nope.json"), "--out", str(tmp_path)]) == 2
    assert "spec not found" in capsys.readouterr().err
