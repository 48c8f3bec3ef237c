"""Copy result tables into the README and docs/: `python -m bench.readme [--check]`.

A page (``README.md``, ``docs/*.md``) quotes a file between ``<!-- include PATH -->`` and
``<!-- end include -->``; this rewrites each such block from its file, so the pages' numbers
are the ones a command wrote, never typed. ``PATH#VIEW`` quotes a view of a file or folder
instead (``VIEWS``): ``bench/results.json#presets``, one row per preset, and
``conf/task#tasks``, one row per analysis task. ``--check`` only says whether every page is
up to date (exit 1 if not); a test runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from bench.report import presets_table

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- include (?P<path>\S+) -->\n).*?(<!-- end include -->)", re.S)
LINK = re.compile(r"\]\((?!https?:|/|#)(?P<target>[^)]+)\)")


def pages(root: Path = ROOT) -> list[Path]:
    """The pages that may quote result files: the README and the pages under docs/."""
    return [root / "README.md", *sorted((root / "docs").glob("**/*.md"))]


def relinked(body: str, folder: str, page_folder: str = "") -> str:
    """Relative links of a file in ``folder`` (``frontier.png`` in bench/results.md), made
    relative to the page's folder (``bench/frontier.png`` from the README at the top,
    ``../bench/frontier.png`` from docs/)."""
    if os.path.normpath(folder) == os.path.normpath(page_folder or "."):
        return body

    def move(match: re.Match) -> str:
        target = os.path.relpath(os.path.join(folder, match["target"]), page_folder or ".")
        return f"]({Path(target).as_posix()})"

    return LINK.sub(move, body)


def tasks_table(folder: Path) -> str:
    """The analysis tasks, one row per ``conf/task`` file: its name and its first line
    (``# task=NAME: what it does``), so that the list is written in one place."""
    rows = ["| task | what it does |", "| --- | --- |"]
    for path in sorted(folder.glob("*.yaml")):
        first, prefix = path.read_text().split("\n", 1)[0], f"# task={path.stem}: "
        if not first.startswith(prefix):
            raise ValueError(f"{path}: its first line must be '{prefix}<what it does>'.")
        rows.append(f"| `{path.stem}` | {first.removeprefix(prefix)} |")
    return "\n".join(rows) + "\n"


#: What ``<!-- include PATH#NAME -->`` quotes: ``VIEWS[NAME](PATH)``.
VIEWS: dict[str, Callable[[Path], str]] = {
    "presets": lambda path: presets_table(json.loads(path.read_text())),
    "tasks": tasks_table,
}


def quoted(path: str, root: Path) -> str:
    """What an include block holds: the file's text, or the named view of a JSON file."""
    name, _, view = path.partition("#")
    source = root / name
    if not source.exists():
        raise FileNotFoundError(f"A page includes {name}, which does not exist.")
    if not view:
        return source.read_text()
    if view not in VIEWS:
        raise KeyError(f"A page includes {path}: no view {view!r}; views: {', '.join(VIEWS)}.")
    return VIEWS[view](source)


def synced(text: str, root: Path = ROOT, page_folder: str = "") -> str:
    """``text`` (a page in ``root / page_folder``) with every include block holding its
    file's current content."""

    def fill(match: re.Match) -> str:
        body = quoted(match["path"], root).rstrip("\n") + "\n"
        folder = str(Path(match["path"].partition("#")[0]).parent)
        return f"{match.group(1)}{relinked(body, folder, page_folder)}{match.group(3)}"

    return BLOCK.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the project holding the pages")
    parser.add_argument("--check", action="store_true", help="exit 1 if a page is stale")
    args = parser.parse_args(argv)
    stale = []
    for page in pages(args.root):
        text = page.read_text()
        new = synced(text, args.root, page.parent.relative_to(args.root).as_posix())
        if new == text:
            continue
        stale.append(page)
        if not args.check:
            page.write_text(new)
    if args.check and stale:
        names = ", ".join(p.relative_to(args.root).as_posix() for p in stale)
        print(f"{names} out of date: run `python -m bench.readme`.", file=sys.stderr)
    return int(args.check and bool(stale))


if __name__ == "__main__":
    sys.exit(main())
