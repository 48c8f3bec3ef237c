"""Comparing models: the statistics against direct computations, and task=compare's report."""

from __future__ import annotations

import itertools
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from scipy import stats as scipy_stats
from sklearn.metrics import recall_score

from bench.synthetic import SYNTHETIC_DATA_OVERRIDES
from fmnist.analysis import compare
from fmnist.errors import ConfigError
from fmnist.training.predictions import load_predictions
from fmnist.training.run import train
from tests.conftest import TINY_OVERRIDES, compose_config

QUICK = ["model.filters=[4,8]", "model.hidden=16", "logger=none", "callbacks.lr_monitor=null",
         "callbacks.permutation_importance=null", "callbacks.activation_capture=null",
         "callbacks.learning_curves=null", "trainer.max_epochs=2"]  # fmt: skip


def hand_made_pair() -> tuple[np.ndarray, np.ndarray]:
    """300 images: both right on 200, only A on 30, only B on 45, both wrong on 25."""
    a = np.array([1] * 200 + [1] * 30 + [0] * 45 + [0] * 25, dtype=bool)
    b = np.array([1] * 200 + [0] * 30 + [1] * 45 + [0] * 25, dtype=bool)
    order = np.random.default_rng(5).permutation(len(a))
    return a[order], b[order]


def test_paired_bootstrap_equals_a_loop_with_the_same_seed(monkeypatch) -> None:
    a, b = hand_made_pair()
    monkeypatch.setattr(compare, "_BOOTSTRAP_ELEMENTS", 300 * 7)  # chunks of 7 resamples
    result = compare.paired_bootstrap(a, b, n_resamples=1000, seed=3)

    rng = np.random.default_rng(3)
    differences = []
    for _ in range(1000):
        index = rng.integers(0, len(a), size=len(a))
        differences.append(b[index].mean() - a[index].mean())
    low, high = np.percentile(differences, [2.5, 97.5])
    assert result.estimate == pytest.approx(15 / 300)
    assert result.low == pytest.approx(low, abs=1e-12)
    assert result.high == pytest.approx(high, abs=1e-12)
    assert result.low < result.estimate < result.high


def test_mcnemar_exact_p_value_by_hand() -> None:
    a, b = hand_made_pair()
    result = compare.mcnemar_exact(a, b)
    assert (result.only_a, result.only_b) == (30, 45)
    n = 75  # two-sided exact binomial: twice the smaller tail, capped at 1
    by_hand = min(1.0, 2 * sum(math.comb(n, k) for k in range(31)) / 2**n)
    assert result.p_value == pytest.approx(by_hand, rel=1e-9)
    assert result.p_value == pytest.approx(scipy_stats.binomtest(45, 75).pvalue, rel=1e-12)
    assert compare.mcnemar_exact(a, a).p_value == 1.0  # no discordant pairs


def test_welch_and_permutation_tests_by_hand() -> None:
    a, b = [0.931, 0.9335, 0.9318], [0.914, 0.9121]
    welch = compare.welch_test(a, b)
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    t = (np.mean(b) - np.mean(a)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    assert welch.statistic == pytest.approx(t)
    assert welch.p_value == pytest.approx(2 * scipy_stats.t.sf(abs(t), df))

    pooled, observed = a + b, np.mean(b) - np.mean(a)
    as_extreme = total = 0
    for chosen in itertools.combinations(range(5), 2):  # every relabelling of 2 runs as "b"
        x = [pooled[i] for i in chosen]
        y = [pooled[i] for i in range(5) if i not in chosen]
        total += 1
        as_extreme += abs(np.mean(x) - np.mean(y)) >= abs(observed) - 1e-12
    permutation = compare.permutation_test(a, b)
    assert permutation.statistic == pytest.approx(observed)
    assert permutation.p_value == pytest.approx(as_extreme / total)  # 1/10 here
    with pytest.raises(ValueError, match="two runs"):
        compare.welch_test(a, [0.9])


def test_recall_and_ensemble_by_direct_computation() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    predicted = np.where(rng.random(200) < 0.7, labels, rng.integers(0, 4, 200))
    expected = recall_score(labels, predicted, average=None)
    assert np.allclose(compare.per_class_recall(labels, predicted, 4), expected)
    runs = [rng.dirichlet(np.ones(4), 50) for _ in range(3)]
    mean, predicted = compare.ensemble_predictions(runs)
    assert np.allclose(mean, (runs[0] + runs[1] + runs[2]) / 3)
    assert np.array_equal(predicted, mean.argmax(1))


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, fake_data_dir) -> list[Path]:
    """Two tiny trained runs that differ only by seed."""
    runs = []
    for seed in (0, 1):
        output = tmp_path_factory.mktemp(f"run_s{seed}")
        cfg = compose_config("train", [*TINY_OVERRIDES, *QUICK, f"seed={seed}"], output,
                             fake_data_dir)  # fmt: skip
        train(cfg)
        runs.append(output)
    GlobalHydra.instance().clear()
    return runs


