"""Request building: options -> query dicts and bodies, paths, misuse caught before sending."""

from __future__ import annotations

import pytest

from kubesync.core.params import DeleteOptions, LabelQuery, ListParams, Patch, WriteParams
from kubesync.core.request import ACCEPT_METADATA, Request, RequestBuilder
from kubesync.core.resource import ApiResource
from kubesync.errors import UsageError

CM = ApiResource(group="", version="v1", kind="ConfigMap", plural="configmaps")
NS = ApiResource(group="", version="v1", kind="Namespace", plural="namespaces",
                 namespaced=False)
DEPLOY = ApiResource(group="apps", version="v1", kind="Deployment", plural="deployments")


def test_label_selector_builder_renders_every_operator() -> None:
    sel = (LabelQuery(app="web").ne("tier", "db").in_("env", ["a", "b"])
           .not_in("zone", ["x"]).exists("team").absent("legacy"))
    assert str(sel) == "app=web,tier!=db,env in (a,b),zone notin (x),team,!legacy"


def test_list_params_become_the_servers_query_names() -> None:
    q = ListParams(label_selector={"app": "web"}, field_selector="metadata.name=x", limit=5,
                   continue_="tok", resource_version="10",
                   resource_version_match="NotOlderThan", timeout_seconds=3).query()
    assert q == {"labelSelector": "app=web", "fieldSelector": "metadata.name=x", "limit": 5,
                 "continue": "tok", "resourceVersion": "10",
                 "resourceVersionMatch": "NotOlderThan", "timeoutSeconds": 3}
    assert ListParams().query() == {}


@pytest.mark.parametrize("kwargs, message", [
    ({"limit": 0}, "limit must be positive"),
    ({"resource_version_match": "Newest", "resource_version": "1"}, "resource_version_match"),
    ({"resource_version_match": "Exact"}, "needs resource_version"),
])
def test_bad_list_params_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        ListParams(**kwargs)


def test_write_and_delete_options() -> None:
    assert WriteParams(True, "me", "Strict").query() == {
        "dryRun": "All", "fieldManager": "me", "fieldValidation": "Strict"}
    body = DeleteOptions("Foreground", 0, "u1", "7", dry_run=True).body()
    assert body["propagationPolicy"] == "Foreground"
    assert body["gracePeriodSeconds"] == 0
    assert body["preconditions"] == {"uid": "u1", "resourceVersion": "7"}
    assert body["dryRun"] == ["All"]
    with pytest.raises(UsageError, match="propagation_policy"):
        DeleteOptions("Sometimes")


def test_patch_content_types() -> None:
    assert Patch.merge({}).content_type == "application/merge-patch+json"
    assert Patch.strategic({}).content_type == "application/strategic-merge-patch+json"
    assert Patch.json([{"op": "add", "path": "/a", "value": 1}]).content_type == (
        "application/json-patch+json")
    assert Patch.apply({}).content_type == "application/apply-patch+yaml"
    with pytest.raises(UsageError, match="list of operations"):
        Patch.json({"op": "add"})  # type: ignore[arg-type]


def test_paths_for_core_group_namespaced_cluster_and_all_namespaces() -> None:
    assert RequestBuilder(CM, "ns").get("a").path == "/api/v1/namespaces/ns/configmaps/a"
    assert RequestBuilder(CM, None).list(ListParams()).path == "/api/v1/configmaps"
    assert RequestBuilder(NS).get("kube-system").path == "/api/v1/namespaces/kube-system"
    assert RequestBuilder(DEPLOY, "ns").get("d", subresource="scale").path == (
        "/apis/apps/v1/namespaces/ns/deployments/d/scale")


def test_watch_query_asks_for_bookmarks() -> None:
    req = RequestBuilder(CM, "ns").watch(ListParams(resource_version="5", timeout_seconds=9))
    assert req.query == {"watch": "1", "allowWatchBookmarks": "true",
                         "resourceVersion": "5", "timeoutSeconds": 9}


def test_writes_through_all_namespaces_are_refused_before_sending() -> None:
    rb = RequestBuilder(CM, None)
    with pytest.raises(UsageError, match="namespaced"):
        rb.create({"metadata": {"name": "a"}}, WriteParams())
    with pytest.raises(UsageError, match="namespaced"):
        rb.get("a")
    with pytest.raises(UsageError, match="namespaced"):
        rb.delete_collection(ListParams(), DeleteOptions())


def test_apply_needs_a_field_manager_and_force_only_goes_with_apply() -> None:
    rb = RequestBuilder(CM, "ns")
    with pytest.raises(UsageError, match="field_manager"):
        rb.patch("a", Patch.apply({}), WriteParams())
    with pytest.raises(UsageError, match="only for server-side apply"):
        rb.patch("a", Patch.merge({}), WriteParams(), force=True)
    req = rb.patch("a", Patch.apply({"x": 1}), WriteParams(field_manager="m"), force=True)
    assert req.method == "PATCH" and req.query == {"fieldManager": "m", "force": "true"}
    assert req.content_type == "application/apply-patch+yaml"


def test_metadata_reads_ask_for_partial_object_metadata() -> None:
    req = RequestBuilder(CM, "ns").get("a", accept=ACCEPT_METADATA)
    assert req.headers == {"Accept": ACCEPT_METADATA}


def test_headers_are_the_accept_header_and_the_extra_headers() -> None:
    req = Request("GET", "/api", accept="application/x", extra_headers={"X-Extra": "1"})
    assert req.headers == {"Accept": "application/x", "X-Extra": "1"}
    assert Request("GET", "/api").headers == {}
