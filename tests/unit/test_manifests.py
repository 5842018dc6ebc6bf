"""manifests: load, dump and apply's plan, without a server (apply's requests are faked)."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
import yaml

from kubesync import DynamicObject, manifests
from kubesync.client.discovery import Discovery
from kubesync.core.convert import encode
from kubesync.core.request import Request
from kubesync.errors import NotFound, Status
from kubesync.manifests import ApplyError, ManifestError
from kubesync.models.apps_v1 import Deployment
from kubesync.models.core_v1 import ConfigMap, Namespace
from kubesync.models.meta_v1 import ObjectMeta

CM = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
data:
  k: v
"""


def doc(name: str) -> str:
    return CM.format(name=name)


# -- load ------------------------------------------------------------------------------------


def test_load_types_known_kinds_as_models_and_others_as_dynamic_objects():
    objs = manifests.load(doc("a") + "---\n" + textwrap.dedent("""\
        apiVersion: example.com/v1
        kind: Widget
        metadata: {name: w}
        spec: {size: 3}
        """))
    cm, widget = objs
    assert isinstance(cm, ConfigMap) and cm.metadata.name == "a" and cm.data == {"k": "v"}
    assert isinstance(widget, DynamicObject)
    assert (widget.api_version, widget.kind, widget["spec"]) == ("example.com/v1", "Widget",
                                                                 {"size": 3})


def test_load_reads_a_file_a_path_object_a_stream_and_bytes(tmp_path: Path):
    f = tmp_path / "one.yaml"
    f.write_text(doc("a"))
    for source in (str(f), f, io.StringIO(doc("a")), io.BytesIO(doc("a").encode()),
                   doc("a").encode()):
        (obj,) = manifests.load(source)  # type: ignore[arg-type]
        assert obj.metadata.name == "a"


def test_load_of_a_folder_reads_yaml_yml_and_json_files_in_name_order(tmp_path: Path):
    (tmp_path / "b.yml").write_text(doc("b"))
    (tmp_path / "a.yaml").write_text(doc("a1") + "---\n" + doc("a2"))
    (tmp_path / "c.json").write_text(
        '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}')
    (tmp_path / "notes.txt").write_text("not: a manifest")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "z.yaml").write_text(doc("nested"))
    assert [o.metadata.name for o in manifests.load(tmp_path)] == ["a1", "a2", "b", "c"]


def test_load_skips_empty_documents_and_flattens_lists():
    text = "---\n# only a comment\n---\n" + textwrap.dedent("""\
        apiVersion: v1
        kind: List
        items:
        - {apiVersion: v1, kind: ConfigMap, metadata: {name: one}}
        - {apiVersion: apps/v1, kind: Deployment, metadata: {name: two}}
        """)
    one, two = manifests.load(text)
    assert isinstance(one, ConfigMap) and isinstance(two, Deployment)


def test_load_keeps_timestamps_as_text_and_makes_keys_strings():
    (cm,) = manifests.load(textwrap.dedent("""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: a, annotations: {built: 2024-05-01}}
        data: {2: two, true: yes-key}
        """))
    raw = encode(cm)
    assert raw["metadata"]["annotations"] == {"built": "2024-05-01"}
    assert raw["data"] == {"2": "two", "true": "yes-key"}


def test_load_gives_anchored_values_their_own_copies():
    a, b = manifests.load(textwrap.dedent("""\
        apiVersion: v1
        kind: List
        items:
        - {apiVersion: v1, kind: ConfigMap, metadata: {name: a, labels: &l {app: x}}}
        - {apiVersion: v1, kind: ConfigMap, metadata: {name: b, labels: *l}}
        """))
    a.metadata.labels["app"] = "changed"
    assert b.metadata.labels == {"app": "x"}


@pytest.mark.parametrize("text, message", [
    (doc("a") + "---\nkind: ConfigMap\nmetadata: {name: b}\n",
     "<string>, document 2 (line 8): the object has no apiVersion"),
    ("apiVersion: v1\nmetadata: {name: b}\n",
     "<string>, document 1 (line 1): the object has no kind"),
    ("- just\n- a list\n", "document 1 (line 1): expected an object, got an array"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: [a]\n",
     "document 1 (line 1): metadata must be an object, not an array"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: 7}\n",
     "metadata.name must be a string, not a number"),
    ("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1}\n",
     "document 1 (line 1): items[0]: the object has no kind"),
    (doc("a") + "---\nkey: [unclosed\n",
     "document 2: invalid YAML at line 9, column 1"),
    ("apiVersion: v1\nkind: ConfigMap\ndata: {x: .nan}\n", "data.x: nan is not a JSON number"),
])
def test_load_errors_name_the_source_document_and_problem(text: str, message: str):
    with pytest.raises(ManifestError) as info:
        manifests.load(text)
    assert message in str(info.value)


def test_load_errors_name_the_file(tmp_path: Path):
    f = tmp_path / "broken.yaml"
    f.write_text(doc("a") + "---\napiVersion: v1\n")
    with pytest.raises(ManifestError) as info:
        manifests.load(tmp_path)
    assert (info.value.source, info.value.document, info.value.line) == (str(f), 2, 8)
    with pytest.raises(ManifestError, match=r"missing\.yaml: cannot read it"):
        manifests.load(str(tmp_path / "missing.yaml"))


