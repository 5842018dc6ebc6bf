"""ServerVersion parsing and Feature checks; Client.server_version reads /version once."""

from __future__ import annotations

import pytest
import responses

from kubesync import Client
from kubesync.client.features import Feature, ServerVersion
from kubesync.errors import DecodeError
from tests.unit.conftest import CANNED_SERVER


@pytest.mark.parametrize(("info", "expected"), [
    ({"major": "1", "minor": "30", "gitVersion": "v1.30.2"}, (1, 30)),
    ({"major": "1", "minor": "29+", "gitVersion": "v1.29.4-gke.100"}, (1, 29)),
    ({"major": "", "minor": "", "gitVersion": "v1.27.0-rc.1"}, (1, 27)),
])
def test_versions_parse_as_providers_print_them(info, expected):
    v = ServerVersion.from_dict(info)
    assert (v.major, v.minor) == expected
    assert str(v) == info["gitVersion"]


def test_a_version_without_numbers_is_a_decode_error():
    with pytest.raises(DecodeError, match="no version number"):
        ServerVersion.from_dict({"gitVersion": "dev"})


def test_features_follow_the_release_that_turned_them_on():
    old, new = ServerVersion(1, 20), ServerVersion(1, 37)
    assert not any(old.supports(f) for f in Feature)
    assert all(new.supports(f) for f in Feature)
    assert ServerVersion(1, 22).supports(Feature.POLICY_V1_EVICTION)
    assert not ServerVersion(1, 30).supports(Feature.CRD_SELECTABLE_FIELDS)
    assert Feature.AGGREGATED_DISCOVERY.release == "1.26"


def test_the_client_reads_version_once(rsps: responses.RequestsMock, canned_client: Client):
    rsps.get(CANNED_SERVER + "/version", json={"major": "1", "minor": "24",
                                               "gitVersion": "v1.24.0"})
    assert canned_client.server_version() == ServerVersion(1, 24, "v1.24.0")
    assert canned_client.supports(Feature.EPHEMERAL_CONTAINERS)
    assert not canned_client.supports(Feature.FIELD_VALIDATION)
    assert len(rsps.calls) == 1
    canned_client.server_version(refresh=True)
    assert len(rsps.calls) == 2
