"""Generated models: lossless round-trip, lazy reads, changes at depth, evolve, types."""

import copy
import datetime
import json
import pickle
import threading

import attrs
import pytest

from kubesync.core.convert import decode, encode, validate
from kubesync.core.model import Model
from kubesync.models import apps_v1, core_v1, meta_v1
from kubesync.models.apps_v1 import Deployment
from kubesync.models.core_v1 import ConfigMap, Container, ContainerPort, Pod, PodSpec, Service
from kubesync.models.meta_v1 import ObjectMeta

UTC = datetime.timezone.utc


def pod_json():
    """A pod with fields no model has at every level: top, nested, list items, maps."""
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": "web-0",
            "namespace": "default",
            "labels": {"app": "web"},
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "u1",
                 "futureOwnerField": {"x": 1}},
            ],
            "managedFields": [
                {"manager": "kubectl", "operation": "Update", "time": "2024-05-01T10:00:00Z",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {}}}},
            ],
            "futureMetaField": "m",
        },
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "nginx:1.25",
                    "ports": [{"containerPort": 80, "protocol": "TCP", "futurePortField": 7}],
                    "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                    "futureContainerField": [1, 2, 3],
                },
            ],
            "nodeName": None,
            "futureSpecField": {"deep": {"deeper": True}},
        },
        "status": {"phase": "Running", "podIP": "10.0.0.5", "startTime": "2024-05-01T10:00:01Z",
                   "conditions": [{"type": "Ready", "status": "True",
                                   "lastTransitionTime": "2024-05-01T10:00:02Z", "new": 1}]},
        "futureTopField": {"a": [1, {"b": None}]},
    }


def read_everything(obj):
    """Touch every field, deeply (what a user reading all of an object does)."""
    return validate(obj)


def assert_same_json(a, b):
    assert a == b
    assert json.dumps(a) == json.dumps(b)  # same key order at every level


def test_decode_then_encode_is_the_identity():
    d = pod_json()
    assert_same_json(encode(decode(Pod, d)), pod_json())


def test_round_trip_is_exact_after_every_field_was_read():
    d = pod_json()
    pod = decode(Pod, d)
    read_everything(pod)
    assert pod.metadata.creation_timestamp == datetime.datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert_same_json(encode(pod), pod_json())


def test_no_nulls_or_defaults_are_added():
    d = {"metadata": {"name": "x"}}
    cm = decode(ConfigMap, d)
    read_everything(cm)
    assert cm.kind is None and cm.data is None
    assert encode(cm) == {"metadata": {"name": "x"}}


def test_a_read_null_stays_null():
    # Servers send "creationTimestamp": null in pod templates.
    d = {"metadata": {"creationTimestamp": None}}
    meta = decode(ObjectMeta, d["metadata"])
    assert meta.creation_timestamp is None
    assert encode(meta) == {"creationTimestamp": None}


