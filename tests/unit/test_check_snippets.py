"""scripts/check_snippets.py: which blocks it takes, how it joins a page, where errors point."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_snippets",
                                                  ROOT / "scripts" / "check_snippets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # NamedTuple needs its module registered
    spec.loader.exec_module(module)
    return module


cs = _load()

PAGE = """# A page

```python
x = 1
```

Text.

<!-- check_snippets: skip (a signature, not code) -->
```python
f(a, b=...)
```

```sh
echo not python
```

```python
y = x + 1
print(y)
```
"""


def test_python_blocks_are_found_in_order_with_their_page_lines_and_skips() -> None:
    found = cs.snippets(Path("p.md"), PAGE)
    assert [(s.line, s.code, s.skip) for s in found] == [
        (4, "x = 1\n", None),
        (11, "f(a, b=...)\n", "a signature, not code"),
        (19, "y = x + 1\nprint(y)\n", None),
    ]


def test_a_page_becomes_one_module_of_its_checked_blocks_with_a_line_map() -> None:
    code, where = cs.module_of(cs.snippets(Path("p.md"), PAGE))
    assert code == "x = 1\ny = x + 1\nprint(y)\n"
    assert where == {1: 4, 2: 19, 3: 20}


def test_a_skip_without_a_reason_is_an_error() -> None:
    page = "<!-- check_snippets: skip -->\n```python\nx\n```\n"
    with pytest.raises(cs.SnippetError, match=r"p\.md:1: a skip marker needs a reason"):
        cs.snippets(Path("p.md"), page)


def test_mypy_errors_point_at_the_page_and_its_line() -> None:
    modules = {Path("/tmp/x/snippets_p.py"): (Path("docs/p.md"), {1: 4, 2: 19})}
    out = cs.to_page_lines(
        "/tmp/x/snippets_p.py:2: error: Name \"z\" is not defined  [name-defined]\n"
        "examples/a.py:3: error: boom\nFound 2 errors", modules)
    assert out.splitlines() == [
        'docs/p.md:19: error: Name "z" is not defined  [name-defined]',
        "examples/a.py:3: error: boom",
        "Found 2 errors",
    ]


def test_the_real_pages_skip_few_blocks_each_with_a_reason() -> None:
    skipped = [s for page in cs.pages(ROOT)
               for s in cs.snippets(page.relative_to(ROOT), page.read_text(encoding="utf-8"))
               if s.skip is not None]
    assert 0 < len(skipped) <= 5 and all(s.skip for s in skipped)
