"""Shared strings: a store keeps one copy of each namespace, label value, apiVersion and
kind its objects repeat, and nothing read or written changes."""

from __future__ import annotations

from typing import Any, Dict, Optional

import attrs
import pytest

from kubesync.core import json as kjson
from kubesync.core.dynamic import DynamicObject
from kubesync.core.lazy import decode, encode, plan_of, share_strings
from kubesync.core.model import Model
from kubesync.models.core_v1 import ConfigMap
from kubesync.runtime import store
from kubesync.runtime.store import StoreWriter, share_common_strings
from kubesync.runtime.watcher import Apply


def served(i: int) -> Dict[str, Any]:
    """A fresh parse each time, as each watch event is: no string shared between two."""
    doc = {"kind": "ConfigMap", "apiVersion": "v1",
           "metadata": {"name": f"cm-{i}", "namespace": "team-a-namespace",
                        "labels": {"app": "a-rather-long-app-name", "tier": "backend"},
                        "annotations": {"note": "one of a kind"}},
           "data": {"k": "v"}}
    return kjson.loads(kjson.dumps(doc))


def in_slot(obj: Any, name: str) -> Any:
    return plan_of(type(obj)).by_attr[name].get(obj)


def test_read_and_filled_strings_are_shared_in_slot_and_source_alike() -> None:
    a, b = decode(ConfigMap, served(1)), decode(ConfigMap, served(2))
    assert a.metadata.namespace is not b.metadata.namespace  # two parses, two copies
    pool: Dict[str, str] = {}
    for obj in (a, b):
        share_strings(obj.metadata, "namespace", "labels", pool=pool)
    assert a.metadata.namespace is b.metadata.namespace
    assert a.metadata._kube_raw["namespace"] is a.metadata.namespace  # the source too
    assert a.metadata.labels["app"] is b.metadata.labels["app"]
    assert encode(a) == served(1) and encode(b) == served(2)


def test_an_unread_field_is_shared_in_the_source_and_read_from_it() -> None:
    a, b = decode(ConfigMap, served(1)), decode(ConfigMap, served(2))
    pool: Dict[str, str] = {}
    # api_version is filled at decode; unset it as if unread.
    for obj in (a, b):
        del_slot(obj, "api_version")
        share_strings(obj, "api_version", pool=pool)
    assert a._kube_raw["apiVersion"] is b._kube_raw["apiVersion"]
    with pytest.raises(AttributeError):
        in_slot(a, "api_version")  # still unread
    assert a.api_version is b.api_version and a.api_version == "v1"


def del_slot(obj: Any, name: str) -> None:
    try:
        plan_of(type(obj)).by_attr[name].get(obj)
    except AttributeError:
        return
    type(obj).__dict__[name].__delete__(obj)


def test_a_value_changed_after_decode_is_kept() -> None:
    cm = decode(ConfigMap, served(1))
    mine = "".join(["other-", "namespace"])
    cm.metadata.namespace = mine
    share_strings(cm.metadata, "namespace", pool={})
    assert cm.metadata.namespace is mine
    assert encode(cm)["metadata"]["namespace"] == "other-namespace"


def test_other_values_are_left_as_they_are() -> None:
    cm = decode(ConfigMap, {"metadata": {"name": "x", "labels": {"n": 1}}, "immutable": True})
    share_strings(cm, "immutable", "binary_data", pool={})  # a bool; absent
    share_strings(cm.metadata, "labels", pool={})
    assert cm.immutable is True and cm.metadata.labels == {"n": 1}
    with pytest.raises(AttributeError, match="nope"):
        share_strings(cm, "nope", pool={})


def test_a_store_writer_shares_what_its_objects_repeat() -> None:
    writer: StoreWriter[ConfigMap] = StoreWriter()
    docs = [served(i) for i in range(3)]
    for doc in docs:
        writer.apply_event(Apply(decode(ConfigMap, doc)))
    stored = sorted(writer.store.list(), key=lambda o: str(o.metadata.name))
    assert len({id(o.metadata.namespace) for o in stored}) == 1
    assert len({id(o.metadata.labels["app"]) for o in stored}) == 1
    assert len({id(o.kind) for o in stored}) == 1
    assert len({id(o.metadata.annotations["note"]) for o in stored}) == 3  # not these
    assert [encode(o) for o in stored] == [served(i) for i in range(3)]


def test_dynamic_objects_are_left_alone() -> None:
    doc = served(1)
    namespace = doc["metadata"]["namespace"]
    other = "".join(["team-a-", "namespace"])
    store._SHARED[other] = other  # what sharing would put in its place
    obj = DynamicObject(doc)
    assert share_common_strings(obj) is obj
    assert encode(obj) == served(1)
    assert obj["metadata"]["namespace"] is namespace


def test_the_pool_stays_bounded_however_many_distinct_values_go_by() -> None:
    writer: StoreWriter[ConfigMap] = StoreWriter()
    for i in range(store.SHARED_STRINGS_MAX + 500):
        doc = served(i)
        doc["metadata"]["labels"]["pod-template-hash"] = f"hash-{i}"  # unique each
        writer.apply_event(Apply(decode(ConfigMap, doc)))
        assert len(store._SHARED) <= store.SHARED_STRINGS_MAX + 5
    # A pool started afresh shares again from the next object on.
    writer.apply_event(Apply(decode(ConfigMap, served(-1))))
    writer.apply_event(Apply(decode(ConfigMap, served(-2))))
    a, b = (writer.store.get(f"cm--{i}", "team-a-namespace") for i in (1, 2))
    assert a is not None and b is not None and a.metadata.namespace is b.metadata.namespace


@attrs.define(slots=True, kw_only=True, repr=False)
class Meta(Model):
    labels: Optional[Dict[str, str]] = None


@attrs.define(slots=True, kw_only=True, repr=False)
class Thing(Model):
    metadata: Optional[Meta] = None


def test_a_metadata_model_without_a_namespace_still_shares_its_labels() -> None:
    docs = [kjson.loads(b'{"metadata": {"labels": {"app": "a-long-shared-value"}}}')
            for _ in range(2)]
    things = [decode(Thing, d) for d in docs]
    for t in things:
        share_common_strings(t)
    first, second = (t.metadata.labels["app"] for t in things)  # type: ignore[union-attr,index]
    assert first is second
