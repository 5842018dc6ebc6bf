"""manifests.apply against the cluster: dependency order, CRDs, idempotence, conflicts."""

from __future__ import annotations

import secrets
import textwrap
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

from kubesync import Api, ApiResource, DynamicObject, manifests
from kubesync.core.convert import encode
from kubesync.errors import Conflict, NotFound
from kubesync.models.apiextensions_v1 import CustomResourceDefinition
from kubesync.models.apps_v1 import Deployment
from kubesync.models.core_v1 import ConfigMap, Namespace
from kubesync.models.meta_v1 import ObjectMeta
from kubesync.runtime.conditions import is_deleted
from kubesync.runtime.wait import await_condition

pytestmark = pytest.mark.e2e


@pytest.fixture
def bundle(tmp_path: Path, kube_client: Any) -> Iterator[Dict[str, Any]]:
    """A folder whose files sort against dependency order: the app (a custom resource
    and a Deployment) first, then its namespace, then the CRD. A unique CRD group per
    run; the CRD and the namespace are deleted afterwards."""
    group = f"m{secrets.token_hex(4)}.kubesync.test"
    ns = f"kst-manifests-{secrets.token_hex(3)}"
    (tmp_path / "a-app.yaml").write_text(textwrap.dedent(f"""\
        apiVersion: {group}/v1
        kind: Gadget
        metadata:
          name: g1
          namespace: {ns}
        spec:
          size: 3
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
          namespace: {ns}
          labels: {{app: web}}
        spec:
          replicas: 1
          selector:
            matchLabels: {{app: web}}
          template:
            metadata:
              labels: {{app: web}}
            spec:
              containers:
              - name: web
                image: nginx:1.25
        """))
    (tmp_path / "b-namespace.yaml").write_text(textwrap.dedent(f"""\
        apiVersion: v1
        kind: Namespace
        metadata:
          name: {ns}
          labels: {{team: gadgets}}
        """))
    (tmp_path / "c-crd.json").write_text(textwrap.dedent(f"""\
        {{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
          "metadata": {{"name": "gadgets.{group}"}},
          "spec": {{"group": "{group}", "scope": "Namespaced",
                    "names": {{"plural": "gadgets", "singular": "gadget", "kind": "Gadget"}},
                    "versions": [{{"name": "v1", "served": true, "storage": true,
                                  "schema": {{"openAPIV3Schema": {{"type": "object",
                                    "x-kubernetes-preserve-unknown-fields": true}}}}}}]}}}}
        """))
    (tmp_path / "README.md").write_text("not a manifest: skipped\n")
    try:
        yield {"path": tmp_path, "group": group, "namespace": ns}
    finally:
        crds = Api(kube_client, CustomResourceDefinition)
        namespaces = Api(kube_client, Namespace)
        for api, name in ((crds, f"gadgets.{group}"), (namespaces, ns)):
            try:
                api.delete(name)
            except NotFound:
                pass


def _ours(obj: Any) -> Dict[str, Any]:
    """The managedFields entry of our apply: its time changes with every write we make."""
    (entry,) = [m for m in obj.metadata.managed_fields or [] if m.manager == "kubesync"]
    return encode(entry)


def test_applying_a_folder_with_a_crd_namespace_custom_resource_and_deployment_works_once(
        kube_client: Any, bundle: Dict[str, Any]):
    applied = manifests.apply(kube_client, bundle["path"])

    # In the order given (the folder's file order), as the server stored them.
    assert [(o.kind, o.metadata.name) for o in applied] == [
        ("Gadget", "g1"), ("Deployment", "web"), ("Namespace", bundle["namespace"]),
        ("CustomResourceDefinition", f"gadgets.{bundle['group']}"),
    ]
    gadget, deployment = applied[0], applied[1]
    assert isinstance(gadget, DynamicObject) and isinstance(deployment, Deployment)
    assert gadget.api_resource == ApiResource(bundle["group"], "v1", "Gadget", "gadgets")
    assert gadget["spec"] == {"size": 3}
    stored = Api(kube_client, gadget.api_resource, bundle["namespace"]).get("g1")
    assert stored.metadata.uid == gadget.metadata.uid
    web = Api(kube_client, Deployment, bundle["namespace"]).get("web")
    assert web.spec.template.spec.containers[0].image == "nginx:1.25"
    assert any(m.manager == "kubesync" for m in web.metadata.managed_fields)

    # The second call writes nothing. Controllers may write in between (the CRD's status,
    # the Deployment's), so compare with the objects as they are just before it; the
    # Deployment controller keeps writing status, so for it compare what only our write
    # would change: the generation and our managedFields entry.
    current = [Api(kube_client, o.api_resource, o.metadata.namespace or None).get(
        o.metadata.name) for o in applied]
    again = manifests.apply(kube_client, bundle["path"])
    for before, now in zip(current, again):
        assert _ours(now) == _ours(before), now.kind
        assert now.metadata.generation == before.metadata.generation, now.kind
        if now.kind != "Deployment":
            assert now.metadata.resource_version == before.metadata.resource_version, now.kind


