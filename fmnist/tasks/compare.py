"""``analyze.py task=compare runs=[A,B,...]``: is the second model really better than the first?

A run directory is one contestant; a sweep directory gives one per seed group, predicting with
the ensemble of its runs (conf/task/compare.yaml). Every contestant is compared with the first
on the saved test predictions, no model loaded: paired bootstrap, McNemar's exact test,
per-class recall, the disagreements and, for groups of 2+ seeds, Welch's and an exact
permutation test (the statistics: ``fmnist.analysis.compare``).

Paired statistics are only as good as the pairing: every run must hold the test set's labels
in its order (``predictions.npz`` stores no image hash, so the labels are its fingerprint),
or the task stops with one line naming the two. A run that cannot be read is left out with
one line saying why.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from fmnist.analysis import compare as stats
from fmnist.analysis.importance import evaluation_subset
from fmnist.data import CLASS_NAMES, NUM_CLASSES
from fmnist.errors import ConfigError
from fmnist.files import METRICS_FILE, write_json
from fmnist.plots import compare_figures as figures
from fmnist.results.report import Report
from fmnist.results.rundir import Run, UnreadableRunError, read_predictions, read_run
from fmnist.results.sweep import UNREADABLE, read_sweep, seed_groups
from fmnist.training.load import datamodule_for

log = logging.getLogger(__name__)


@dataclass
class Contestant:
    """One run, or a seed group of runs with its ensemble prediction."""

    name: str
    runs: list[Path]
    seeds: list[int | None]
    accuracies: list[float]  # of each run, recomputed from its predictions
    labels: np.ndarray
    probabilities: np.ndarray  # the run's, or the mean over the group's runs
    predicted: np.ndarray

    @property
    def correct(self) -> np.ndarray:
        return self.predicted == self.labels

    @property
    def accuracy(self) -> float:
        """The run's accuracy, or the ensemble's for a group."""
        return float(self.correct.mean())

    @property
    def where(self) -> str:
        """Its run directory, or the seed group's name."""
        return str(self.runs[0]) if len(self.runs) == 1 else self.name


def run_name(run: Run) -> str:
    """The directory name, with the run's command-line overrides when Hydra recorded them."""
    overrides = [o for o in run.overrides or [] if not o.startswith("hydra")]
    return f"{run.path.name} ({' '.join(overrides)})" if overrides else run.path.name


def check_paired(
    a: tuple[str, np.ndarray],
    b: tuple[str, np.ndarray],
    fix: str = "compare runs tested on the same test set, in the same order",
) -> None:
    """A one-line ``ConfigError`` unless the labels ``b`` (name, labels) saw are ``a``'s: the
    same number of test images, with the same labels in the same order."""
    (name_a, labels_a), (name_b, labels_b) = a, b
    if len(labels_a) != len(labels_b):
        what = f"holds {len(labels_b):,} test predictions and {name_a} {len(labels_a):,}"
    elif differ := int((labels_a != labels_b).sum()):
        what = (f"and {name_a} disagree on the labels of {differ:,} of the {len(labels_a):,} "
                "test images (another test set, or predictions reordered)")  # fmt: skip
    else:
        return
    raise ConfigError(f"{name_b} {what}: {fix}.")


def contestant(run_dirs: list[Path], skipped: list[str], name: str = "") -> Contestant | None:
    """The runs and their predictions, paired image by image (several runs become their
    probability-averaging ensemble); a line in ``skipped`` for each run that cannot be read,
    None when none can. Named ``name``, or as its run when that is one."""
    runs = []
    for run_dir in run_dirs:
        try:
            runs.append((read_run(run_dir), read_predictions(run_dir)))
        except UnreadableRunError as exc:
            skipped.append(f"{run_dir}: {exc}")
    if not runs:
        return None
    first = (str(runs[0][0].path), runs[0][1]["labels"])
    for run, predictions in runs[1:]:
        check_paired(first, (str(run.path), predictions["labels"]))
    loaded = [predictions for _, predictions in runs]
    probabilities, predicted = stats.ensemble_predictions([p["probabilities"] for p in loaded])
    if len(loaded) == 1:
        predicted = loaded[0]["predicted"]  # the run's own answers, ties included
    accuracies = [float((p["predicted"] == p["labels"]).mean()) for p in loaded]
    return Contestant(name or run_name(runs[0][0]), [run.path for run, _ in runs],
                      [run.seed for run, _ in runs], accuracies, first[1], probabilities,
                      predicted)  # fmt: skip


