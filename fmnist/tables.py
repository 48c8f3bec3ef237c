"""Tables, written once: Markdown (pipes in cells escaped), rich tables on the console, CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table


def markdown_table(headers: Sequence[Any], rows: Sequence[Sequence[Any]]) -> list[str]:
    """The lines of a Markdown table; a ``|`` inside a cell is escaped, so it stays a cell."""

    def line(cells: Sequence[Any]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [line(headers), line(["---"] * len(headers)), *(line(r) for r in rows)]


def rich_table(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    left: Collection[str] = (),
    styles: Sequence[str | None] | None = None,
) -> Table:
    """A rich table: the ``left`` columns left-aligned, the others (numbers) right-aligned;
    cells are shown as text, never read as rich markup."""
    table = Table(title=title)
    for header in headers:
        table.add_column(header, justify="left" if header in left else "right")
    for i, row in enumerate(rows):
        table.add_row(*(escape(str(c)) for c in row), style=styles[i] if styles else None)
    return table


def print_table(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], **options: Any
) -> None:
    """:func:`rich_table`, printed on the console."""
    Console().print(rich_table(title, headers, rows, **options))


def csv_text(rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> str:
    """CSV with a header line (``None`` as an empty cell)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([columns, *rows])
    return buffer.getvalue()
