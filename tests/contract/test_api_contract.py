"""API behaviour every test here asserts of both FakeApiServer and a real API server,
through kubesync's public API. A fake difference would be marked and documented; there
is none in this file."""

from __future__ import annotations

import re
import secrets
from typing import Any, Dict, List

import pytest

from kubesync import Api, Patch
from kubesync.core.resource import ApiResource
from kubesync.errors import AlreadyExists, ApiError, Conflict, Gone, Invalid, NotFound
from kubesync.models.apiextensions_v1 import CustomResourceDefinition
from kubesync.models.apps_v1 import Deployment
from kubesync.models.core_v1 import ConfigMap
from kubesync.models.meta_v1 import ObjectMeta, OwnerReference
from tests.contract.conftest import Server


def cms(server: Server) -> Api[ConfigMap]:
    return Api(server.client, ConfigMap, namespace=server.namespace)


#: On every ConfigMap a test makes: lists select it, because a real cluster puts its own
#: ConfigMap (kube-root-ca.crt) into every namespace.
OURS = {"suite": "contract"}


def cm(name: str, labels: Any = None, **data: str) -> ConfigMap:
    return ConfigMap(metadata=ObjectMeta(name=name, labels={**OURS, **(labels or {})}),
                     data=data or None)


def deployment(name: str, replicas: int = 0) -> Dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                     {"name": "web", "image": "kubesync.local/busybox:1"},
                     {"name": "side", "image": "kubesync.local/busybox:1"}]}}},
    }


def test_create_sets_uid_timestamp_and_a_numeric_resource_version(server: Server) -> None:
    made = cms(server).create(cm("a", k="v"))
    assert re.fullmatch(r"[0-9a-f-]{36}", made.metadata.uid or "")
    assert made.metadata.creation_timestamp is not None
    assert int(made.metadata.resource_version or "") > 0
    got = cms(server).get("a")
    assert got.metadata.resource_version == made.metadata.resource_version
    assert got.data == {"k": "v"}


def test_create_twice_is_already_exists_and_get_of_nothing_not_found(server: Server) -> None:
    cms(server).create(cm("a"))
    with pytest.raises(AlreadyExists):
        cms(server).create(cm("a"))
    with pytest.raises(NotFound):
        cms(server).get("nothing-here")


def test_generate_name_makes_a_unique_name_from_the_prefix(server: Server) -> None:
    names = {cms(server).create(ConfigMap(metadata=ObjectMeta(generate_name="gen-")))
             .metadata.name for _ in range(3)}
    assert len(names) == 3
    assert all(re.fullmatch(r"gen-[a-z0-9]{5}", n or "") for n in names)


def test_an_invalid_name_is_invalid(server: Server) -> None:
    with pytest.raises(Invalid):
        cms(server).create(cm("Not_A_Name"))


def test_create_in_a_missing_namespace_is_not_found(server: Server) -> None:
    missing = Api(server.client, ConfigMap, namespace=f"nowhere-{secrets.token_hex(3)}")
    with pytest.raises(NotFound):
        missing.create(cm("a"))


def test_label_and_field_selectors_filter_lists(server: Server) -> None:
    api = cms(server)
    api.create(cm("one", {"tier": "web", "env": "prod"}))
    api.create(cm("two", {"tier": "db", "env": "prod"}))
    api.create(cm("three", {"tier": "web"}))

    def names(label_selector: str, **kw: Any) -> List[str]:
        selected = api.list(label_selector=f"suite=contract,{label_selector}", **kw)
        return sorted(o.metadata.name or "" for o in selected.items)

    assert names(label_selector="tier=web") == ["one", "three"]
    assert names(label_selector="tier!=web,env") == ["two"]
    assert names(label_selector="tier in (db,cache)") == ["two"]
    assert names(label_selector="tier notin (db),env=prod") == ["one"]
    assert names(label_selector="!env") == ["three"]
    assert names("suite", field_selector="metadata.name=two") == ["two"]
    assert names(label_selector="tier=web", field_selector="metadata.name!=one") == ["three"]


def test_paging_returns_a_consistent_snapshot(server: Server) -> None:
    api = cms(server)
    for i in range(5):
        api.create(cm(f"p{i}"))
    first = api.list(limit=2, label_selector="suite=contract")
    assert [o.metadata.name for o in first.items] == ["p0", "p1"]
    assert first.metadata.continue_
    api.create(cm("p9"))  # after the first page: not in this list
    api.delete("p3")
    rest = api.list(limit=10, continue_=first.metadata.continue_,
                    label_selector="suite=contract")
    assert [o.metadata.name for o in rest.items] == ["p2", "p3", "p4"]
    assert not rest.metadata.continue_
    assert rest.metadata.resource_version == first.metadata.resource_version