def test_changes_at_depth_show_up_in_the_encoding():
    pod = decode(Pod, pod_json())
    pod.spec.containers[0].ports[0].container_port = 8080
    pod.metadata.labels["tier"] = "front"
    pod.spec.containers[0].image = "nginx:1.26"
    out = encode(pod)
    port = out["spec"]["containers"][0]["ports"][0]
    assert port == {"containerPort": 8080, "protocol": "TCP", "futurePortField": 7}
    assert out["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert out["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert out["spec"]["containers"][0]["futureContainerField"] == [1, 2, 3]
    assert out["futureTopField"] == {"a": [1, {"b": None}]}


def test_setting_none_removes_a_field():
    pod = decode(Pod, pod_json())
    pod.metadata.labels = None
    pod.status = None
    out = encode(pod)
    assert "labels" not in out["metadata"]
    assert "status" not in out


def test_new_fields_and_new_list_items_are_encoded():
    pod = decode(Pod, pod_json())
    pod.spec.node_name = "node-1"
    pod.spec.containers.append(Container(name="sidecar", image="busybox"))
    pod.metadata.annotations = {"a": "b"}
    out = encode(pod)
    assert out["spec"]["nodeName"] == "node-1"
    assert out["spec"]["containers"][1] == {"image": "busybox", "name": "sidecar"}
    assert out["metadata"]["annotations"] == {"a": "b"}
    assert list(out["metadata"])[-1] == "annotations"  # appended after the source keys


def test_replacing_a_nested_object_keeps_its_siblings():
    pod = decode(Pod, pod_json())
    pod.spec.containers[0].resources = core_v1.ResourceRequirements(limits={"cpu": "1"})
    out = encode(pod)
    assert out["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "1"}}
    assert out["spec"]["futureSpecField"] == {"deep": {"deeper": True}}


def test_evolve_keeps_unknown_fields():
    pod = decode(Pod, pod_json())
    changed = attrs.evolve(pod, spec=attrs.evolve(pod.spec, node_name="n2"))
    out = encode(changed)
    assert out["futureTopField"] == {"a": [1, {"b": None}]}
    assert out["spec"]["futureSpecField"] == {"deep": {"deeper": True}}
    assert out["spec"]["nodeName"] == "n2"
    assert encode(pod) == pod_json()  # the original is untouched


def test_evolve_of_an_unchanged_object_round_trips():
    pod = decode(Pod, pod_json())
    assert_same_json(encode(attrs.evolve(pod)), pod_json())


def test_constructed_objects_encode_only_what_was_set():
    cm = ConfigMap(metadata=ObjectMeta(name="c", namespace="ns"), data={"k": "v"})
    assert encode(cm) == {
        "apiVersion": "v1",
        "data": {"k": "v"},
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "ns"},
    }


def test_kinds_default_their_api_version_and_kind_only_when_constructed():
    assert Deployment().api_version == "apps/v1"
    assert Deployment().kind == "Deployment"
    item = decode(Deployment, {"metadata": {"name": "d"}})  # list items carry neither
    assert item.kind is None and item.api_version is None
    assert encode(item) == {"metadata": {"name": "d"}}


def test_required_fields_are_required_to_construct_but_tolerated_when_absent():
    with pytest.raises(TypeError):
        Container()  # type: ignore[call-arg]
    assert Container(name="c").name == "c"
    c = decode(Container, {"image": "x"})
    assert c.name is None


def test_absent_optional_fields_read_as_none():
    pod = decode(Pod, {})
    assert pod.spec is None and pod.status is None


def test_an_objects_metadata_is_never_none_and_an_empty_one_stays_absent():
    # Typed ObjectMeta, not Optional: the server always sends it, a new object starts empty.
    pod = decode(Pod, {})
    assert pod.metadata == ObjectMeta() and pod.metadata is pod.metadata
    assert encode(pod) == {}
    pod.metadata.name = "p"
    assert encode(pod) == {"metadata": {"name": "p"}}
    assert Pod().metadata == ObjectMeta() and Pod().metadata is not Pod().metadata
    assert encode(Pod()) == {"apiVersion": "v1", "kind": "Pod"}
    served = {"metadata": {}, "kind": "Pod"}  # an empty metadata that came stays
    assert encode(decode(Pod, served)) == served
    from kubesync.models.core_v1 import PodTemplateSpec

    assert decode(PodTemplateSpec, {}).metadata is None  # a part's metadata stays optional


def test_time_fields_are_tz_aware_and_encode_as_rfc3339_z():
    meta = ObjectMeta(creation_timestamp=datetime.datetime(2024, 1, 2, 3, 4, 5, 999, tzinfo=UTC))
    assert encode(meta) == {"creationTimestamp": "2024-01-02T03:04:05Z"}
    naive = ObjectMeta(creation_timestamp=datetime.datetime(2024, 1, 2, 3, 4, 5))
    assert encode(naive) == {"creationTimestamp": "2024-01-02T03:04:05Z"}
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    other_zone = ObjectMeta(creation_timestamp=datetime.datetime(2024, 1, 2, 5, tzinfo=plus_two))
    assert encode(other_zone) == {"creationTimestamp": "2024-01-02T03:00:00Z"}


def test_micro_time_keeps_microseconds():
    from kubesync.models.coordination_v1 import LeaseSpec

    spec = decode(LeaseSpec, {"renewTime": "2024-01-02T03:04:05.123456Z"})
    assert spec.renew_time == datetime.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    spec.renew_time = datetime.datetime(2024, 1, 2, 3, 4, 6, 5, tzinfo=UTC)
    assert encode(spec) == {"renewTime": "2024-01-02T03:04:06.000005Z"}


def test_an_unusual_time_spelling_read_unchanged_is_kept():
    d = {"creationTimestamp": "2024-01-02T03:04:05+00:00"}
    meta = decode(ObjectMeta, d)
    assert meta.creation_timestamp == datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert encode(meta) == d


def test_int_or_string_takes_either():
    port = decode(core_v1.ServicePort, {"port": 80, "targetPort": "http"})
    assert port.target_port == "http"
    port = decode(core_v1.ServicePort, {"port": 80, "targetPort": 8080})
    assert port.target_port == 8080
    assert encode(core_v1.ServicePort(port=80, target_port="web")) == {
        "port": 80, "targetPort": "web"}


def test_quantities_stay_strings():
    c = decode(Container, {"name": "c", "resources": {"requests": {"cpu": "250m"}}})
    assert c.resources.requests == {"cpu": "250m"}


def test_raw_extension_and_json_fields_are_plain_values():
    from kubesync.models.apiextensions_v1 import JSONSchemaProps

    rev = decode(apps_v1.ControllerRevision, {"revision": 1, "data": {"spec": {"x": [1]}}})
    assert rev.data == {"spec": {"x": [1]}}
    props = decode(JSONSchemaProps, {"default": 3, "x-kubernetes-preserve-unknown-fields": True,
                                     "$ref": "#/x", "not": {"type": "string"}})
    assert props.default == 3
    assert props.x_kubernetes_preserve_unknown_fields is True
    assert props.ref == "#/x"
    assert props.not_.type == "string"


def test_keyword_fields_get_a_trailing_underscore():
    lm = decode(meta_v1.ListMeta, {"continue": "tok"})
    assert lm.continue_ == "tok"
    assert encode(meta_v1.ListMeta(continue_="t2")) == {"continue": "t2"}


def test_acronym_names_map_to_snake_case():
    status = decode(core_v1.PodStatus, {"podIPs": [{"ip": "10.0.0.1"}], "hostIP": "1.2.3.4"})
    assert status.pod_ips[0].ip == "10.0.0.1"
    assert status.host_ip == "1.2.3.4"


def test_map_of_models_and_list_of_models_are_lazy_models():
    from kubesync.models.apiextensions_v1 import JSONSchemaProps

    props = decode(JSONSchemaProps, {"properties": {"spec": {"type": "object", "new": 1}}})
    assert isinstance(props.properties["spec"], JSONSchemaProps)
    props.properties["spec"].type = "string"
    assert encode(props) == {"properties": {"spec": {"type": "string", "new": 1}}}


def test_equality_is_by_field_values():
    a = decode(ConfigMap, {"metadata": {"name": "x"}, "data": {"k": "v"}})
    b = ConfigMap(api_version=None, kind=None, metadata=ObjectMeta(name="x"), data={"k": "v"})
    assert a == b
    b.data = {"k": "w"}
    assert a != b


def test_generated_models_compare_their_fields_only_and_stay_unhashable():
    a = decode(ConfigMap, {"metadata": {"name": "x", "labels": {"a": "b"}}, "data": {"k": "v"},
                           "futureField": 1})
    b = decode(ConfigMap, {"metadata": {"name": "x", "labels": {"a": "b"}}, "data": {"k": "v"}})
    assert ConfigMap.__eq__ is Model.__eq__  # one method, not one compiled per class
    assert a == b and not a != b  # an unknown key is not a field, as with attrs's __eq__
    b.metadata.labels["a"] = "c"
    assert a != b and not a == b
    assert a.__eq__(ObjectMeta()) is NotImplemented and a != ObjectMeta()
    with pytest.raises(TypeError, match="unhashable"):
        hash(a)


def test_repr_shows_only_set_fields():
    cm = ConfigMap(metadata=ObjectMeta(name="x"))
    assert repr(cm) == (
        "ConfigMap(api_version='v1', kind='ConfigMap', metadata=ObjectMeta(name='x'))")


def test_deepcopy_is_private_and_still_lossless():
    pod = decode(Pod, pod_json())
    twin = copy.deepcopy(pod)
    twin.metadata.labels["x"] = "y"
    assert "x" not in pod.metadata.labels
    assert encode(twin)["futureTopField"] == pod_json()["futureTopField"]


def test_pickle_round_trips():
    pod = decode(Pod, pod_json())
    again = pickle.loads(pickle.dumps(pod))
    assert type(again) is Pod
    assert encode(again) == pod_json()


def test_html_repr_is_yaml_like_text_without_managed_fields():
    html = decode(Pod, pod_json())._repr_html_()
    assert html.startswith("<pre>") and "name: web-0" in html
    assert "managedFields" not in html


def test_every_model_is_an_attrs_model_with_slots():
    pod = Pod()
    assert attrs.has(Pod) and isinstance(pod, Model)
    with pytest.raises(AttributeError):
        pod.not_a_field  # noqa: B018
    with pytest.raises(AttributeError):
        pod.not_a_field = 1  # slots: no stray attributes


def test_classes_are_built_once_even_under_concurrent_first_use():
    from kubesync.models import storage_v1

    names = [n for n in storage_v1.__all__ if n not in vars(storage_v1)]
    seen = []

    def grab():
        seen.append([getattr(storage_v1, n) for n in names])

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got in seen:
        assert all(a is b for a, b in zip(got, seen[0]))


def test_models_package_imports_submodules_lazily():
    import kubesync.models as models

    assert models.batch_v1.Job.api_resource.plural == "jobs"
    with pytest.raises(AttributeError):
        models.no_such_module  # noqa: B018


def test_unknown_class_names_raise_attribute_error():
    with pytest.raises(AttributeError):
        core_v1.NoSuchKind  # noqa: B018
    assert "Pod" in dir(core_v1)


def test_list_items_can_be_read_without_apiversion_and_kind():
    svc = decode(Service, {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}})
    assert svc.spec.ports[0].port == 80


def test_hand_written_subclass_uses_camel_case_json_names():
    @attrs.define(slots=True, kw_only=True)
    class Widget(Model):
        image_pull_policy: str = "Always"
        replicas: int = 1
        pod_spec: PodSpec = attrs.field(factory=lambda: PodSpec(containers=[]))

    w = decode(Widget, {"imagePullPolicy": "Never", "podSpec": {"containers": [{"name": "a"}]},
                        "other": 1})
    assert w.image_pull_policy == "Never"
    assert w.pod_spec.containers[0].name == "a"
    assert encode(w) == {"imagePullPolicy": "Never", "podSpec": {"containers": [{"name": "a"}]},
                         "other": 1}
    assert encode(Widget()) == {"imagePullPolicy": "Always", "replicas": 1,
                                "podSpec": {"containers": []}}


def test_model_field_of_container_port_list_in_a_constructed_object():
    c = Container(name="c", ports=[ContainerPort(container_port=80)])
    assert encode(c) == {"name": "c", "ports": [{"containerPort": 80}]}
