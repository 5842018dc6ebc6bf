"""Discovery against canned answers: resolve() forms, ambiguity, caching, a broken group."""

from __future__ import annotations

import logging
from typing import Any, Dict, Iterator, List

import pytest
import responses
import responses.matchers

from kubesync import Client, Config
from kubesync.client import RetryPolicy
from kubesync.client.discovery import AGGREGATED_ACCEPT, ApiGroup, Discovery
from kubesync.errors import ServerError, UsageError

SERVER = "https://k8s.test:6443"


def resource(name: str, kind: str, namespaced: bool = True, short: List[str] = (),
             singular: str = "", verbs: List[str] = ("get", "list", "watch")) -> Dict[str, Any]:
    return {"name": name, "singularName": singular, "namespaced": namespaced, "kind": kind,
            "verbs": list(verbs), "shortNames": list(short)}


def group(name: str, *versions: str) -> Dict[str, Any]:
    return {
        "name": name,
        "versions": [{"groupVersion": f"{name}/{v}", "version": v} for v in versions],
        "preferredVersion": {"groupVersion": f"{name}/{versions[0]}", "version": versions[0]},
    }


ANSWERS = {
    "/api": {"kind": "APIVersions", "versions": ["v1"]},
    "/apis": {"kind": "APIGroupList", "groups": [
        group("apps", "v1"),
        group("events.k8s.io", "v1"),
        group("metrics.k8s.io", "v1beta1"),
        group("networking.k8s.io", "v1", "v1beta1"),
        group("extensions", "v1beta1"),
    ]},
    "/api/v1": {"groupVersion": "v1", "resources": [
        resource("pods", "Pod", short=["po"], verbs=["create", "get", "list"]),
        resource("pods/status", "Pod"),
        resource("pods/eviction", "Eviction"),
        resource("namespaces", "Namespace", namespaced=False, short=["ns"]),
        resource("events", "Event", short=["ev"]),
    ]},
    "/apis/apps/v1": {"groupVersion": "apps/v1", "resources": [
        resource("deployments", "Deployment", short=["deploy"], singular="deployment"),
        resource("deployments/scale", "Scale"),
        resource("deployments/status", "Deployment"),
    ]},
    "/apis/events.k8s.io/v1": {"groupVersion": "events.k8s.io/v1", "resources": [
        resource("events", "Event", short=["ev"]),
    ]},
    "/apis/networking.k8s.io/v1": {"groupVersion": "networking.k8s.io/v1", "resources": [
        resource("ingresses", "Ingress", short=["ing"]),
    ]},
    "/apis/networking.k8s.io/v1beta1": {"groupVersion": "networking.k8s.io/v1beta1",
                                        "resources": [resource("ingresses", "Ingress")]},
    "/apis/extensions/v1beta1": {"groupVersion": "extensions/v1beta1", "resources": [
        resource("ingresses", "Ingress", short=["ing"]),
    ]},
}


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as r:
        for path, body in ANSWERS.items():
            r.get(SERVER + path, json=body)
        r.get(SERVER + "/apis/metrics.k8s.io/v1beta1", status=503, json={
            "kind": "Status", "code": 503, "reason": "ServiceUnavailable",
            "message": "the server is currently unable to handle the request"})
        yield r


@pytest.fixture
def discovery(rsps: responses.RequestsMock) -> Discovery:
    client = Client(Config(server=SERVER), retries=RetryPolicy(retries=0, sleep=lambda s: None))
    return Discovery(client)


@pytest.mark.parametrize(
    "name",
    ["deploy", "deployments", "Deployment", "deployment", "deployment.apps",
     "deployments.v1.apps", "apps/v1/deployments", "apps/deployments", " DEPLOY "],
)
def test_every_form_resolves_a_deployment(discovery: Discovery, name: str):
    r = discovery.resolve(name)
    assert (r.group, r.version, r.kind, r.plural, r.namespaced) == (
        "apps", "v1", "Deployment", "deployments", True)
    assert r.subresources == ("scale", "status")
    assert r.short_names == ("deploy",)


def test_core_forms(discovery: Discovery):
    assert discovery.resolve("po").plural == "pods"
    assert discovery.resolve("v1/pods").kind == "Pod"
    assert discovery.resolve("pod").url_path(namespace="x") == "/api/v1/namespaces/x/pods"
    pods = discovery.resolve("pods")
    assert pods.subresources == ("eviction", "status")
    assert pods.verbs == ("create", "get", "list")
    assert discovery.resolve("ns").namespaced is False


