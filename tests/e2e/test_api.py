"""The typed Api against the real API server: every verb, option and subresource."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List

import pytest

from kubesync import Api
from kubesync.core.params import LabelQuery, Patch
from kubesync.errors import (
    AlreadyExists,
    ApiError,
    Conflict,
    Invalid,
    NotFound,
    Status,
    UnprocessableBody,
    UsageError,
)
from kubesync.models.apps_v1 import Deployment, DeploymentSpec
from kubesync.models.core_v1 import (
    ConfigMap,
    Container,
    Namespace,
    Pod,
    PodSpec,
    PodTemplateSpec,
)
from kubesync.models.meta_v1 import LabelSelector as LabelSelectorModel
from kubesync.models.meta_v1 import ObjectMeta, OwnerReference
from kubesync.runtime.conditions import is_deleted
from kubesync.runtime.wait import await_condition
from tests.helpers import eventually

pytestmark = pytest.mark.e2e


def cm(name: str, data: Dict[str, str] | None = None, **labels: str) -> ConfigMap:
    return ConfigMap(metadata=ObjectMeta(name=name, labels=labels or None),
                     data=data if data is not None else {"k": "v"})


def test_create_get_get_opt_and_get_metadata(cms: Api[ConfigMap]) -> None:
    created = cms.create(cm("a", {"x": "1"}, app="web"))
    assert created.metadata.uid and created.metadata.namespace == cms.namespace
    got = cms.get("a")
    assert got.data == {"x": "1"} and got.metadata.labels == {"app": "web"}
    assert cms.get_opt("missing") is None
    with pytest.raises(NotFound):
        cms.get("missing")
    meta = cms.get_metadata("a")
    assert meta.metadata.name == "a" and meta.metadata.uid == created.metadata.uid
    with pytest.raises(AlreadyExists):
        cms.create(cm("a"))


def test_list_with_selectors_and_list_metadata(cms: Api[ConfigMap]) -> None:
    for i in range(6):
        cms.create(cm(f"sel-{i}", tier="a" if i % 2 else "b"))
    listed = cms.list(label_selector=LabelQuery(tier="a"))
    assert sorted(o.metadata.name for o in listed.items) == ["sel-1", "sel-3", "sel-5"]
    assert listed.metadata.resource_version
    by_field = cms.list(field_selector="metadata.name=sel-2")
    assert [o.metadata.name for o in by_field.items] == ["sel-2"]
    metas = cms.list_metadata(label_selector={"tier": "b"})
    assert sorted(o.metadata.name for o in metas.items) == ["sel-0", "sel-2", "sel-4"]


def test_paging_1200_objects_by_100_returns_each_exactly_once(
    kube_client: Any, kube_namespace: str
) -> None:
    api = Api(kube_client, ConfigMap, namespace=kube_namespace)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: api.create(cm(f"p-{i:04d}", {"i": str(i)}, batch="p")),
                      range(1200)))
    # (The namespace also holds the controller-manager's kube-root-ca.crt: select ours.)
    first = api.list(limit=100, label_selector={"batch": "p"})
    assert len(first.items) == 100 and first.metadata.continue_
    names = [o.metadata.name for o in api.list_all(page_size=100,
                                                    label_selector={"batch": "p"})]
    assert len(names) == 1200 and len(set(names)) == 1200


def test_replace_with_a_stale_resource_version_conflicts(cms: Api[ConfigMap]) -> None:
    cms.create(cm("stale"))
    old = cms.get("stale")
    fresh = cms.get("stale")
    fresh.data = {"k": "new"}
    cms.replace("stale", fresh)
    old.data = {"k": "lost update"}
    with pytest.raises(Conflict):
        cms.replace("stale", old)
    assert cms.get("stale").data == {"k": "new"}


def test_update_wins_under_8_threads_racing_on_one_object(cms: Api[ConfigMap]) -> None:
    cms.create(cm("counter", {"n": "0"}))

    def bump(obj: ConfigMap) -> None:
        assert obj.data is not None
        obj.data["n"] = str(int(obj.data["n"]) + 1)

    def work(_: int) -> None:
        for _ in range(5):
            cms.update("counter", bump)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    assert cms.get("counter").data == {"n": "40"}


def test_merge_strategic_and_json_patches(kube_client: Any, kube_namespace: str,
                                          cms: Api[ConfigMap]) -> None:
    cms.create(cm("p", {"a": "1", "b": "2"}))
    out = cms.patch("p", Patch.merge({"data": {"b": None, "c": "3"}}))
    assert out.data == {"a": "1", "c": "3"}
    out = cms.patch("p", Patch.json([{"op": "test", "path": "/data/a", "value": "1"},
                                     {"op": "replace", "path": "/data/a", "value": "9"}]))
    assert out.data == {"a": "9", "c": "3"}
    with pytest.raises((UnprocessableBody, Invalid, ApiError)) as info:
        cms.patch("p", Patch.json([{"op": "test", "path": "/data/a", "value": "nope"},
                                   {"op": "remove", "path": "/data/a"}]))
    assert info.value.code in (409, 422, 500)  # the server's code for a failed test op
    assert cms.get("p").data == {"a": "9", "c": "3"}
    # Strategic merge on a built-in kind: containers merge by name.
    pods = Api(kube_client, Pod, namespace=kube_namespace)
    pods.create(_pod("sm", [("main", "busybox"), ("side", "busybox")]))
    out_pod = pods.patch("sm", Patch.strategic(
        {"spec": {"containers": [{"name": "side", "image": "busybox:1.36"}]}}))
    images = {c.name: c.image for c in out_pod.spec.containers}
    assert images == {"main": "busybox", "side": "busybox:1.36"}


def _pod(name: str, containers: List[tuple]) -> Pod:
    return Pod(metadata=ObjectMeta(name=name),
               spec=PodSpec(containers=[Container(name=n, image=i) for n, i in containers]))


def test_server_side_apply_conflicts_name_the_manager_and_force_takes_over(
    cms: Api[ConfigMap],
) -> None:
    cms.apply(cm("ssa", {"owned": "by-alice"}), field_manager="alice")
    with pytest.raises(Conflict) as info:
        cms.apply(cm("ssa", {"owned": "by-bob"}), field_manager="bob")
    assert "alice" in str(info.value)
    out = cms.apply(cm("ssa", {"owned": "by-bob"}), field_manager="bob", force=True)
    assert out.data == {"owned": "by-bob"}
    managers = {m.manager for m in out.metadata.managed_fields or []}
    assert "bob" in managers


def test_server_side_apply_of_a_partial_dict_manifest_owns_only_its_fields(
    cms: Api[ConfigMap],
) -> None:
    cms.apply(cm("ssa-dict", {"theirs": "1"}), field_manager="other")
    out = cms.apply({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "ssa-dict", "labels": {"app": "w"}},
                     "data": {"mine": "2"}}, field_manager="script")
    assert out.data == {"theirs": "1", "mine": "2"} and out.metadata.labels == {"app": "w"}
    with pytest.raises(UsageError, match="v1 Secret"):
        cms.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ssa-dict"}},
                  field_manager="script")


def test_dry_run_writes_nothing(cms: Api[ConfigMap]) -> None:
    out = cms.create(cm("dry"), dry_run=True)
    assert out.metadata.name == "dry"
    assert cms.get_opt("dry") is None


def test_delete_returns_status_when_gone_and_preconditions_guard(cms: Api[ConfigMap]) -> None:
    created = cms.create(cm("del"))
    with pytest.raises(Conflict):
        cms.delete("del", precondition_uid="not-the-uid")
    res = cms.delete("del", precondition_uid=created.metadata.uid, grace_period_seconds=0)
    assert isinstance(res, (Status, ConfigMap))
    assert cms.get_opt("del") is None


def test_delete_returns_the_object_while_it_still_finalizes(cms: Api[ConfigMap]) -> None:
    obj = cm("fin")
    assert obj.metadata is not None
    obj.metadata.finalizers = ["kubesync.test/hold"]
    cms.create(obj)
    res = cms.delete("fin")
    assert isinstance(res, ConfigMap)
    assert res.metadata.deletion_timestamp is not None
    cms.patch("fin", Patch.merge({"metadata": {"finalizers": None}}))
    assert cms.get_opt("fin") is None


def test_delete_collection_by_label(cms: Api[ConfigMap]) -> None:
    for i in range(4):
        cms.create(cm(f"dc-{i}", group="x" if i < 3 else "y"))
    cms.delete_collection(label_selector={"group": "x"})
    assert [o.metadata.name for o in cms.list().items if o.metadata.name.startswith("dc-")] == [
        "dc-3"]


def test_foreground_delete_waits_for_dependents(cms: Api[ConfigMap]) -> None:
    owner = cms.create(cm("owner"))
    child = cm("child")
    assert child.metadata is not None
    child.metadata.owner_references = [OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid,
        block_owner_deletion=True)]
    cms.create(child)
    res = cms.delete("owner", propagation_policy="Foreground")
    assert isinstance(res, ConfigMap)
    assert "foregroundDeletion" in (res.metadata.finalizers or [])
    # The garbage collector deletes the child, then the owner.
    await_condition(cms, "owner", is_deleted(owner.metadata.uid), timeout=120)
    assert cms.get_opt("child") is None


def _deployment(name: str, replicas: int = 1) -> Deployment:
    labels = {"app": name}
    return Deployment(
        metadata=ObjectMeta(name=name),
        spec=DeploymentSpec(
            replicas=replicas,
            selector=LabelSelectorModel(match_labels=labels),
            template=PodTemplateSpec(
                metadata=ObjectMeta(labels=labels),
                spec=PodSpec(containers=[Container(name="c", image="busybox")]),
            ),
        ),
    )


def test_scale_subresource_on_a_deployment(kube_client: Any, kube_namespace: str) -> None:
    deps = Api(kube_client, Deployment, namespace=kube_namespace)
    deps.create(_deployment("web", 1))
    scale = deps.get_scale("web")
    assert scale.spec.replicas == 1
    scale.spec.replicas = 3
    # The deployment controller writes the Deployment meanwhile: replace unconditionally.
    scale.metadata.resource_version = None
    assert deps.replace_scale("web", scale).spec.replicas == 3
    assert deps.patch_scale("web", Patch.merge({"spec": {"replicas": 2}})).spec.replicas == 2
    assert deps.get("web").spec.replicas == 2


def test_status_subresource_ignores_spec_and_main_ignores_status(
    kube_client: Any, kube_namespace: str
) -> None:
    deps = Api(kube_client, Deployment, namespace=kube_namespace)
    deps.create(_deployment("st", 1))
    d = deps.get_status("st")
    d.spec.replicas = 7
    d.status.observed_generation = 42  # type: ignore[union-attr]
    d.metadata.resource_version = None  # the deployment controller writes status too
    out = deps.replace_status("st", d)
    assert out.status.observed_generation == 42 and out.spec.replicas == 1
    out = deps.patch_status("st", Patch.merge({"status": {"observedGeneration": 43}}))
    assert out.status.observed_generation == 43


def test_evict_a_pod(kube_client: Any, kube_namespace: str) -> None:
    pods = Api(kube_client, Pod, namespace=kube_namespace)
    created = pods.create(_pod("ev", [("c", "busybox")]))
    pods.evict("ev", grace_period_seconds=0)
    await_condition(pods, "ev", is_deleted(created.metadata.uid), timeout=30)


def test_watch_streams_typed_events_and_gone_is_raised(
    cms: Api[ConfigMap], kube_local_cluster: Any
) -> None:
    start = cms.list().metadata.resource_version
    cms.create(cm("w1"))
    cms.patch("w1", Patch.merge({"data": {"k": "2"}}))
    cms.delete("w1")
    seen = []
    # (Only w1: the namespace's kube-root-ca.crt may be published meanwhile.)
    with cms.watch(resource_version=start, timeout_seconds=5,
                   field_selector="metadata.name=w1") as stream:
        for ev in stream:
            if ev.type == "BOOKMARK":
                continue
            seen.append((ev.type, ev.object.metadata.name))
            if len(seen) == 3:
                break
    assert seen == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]
    kube_local_cluster.compact()
    with pytest.raises(ApiError) as info, cms.watch(resource_version=start) as stream:
        next(iter(stream))
    assert info.value.code == 410


def test_a_watch_can_be_closed_from_another_thread(cms: Api[ConfigMap]) -> None:
    stream = cms.watch(resource_version=cms.list().metadata.resource_version)
    ended = threading.Event()

    def read() -> None:
        for _ in stream:
            pass
        ended.set()

    t = threading.Thread(target=read, name="reader")
    t.start()
    eventually(lambda: stream.is_open, timeout=10, what="the reader has the stream open")
    stream.close()
    assert ended.wait(10)
    t.join(10)


def test_misuse_is_refused_before_any_request(kube_client: Any, kube_namespace: str) -> None:
    cms = Api(kube_client, ConfigMap, namespace=kube_namespace)
    with pytest.raises(UsageError, match="cluster-scoped"):
        Api(kube_client, Namespace, namespace="x")
    with pytest.raises(UsageError, match="ConfigMap, not Pod"):
        cms.create(_pod("x", [("c", "i")]))  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"metadata\.name"):
        cms.create(ConfigMap(data={}))
    with pytest.raises(UsageError, match="named 'a'"):
        cms.replace("b", cm("a"))
    with pytest.raises(UsageError, match="namespaced"):
        Api.all(kube_client, ConfigMap).create(cm("x"))