# -- dump ------------------------------------------------------------------------------------


def test_dump_orders_keys_like_kubectl_and_drops_nulls_and_managed_fields():
    data = {"status": {"phase": "Active"}, "spec": {"finalizers": ["kubernetes"]},
            "metadata": {"uid": "u", "managedFields": [{"manager": "m"}], "name": "n",
                         "labels": None},
            "kind": "Namespace", "apiVersion": "v1"}
    text = manifests.dump(data)
    assert text == textwrap.dedent("""\
        apiVersion: v1
        kind: Namespace
        metadata:
          name: n
          uid: u
        spec:
          finalizers:
          - kubernetes
        status:
          phase: Active
        """)
    assert "managedFields" in manifests.dump(data, show_managed_fields=True)


def test_dump_writes_documents_to_a_stream_and_fills_in_kind_for_list_items():
    items = [ConfigMap(metadata=ObjectMeta(name=n), data={"script": "a\nb\n"}) for n in "xy"]
    for item in items:  # as list items come from the server: without apiVersion and kind
        item.api_version = item.kind = None
    out = io.StringIO()
    assert manifests.dump(items, out) is None
    docs = list(yaml.safe_load_all(out.getvalue()))
    assert [(d["kind"], d["apiVersion"], d["metadata"]["name"]) for d in docs] == [
        ("ConfigMap", "v1", "x"), ("ConfigMap", "v1", "y")]
    assert "script: |\n    a\n    b\n" in out.getvalue()


def test_dump_then_load_gives_the_same_objects():
    objs = manifests.load(doc("a") + "---\n" + textwrap.dedent("""\
        apiVersion: example.com/v1
        kind: Widget
        metadata: {name: w, labels: {a: b}}
        spec: {parts: [{id: 1}, {id: 2}], note: "two\\nlines"}
        """))
    again = manifests.load(manifests.dump(objs))
    assert [encode(o) for o in again] == [encode(o) for o in objs]


# -- apply (the server faked) -----------------------------------------------------------------


class FakeClient:
    """Answers apply PATCHes with the body and a resourceVersion, and discovery GETs."""

    default_namespace = "home"

    def __init__(self, refuse: Optional[str] = None):
        self.patches: List[Tuple[str, Dict[str, Any]]] = []
        self.refuse = refuse
        self.discovery = Discovery(self)  # type: ignore[arg-type]

    def request(self, method: str, path: str, *, body: Any = None, **kw: Any) -> Any:
        if method == "GET" and path == "/api":
            return {"versions": ["v1"]}
        if method == "GET" and path == "/apis":
            return {"groups": [{"name": "example.com", "versions": [{"version": "v1"}],
                                "preferredVersion": {"version": "v1"}}]}
        if method == "GET" and path == "/apis/example.com/v1":
            return {"resources": [{"name": "widgets", "kind": "Widget", "namespaced": True,
                                   "verbs": ["patch"]}]}
        if method == "GET":
            return {"resources": []}
        assert method == "PATCH" and kw["content_type"] == "application/apply-patch+yaml"
        if self.refuse and path.endswith("/" + self.refuse):
            raise NotFound(Status(code=404, reason="NotFound", message="refused here"))
        self.patches.append((path, body))
        out = dict(body)
        out["metadata"] = {**body["metadata"], "resourceVersion": str(len(self.patches))}
        return out

    def send(self, req: Request, **kw: Any) -> Any:
        return self.request(req.method, req.path, params=dict(req.query) or None, body=req.body,
                            content_type=req.content_type)


BUNDLE = textwrap.dedent("""\
    apiVersion: example.com/v1
    kind: Widget
    metadata: {name: w}
    ---
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: c, namespace: other}
    ---
    apiVersion: rbac.authorization.k8s.io/v1
    kind: ClusterRole
    metadata: {name: r}
    ---
    apiVersion: v1
    kind: Namespace
    metadata: {name: other}
    """)


def test_apply_sends_namespaces_then_cluster_scoped_then_namespaced_and_returns_given_order():
    client = FakeClient()
    applied = manifests.apply(client, BUNDLE)  # type: ignore[arg-type]
    assert [p for p, _ in client.patches] == [
        "/api/v1/namespaces/other",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/r",
        "/apis/example.com/v1/namespaces/home/widgets/w",
        "/api/v1/namespaces/other/configmaps/c",
    ]
    assert [o.kind for o in applied] == ["Widget", "ConfigMap", "ClusterRole", "Namespace"]
    assert isinstance(applied[3], Namespace)
    assert applied[0].api_resource.plural == "widgets"


def test_apply_with_a_namespace_refuses_objects_naming_another_before_writing():
    client = FakeClient()
    with pytest.raises(ManifestError, match=r"document 2 .*in namespace 'other'.*'mine'"):
        manifests.apply(client, BUNDLE, namespace="mine")  # type: ignore[arg-type]
    assert client.patches == []