def test_one_broken_group_does_not_break_the_rest(discovery: Discovery, caplog):
    with caplog.at_level(logging.WARNING, logger="kubesync.client.discovery"):
        assert discovery.resolve("deploy").group == "apps"
    failures = discovery.failures
    assert list(failures) == ["metrics.k8s.io/v1beta1"]
    assert isinstance(failures["metrics.k8s.io/v1beta1"], ServerError)
    assert "metrics.k8s.io/v1beta1" in caplog.text
    assert {r.plural for r in discovery.resources()} >= {"pods", "deployments", "ingresses"}


def test_a_name_only_the_broken_group_has_says_so(discovery: Discovery):
    with pytest.raises(UsageError, match=r"no resource 'nodes'.*metrics\.k8s\.io/v1beta1"):
        discovery.resolve("nodes")


def test_ambiguous_names_list_the_candidates(discovery: Discovery):
    with pytest.raises(UsageError, match="ambiguous") as info:
        discovery.resolve("ing")
    assert "ingresses.v1.networking.k8s.io" in str(info.value)
    assert "ingresses.v1beta1.extensions" in str(info.value)
    r = discovery.resolve("ingresses.networking.k8s.io")
    assert (r.group, r.version) == ("networking.k8s.io", "v1")
    assert discovery.resolve("ingresses.v1beta1.networking.k8s.io").version == "v1beta1"


def test_the_core_group_wins_as_in_kubectl(discovery: Discovery):
    assert discovery.resolve("events").group == ""
    assert discovery.resolve("events.events.k8s.io").group == "events.k8s.io"


def test_unknown_names_and_groups(discovery: Discovery):
    with pytest.raises(UsageError, match="no resource"):
        discovery.resolve("widgets")
    with pytest.raises(UsageError, match="no API group"):
        discovery.resolve("nope/widgets")
    with pytest.raises(UsageError):
        discovery.resolve("")


def test_groups_are_listed_core_first_with_preferred_versions(discovery: Discovery):
    groups = discovery.groups
    assert groups[0] == ApiGroup("", ("v1",), "v1")
    assert ApiGroup("networking.k8s.io", ("v1", "v1beta1"), "v1") in groups


def test_results_are_cached_until_refresh(discovery: Discovery, rsps):
    discovery.resolve("deploy")
    calls = len(rsps.calls)
    discovery.resolve("pods")
    discovery.resolve("deployment.apps")
    assert len(rsps.calls) == calls
    discovery.refresh()
    discovery.resolve("deploy")
    assert len(rsps.calls) > calls


def test_non_preferred_versions_are_read_only_when_named(discovery: Discovery, rsps):
    discovery.resolve("deploy")
    assert not any(c.request.url.endswith("networking.k8s.io/v1beta1") for c in rsps.calls)
    assert discovery.resources("networking.k8s.io/v1beta1")[0].version == "v1beta1"
    rsps.get(SERVER + "/apis/apps/v2", status=404, json={"kind": "Status", "code": 404})
    with pytest.raises(UsageError, match="does not serve"):
        discovery.resources("apps/v2")


def test_a_broken_group_named_explicitly_raises_its_error(discovery: Discovery):
    with pytest.raises(ServerError):
        discovery.resolve("metrics.k8s.io/v1beta1/pods")
    with pytest.raises(ServerError):
        discovery.resources("metrics.k8s.io/v1beta1")


# -- aggregated discovery (apidiscovery.k8s.io/v2) ------------------------------------------


def agg_resource(plural: str, kind: str, group: str, version: str, *, scope: str = "Namespaced",
                 short: List[str] = (), subresources: List[str] = ()) -> Dict[str, Any]:
    return {"resource": plural, "responseKind": {"group": group, "version": version,
                                                 "kind": kind},
            "scope": scope, "singularResource": kind.lower(), "verbs": ["get", "list"],
            "shortNames": list(short),
            "subresources": [{"subresource": s, "verbs": ["get"]} for s in subresources]}


def agg_group(name: str, versions: Dict[str, List[Dict[str, Any]]],
              stale: List[str] = ()) -> Dict[str, Any]:
    return {"metadata": {"name": name}, "versions": [
        {"version": v, "resources": rs, "freshness": "Stale" if v in stale else "Current"}
        for v, rs in versions.items()]}


