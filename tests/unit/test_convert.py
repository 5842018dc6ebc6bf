"""The converter: decode/encode/decode_list, errors with kind and path, time, quantities."""

import datetime
import subprocess
import sys
from decimal import Decimal
from typing import Any, Dict, List, Optional

import attrs
import pytest

from kubesync.core import convert
from kubesync.core.convert import (
    ObjectList,
    decode,
    decode_list,
    drop_field,
    encode,
    format_time,
    make_converter,
    parse_time,
    validate,
)
from kubesync.core.dynamic import DynamicObject
from kubesync.core.model import Model
from kubesync.core.quantity import parse_quantity
from kubesync.errors import DecodeError
from kubesync.models.core_v1 import ConfigMap, Pod
from kubesync.models.meta_v1 import ListMeta

UTC = datetime.timezone.utc


def config_map_list(n=3):
    return {
        "kind": "ConfigMapList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "42", "continue": "next", "remainingItemCount": 7},
        "items": [
            {"metadata": {"name": f"cm-{i}", "namespace": "ns", "labels": {"i": str(i)}},
             "data": {"k": "v"}}
            for i in range(n)
        ],
    }


# -- errors -------------------------------------------------------------------------------


def test_a_wrong_type_names_the_kind_and_the_full_path():
    pod = decode(Pod, {"spec": {"containers": [{"name": "a"}, {"name": "b", "ports": "80"}]}})
    pod.spec.containers[0].ports  # noqa: B018 - absent: fine
    with pytest.raises(DecodeError) as info:
        pod.spec.containers[1].ports  # noqa: B018
    assert info.value.kind == "Pod"
    assert info.value.path == "spec.containers[1].ports"
    assert str(info.value).startswith("Pod at spec.containers[1].ports: expected an array")


def test_a_wrong_scalar_type_is_reported_on_read():
    cm = decode(ConfigMap, {"metadata": {"name": 5}})
    with pytest.raises(DecodeError) as info:
        cm.metadata.name  # noqa: B018
    assert (info.value.kind, info.value.path) == ("ConfigMap", "metadata.name")


def test_a_wrong_nested_object_type_is_reported():
    with pytest.raises(DecodeError, match=r"Pod at spec: expected an object, got array"):
        decode(Pod, {"spec": []}).spec  # noqa: B018


def test_bad_time_is_reported_with_path():
    with pytest.raises(DecodeError, match=r"Pod at metadata.creationTimestamp"):
        decode(Pod, {"metadata": {"creationTimestamp": "yesterday"}}).metadata.creation_timestamp  # noqa: B018


def test_validate_finds_errors_up_front_and_deep():
    pod = decode(Pod, {"spec": {"containers": [{"name": "a", "args": ["x", 3]}]}})
    with pytest.raises(DecodeError) as info:
        validate(pod)
    assert (info.value.kind, info.value.path) == ("Pod", "spec.containers[0].args[1]")


def test_validate_returns_the_object_when_it_fits():
    pod = decode(Pod, {"metadata": {"name": "p", "labels": {"a": "b"}}})
    assert validate(pod) is pod


def test_decode_refuses_non_objects_and_the_wrong_kind():
    with pytest.raises(DecodeError, match="expected an object"):
        decode(Pod, [1])
    with pytest.raises(DecodeError, match="is a Service"):
        decode(Pod, {"kind": "Service"})


def test_errors_in_a_list_name_the_item():
    data = config_map_list()
    data["items"][1] = "oops"
    with pytest.raises(DecodeError) as info:
        decode_list(ConfigMap, data)
    assert info.value.path == "items[1]"


# -- lists --------------------------------------------------------------------------------


def test_decode_list_gives_lazy_items_and_list_metadata():
    lst = decode_list(ConfigMap, config_map_list())
    assert isinstance(lst, ObjectList)
    assert [cm.metadata.name for cm in lst] == ["cm-0", "cm-1", "cm-2"]
    assert len(lst) == 3 and lst[0].data == {"k": "v"}
    assert lst.resource_version == "42"
    assert lst.continue_ == "next"
    assert lst.remaining_item_count == 7
    assert isinstance(lst.metadata, ListMeta)
    assert lst.kind == "ConfigMapList"


def test_an_empty_list_has_no_continue():
    lst = decode_list(ConfigMap, {"metadata": {"resourceVersion": "1", "continue": ""},
                                  "items": None})
    assert list(lst) == [] and lst.continue_ is None


def test_decode_list_of_dynamic_objects():
    lst = decode_list(DynamicObject, config_map_list(1))
    assert lst[0].metadata.name == "cm-0"
    assert lst[0]["data"] == {"k": "v"}


def test_list_encodes_like_the_server_writes_it():
    assert encode(decode_list(ConfigMap, config_map_list())) == config_map_list()


def test_list_html_is_a_table_with_kind_columns():
    html = decode_list(ConfigMap, config_map_list())._repr_html_()
    assert "<table>" in html and "<th>Name</th>" in html and "<th>Data</th>" in html
    assert "<td>cm-2</td>" in html and "<th>Namespace</th>" in html


# -- time ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T10:00:00Z", datetime.datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T10:00:00.5Z", datetime.datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2024-05-01T10:00:00.123456789Z",
         datetime.datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2024-05-01T12:00:00+02:00", datetime.datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T10:00:00", datetime.datetime(2024, 5, 1, 10, tzinfo=UTC)),
    ],
)
def test_parse_time_gives_aware_datetimes(text, expected):
    value = parse_time(text)
    assert value == expected and value.tzinfo is not None


