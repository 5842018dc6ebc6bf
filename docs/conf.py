"""Sphinx configuration: narrative pages in Markdown (MyST), the reference from docstrings.

Build: ``tox -e docs`` or ``sphinx-build -W -b html docs docs/_build/html``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, List

from docutils import nodes
from docutils.parsers.rst import Directive

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # build from a checkout without installing

from kubesync import __version__  # noqa: E402

project = "kubesync"
author = "the kubesync authors"
copyright = "the kubesync authors"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
# The builtin ``type`` in signatures matches every documented attribute named ``type``
# (WatchEvent.type, PrinterColumn.type): an ambiguity, not a broken link.
suppress_warnings = ["ref.python"]
myst_enable_extensions = ["colon_fence"]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "undoc-members": False}

try:
    import furo  # noqa: F401

    html_theme = "furo"
except ImportError:  # the default theme builds the same pages
    html_theme = "alabaster"
html_title = f"kubesync {version}"

BENCH_CHART = HERE / "_static" / "bench-chart.png"


class BenchChart(Directive):
    """The benchmark chart if bench/ has produced it, else a line saying where it comes
    from (so the -W build passes either way)."""

    def run(self) -> List[Any]:
        if BENCH_CHART.exists():
            return [nodes.image(uri="/_static/bench-chart.png",
                                alt="kubesync against the other Python clients")]
        text = ("The chart appears here once the benchmarks have run "
                "(docs/_static/bench-chart.png, written by bench/; see bench/README.md).")
        return [nodes.paragraph(text=text)]


def setup(app: Any) -> None:
    app.add_directive("bench-chart", BenchChart)
