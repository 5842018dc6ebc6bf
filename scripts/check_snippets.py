#!/usr/bin/env python3
"""Type-check the code users copy: the Python snippets of README.md and docs/, and examples/.

    python3 scripts/check_snippets.py [--keep DIR] [--list]

The ```python blocks of one page are checked as one module, in page order, because a page
is read top to bottom: a later block may use what an earlier one defined. Each page
becomes a file in a temporary folder (``--keep DIR`` writes them there instead), and one
``python3 -m mypy --strict`` run checks them together with examples/*.py; errors are
reported at the page's own line numbers.

A block that is a fragment on purpose (pseudo-code, or a signature shown with ``...``) is
skipped by putting this line right above its fence, with the reason::

    <!-- check_snippets: skip (the reason) -->

``--list`` prints every block and whether it is checked or skipped, and why.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
SKIP = re.compile(r"^<!--\s*check_snippets:\s*skip\s*(?:\((?P<reason>[^)]*)\))?\s*-->\s*$")
MYPY_LINE = re.compile(r"^(?P<path>[^:\n]+):(?P<line>\d+):(?P<rest>.*)$")


class Snippet(NamedTuple):
    page: Path
    line: int  # the page line of the block's first code line
    code: str
    skip: Optional[str]  # the reason it is skipped, or None


class SnippetError(Exception):
    """A page's snippets cannot be extracted (a skip marker without a reason)."""


def snippets(page: Path, text: str) -> List[Snippet]:
    """The ```python blocks of ``text`` (the contents of ``page``), in order."""
    out = []
    for m in FENCE.finditer(text):
        fence_line = text.count("\n", 0, m.start()) + 1
        before = text[: m.start()].rstrip("\n").rpartition("\n")[2]
        marker = SKIP.match(before)
        skip = None
        if marker is not None:
            skip = (marker.group("reason") or "").strip()
            if not skip:
                raise SnippetError(f"{page}:{fence_line - 1}: a skip marker needs a reason: "
                                   "<!-- check_snippets: skip (why) -->")
        out.append(Snippet(page, fence_line + 1, m.group(1), skip))
    return out


def module_of(blocks: Sequence[Snippet]) -> Tuple[str, Dict[int, int]]:
    """The checked blocks of one page as one module, and module line -> page line."""
    lines: List[str] = []
    where: Dict[int, int] = {}
    for s in blocks:
        if s.skip is not None:
            continue
        for i, code_line in enumerate(s.code.splitlines()):
            lines.append(code_line)
            where[len(lines)] = s.line + i
    return "\n".join(lines) + "\n", where


def pages(root: Path) -> List[Path]:
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def module_name(page: Path, root: Path) -> str:
    stem = re.sub(r"\W", "_", str(page.relative_to(root).with_suffix("")))
    return f"snippets_{stem.lower()}"


def write_modules(root: Path, out: Path) -> Dict[Path, Tuple[Path, Dict[int, int]]]:
    """Write one module per page with checked blocks: module -> (page, line map)."""
    written = {}
    for page in pages(root):
        blocks = snippets(page.relative_to(root), page.read_text(encoding="utf-8"))
        code, where = module_of(blocks)
        if not where:
            continue
        path = out / f"{module_name(page, root)}.py"
        path.write_text(code, encoding="utf-8")
        written[path] = (page.relative_to(root), where)
    return written


def to_page_lines(output: str, modules: Dict[Path, Tuple[Path, Dict[int, int]]]) -> str:
    """mypy's output with each module line replaced by the page and its line."""
    by_name = {str(path): info for path, info in modules.items()}
    by_name.update({path.name: info for path, info in modules.items()})
    fixed = []
    for line in output.splitlines():
        m = MYPY_LINE.match(line)
        info = by_name.get(m.group("path")) if m else None
        if m and info:
            page, where = info
            line = f"{page}:{where.get(int(m.group('line')), 0)}:{m.group('rest')}"
        fixed.append(line)
    return "\n".join(fixed)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="write the modules here and keep them")
    parser.add_argument("--list", action="store_true", help="list the blocks and exit")
    args = parser.parse_args(argv)
    try:
        if args.list:
            for page in pages(ROOT):
                for s in snippets(page.relative_to(ROOT), page.read_text(encoding="utf-8")):
                    state = "checked" if s.skip is None else f"skipped: {s.skip}"
                    print(f"{s.page}:{s.line}: {state}")
            return 0
        with tempfile.TemporaryDirectory(prefix="kubesync-snippets-") as tmp:
            out = args.keep or Path(tmp)
            out.mkdir(parents=True, exist_ok=True)
            modules = write_modules(ROOT, out)
            examples = sorted(str(p) for p in (ROOT / "examples").glob("*.py"))
            # The library is followed for its types but its own errors are silenced: a
            # user's mypy never reports an installed package's internals, and the library
            # is checked under its own settings by ``mypy kubesync``.
            run = subprocess.run(
                [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
                 *map(str, modules), *examples],
                cwd=ROOT, capture_output=True, text=True,
            )
            print(to_page_lines(run.stdout, modules))
            sys.stderr.write(run.stderr)
            return run.returncode
    except SnippetError as e:
        print(e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