def contestants_of(path: Path, skipped: list[str]) -> list[Contestant]:
    """A run directory: one contestant. A sweep directory: one per seed group. Runs that
    cannot be read are left out, with a line in ``skipped``."""
    if (path / METRICS_FILE).exists():
        return [c for c in [contestant([path], skipped)] if c is not None]
    jobs = read_sweep(path) if path.is_dir() else []
    if not jobs:
        raise ConfigError(
            f"runs: {path} is neither a finished run directory (with {METRICS_FILE}) nor a "
            "sweep directory: pass run directories (logs/train/runs/<time>) or sweep "
            "directories (logs/train/multiruns/<time>)."
        )
    found = []
    skipped += [f"{path / j.job}: unreadable: {j.error}" for j in jobs if j.status == UNREADABLE]
    for group in seed_groups(jobs):
        name = f"{path.name}: {group.overrides or 'all jobs'}"
        found.append(contestant([path / j.job for j in group.jobs], skipped, name))
    return [c for c in found if c is not None]


def compare_pair(a: Contestant, b: Contestant, options: dict[str, Any]) -> dict[str, Any]:
    """Every statistic of B against A, as plain numbers (written to compare.json)."""
    interval = stats.paired_bootstrap(
        a.correct, b.correct, options["n_resamples"], options["seed"], options["confidence"]
    )
    result: dict[str, Any] = {
        "a": a.name,
        "b": b.name,
        "accuracy_a": a.accuracy,
        "accuracy_b": b.accuracy,
        "bootstrap": asdict(interval),
        "mcnemar": asdict(stats.mcnemar_exact(a.correct, b.correct)),
        "recall_a": stats.per_class_recall(a.labels, a.predicted, NUM_CLASSES).tolist(),
        "recall_b": stats.per_class_recall(b.labels, b.predicted, NUM_CLASSES).tolist(),
    }
    if len(a.runs) >= 2 and len(b.runs) >= 2:
        result["across_seeds"] = {
            "welch": asdict(stats.welch_test(a.accuracies, b.accuracies)),
            "permutation": asdict(stats.permutation_test(a.accuracies, b.accuracies)),
        }
    result["summary"] = summary_sentence(result, a, b, options["alpha"])
    return result


def summary_sentence(result: dict[str, Any], a: Contestant, b: Contestant, alpha: float) -> str:
    """One sentence: the difference, its interval, the deciding test and the verdict."""
    boot = result["bootstrap"]
    what = "ensemble accuracy" if len(a.runs) > 1 or len(b.runs) > 1 else "accuracy"
    difference = (
        f"{b.name} vs {a.name}: {what} {100 * b.accuracy:.2f}% vs {100 * a.accuracy:.2f}%, "
        f"difference {100 * boot['estimate']:+.2f} pp (paired bootstrap "
        f"{100 * boot['confidence']:.0f}% CI [{100 * boot['low']:+.2f}, {100 * boot['high']:+.2f}])"
    )
    if "across_seeds" in result:
        p = result["across_seeds"]["welch"]["p_value"]
        test = (
            f"across seeds {_mean_std(b.accuracies)} vs {_mean_std(a.accuracies)}, Welch "
            f"p = {p:.3g}"
        )
    else:
        p = result["mcnemar"]["p_value"]
        test = f"McNemar exact p = {p:.3g}"
    verdict = "significant" if p < alpha else "not significant"
    return f"{difference}; {test}: {verdict} at {100 * alpha:g}%."


def _mean_std(values: list[float]) -> str:
    return f"{100 * np.mean(values):.2f} ± {100 * np.std(values, ddof=1):.2f}%"


def compare_task(
    cfg: DictConfig,
    report: Report,
    *,
    n_resamples: int,
    confidence: float,
    alpha: float,
    disagreements: int,
) -> None:
    """The ``compare`` task (see the module docstring); ``cfg.seed`` seeds the bootstrap."""
    paths = [Path(str(p)).expanduser() for p in cfg.get("runs") or []]
    skipped: list[str] = []
    found = [c for path in paths for c in contestants_of(path, skipped)]
    for line in skipped:
        log.warning("Left out %s", line)
    if len(found) < 2:
        raise ConfigError(
            f"task=compare needs two or more runs or seed groups, got {len(found)}: pass "
            "runs=[RUN_DIR_A,RUN_DIR_B] (run or sweep directories)"
            + "".join(f"; left out {line}" for line in skipped)
            + "."
        )
    for other in found[1:]:
        check_paired((found[0].where, found[0].labels), (other.where, other.labels))
    test = datamodule_for(cfg.data, {}).split("test")
    fix = "point data.root (or paths.data_dir) at the dataset the runs were tested on"
    check_paired(("the data config's test set", test.labels.numpy()),
                 (found[0].where, found[0].labels), fix)  # fmt: skip
    options = {"n_resamples": n_resamples, "confidence": confidence, "alpha": alpha,
               "seed": int(cfg.seed)}  # fmt: skip
    results = [compare_pair(found[0], other, options) for other in found[1:]]
    report_contestants(report, found, skipped)
    report.heading("Summary")
    report.text("\n".join(f"- {r['summary']}" for r in results))
    if report.writer is not None:
        report.writer.add_text("compare/summary", "\n\n".join(r["summary"] for r in results))
    for index, (other, result) in enumerate(zip(found[1:], results, strict=True)):
        report_pair(report, (found[0], other), result, test.images.numpy(), disagreements,
                    index, int(cfg.seed))  # fmt: skip
    write_json(report.output_dir / "compare.json", {"options": options, "comparisons": results})
    for result in results:
        log.info(result["summary"])


