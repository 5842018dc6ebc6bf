"""CEL rules, selectable fields and deprecated versions in CRDs built from classes."""

from __future__ import annotations

from typing import Optional

import attrs
import pytest
import responses

from kubesync import Client
from kubesync.core.convert import encode
from kubesync.crd import CustomResource, Rule, field, install, merge_crds, validations
from kubesync.errors import FeatureUnavailable, UsageError
from tests.unit.conftest import CANNED_SERVER


@validations(Rule("self.min <= self.max", message="min must not exceed max",
                  field_path=".min", reason="FieldValueInvalid"))
@attrs.define
class RangeSpec:
    min: int = 0
    max: int = 10
    color: str = field(default="red", validations=[
        Rule("self == oldSelf", message="color is immutable"),
        "self in ['red', 'blue']",
    ])


class Range(CustomResource[RangeSpec, None], group="rules.test", version="v1",
            validations=[Rule("self.metadata.name.startsWith('r')",
                              message_expression="'bad name: ' + self.metadata.name")],
            selectable_fields=[".spec.color"]):
    """A range."""


class RangeOld(CustomResource[RangeSpec, None], group="rules.test", version="v1beta1",
               kind="Range", deprecated=True, deprecation_warning="use v1"):
    pass


def test_rules_land_at_field_class_and_object_level():
    crd = encode(Range.crd())
    version = crd["spec"]["versions"][0]
    root = version["schema"]["openAPIV3Schema"]
    assert root["x-kubernetes-validations"] == [
        {"rule": "self.metadata.name.startsWith('r')",
         "messageExpression": "'bad name: ' + self.metadata.name"}]
    spec = root["properties"]["spec"]
    assert spec["x-kubernetes-validations"] == [
        {"rule": "self.min <= self.max", "message": "min must not exceed max",
         "fieldPath": ".min", "reason": "FieldValueInvalid"}]
    assert spec["properties"]["color"]["x-kubernetes-validations"] == [
        {"rule": "self == oldSelf", "message": "color is immutable"},
        {"rule": "self in ['red', 'blue']"}]
    assert version["selectableFields"] == [{"jsonPath": ".spec.color"}]
    assert "deprecated" not in version


def test_a_transition_rule_is_recognised():
    assert Rule("self == oldSelf").is_transition
    assert not Rule("self.oldSelfish == 1").is_transition


def test_versions_merge_with_one_storage_and_keep_their_deprecation():
    merged = encode(merge_crds([Range.crd(), RangeOld.crd()], storage="v1"))
    versions = {v["name"]: v for v in merged["spec"]["versions"]}
    assert (versions["v1"]["storage"], versions["v1beta1"]["storage"]) == (True, False)
    assert versions["v1beta1"]["deprecated"] is True
    assert versions["v1beta1"]["deprecationWarning"] == "use v1"
    assert "deprecated" not in versions["v1"]


@pytest.mark.parametrize(("make", "match"), [
    (lambda: Rule(""), "CEL expression"),
    (lambda: Rule("self > 0", reason="Nope"), "reason is one of"),
    (lambda: Rule("self > 0", field_path="spec.x"), "field_path"),
])
def test_malformed_rules_are_refused_where_written(make, match):
    with pytest.raises(UsageError, match=match):
        make()


def test_a_deprecation_warning_needs_deprecated():
    with pytest.raises(UsageError, match="deprecated=True"):
        class Bad(CustomResource[RangeSpec, None], group="rules.test", version="v2",
                  deprecation_warning="x"):
            pass


@pytest.mark.parametrize(("minor", "feature"), [(24, "CEL validation rules"),
                                                (30, "selectableFields")])
def test_install_refuses_what_the_server_would_prune(rsps: responses.RequestsMock,
                                                     canned_client: Client, minor: int,
                                                     feature: str):
    rsps.get(CANNED_SERVER + "/version", json={"major": "1", "minor": str(minor),
                                               "gitVersion": f"v1.{minor}.0"})
    with pytest.raises(FeatureUnavailable, match=feature) as info:
        install(canned_client, Range)
    assert f"the server at {CANNED_SERVER} is v1.{minor}.0" in str(info.value)
    assert [c.request.path_url for c in rsps.calls] == ["/version"]  # nothing written


@attrs.define
class PlainSpec:
    size: Optional[int] = None


class Plain(CustomResource[PlainSpec, None], group="rules.test", version="v1"):
    pass


def test_a_crd_without_rules_installs_without_asking_the_version(rsps, canned_client):
    crd = encode(Plain.crd())
    crd["status"] = {"conditions": [{"type": "Established", "status": "True"}]}
    rsps.patch(CANNED_SERVER + "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
               "plains.rules.test", json=crd)
    rsps.get(CANNED_SERVER + "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
             "plains.rules.test", json=crd)
    install(canned_client, Plain)
    assert "/version" not in [c.request.path_url for c in rsps.calls]
