"""The import graph of kubesync, read from the source: no cycles, no arrow against the layers.

Every ``import`` and ``from ... import`` inside kubesync counts, wherever it stands: at
module level, in a function, under ``TYPE_CHECKING``. The layers, each importing only from
its left (and from itself):

    errors <- core <- models <- config <- client <- runtime <- crd <- manifests <- testing

``display`` (presentation) stands beside them: it imports from errors, core and models, and
only crd, manifests, testing and the package root import it, except for the function-level
hooks listed in ``ALLOWED``. Packages are placed by their top-level name, so
``kubesync/manifests.py`` and a ``kubesync/manifests/`` package are the same layer.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Set, Tuple, Union

import pytest

import kubesync

ROOT = Path(kubesync.__file__).parent
REPO = ROOT.parent

#: The line, left to right: a module may import from a layer before its own.
ORDER = ("errors", "core", "models", "config", "client", "runtime")
#: The ends of the line, in this order: each may import the whole line, display, and the
#: ends before it (manifests' apply waits for CRDs with crd's helper; testing may use both).
ENDS = ("crd", "webhook", "manifests", "codegen", "testing")
#: Presentation: may import these; imported only by ENDS, the root and ALLOWED hooks.
DISPLAY_IMPORTS = ("errors", "core", "models")
#: Leaves anyone may import.
LEAVES = ("_version",)

#: (importing module, imported module) -> why. Function-level (or type-only) imports only.
ALLOWED: Dict[Tuple[str, str], str] = {
    # The notebook hooks: an object asks presentation to render it, on demand.
    ("kubesync.core.model", "kubesync.display"): "Model._repr_html_",
    ("kubesync.core.dynamic", "kubesync.display"): "DynamicObject._repr_html_",
    ("kubesync.core.objectlist", "kubesync.display"): "ObjectList._repr_html_",
    ("kubesync.runtime.store", "kubesync.display"): "Store._repr_html_",
    # progress=: the progress line is loaded when an operation starts.
    ("kubesync.client.api", "kubesync.display.progress"): "Api.list_all(progress=)",
    ("kubesync.runtime.wait", "kubesync.display.progress"): "await_condition(progress=)",
    # Deprecated aliases of the modules that moved out of core, kept one release.
    ("kubesync.core.display", "kubesync.display.render"): "deprecated alias",
    ("kubesync.core.progress", "kubesync.display.progress"): "deprecated alias",
    # The metadata of DynamicObject and ObjectList is the generated meta/v1 ObjectMeta and
    # ListMeta; meta_v1 imports only core.model, so this closes no cycle.
    ("kubesync.core.dynamic", "kubesync.models.meta_v1"): "DynamicObject.metadata",
    ("kubesync.core.objectlist", "kubesync.models.meta_v1"): "ObjectList.metadata",
}

#: What the pure core never imports: no network, no presentation, no process-wide state.
IMPURE = ("requests", "urllib3", "socket", "ssl", "http", "IPython", "gc", "subprocess")


class Edge(NamedTuple):
    src: str
    dst: str
    file: str
    line: int
    deferred: bool  # in a function or under TYPE_CHECKING: not run when src is imported

    def where(self) -> str:
        return f"{self.file}:{self.line}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources() -> Dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


MODULES = sources()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


Import = Union[ast.Import, ast.ImportFrom]


def _imports(node: ast.AST, deferred: bool = False) -> Iterator[Tuple[Import, bool]]:
    """Every import statement under ``node``, and whether it is deferred (in a function
    body or under ``if TYPE_CHECKING``)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, deferred
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield from _imports(child, True)
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield from _imports(ast.Module(body=[stmt], type_ignores=[]), True)
            for stmt in child.orelse:
                yield from _imports(ast.Module(body=[stmt], type_ignores=[]), deferred)
        else:
            yield from _imports(child, deferred)