def test_a_stale_replace_is_a_conflict(server: Server) -> None:
    api = cms(server)
    old = api.create(cm("a", k="1"))
    newer = api.get("a")
    newer.data = {"k": "2"}
    api.replace("a", newer)
    old.data = {"k": "3"}
    with pytest.raises(Conflict):
        api.replace("a", old)
    assert api.get("a").data == {"k": "2"}


def test_a_write_that_changes_nothing_keeps_the_resource_version(server: Server) -> None:
    api = cms(server)
    made = api.create(cm("a", k="1"))
    again = api.patch("a", Patch.merge({"data": {"k": "1"}}))
    assert again.metadata.resource_version == made.metadata.resource_version


def test_generation_moves_with_the_spec_only(server: Server) -> None:
    api = Api(server.client, Deployment, namespace=server.namespace)
    made = api.create(api._decode(deployment("web")))
    assert made.metadata.generation == 1
    labelled = api.patch("web", Patch.merge({"metadata": {"labels": {"x": "y"}}}))
    assert labelled.metadata.generation == 1
    scaled = api.patch("web", Patch.merge({"spec": {"replicas": 2}}))
    assert scaled.metadata.generation == 2


def test_merge_json_and_strategic_patches(server: Server) -> None:
    api = Api(server.client, Deployment, namespace=server.namespace)
    api.create(api._decode(deployment("web")))
    # Strategic merge: containers merge by name, so "side" stays.
    out = api.patch("web", Patch.strategic({"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "kubesync.local/busybox:2"}]}}}}))
    images = {c.name: c.image for c in out.spec.template.spec.containers}
    assert images == {"web": "kubesync.local/busybox:2", "side": "kubesync.local/busybox:1"}
    # Merge patch: a list is replaced whole.
    out = api.patch("web", Patch.merge({"spec": {"template": {"spec": {"containers": [
        {"name": "only", "image": "kubesync.local/busybox:1"}]}}}}))
    assert [c.name for c in out.spec.template.spec.containers] == ["only"]
    # JSON patch, with a test that holds and then one that fails.
    out = api.patch("web", Patch.json([
        {"op": "test", "path": "/spec/replicas", "value": 0},
        {"op": "replace", "path": "/spec/replicas", "value": 3},
        {"op": "add", "path": "/metadata/labels", "value": {"patched": "yes"}},
    ]))
    assert out.spec.replicas == 3 and out.metadata.labels == {"patched": "yes"}
    with pytest.raises(ApiError) as failed:
        api.patch("web", Patch.json([{"op": "test", "path": "/spec/replicas", "value": 9}]))
    assert failed.value.code == 422
    # Strategic merge: $patch delete removes one item by its key.
    out = api.patch("web", Patch.strategic({"spec": {"template": {"spec": {"containers": [
        {"name": "only", "$patch": "delete"}, {"name": "new", "image": "x"}]}}}}))
    assert [c.name for c in out.spec.template.spec.containers] == ["new"]


def test_apply_conflicts_with_another_manager_until_forced(server: Server) -> None:
    api = cms(server)
    api.apply({"metadata": {"name": "a"}, "data": {"k": "1", "mine": "x"}}, field_manager="alice")
    api.apply({"metadata": {"name": "a"}, "data": {"k": "1", "other": "y"}},
              field_manager="bob")  # same value: shared, no conflict
    with pytest.raises(Conflict) as refused:
        api.apply({"metadata": {"name": "a"}, "data": {"k": "2"}}, field_manager="bob")
    assert "alice" in str(refused.value) and ".data.k" in str(refused.value)
    forced = api.apply({"metadata": {"name": "a"}, "data": {"k": "2", "other": "y"}},
                       field_manager="bob", force=True)
    assert forced.data == {"k": "2", "mine": "x", "other": "y"}
    managers = {(e.manager, e.operation) for e in forced.metadata.managed_fields or []}
    assert managers == {("alice", "Apply"), ("bob", "Apply")}
    # alice no longer owns k; applying without "mine" removes what only she owned.
    out = api.apply({"metadata": {"name": "a"}, "data": {}}, field_manager="alice")
    assert out.data == {"k": "2", "other": "y"}


def test_apply_conflicts_with_an_update_manager(server: Server) -> None:
    api = cms(server)
    api.apply({"metadata": {"name": "a"}, "data": {"k": "1"}}, field_manager="alice")
    api.patch("a", Patch.merge({"data": {"k": "edited"}}), field_manager="editor")
    with pytest.raises(Conflict) as refused:
        api.apply({"metadata": {"name": "a"}, "data": {"k": "1"}}, field_manager="alice")
    assert "editor" in str(refused.value)


def test_apply_again_unchanged_keeps_the_resource_version(server: Server) -> None:
    api = cms(server)
    body = {"metadata": {"name": "a", "labels": {"l": "1"}}, "data": {"k": "1"}}
    first = api.apply(body, field_manager="alice")
    second = api.apply(body, field_manager="alice")
    assert second.metadata.resource_version == first.metadata.resource_version


def test_delete_waits_for_finalizers(server: Server) -> None:
    api = cms(server)
    api.create(ConfigMap(metadata=ObjectMeta(name="a", finalizers=["example.com/hold"])))
    marked = api.delete("a")
    assert isinstance(marked, ConfigMap)
    assert marked.metadata.deletion_timestamp is not None
    held = api.get("a")
    assert held.metadata.deletion_timestamp is not None
    with pytest.raises(Invalid):
        api.patch("a", Patch.merge({"metadata": {"finalizers": ["example.com/hold",
                                                                "example.com/more"]}}))
    api.patch("a", Patch.merge({"metadata": {"finalizers": None}}))
    with pytest.raises(NotFound):
        api.get("a")


def _owned(server: Server, owner: ConfigMap, name: str, block: bool = False) -> ConfigMap:
    ref = OwnerReference(api_version="v1", kind="ConfigMap", name=owner.metadata.name or "",
                         uid=owner.metadata.uid or "", block_owner_deletion=block or None)
    return cms(server).create(ConfigMap(metadata=ObjectMeta(name=name, owner_references=[ref])))


def test_background_cascade_deletes_dependents(server: Server) -> None:
    api = cms(server)
    owner = api.create(cm("owner"))
    _owned(server, owner, "child")
    api.delete("owner")
    server.eventually(lambda: api.get_opt("child") is None, "the dependent's deletion")


def test_foreground_cascade_deletes_dependents_before_the_owner(server: Server) -> None:
    api = cms(server)
    owner = api.create(cm("owner"))
    child = _owned(server, owner, "child", block=True)
    api.patch("child", Patch.merge({"metadata": {"finalizers": ["example.com/hold"]}}))
    marked = api.delete("owner", propagation_policy="Foreground")
    assert isinstance(marked, ConfigMap)
    assert "foregroundDeletion" in (marked.metadata.finalizers or [])
    server.eventually(lambda: (api.get("child").metadata.deletion_timestamp is not None),
                      "the dependent marked for deletion")
    assert api.get("owner").metadata.deletion_timestamp is not None  # blocked by the child
    api.patch("child", Patch.merge({"metadata": {"finalizers": None}}))
    server.eventually(lambda: api.get_opt("owner") is None, "the owner's deletion")
    assert child.metadata.uid


def test_orphan_keeps_dependents_without_the_owner_reference(server: Server) -> None:
    api = cms(server)
    owner = api.create(cm("owner"))
    _owned(server, owner, "child")
    api.delete("owner", propagation_policy="Orphan")
    server.eventually(lambda: api.get_opt("owner") is None, "the owner's deletion")
    assert not api.get("child").metadata.owner_references


def test_watch_resumes_from_a_resource_version(server: Server) -> None:
    api = cms(server)
    start = api.create(cm("a", k="1")).metadata.resource_version
    api.patch("a", Patch.merge({"data": {"k": "2"}}))
    api.delete("a")
    seen = []
    with api.watch(resource_version=start, timeout_seconds=5, bookmarks=False) as stream:
        for event in stream:
            seen.append((event.type, event.object.metadata.name))
            if event.type == "DELETED":
                break
    assert seen == [("MODIFIED", "a"), ("DELETED", "a")]


def test_watch_from_a_compacted_resource_version_is_gone(server: Server) -> None:
    api = cms(server)
    old = api.create(cm("a")).metadata.resource_version
    api.patch("a", Patch.merge({"data": {"k": "2"}}))
    server.compact()
    with pytest.raises(Gone):
        with api.watch(resource_version=old, timeout_seconds=5) as stream:
            for _ in stream:
                pass


def test_watch_with_initial_events_ends_them_with_a_bookmark(server: Server) -> None:
    api = cms(server)
    api.create(cm("a"))
    api.create(cm("b"))
    seen = []
    with api.watch(send_initial_events=True, resource_version="0", label_selector=OURS,
                   resource_version_match="NotOlderThan",
                   timeout_seconds=10) as stream:
        for event in stream:
            if event.type == "BOOKMARK":
                annotations = event.object.metadata.annotations or {}
                if annotations.get("k8s.io/initial-events-end") == "true":
                    break
                continue
            seen.append((event.type, event.object.metadata.name))
    assert sorted(seen) == [("ADDED", "a"), ("ADDED", "b")]


def _crd(server: Server) -> ApiResource:
    """A namespaced custom resource with status and scale subresources."""
    group = f"contract{secrets.token_hex(3)}.example.com"
    crds = Api(server.client, CustomResourceDefinition)
    schema = {"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "replicas": {"type": "integer"}, "size": {"type": "string"}}},
        "status": {"type": "object", "properties": {
            "replicas": {"type": "integer"}, "phase": {"type": "string"}}}}}
    crds.apply({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": schema},
                               "subresources": {"status": {}, "scale": {
                                   "specReplicasPath": ".spec.replicas",
                                   "statusReplicasPath": ".status.replicas"}}}]},
    }, field_manager="contract")

    def established() -> bool:
        got = crds.get(f"widgets.{group}")
        return any(c.type == "Established" and c.status == "True"
                   for c in (got.status.conditions if got.status else None) or [])

    server.eventually(established, "the CRD's Established condition")
    resource = ApiResource(group, "v1", "Widget", "widgets", True)

    def served() -> bool:
        try:
            Api(server.client, resource, namespace=server.namespace).list()
            return True
        except NotFound:
            return False

    server.eventually(served, "the custom resource being served")
    return resource


