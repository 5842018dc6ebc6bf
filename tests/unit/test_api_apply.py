"""Server-side apply of a partial manifest given as a mapping (a dict, a DynamicObject)."""

from __future__ import annotations

import json
from typing import Any, Dict
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from kubesync import Api, Client, DynamicObject
from kubesync.errors import UsageError
from kubesync.models.apps_v1 import Deployment
from kubesync.models.core_v1 import ConfigMap

SERVER = "https://k8s.test"  # conftest.CANNED_SERVER, which the fixtures use
CM_WEB = f"{SERVER}/api/v1/namespaces/ns/configmaps/web"

pytestmark = pytest.mark.filterwarnings("ignore::kubesync.errors.InsecureTLSWarning")


@pytest.fixture
def client(canned_client: Client) -> Client:
    return canned_client


def _answer(rsps: responses.RequestsMock) -> None:
    rsps.patch(CM_WEB, json={"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "web", "namespace": "ns", "uid": "u"},
                             "data": {"a": "1"}})


def _sent(rsps: responses.RequestsMock) -> Dict[str, Any]:
    request = rsps.calls[0].request
    assert request.headers["Content-Type"] == "application/apply-patch+yaml"
    # Writes validate strictly unless told otherwise.
    assert {k: v[0] for k, v in parse_qs(urlparse(request.url).query).items()} == {
        "fieldManager": "me", "fieldValidation": "Strict"}
    return dict(json.loads(request.body))


def test_apply_sends_a_dict_manifest_as_given_and_decodes_the_answer(
    rsps: responses.RequestsMock, client: Client
) -> None:
    _answer(rsps)
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"},
                "data": {"a": "1"}, "someFutureField": {"kept": True}}
    got = Api(client, ConfigMap, namespace="ns").apply(manifest, field_manager="me")
    assert _sent(rsps) == manifest
    assert isinstance(got, ConfigMap) and got.metadata is not None
    assert got.metadata.uid == "u"
    assert manifest == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"},
                        "data": {"a": "1"}, "someFutureField": {"kept": True}}  # untouched


def test_apply_fills_in_a_missing_api_version_and_kind(
    rsps: responses.RequestsMock, client: Client
) -> None:
    _answer(rsps)
    Api(client, ConfigMap, namespace="ns").apply({"metadata": {"name": "web"}},
                                                 field_manager="me")
    assert _sent(rsps) == {"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "web"}}


def test_apply_takes_a_dynamic_object_on_a_typed_api(
    rsps: responses.RequestsMock, client: Client
) -> None:
    _answer(rsps)
    obj = DynamicObject({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"}})
    obj.metadata.name = "web"
    Api(client, ConfigMap, namespace="ns").apply(obj, field_manager="me")
    assert _sent(rsps) == {"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "web"}, "data": {"a": "1"}}


@pytest.mark.parametrize(
    ("manifest", "named"),
    [
        ({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web"}}, "v1 Secret"),
        ({"apiVersion": "v2", "kind": "ConfigMap", "metadata": {"name": "web"}},
         "v2 ConfigMap"),
        ({"kind": "Deployment", "metadata": {"name": "web"}}, "v1 Deployment"),
    ],
)
def test_apply_refuses_a_manifest_of_another_kind_naming_both(
    client: Client, manifest: Dict[str, Any], named: str
) -> None:
    with pytest.raises(UsageError) as info:
        Api(client, ConfigMap, namespace="ns").apply(manifest, field_manager="me")
    assert "v1 ConfigMap" in str(info.value) and named in str(info.value)


def test_apply_of_a_mapping_still_checks_its_name_and_namespace(client: Client) -> None:
    api = Api(client, ConfigMap, namespace="ns")
    with pytest.raises(UsageError, match=r"metadata\.name"):
        api.apply({"data": {}}, field_manager="me")
    with pytest.raises(UsageError, match="namespace 'other'"):
        api.apply({"metadata": {"name": "web", "namespace": "other"}}, field_manager="me")


def test_apply_still_refuses_a_model_of_another_kind(client: Client) -> None:
    with pytest.raises(UsageError, match="ConfigMap"):
        Api(client, ConfigMap, namespace="ns").apply(
            Deployment(), field_manager="me")  # type: ignore[arg-type]