def _resolve(src: str, path: Path, node: ast.ImportFrom) -> Optional[str]:
    if not node.level:
        return node.module
    package = src.split(".") if path.name == "__init__.py" else src.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def edges() -> List[Edge]:
    out: List[Edge] = []
    for src, path in MODULES.items():
        file = str(path.relative_to(REPO))
        tree = ast.parse(path.read_text(encoding="utf-8"), file)
        for node, deferred in _imports(tree):
            targets: List[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = _resolve(src, path, node)
                if base is None:
                    continue
                # ``from pkg import sub`` imports the submodule; ``from mod import name`` mod.
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
                targets = subs if len(subs) == len(node.names) else [base, *subs]
            for dst in targets:
                if dst == "kubesync" or dst.startswith("kubesync."):
                    out.append(Edge(src, dst, file, node.lineno, deferred))
    return out


EDGES = edges()


def layer(module: str) -> str:
    parts = module.split(".")
    return "root" if len(parts) == 1 else parts[1]


def may_import(src: str, dst: str) -> bool:
    a, b = layer(src), layer(dst)
    if a == b or b in LEAVES or a == "root":
        return True
    if b == "display":
        return a in ENDS
    if a == "display":
        return b in DISPLAY_IMPORTS
    if a in ENDS:
        return b in ORDER or (b in ENDS and ENDS.index(b) < ENDS.index(a))
    if a in ORDER and b in ORDER:
        return ORDER.index(b) < ORDER.index(a)
    return False


def _allowed(edge: Edge) -> bool:
    return edge.deferred and (edge.src, edge.dst) in ALLOWED


def test_every_top_level_name_has_a_place_in_the_layering() -> None:
    known = set(ORDER) | set(ENDS) | set(LEAVES) | {"display", "root"}
    unplaced = sorted({f"{m} ({layer(m)})" for m in MODULES if layer(m) not in known})
    assert not unplaced, f"add these to the layering in {__file__}: {unplaced}"


def test_no_import_goes_against_the_layering() -> None:
    bad = [
        f"{e.where()}: {e.src} imports {e.dst} ({layer(e.src)} may not import {layer(e.dst)})"
        for e in EDGES if not may_import(e.src, e.dst) and not _allowed(e)
    ]
    line = " <- ".join(ORDER + ENDS)
    assert not bad, f"imports against the layering ({line}):\n" + "\n".join(bad)


def _cycle(graph: Dict[str, List[Edge]]) -> Optional[List[Edge]]:
    """A cycle as its edges (depth-first: the first edge back into the current path)."""
    done: Set[str] = set()
    stack: List[str] = []  # the current path's modules; path[i] goes stack[i] -> stack[i+1]
    path: List[Edge] = []

    def visit(node: str) -> Optional[List[Edge]]:
        stack.append(node)
        for e in graph.get(node, []):
            if e.dst in stack:
                return [*path[stack.index(e.dst):], e]
            if e.dst not in done:
                path.append(e)
                found = visit(e.dst)
                if found:
                    return found
                path.pop()
        stack.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        if node not in done:
            found = visit(node)
            if found:
                return found
    return None


def test_the_import_graph_has_no_cycle() -> None:
    graph: Dict[str, List[Edge]] = {}
    for e in EDGES:
        if e.src != e.dst and not _allowed(e):
            graph.setdefault(e.src, []).append(e)
    cycle = _cycle(graph)
    assert cycle is None, "an import cycle:\n" + "\n".join(
        f"{e.where()}: {e.src} imports {e.dst}" for e in cycle)


def test_allowed_exceptions_are_deferred_and_still_needed() -> None:
    seen: Set[Tuple[str, str]] = set()
    for e in EDGES:
        if (e.src, e.dst) in ALLOWED:
            assert e.deferred, f"{e.where()}: {e.src} imports {e.dst} at module level; " \
                f"allowed only inside a function ({ALLOWED[(e.src, e.dst)]})"
            seen.add((e.src, e.dst))
    assert not set(ALLOWED) - seen, f"no longer needed: {sorted(set(ALLOWED) - seen)}"


#: Deprecated aliases of moved modules: for users' old imports, never for ours.
DEPRECATED = ("kubesync.core.display", "kubesync.core.progress")


def test_nothing_of_ours_imports_a_deprecated_alias() -> None:
    bad = [f"{e.where()}: {e.src} imports {e.dst}" for e in EDGES if e.dst in DEPRECATED]
    assert not bad, "use the modules' new homes (kubesync.display):\n" + "\n".join(bad)


def test_core_imports_nothing_impure() -> None:
    bad = []
    for src, path in MODULES.items():
        if layer(src) != "core":
            continue
        for node, _ in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if not node.level else []
            bad += [f"{path.relative_to(REPO)}:{node.lineno}: {src} imports {n}"
                    for n in names if n.split(".")[0] in IMPURE]
    assert not bad, "core is pure (no network, presentation or process state):\n" + \
        "\n".join(bad)


@pytest.mark.parametrize(
    "src, dst, ok",
    [
        ("kubesync.core.lazy", "kubesync.errors", True),
        ("kubesync.core.lazy", "kubesync.models.meta_v1", False),
        ("kubesync.client.api", "kubesync.runtime.watcher", False),
        ("kubesync.runtime.store", "kubesync.display", False),
        ("kubesync.manifests.applier", "kubesync.display.progress", True),
        ("kubesync.manifests", "kubesync.runtime.wait", True),
        ("kubesync.crd.resource", "kubesync.testing", False),
        ("kubesync.manifests.applier", "kubesync.crd.install", True),
        ("kubesync.crd.resource", "kubesync.manifests", False),
        ("kubesync.display.render", "kubesync.core.convert", True),
        ("kubesync.display.render", "kubesync.client.api", False),
        ("kubesync.client.client", "kubesync._version", True),
    ],
)
def test_the_rule_itself(src: str, dst: str, ok: bool) -> None:
    assert may_import(src, dst) is ok


def test_a_cycle_is_found_and_named_by_file_and_line() -> None:
    a = Edge("kubesync.core.a", "kubesync.core.b", "kubesync/core/a.py", 3, False)
    b = Edge("kubesync.core.b", "kubesync.core.a", "kubesync/core/b.py", 7, True)
    found = _cycle({"kubesync.core.a": [a], "kubesync.core.b": [b]})
    assert found is not None and [e.where() for e in found] == [
        "kubesync/core/a.py:3", "kubesync/core/b.py:7"]


def test_imports_in_functions_and_under_type_checking_are_found_as_deferred() -> None:
    tree = ast.parse(
        "import kubesync.errors\n"
        "if TYPE_CHECKING:\n"
        "    from kubesync.client.client import Client\n"
        "else:\n"
        "    import kubesync.core\n"
        "class A:\n"
        "    def f(self):\n"
        "        from kubesync.display import object_html\n"
    )
    found = [(n.lineno, deferred) for n, deferred in _imports(tree)]
    assert found == [(1, False), (3, True), (5, False), (8, True)]