def test_status_subresource_splits_spec_and_status(server: Server) -> None:
    widgets = Api(server.client, _crd(server), namespace=server.namespace)
    made = widgets.apply({"metadata": {"name": "w"}, "spec": {"replicas": 1},
                          "status": {"phase": "ignored"}}, field_manager="contract")
    assert "status" not in made and made.metadata.generation == 1
    out = widgets.patch_status("w", Patch.merge({"status": {"phase": "Ready"},
                                                 "spec": {"replicas": 5}}))
    assert out["status"] == {"phase": "Ready"} and out["spec"]["replicas"] == 1
    assert out.metadata.generation == 1
    out = widgets.patch("w", Patch.merge({"spec": {"replicas": 2}, "status": {"phase": "X"}}))
    assert out["status"] == {"phase": "Ready"} and out.metadata.generation == 2


def test_scale_subresource_reads_and_writes_replicas(server: Server) -> None:
    widgets = Api(server.client, _crd(server), namespace=server.namespace)
    widgets.apply({"metadata": {"name": "w"}, "spec": {"replicas": 1}},
                  field_manager="contract")
    widgets.patch_status("w", Patch.merge({"status": {"replicas": 1}}))
    scale = widgets.get_scale("w")
    assert (scale.spec.replicas, scale.status.replicas) == (1, 1)
    scale.spec.replicas = 4
    assert widgets.replace_scale("w", scale).spec.replicas == 4
    assert widgets.patch_scale("w", Patch.merge({"spec": {"replicas": 6}})).spec.replicas == 6
    assert widgets.get("w")["spec"]["replicas"] == 6


