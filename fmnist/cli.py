"""Every command, and what they share: user errors as one paragraph, not a traceback.

The commands are ``COMMANDS`` below: each is the console script ``fmnist-COMMAND``
(pyproject.toml) and ``python -m fmnist.cli COMMAND [arguments]``, and those that take Hydra
overrides read ``conf/COMMAND.yaml``; ``python train.py`` and ``python analyze.py`` call the
same functions. Each imports its work only when it runs, so a command loads only its own
code. No module imports this one.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import hydra
from omegaconf import DictConfig

from fmnist.config import CONF_DIR, in_multirun
from fmnist.errors import DatasetNotFoundError, FmnistError

T = TypeVar("T")
log = logging.getLogger("fmnist")


def run_reporting_errors(function: Callable[..., T], *args: Any) -> T | None:
    """Run ``function``; a user error (FmnistError) is printed as its message and exits 1.

    Set ``FMNIST_TRACEBACK=1`` for the full traceback. In a multirun the error is re-raised
    so Hydra records the job as failed and the other jobs go on.
    """
    try:
        return function(*args)
    except FmnistError as error:
        if in_multirun() or os.environ.get("FMNIST_TRACEBACK"):
            raise
        log.error("%s: %s", type(error).__name__, error)
        sys.exit(1)


#: ``hydra.main`` over ``conf/`` wherever the package is installed (see ``CONF_DIR``). Hydra
#: would name the job after this module (``cli``); ``conf/hydra/default.yaml`` names it after
#: the config's ``task_name`` instead, as when each command was its own script.
_hydra_main = functools.partial(hydra.main, version_base="1.3", config_path=str(CONF_DIR))


@_hydra_main(config_name="train")
def train_main(cfg: DictConfig) -> float | None:
    """Train and test (conf/train.yaml). Returns the monitored metric's best value, which
    Hydra sweepers optimize."""
    from fmnist.training.run import train

    metrics = run_reporting_errors(train, cfg)
    return None if metrics is None else metrics["monitor"]["best"]


@_hydra_main(config_name="analyze")
def analyze_main(cfg: DictConfig) -> None:
    """Study the data or a trained model (conf/analyze.yaml): ``task=NAME``, one of the files of
    conf/task/, which ``--help`` lists."""
    from fmnist.tasks import run_analysis

    run_reporting_errors(run_analysis, cfg)


@_hydra_main(config_name="predict")
def predict_main(cfg: DictConfig) -> None:
    """Classify image files with a checkpoint (conf/predict.yaml)."""
    from fmnist.inference.predict import predict

    run_reporting_errors(predict, cfg)


@_hydra_main(config_name="export")
def export_main(cfg: DictConfig) -> None:
    """Export a checkpoint to ONNX or TorchScript (conf/export.yaml)."""
    from fmnist.inference.export import export

    run_reporting_errors(export, cfg)


@_hydra_main(config_name="serve")
def serve_main(cfg: DictConfig) -> None:
    """Serve a checkpoint over HTTP (conf/serve.yaml; the extra ``serve``)."""
    from fmnist.inference.serve import serve

    run_reporting_errors(serve, cfg)


def fetch_main(argv: Sequence[str] | None = None) -> int:
    """Get Fashion-MNIST where a run looks for it (``fmnist.data.fetch``); ``make data``."""
    from fmnist.data.fetch import data_settings, fetch

    parser = argparse.ArgumentParser(
        prog="fmnist-fetch", description="Get Fashion-MNIST where train.py looks for it."
    )
    parser.add_argument(
        "--optional",
        action="store_true",
        help="when the data cannot be got, warn and exit 0 (make test: the tests that need the "
        "real data are skipped)",
    )
    parser.add_argument(
        "overrides", nargs="*", help="training overrides: data.root=DIR, data.download=false, ..."
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    data = data_settings(args.overrides)
    if not args.optional:
        run_reporting_errors(fetch, data.root, data.download, data.search_system)
        return 0
    try:
        fetch(data.root, data.download, data.search_system)
    except DatasetNotFoundError as error:
        log.warning("%s The tests marked real_data will be skipped.", error)
    return 0


def sweep_summary_main(argv: Sequence[str] | None = None) -> int:
    """Summarize a sweep directory again (what the ``SweepSummary`` callback writes after every
    job of a multirun): after jobs that ran elsewhere (SLURM, joblib), or a killed sweep."""
    from fmnist.results.sweep import print_summary, write_summary

    parser = argparse.ArgumentParser(
        prog="fmnist-sweep-summary", description="Write and print the summary of a sweep directory."
    )
    parser.add_argument("sweep_dir", help="a multirun directory, e.g. logs/train/multiruns/<time>")
    sweep_dir = parser.parse_args(argv).sweep_dir
    jobs, groups = write_summary(sweep_dir)
    if not jobs:
        sys.exit(f"{sweep_dir} holds no job of a multirun (no */.hydra/overrides.yaml).")
    print_summary(jobs, groups, title=f"Sweep summary ({sweep_dir})")
    return 0


COMMANDS: dict[str, Callable[[], Any]] = {
    "train": train_main,
    "analyze": analyze_main,
    "predict": predict_main,
    "export": export_main,
    "serve": serve_main,
    "fetch": fetch_main,
    "sweep-summary": sweep_summary_main,
}


def main() -> Any:
    """``python -m fmnist.cli COMMAND [arguments]``: the command's own arguments follow it."""
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(f"usage: python -m fmnist.cli {{{','.join(COMMANDS)}}} [arguments]")
    command = COMMANDS[sys.argv.pop(1)]
    return command()


if __name__ == "__main__":
    result = main()
    raise SystemExit(result if isinstance(result, int) else 0)
