"""Metric names and how they are shown: the test metrics table printed after training."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

OVERALL_ORDER = (
    "acc",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "precision_macro",
    "recall_macro",
    "f1_macro",
)


def print_test_report(report: dict[str, Any], title: str = "Test metrics") -> None:
    """Print overall and per-class test metrics as two tables."""
    console = Console()
    overall = Table(title=title)
    overall.add_column("metric")
    overall.add_column("value", justify="right")
    for name in OVERALL_ORDER:
        if name in report["overall"]:
            overall.add_row(name, f"{100 * report['overall'][name]:.2f}%")
    console.print(overall)
    per_class = Table(title="Per class")
    for column in ("class", "precision", "recall", "f1", "support"):
        per_class.add_column(column, justify="left" if column == "class" else "right")
    for name, row in report["per_class"].items():
        per_class.add_row(
            name,
            *(f"{100 * row[k]:.2f}%" for k in ("precision", "recall", "f1")),
            str(row["support"]),
        )
    console.print(per_class)
