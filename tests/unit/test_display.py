"""Jupyter reprs of objects, lists and stores: escaped, and bounded in size."""

from __future__ import annotations

import subprocess
import sys
from typing import Any, Dict, List

import pytest

from kubesync import DynamicObject
from kubesync.core.convert import decode, decode_list
from kubesync.display import render as display
from kubesync.models.apps_v1 import Deployment
from kubesync.models.core_v1 import ConfigMap
from kubesync.runtime.store import StoreWriter
from kubesync.runtime.watcher import Init, InitApply, InitDone


def cm(name: str, ns: str = "default", **data: str) -> Dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns,
                         "creationTimestamp": "2024-01-01T00:00:00Z"},
            "data": data}


def test_object_html_escapes_what_the_object_holds():
    html = decode(ConfigMap, cm("x", script="<script>alert(1)</script>"))._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_object_html_of_a_huge_object_is_cut_with_a_note():
    big = decode(ConfigMap, cm("big", **{f"k{i}": "v" * 100 for i in range(1000)}))
    html = big._repr_html_()
    assert len(html) < display.MAX_CHARS + 500
    assert "more characters (print(kubesync.manifests.dump(obj)) shows all)" in html


def test_list_html_escapes_cells_and_cuts_long_ones():
    long_name = "n" * 300
    raw = {"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {},
           "items": [cm("<b>x</b>"), cm(long_name)]}
    html = decode_list(ConfigMap, raw)._repr_html_()
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert long_name not in html and "n" * (display.MAX_CELL - 1) + "\u2026" in html
    assert "<caption>ConfigMapList: 2 items</caption>" in html


def test_list_html_shows_at_most_max_rows_and_says_so():
    items: List[Dict[str, Any]] = [cm(f"cm-{i}") for i in range(display.MAX_ROWS + 5)]
    raw = {"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {}, "items": items}
    html = decode_list(ConfigMap, raw)._repr_html_()
    assert html.count("<tr>") == display.MAX_ROWS + 1  # and the header row
    assert f"{display.MAX_ROWS + 5:,} items (first {display.MAX_ROWS} shown)" in html


def test_a_malformed_field_shows_a_blank_cell_not_an_error():
    raw = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "status": {"conditions": "not a list"}, "spec": "nonsense"}
    html = display.table_html([decode(Deployment, raw)], "Deployment", "one")
    assert "<td>d</td>" in html


def test_store_html_is_a_sorted_table_with_kind_columns_and_its_state():
    writer: StoreWriter[Any] = StoreWriter()
    store = writer.store
    assert "Store of objects: 0 (not ready yet)" in store._repr_html_()
    writer.apply_event(Init())
    for name, ns in (("b", "ns2"), ("a", "ns2"), ("z", "ns1")):
        writer.apply_event(InitApply(decode(ConfigMap, cm(name, ns, k="v"))))
    writer.apply_event(InitDone("1"))
    html = store._repr_html_()
    assert "<caption>Store of ConfigMap: 3 (ready)</caption>" in html
    assert "<th>Data</th>" in html
    assert html.index("<td>z</td>") < html.index("<td>a</td>") < html.index("<td>b</td>")


def test_store_html_of_dynamic_objects_uses_their_kind():
    writer: StoreWriter[Any] = StoreWriter()
    writer.apply_event(Init())
    writer.apply_event(InitApply(DynamicObject({"apiVersion": "x.io/v1", "kind": "Gadget",
                                                "metadata": {"name": "g"}})))
    writer.apply_event(InitDone("1"))
    assert "Store of Gadget: 1 (ready)" in writer.store._repr_html_()


def test_the_old_core_display_module_is_a_deprecated_alias() -> None:
    import kubesync.core.display as old

    with pytest.warns(DeprecationWarning, match="kubesync.display.render.object_html"):
        assert old.object_html is display.object_html


def test_importing_the_library_does_not_load_presentation() -> None:
    code = (
        "import sys, kubesync, kubesync.runtime, kubesync.crd\n"
        "bad = [m for m in sys.modules if m.startswith(('kubesync.display', 'IPython'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