AGGREGATED = {
    "/api": {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
             "items": [agg_group("", {"v1": [
                 agg_resource("pods", "Pod", "", "v1", short=["po"],
                              subresources=["status", "ephemeralcontainers"]),
                 agg_resource("namespaces", "Namespace", "", "v1", scope="Cluster", short=["ns"]),
                 agg_resource("events", "Event", "", "v1", short=["ev"]),
             ]})]},
    "/apis": {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
              "items": [
                  agg_group("apps", {"v1": [agg_resource("deployments", "Deployment", "apps",
                                                         "v1", short=["deploy"],
                                                         subresources=["status", "scale"])]}),
                  agg_group("networking.k8s.io", {
                      "v1": [agg_resource("ingresses", "Ingress", "networking.k8s.io", "v1")],
                      "v1beta1": [agg_resource("ingresses", "Ingress", "networking.k8s.io",
                                               "v1beta1")]}),
                  agg_group("metrics.k8s.io", {"v1beta1": []}, stale=["v1beta1"]),
              ]},
}


@pytest.fixture
def aggregated(rsps: responses.RequestsMock) -> Discovery:
    rsps.reset()
    for path, body in AGGREGATED.items():
        rsps.get(SERVER + path, json=body, match=[responses.matchers.header_matcher(
            {"Accept": AGGREGATED_ACCEPT})])
    client = Client(Config(server=SERVER), retries=RetryPolicy(retries=0, sleep=lambda s: None))
    return Discovery(client)


def test_aggregated_discovery_reads_everything_in_one_request_per_root(aggregated, rsps):
    assert aggregated.resolve("deploy").subresources == ("scale", "status")
    assert aggregated.resolve("po").subresources == ("ephemeralcontainers", "status")
    assert aggregated.resolve("ingresses.v1beta1.networking.k8s.io").version == "v1beta1"
    assert aggregated.resolve("ns").namespaced is False
    assert aggregated.aggregated is True
    assert {r.plural for r in aggregated.resources()} == {
        "pods", "namespaces", "events", "deployments", "ingresses"}
    assert [c.request.path_url for c in rsps.calls] == ["/api", "/apis"]


def test_a_group_qualified_name_needs_only_the_apis_root(aggregated, rsps):
    assert aggregated.resolve("deployments.apps").kind == "Deployment"
    assert [c.request.path_url for c in rsps.calls] == ["/apis"]


def test_a_stale_aggregated_version_is_a_failure_not_an_outage(aggregated, caplog):
    with caplog.at_level(logging.WARNING, logger="kubesync.client.discovery"):
        assert aggregated.resolve("deploy").group == "apps"
    assert list(aggregated.failures) == ["metrics.k8s.io/v1beta1"]
    assert "stale" in str(aggregated.failures["metrics.k8s.io/v1beta1"])
    with pytest.raises(ServerError, match="stale"):
        aggregated.resources("metrics.k8s.io/v1beta1")


def test_an_unserved_version_is_known_without_another_request(aggregated, rsps):
    with pytest.raises(UsageError, match="does not serve apps/v2"):
        aggregated.resources("apps/v2")
    assert [c.request.path_url for c in rsps.calls] == ["/apis"]


def test_a_miss_in_a_cached_answer_refreshes_once(aggregated, rsps):
    aggregated.resolve("deployments.apps")
    with_widgets = dict(AGGREGATED["/apis"])
    with_widgets["items"] = [*with_widgets["items"], agg_group(
        "example.com", {"v1": [agg_resource("widgets", "Widget", "example.com", "v1")]})]
    rsps.replace(responses.GET, SERVER + "/apis", json=with_widgets)
    assert aggregated.resolve("widgets.example.com").kind == "Widget"
    assert aggregated.resource_for("example.com/v1", "Widget").plural == "widgets"
    # The bare-name sweep of the first try read /api too; the refresh re-read /apis.
    assert [c.request.path_url for c in rsps.calls] == ["/apis", "/api", "/apis"]
    before = len(rsps.calls)
    with pytest.raises(UsageError, match=r"no resource 'gadgets\.example\.com'"):
        aggregated.resolve("gadgets.example.com")
    assert len(rsps.calls) == before + 1  # one refresh of the group's root, then the error


def test_an_old_server_falls_back_to_one_request_per_group_version(discovery, rsps):
    discovery.resources()
    paths = [c.request.path_url for c in rsps.calls]
    assert paths[:2] == ["/api", "/apis"] and len(paths) == 2 + 6  # core v1 + 5 groups
    assert discovery.aggregated is False
    assert all(c.request.headers["Accept"] == AGGREGATED_ACCEPT for c in rsps.calls[:2])


def test_the_client_shares_one_discovery_and_resolve_uses_it(aggregated, rsps):
    client = Client(Config(server=SERVER), retries=0)
    assert client.discovery is client.discovery
    assert client.resolve("deploy").plural == "deployments"
    assert client.resolve("po").kind == "Pod"
    assert len(rsps.calls) == 2