def test_apply_refuses_objects_without_a_name_before_writing():
    client = FakeClient()
    objs = [Namespace(metadata=ObjectMeta(name="n")),
            ConfigMap(metadata=ObjectMeta(generate_name="c-"))]
    with pytest.raises(ManifestError, match=r"object 2: the ConfigMap has no metadata\.name"):
        manifests.apply(client, objs)  # type: ignore[arg-type]
    assert client.patches == []


def test_apply_error_names_the_object_and_keeps_the_servers_error():
    client = FakeClient(refuse="r")
    with pytest.raises(ApplyError) as info:
        manifests.apply(client, BUNDLE)  # type: ignore[arg-type]
    assert "<string>, document 3 (line 9): applying ClusterRole r: 404" in str(info.value)
    assert isinstance(info.value.error, NotFound)
    assert [p for p, _ in client.patches] == ["/api/v1/namespaces/other"]


def test_apply_takes_dicts_and_sends_field_manager_and_force():
    client = FakeClient()
    calls: List[Dict[str, Any]] = []
    request = client.request

    def spy(method: str, path: str, **kw: Any) -> Any:
        calls.append(kw.get("params") or {})
        return request(method, path, **kw)

    client.request = spy  # type: ignore[method-assign]
    manifests.apply(client, {"apiVersion": "v1", "kind": "ConfigMap",  # type: ignore[arg-type]
                             "metadata": {"name": "c"}}, field_manager="me", force=True)
    assert calls[-1] == {"fieldManager": "me", "force": "true", "fieldValidation": "Strict"}


CRD_BUNDLE = textwrap.dedent("""\
    apiVersion: example.com/v1
    kind: Gadget
    metadata: {name: g, namespace: ns}
    ---
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata: {name: gadgets.example.com}
    spec:
      group: example.com
      scope: Namespaced
      names: {kind: Gadget, plural: gadgets}
      versions: [{name: v1, served: true, storage: true}]
    """)
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.example.com"


class CrdClient(FakeClient):
    """Serves the CRD's status from ``states`` in turn; the new kind 404s ``unserved`` times."""

    def __init__(self, states: List[Dict[str, str]], unserved: int = 0):
        super().__init__()
        self.states = states
        self.unserved = unserved

    def request(self, method: str, path: str, *, body: Any = None, **kw: Any) -> Any:
        if method == "GET" and path == CRD_PATH:
            state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
            return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                    "metadata": {"name": "gadgets.example.com"},
                    "spec": {"group": "example.com", "scope": "Namespaced", "versions": [],
                             "names": {"kind": "Gadget", "plural": "gadgets"}},
                    "status": {"conditions": [
                        {"type": t, "status": s, "message": f"{t}={s}"}
                        for t, s in state.items()]}}
        if method == "PATCH" and "/gadgets/" in path and self.unserved:
            self.unserved -= 1
            raise NotFound(Status(code=404, reason="NotFound", message="no such kind yet"))
        return super().request(method, path, body=body, **kw)


def test_apply_waits_for_the_crd_then_retries_its_new_kind_on_the_clock():
    from kubesync.core.clock import FakeClock

    clock = FakeClock()
    client = CrdClient([{}, {"Established": "True"}], unserved=2)
    applied = manifests.apply(client, CRD_BUNDLE, clock=clock)  # type: ignore[arg-type]
    assert [p for p, _ in client.patches] == [
        CRD_PATH, "/apis/example.com/v1/namespaces/ns/gadgets/g"]
    assert [o.kind for o in applied] == ["Gadget", "CustomResourceDefinition"]
    # One CRD_WAIT poll (50 ms), then NEW_KIND_RETRY's 100 ms and 200 ms for the 404s.
    assert clock.sleeps == 3
    assert clock.monotonic() == pytest.approx(0.05 + 0.1 + 0.2)


def test_apply_names_a_crd_whose_names_are_refused_and_keeps_the_crd_error():
    from kubesync.core.clock import FakeClock
    from kubesync.crd.install import CrdNotAccepted

    client = CrdClient([{"NamesAccepted": "False"}])
    with pytest.raises(ApplyError, match=r"document 2 \(line 5\): CustomResourceDefinition "
                       r"gadgets.example.com: names not accepted") as info:
        manifests.apply(client, CRD_BUNDLE, clock=FakeClock())  # type: ignore[arg-type]
    assert isinstance(info.value.error, CrdNotAccepted)
    assert [p for p, _ in client.patches] == [CRD_PATH]


def test_apply_gives_up_on_a_crd_not_established_by_wait_crds_timeout():
    from kubesync.core.clock import FakeClock
    from kubesync.crd.install import CrdWaitTimeout

    clock = FakeClock()
    client = CrdClient([{}])
    with pytest.raises(ApplyError, match="was not Established in time") as info:
        manifests.apply(client, CRD_BUNDLE, wait_crds_timeout=2,  # type: ignore[arg-type]
                        clock=clock)
    assert isinstance(info.value.error, CrdWaitTimeout)
    assert clock.monotonic() == pytest.approx(2.0)
