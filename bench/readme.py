"""Copy result tables into the README: `python -m bench.readme [--check]`.

The README quotes ``bench/*.md`` between ``<!-- include bench/results.md -->`` and
``<!-- end include -->``; this rewrites each such block from its file, so the README's
numbers are the ones a bench command wrote, never typed. ``--check`` only says whether the
README is up to date (exit 1 if not); a test runs it.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- include (?P<path>\S+) -->\n).*?(<!-- end include -->)", re.S)
LINK = re.compile(r"\]\((?!https?:|/|#)(?P<target>[^)]+)\)")


def relinked(body: str, folder: str) -> str:
    """Relative links of a file in ``folder`` (``frontier.png`` in bench/results.md), made
    relative to the README at the top (``bench/frontier.png``)."""
    if folder in ("", "."):
        return body
    return LINK.sub(lambda m: f"]({folder}/{m['target']})", body)


def synced(text: str, root: Path = ROOT) -> str:
    """``text`` with every include block holding its file's current content."""

    def fill(match: re.Match) -> str:
        source = root / match["path"]
        if not source.is_file():
            raise FileNotFoundError(f"README includes {match['path']}, which does not exist.")
        body = relinked(source.read_text().rstrip("\n") + "\n", str(Path(match["path"]).parent))
        return f"{match.group(1)}{body}{match.group(3)}"

    return BLOCK.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--check", action="store_true", help="exit 1 if the README is stale")
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    new = synced(text, args.readme.parent)
    if args.check:
        if new != text:
            print(f"{args.readme} is out of date: run `python -m bench.readme`.", file=sys.stderr)
        return int(new != text)
    args.readme.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