def test_applying_only_a_crd_returns_once_it_is_established(kube_client: Any):
    group = f"m{secrets.token_hex(4)}.kubesync.test"
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"doodads.{group}"},
           "spec": {"group": group, "scope": "Cluster",
                    "names": {"plural": "doodads", "singular": "doodad", "kind": "Doodad"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                        "openAPIV3Schema": {"type": "object",
                                            "x-kubernetes-preserve-unknown-fields": True}}}]}}
    crds = Api(kube_client, CustomResourceDefinition)
    try:
        manifests.apply(kube_client, [crd])
        conditions = crds.get(f"doodads.{group}").status.conditions
        assert {(c.type, c.status) for c in conditions} >= {("Established", "True")}
    finally:
        crds.delete(f"doodads.{group}")


def test_apply_checks_every_kind_before_writing_anything(
        kube_client: Any, kube_namespace: str):
    source = textwrap.dedent("""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: first}
        ---
        apiVersion: nosuch.kubesync.test/v1
        kind: Gizmo
        metadata: {name: g}
        """)
    with pytest.raises(manifests.ManifestError, match=r"document 2 .*no kind 'Gizmo'"):
        manifests.apply(kube_client, source, namespace=kube_namespace)
    assert Api(kube_client, ConfigMap, kube_namespace).get_opt("first") is None


def test_apply_puts_objects_without_namespace_in_the_given_one_and_refuses_others(
        kube_client: Any, kube_namespace: str):
    cm = ConfigMap(metadata=ObjectMeta(name="placed"), data={"a": "1"})
    (applied,) = manifests.apply(kube_client, [cm], namespace=kube_namespace)
    assert applied.metadata.namespace == kube_namespace

    elsewhere = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "x", "namespace": "default"}}
    with pytest.raises(manifests.ManifestError, match="in namespace 'default'"):
        manifests.apply(kube_client, [elsewhere], namespace=kube_namespace)


def test_a_field_another_manager_owns_is_a_conflict_unless_forced(
        kube_client: Any, kube_namespace: str):
    def cm(value: str) -> Dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "shared", "namespace": kube_namespace},
                "data": {"key": value}}

    manifests.apply(kube_client, [cm("ours")], field_manager="team-a")
    with pytest.raises(manifests.ApplyError, match=r"ConfigMap .*/shared") as info:
        manifests.apply(kube_client, [cm("theirs")], field_manager="team-b")
    assert isinstance(info.value.error, Conflict)
    assert "team-a" in str(info.value)

    (taken,) = manifests.apply(kube_client, [cm("theirs")], field_manager="team-b",
                               force=True)
    assert taken.data == {"key": "theirs"}


def test_dump_of_server_objects_loads_back_as_the_same_objects(
        kube_client: Any, kube_namespace: str):
    cms = Api(kube_client, ConfigMap, kube_namespace)
    cms.create(ConfigMap(metadata=ObjectMeta(name="dumped"),
                         data={"script": "echo one\necho two\n"}))
    listed = cms.list()
    text = manifests.dump(listed)
    assert "managedFields" not in text
    assert "script: |" in text
    (loaded,) = [o for o in manifests.load(text) if o.metadata.name == "dumped"]
    assert isinstance(loaded, ConfigMap)
    assert loaded.data == {"script": "echo one\necho two\n"}
    assert loaded.metadata.uid == cms.get("dumped").metadata.uid

    cms.delete("dumped")
    await_condition(cms, "dumped", is_deleted(loaded.metadata.uid), timeout=30)
