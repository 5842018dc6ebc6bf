"""Metadata-only calls against a server that cannot answer PartialObjectMetadata (some
aggregated API servers): it takes the plain-JSON fallback of the Accept header, and the
whole objects it sends are cut down to their metadata. A real server here always converts,
so the canned one plays the other kind."""

from __future__ import annotations

import json

import pytest
import responses

from kubesync import Api, Client
from kubesync.core.lazy import encode
from kubesync.core.request import ACCEPT_METADATA, ACCEPT_METADATA_LIST
from kubesync.models.core_v1 import ConfigMap
from kubesync.models.meta_v1 import PartialObjectMetadata

CMS = "https://k8s.test/api/v1/namespaces/ns/configmaps"
pytestmark = pytest.mark.filterwarnings("ignore::kubesync.errors.InsecureTLSWarning")

FULL = {"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "a", "resourceVersion": "5", "ownerReferences": [
            {"apiVersion": "v1", "kind": "Secret", "name": "s", "uid": "u", "controller": True}]},
        "data": {"big": "x" * 1000}}


def test_the_accept_headers_offer_plain_json_as_the_fallback() -> None:
    assert ACCEPT_METADATA.split(",") == [
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1", "application/json"]
    assert ACCEPT_METADATA_LIST.split(",")[-1] == "application/json"


def test_a_list_answered_with_whole_objects_keeps_only_their_metadata(
    rsps: responses.RequestsMock, canned_client: Client
) -> None:
    rsps.get(CMS, json={"apiVersion": "v1", "kind": "ConfigMapList",
                        "metadata": {"resourceVersion": "9"}, "items": [FULL]})
    got = Api(canned_client, ConfigMap, namespace="ns").list_metadata()
    assert rsps.calls[0].request.headers["Accept"] == ACCEPT_METADATA_LIST
    assert got.metadata.resource_version == "9"
    [item] = got.items
    assert isinstance(item, PartialObjectMetadata)
    assert item.metadata.owner_references[0].name == "s"
    assert "data" not in encode(item), "the fallback's spec and data are not kept"


def test_a_metadata_watch_answered_with_whole_objects_keeps_only_their_metadata(
    rsps: responses.RequestsMock, canned_client: Client
) -> None:
    rsps.get(CMS, body=json.dumps({"type": "ADDED", "object": FULL}) + "\n")
    events = iter(Api(canned_client, ConfigMap, namespace="ns").watch(
        resource_version="1", metadata_only=True))
    ev = next(events)
    assert rsps.calls[0].request.headers["Accept"] == ACCEPT_METADATA
    assert isinstance(ev.object, PartialObjectMetadata)
    assert ev.object.metadata.name == "a"
    assert encode(ev.object) == {"apiVersion": "meta.k8s.io/v1",
                                 "kind": "PartialObjectMetadata",
                                 "metadata": FULL["metadata"]}


def test_get_metadata_answered_with_the_whole_object_keeps_only_its_metadata(
    rsps: responses.RequestsMock, canned_client: Client
) -> None:
    rsps.get(f"{CMS}/a", json=FULL)
    got = Api(canned_client, ConfigMap, namespace="ns").get_metadata("a")
    assert got.kind == "PartialObjectMetadata" and got.metadata.resource_version == "5"
    assert "data" not in encode(got)