def test_predictions_file_matches_metrics_json(tiny_runs) -> None:
    for run in tiny_runs:
        predictions = load_predictions(run / "predictions.npz")
        metrics = json.loads((run / "metrics.json").read_text())
        accuracy = (predictions["predicted"] == predictions["labels"]).mean()
        assert accuracy == pytest.approx(metrics["test/acc"], abs=1e-6)
        assert np.array_equal(predictions["probabilities"].argmax(1), predictions["predicted"])


def fake_sweep(folder: Path, runs: list[Path], settings: list[str]) -> Path:
    """A sweep directory whose jobs reuse the tiny runs' files: each setting with both seeds."""
    job = 0
    for setting in settings:
        for seed, run in enumerate(runs):
            job_dir = folder / str(job)
            shutil.copytree(run, job_dir)
            (job_dir / ".hydra").mkdir()
            OmegaConf.save(OmegaConf.create([setting, f"seed={seed}"]),
                           job_dir / ".hydra" / "overrides.yaml")  # fmt: skip
            OmegaConf.save(OmegaConf.create({"seed": seed}), job_dir / ".hydra" / "config.yaml")
            job += 1
    return folder


def run_compare(output: Path, data_dir: Path, runs: list[Path], *overrides: str) -> Path:
    from fmnist.tasks import run_analysis

    listed = ",".join(str(r) for r in runs)
    overrides = (*SYNTHETIC_DATA_OVERRIDES, "task=compare", f"runs=[{listed}]",
                 "task.n_resamples=500", *overrides)  # fmt: skip
    cfg = compose_config("analyze", list(overrides), output, data_dir)
    GlobalHydra.instance().clear()
    return run_analysis(cfg)


def test_compare_task_writes_its_report(tiny_runs, fake_data_dir, tmp_path) -> None:
    report = run_compare(tmp_path / "pair", fake_data_dir, tiny_runs).read_text()
    saved = json.loads((tmp_path / "pair" / "compare.json").read_text())
    result = saved["comparisons"][0]
    a, b = (load_predictions(r / "predictions.npz") for r in tiny_runs)
    correct_a, correct_b = a["predicted"] == a["labels"], b["predicted"] == b["labels"]
    expected = compare.mcnemar_exact(correct_a, correct_b)
    assert result["mcnemar"]["p_value"] == pytest.approx(expected.p_value)
    assert result["bootstrap"]["estimate"] == pytest.approx(correct_b.mean() - correct_a.mean())
    assert result["bootstrap"]["n_resamples"] == 500
    assert "significant at 5%" in result["summary"] and result["summary"] in report
    assert "McNemar exact p" in report and "## Summary" in report
    for figure in ("recall_difference_0.png", "disagreements_0.png"):
        assert (tmp_path / "pair" / figure).exists() and figure in report
    assert list((tmp_path / "pair" / "tensorboard").glob("events.out.tfevents.*"))


def test_compare_seed_groups_of_a_sweep(tiny_runs, fake_data_dir, tmp_path) -> None:
    sweep = fake_sweep(tmp_path / "sweep", tiny_runs, ["optimizer.lr=0.1", "optimizer.lr=0.2"])
    report = run_compare(tmp_path / "groups", fake_data_dir, [sweep]).read_text()
    result = json.loads((tmp_path / "groups" / "compare.json").read_text())["comparisons"][0]
    a, b = (load_predictions(r / "predictions.npz") for r in tiny_runs)
    ensemble = ((a["probabilities"] + b["probabilities"]) / 2).argmax(1)
    assert result["accuracy_a"] == pytest.approx((ensemble == a["labels"]).mean())
    assert result["across_seeds"]["welch"]["p_value"] == pytest.approx(1.0)  # the same runs
    assert "Welch p = 1" in result["summary"] and "not significant" in result["summary"]
    assert "ensemble acc" in report and "exact permutation test" in report


