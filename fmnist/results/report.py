"""Markdown reports with figures, written by the analysis tasks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger

from fmnist.callbacks.outputs import log_figure, tensorboard
from fmnist.files import atomic_write_text, write_figure
from fmnist.tables import markdown_table


class Report:
    """A Markdown report with figures, written into a run directory and given to the loggers.

    Analysis tasks add text, tables and matplotlib figures; each figure is saved as a PNG
    next to ``report.md``, embedded in it, and given to every logger under ``tag``
    (:func:`fmnist.callbacks.outputs.log_figure`, as a training run's figures).
    """

    def __init__(self, output_dir: str | Path, title: str, loggers: Sequence[Logger] = ()) -> None:
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.loggers = list(loggers)
        #: TensorBoard's SummaryWriter when it logs, for what only it shows (text, projector).
        self.writer = tensorboard(self.loggers)
        self.lines: list[str] = [f"# {title}", ""]
        self.figures: list[Path] = []

    def heading(self, text: str, level: int = 2) -> None:
        self.lines += [f"{'#' * level} {text}", ""]

    def text(self, paragraph: str) -> None:
        self.lines += [paragraph, ""]

    def table(self, header: list[str], rows: list[list[Any]]) -> None:
        self.lines += [*markdown_table(header, rows), ""]

    def figure(self, figure: Any, name: str, caption: str, tag: str | None = None) -> Path:
        """Save ``figure`` as ``name``.png, embed it, give it to the loggers, close it."""
        import matplotlib.pyplot as plt

        path = write_figure(self.output_dir / f"{name}.png", figure, dpi=110)
        log_figure(self.loggers, figure, path, tag or name)
        plt.close(figure)
        self.figures.append(path)
        self.lines += [f"![{caption}]({path.name})", "", f"*{caption}*", ""]
        return path

    def write(self) -> Path:
        return atomic_write_text(self.output_dir / "report.md", "\n".join(self.lines))