def test_strategic_merge_patch_of_a_custom_resource_is_unsupported(server: Server) -> None:
    widgets = Api(server.client, _crd(server), namespace=server.namespace)
    widgets.apply({"metadata": {"name": "w"}, "spec": {"size": "s"}}, field_manager="contract")
    with pytest.raises(ApiError) as refused:
        widgets.patch("w", Patch.strategic({"spec": {"size": "m"}}))
    assert refused.value.code == 415


def test_a_lists_items_carry_api_version_and_kind_only_for_a_custom_resource(
        server: Server) -> None:
    cms(server).create(cm("typed", data="x"))
    listed = server.client.request(
        "GET", f"/api/v1/namespaces/{server.namespace}/configmaps",
        params={"labelSelector": "suite=contract"})
    [item] = listed["items"]
    assert (listed["apiVersion"], listed["kind"]) == ("v1", "ConfigMapList")
    assert "apiVersion" not in item and "kind" not in item  # a built-in kind's items
    resource = _crd(server)
    Api(server.client, resource, namespace=server.namespace).apply(
        {"metadata": {"name": "w"}, "spec": {"size": "s"}}, field_manager="contract")
    widgets = server.client.request(
        "GET", f"/apis/{resource.group}/v1/namespaces/{server.namespace}/widgets")
    [widget] = widgets["items"]
    assert (widget["apiVersion"], widget["kind"]) == (f"{resource.group}/v1", "Widget")