def test_parse_time_refuses_garbage():
    with pytest.raises(ValueError):
        parse_time("May 1st")


def test_format_time_seconds_or_micro():
    t = datetime.datetime(2024, 5, 1, 10, 0, 0, 1234, tzinfo=UTC)
    assert format_time(t, micro=False) == "2024-05-01T10:00:00Z"
    assert format_time(t, micro=True) == "2024-05-01T10:00:00.001234Z"
    assert format_time(t) == "2024-05-01T10:00:00.001234Z"
    assert format_time(t.replace(microsecond=0)) == "2024-05-01T10:00:00Z"


# -- quantities ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", "1"), ("250m", "0.25"), ("1.5", "1.5"), ("1Ki", "1024"), ("1Mi", "1048576"),
        ("2Gi", "2147483648"), ("1Ti", str(1024 ** 4)), ("1Pi", str(1024 ** 5)),
        ("1Ei", str(1024 ** 6)), ("1k", "1000"), ("1M", "1000000"), ("1G", "1e9"),
        ("1T", "1e12"), ("1P", "1e15"), ("1E", "1e18"), ("100n", "1e-7"), ("5u", "0.000005"),
        ("1e3", "1000"), ("1E3", "1000"), ("2.5e-3", "0.0025"), ("-1", "-1"), ("+2", "2"),
        (".5", "0.5"), ("0.5Gi", "536870912"),
    ],
)
def test_parse_quantity(text, value):
    assert parse_quantity(text) == Decimal(value)


@pytest.mark.parametrize("bad", ["", "1KB", "Mi", "1 Mi", "1e", "abc", "1.2.3", True])
def test_parse_quantity_refuses_non_quantities(bad):
    with pytest.raises(ValueError):
        parse_quantity(bad)


def test_parse_quantity_takes_numbers():
    assert parse_quantity(3) == 3 and parse_quantity(0.5) == Decimal("0.5")


# -- other ------------------------------------------------------------------------------------


def test_drop_field_releases_it_from_the_source():
    d = {"metadata": {"name": "x", "managedFields": [{"manager": "m"}]}}
    cm = decode(ConfigMap, d)
    drop_field(cm.metadata, "managed_fields")
    assert cm.metadata.managed_fields is None
    assert "managedFields" not in d["metadata"]
    assert encode(cm) == {"metadata": {"name": "x"}}


def test_the_converter_is_ours_and_knows_models():
    import cattrs

    c = convert.converter
    assert isinstance(c, cattrs.Converter) and c is not cattrs.global_converter
    assert c is convert.converter
    pods = c.structure([{"metadata": {"name": "a"}}], List[Pod])
    assert pods[0].metadata.name == "a"
    assert c.unstructure(pods[0]) == {"metadata": {"name": "a"}}
    lst = c.structure(config_map_list(), ObjectList[ConfigMap])
    assert lst[2].metadata.name == "cm-2"


def test_make_converter_leaves_cattrs_global_converter_alone():
    import cattrs

    make_converter()
    assert cattrs.global_converter.unstructure(datetime.datetime(2024, 1, 1)) == (
        datetime.datetime(2024, 1, 1))


def test_hand_written_models_with_other_types_use_cattrs():
    import enum

    class Color(enum.Enum):
        RED = "red"

    @attrs.define
    class Plain:
        x: int

    @attrs.define(slots=True, kw_only=True)
    class Thing(Model):
        color: Optional[Color] = None
        plain: Optional[Plain] = None
        when: Optional[datetime.datetime] = None

    t = decode(Thing, {"color": "red", "plain": {"x": 1}, "when": "2024-01-01T00:00:00Z"})
    assert t.color is Color.RED and t.plain == Plain(1)
    t.color = Color.RED
    t.plain = Plain(2)
    assert encode(t) == {"color": "red", "plain": {"x": 2}, "when": "2024-01-01T00:00:00Z"}
    with pytest.raises(DecodeError, match="Thing at color"):
        decode(Thing, {"color": "blue"}).color  # noqa: B018


def test_an_undecorated_subclass_is_refused_clearly():
    class Bare(Model):
        pass

    with pytest.raises(TypeError, match=r"attrs\.define"):
        encode(Bare())


def test_import_kubesync_does_not_import_models_or_cattrs():
    code = (
        "import sys, kubesync\n"
        "bad = [m for m in sys.modules if m.startswith('kubesync.models.') or m == 'cattrs']\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(sys.version_info < (3, 10), reason="`int | str` needs Python 3.10")
def test_pep604_unions_decode_like_typing_unions() -> None:
    # `int | str` in a user's Model, e.g. a custom resource's spec.
    ns: Dict[str, Any] = {}
    exec(
        "import attrs\n"
        "from kubesync.core.model import Model\n"
        "@attrs.define\n"
        "class Ports(Model):\n"
        "    port: int | str | None = None\n",
        ns,
    )
    ports = decode(ns["Ports"], {"port": "http", "extra": 1})
    assert ports.port == "http"
    assert encode(ports) == {"port": "http", "extra": 1}
    with pytest.raises(DecodeError, match="port"):
        _ = decode(ns["Ports"], {"port": 1.5}).port
