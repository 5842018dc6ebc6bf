"""Packed fields: managedFields kept as JSON bytes in stores, read back losslessly."""

from __future__ import annotations

import copy
import gc
import pickle
import tracemalloc
from typing import Any, Callable, Dict, List

import pytest

from kubesync.core import json as kjson
from kubesync.core.dynamic import DynamicObject
from kubesync.core.lazy import Packed, decode, encode, pack_field
from kubesync.models.core_v1 import ConfigMap
from kubesync.models.meta_v1 import ManagedFieldsEntry
from kubesync.runtime.store import StoreWriter, pack_managed_fields
from kubesync.runtime.watcher import Apply, Init, InitApply, InitDone


def served(i: int = 0) -> Dict[str, Any]:
    """A ConfigMap as a 1.37 server sends it, server-side applied."""
    keys = [f"key-{k}" for k in range(8)]
    return {
        "kind": "ConfigMap", "apiVersion": "v1",
        "metadata": {
            "name": f"cm-{i:05d}", "namespace": "bench", "uid": f"uid-{i}",
            "resourceVersion": str(1000 + i), "creationTimestamp": "2026-12-02T10:00:00Z",
            "labels": {"app": "bench", "shard": f"s{i % 10}"},
            "managedFields": [{
                "manager": "kubesync-bench", "operation": "Apply", "apiVersion": "v1",
                "time": "2026-12-02T10:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {f"f:{k}": {} for k in keys},
                             "f:metadata": {"f:labels": {"f:app": {}, "f:shard": {}}}},
            }],
            "futureField": {"kept": True},
        },
        "data": {k: f"value {k} of {i}" for k in keys},
    }


def packed(i: int = 0) -> ConfigMap:
    cm = decode(ConfigMap, served(i))
    assert pack_field(cm.metadata, "managed_fields")
    return cm


def test_a_packed_field_is_json_bytes_in_the_source_mapping() -> None:
    cm = packed()
    raw = cm.metadata._kube_raw
    assert raw is not None and isinstance(raw["managedFields"], Packed)
    assert raw["managedFields"].unpack() == served()["metadata"]["managedFields"]
    # In place: the key keeps its position among the others.
    assert list(raw) == list(served()["metadata"])


def test_encode_gives_back_what_the_server_sent_key_order_included() -> None:
    out = encode(packed())
    assert out == served()
    assert list(out["metadata"]) == list(served()["metadata"])
    assert kjson.loads(kjson.dumps(out)) == served()


def test_reading_a_packed_field_gives_the_same_models_as_an_unpacked_object() -> None:
    cm, plain = packed(), decode(ConfigMap, served())
    entries = cm.metadata.managed_fields
    assert entries == plain.metadata.managed_fields
    assert entries is not None and isinstance(entries[0], ManagedFieldsEntry)
    assert entries[0].manager == "kubesync-bench"
    assert entries[0].fields_v1 == served()["metadata"]["managedFields"][0]["fieldsV1"]
    assert cm == plain


def test_a_change_after_the_read_shows_in_encode() -> None:
    cm = packed()
    entries = cm.metadata.managed_fields
    assert entries is not None
    entries[0].manager = "someone-else"
    assert encode(cm)["metadata"]["managedFields"][0]["manager"] == "someone-else"
    cm.metadata.managed_fields = None
    assert "managedFields" not in encode(cm)["metadata"]


def test_packing_a_field_already_read_changes_nothing_seen() -> None:
    cm = decode(ConfigMap, served())
    labels = cm.metadata.labels
    assert labels is not None
    labels["new"] = "x"
    assert pack_field(cm.metadata, "labels")
    assert cm.metadata.labels is labels
    assert encode(cm)["metadata"]["labels"] == {**served()["metadata"]["labels"], "new": "x"}


def test_pack_says_false_when_absent_packed_already_or_not_json() -> None:
    cm = packed()
    assert not pack_field(cm.metadata, "managed_fields")  # packed already
    assert not pack_field(cm.metadata, "annotations")  # absent
    odd = decode(ConfigMap, {"metadata": {"name": "x", "labels": {"a": {1, 2}}}})
    assert not pack_field(odd.metadata, "labels")  # a set is not JSON: left as it is
    assert odd.metadata._kube_raw == {"name": "x", "labels": {"a": {1, 2}}}
    with pytest.raises(AttributeError, match="'ObjectMeta' has no field 'nope'"):
        pack_field(cm.metadata, "nope")


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda o: pickle.loads(pickle.dumps(o))],
                         ids=["deepcopy", "pickle"])
def test_copies_of_a_packed_object_hold_plain_json(clone: Callable[[Any], Any]) -> None:
    twin = clone(packed())
    assert encode(twin) == served()
    raw = twin.metadata._kube_raw
    assert raw is not None and isinstance(raw["managedFields"], list)


def _held_per_object(make: Callable[[int], Any], count: int = 300) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        held: List[Any] = [make(i) for i in range(count)]
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(held) == count
    return (after - before) / count


def test_a_store_holds_managed_fields_packed_and_gives_them_back() -> None:
    w: StoreWriter[ConfigMap] = StoreWriter()
    for ev in (Init(), InitApply(decode(ConfigMap, served(0))), InitDone("1"),
               Apply(decode(ConfigMap, served(1)))):
        w.apply_event(ev)
    for i in (0, 1):
        got = w.store.get(f"cm-{i:05d}", "bench")
        assert got is not None
        assert isinstance(got.metadata._kube_raw["managedFields"], Packed)  # type: ignore[index]
        assert encode(got) == served(i)
        assert got.metadata.managed_fields == decode(ConfigMap, served(i)).metadata.managed_fields


def test_packing_frees_most_of_what_managed_fields_cost() -> None:
    def as_served(i: int) -> Any:
        return decode(ConfigMap, kjson.loads(kjson.dumps(served(i))))

    def stored(i: int) -> Any:
        return pack_managed_fields(as_served(i))

    def dropped(i: int) -> Any:
        cm = as_served(i)
        cm.metadata.managed_fields = None
        cm.metadata._kube_raw.pop("managedFields")
        return cm

    full, packed_, none = (_held_per_object(f) for f in (as_served, stored, dropped))
    # managedFields cost full - none; packed they keep at most a third of that.
    assert packed_ - none < (full - none) / 3, (full, packed_, none)


def test_other_objects_are_left_as_they_are() -> None:
    dyn = DynamicObject(served())
    assert pack_managed_fields(dyn) is dyn
    assert isinstance(dyn["metadata"]["managedFields"], list)
    assert pack_managed_fields("not a model") == "not a model"