def report_contestants(report: Report, found: list[Contestant], skipped: list[str]) -> None:
    report.heading("Runs compared")
    rows = []
    for c in found:
        mean = _mean_std(c.accuracies) if len(c.runs) > 1 else f"{100 * c.accuracies[0]:.2f}%"
        ensemble = f"{100 * c.accuracy:.2f}%" if len(c.runs) > 1 else ""
        seeds = " ".join(str(s) for s in c.seeds)
        rows.append([c.name, len(c.runs), seeds, mean, ensemble, ", ".join(map(str, c.runs))])
    report.table(["contestant", "runs", "seeds", "test acc (mean ± std)",
                  "ensemble acc", "directories"], rows)  # fmt: skip
    report.text(
        f"Every contestant is compared with the first ({found[0].name}); no correction for "
        "multiple comparisons. The paired tests treat each trained model (or ensemble) as "
        "fixed and measure only test-set noise; whether another seed would change the result "
        "is what the across-seed tests (2+ seeds on both sides) answer."
    )
    if skipped:
        report.text("Left out, as unreadable:\n\n" + "\n".join(f"- {line}" for line in skipped))


def report_pair(
    report: Report,
    pair: tuple[Contestant, Contestant],
    result: dict[str, Any],
    test_images: np.ndarray,
    disagreements: int,
    index: int,
    seed: int,
) -> None:
    """One comparison's section: tests, per-class recall, figures."""
    a, b = pair
    report.heading(f"{b.name} vs {a.name}")
    report.text(result["summary"])
    boot, mcnemar = result["bootstrap"], result["mcnemar"]
    report.table(
        ["test", "value"],
        [
            ["accuracy difference (B - A)", f"{100 * boot['estimate']:+.2f} pp"],
            [f"paired bootstrap {100 * boot['confidence']:.0f}% interval "
             f"({boot['n_resamples']:,} resamples, seed {boot['seed']})",
             f"[{100 * boot['low']:+.2f}, {100 * boot['high']:+.2f}] pp"],
            ["images only A gets right / only B gets right",
             f"{mcnemar['only_a']} / {mcnemar['only_b']}"],
            ["McNemar exact p (two-sided)", f"{mcnemar['p_value']:.4g}"],
            *_across_seed_rows(result),
        ],
    )  # fmt: skip
    recall_a, recall_b = np.array(result["recall_a"]), np.array(result["recall_b"])
    report.table(
        ["class", "recall A %", "recall B %", "B - A (pp)"],
        [[name, f"{100 * ra:.2f}", f"{100 * rb:.2f}", f"{100 * (rb - ra):+.2f}"]
         for name, ra, rb in zip(CLASS_NAMES, recall_a, recall_b, strict=True)],
    )  # fmt: skip
    names = (a.name.split(" (")[0], b.name.split(" (")[0])  # directory names, for labels
    report.figure(
        figures.recall_differences(recall_a, recall_b, names, CLASS_NAMES),
        f"recall_difference_{index}",
        f"Per-class recall, {b.name} minus {a.name}",
    )
    differ = np.flatnonzero(a.predicted != b.predicted)
    shown = differ[evaluation_subset(len(differ), disagreements, seed).numpy()]
    report.figure(
        figures.disagreement_grid(test_images[shown], a.labels[shown],
                                  (a.predicted[shown], b.predicted[shown]), names, CLASS_NAMES),
        f"disagreements_{index}",
        f"{len(shown)} of the {len(differ)} test images where they disagree (seeded sample)",
    )  # fmt: skip


def _across_seed_rows(result: dict[str, Any]) -> list[list[str]]:
    if "across_seeds" not in result:
        return []
    welch, permutation = result["across_seeds"]["welch"], result["across_seeds"]["permutation"]
    return [
        ["Welch's t across seeds (t, p)", f"{welch['statistic']:.3f}, {welch['p_value']:.4g}"],
        ["exact permutation test across seeds (mean difference, p)",
         f"{100 * permutation['statistic']:+.2f} pp, {permutation['p_value']:.4g}"],
    ]  # fmt: skip