def test_compare_needs_two_runs_with_predictions(tiny_runs, fake_data_dir, tmp_path) -> None:
    with pytest.raises(ConfigError, match="two or more runs"):
        run_compare(tmp_path / "one", fake_data_dir, tiny_runs[:1])
    old = tmp_path / "old_run"
    shutil.copytree(tiny_runs[0], old)
    (old / "predictions.npz").unlink()
    with pytest.raises(ConfigError, match=f"got 1: .*; left out {old}: unreadable: no predic"):
        run_compare(tmp_path / "old", fake_data_dir, [old, tiny_runs[1]])
    with pytest.raises(ConfigError, match="neither a finished run"):
        run_compare(tmp_path / "none", fake_data_dir, [tmp_path / "missing", tiny_runs[1]])


def changed_copy(run: Path, folder: Path, change) -> Path:
    """A copy of ``run`` whose three prediction arrays went through ``change``."""
    shutil.copytree(run, folder)
    arrays = load_predictions(folder / "predictions.npz")
    np.savez(folder / "predictions.npz", **{k: change(v) for k, v in arrays.items()})
    return folder


def test_compare_refuses_runs_that_saw_other_images(tiny_runs, fake_data_dir, tmp_path) -> None:
    """Issue 30: B rolled by one row gave a paired interval of [-0.67, +0.66] and rc 0."""
    a = tiny_runs[0]
    rolled = changed_copy(tiny_runs[1], tmp_path / "rolled", lambda v: np.roll(v, 1, axis=0))
    n = len(load_predictions(a / "predictions.npz")["labels"])
    differ = int((np.roll(load_predictions(a / "predictions.npz")["labels"], 1)
                  != load_predictions(a / "predictions.npz")["labels"]).sum())  # fmt: skip
    with pytest.raises(ConfigError, match=rf"^{rolled} and {a} disagree on the labels "
                       rf"of {differ:,} of the {n:,} test images[^\n]*$"):  # fmt: skip
        run_compare(tmp_path / "r", fake_data_dir, [a, rolled])
    half = changed_copy(tiny_runs[1], tmp_path / "half", lambda v: v[: n // 2])
    with pytest.raises(ConfigError, match=rf"^{half} holds {n // 2} test predictions and "
                       rf"{a} {n}: compare runs tested on the same test set"):  # fmt: skip
        run_compare(tmp_path / "h", fake_data_dir, [a, half])
    # Both runs agree with each other, but not with the data config's test set.
    rolled_a = changed_copy(a, tmp_path / "rolled_a", lambda v: np.roll(v, 1, axis=0))
    with pytest.raises(ConfigError, match="data config's test set .* point data.root"):
        run_compare(tmp_path / "t", fake_data_dir, [rolled_a, rolled])
    # An exact copy pairs: the difference is exactly zero.
    run_compare(tmp_path / "same", fake_data_dir, [a, changed_copy(a, tmp_path / "copy", np.copy)])
    result = json.loads((tmp_path / "same" / "compare.json").read_text())["comparisons"][0]
    assert result["bootstrap"]["low"] == result["bootstrap"]["high"] == 0.0


def test_compare_leaves_out_an_unreadable_run_and_compares_the_rest(
    tiny_runs, fake_data_dir, tmp_path
) -> None:
    cut = tmp_path / "cut"
    shutil.copytree(tiny_runs[0], cut)
    (cut / "predictions.npz").write_bytes((cut / "predictions.npz").read_bytes()[:200])
    report = run_compare(tmp_path / "out", fake_data_dir, [*tiny_runs, cut]).read_text()
    saved = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert len(saved["comparisons"]) == 1  # the two readable runs
    assert f"- {cut}: unreadable: predictions.npz: " in report
