"""The benchmark harness in tiny mode: every part runs and the results file is well-formed;
the frontier's statistics, the FLOP count, the metrics accessor, the load guard and the CPU
precision resolver."""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from conftest import compose_config
from matplotlib.image import imread
from omegaconf import OmegaConf
from omegaconf.errors import UnsupportedInterpolationType

import fmnist.hardware as hardware  # its resolver fmnist.cpu_precision: fmnist.config
from bench.ablations import TABLES, run_folder, run_seed
from bench.context import Context
from bench.flops import training_flops_per_image
from bench.parts import PARTS
from bench.readme import main as readme_main
from bench.readme import pages, synced, tasks_table
from bench.report import presets_table
from bench.run import main
from bench.synthetic import SYNTHETIC_DATA_OVERRIDES, write_synthetic_dataset
from bench.targets import PRESETS, REFERENCE_PEAK
from bench.timing import LoadGuard
from fmnist.models import CNN

ROOT = Path(__file__).resolve().parents[1]

#: Two speedrun seeds (a spread and a std), the first seed of every other preset.
TINY_PRESETS = ["speedrun:0,1", *(name for name in PRESETS if name != "speedrun")]


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One tiny run of every part (the slow step of this file), shared by its tests."""
    out = tmp_path_factory.mktemp("bench")
    runs = ["--keep-runs", str(out / "runs")]
    main(["--tiny", "--parts", *PARTS, "--presets", *TINY_PRESETS, "--out", str(out), *runs])
    return out, json.loads((out / "results.json").read_text())


def test_tiny_benchmark_writes_well_formed_results(tiny_bench: tuple[Path, dict]) -> None:
    out, results = tiny_bench
    assert results["tiny"] is True
    assert set(results["parts"]) == set(PARTS)
    assert results["machine"]["cores"] >= 1 and results["machine"]["torch"]
    assert set(results["machine"]["cpu_flags"]) <= set(hardware.SPEED_FLAGS)

    speedrun = results["parts"]["speedrun"]
    (run,) = speedrun["runs"]
    assert 0.0 <= run["test_acc"] <= 1.0 and run["steps"] == 3 and run["images"] == 3 * 32
    assert 0 < run["loop_s"] <= run["fit_s"] <= run["wall_s"]
    assert speedrun["all_reached_target"] == (run["test_acc"] >= speedrun["target_acc"])
    assert speedrun["target_s"] == PRESETS["speedrun"].max_s

    overhead = results["parts"]["overhead"]
    assert len(overhead["plain_loop_s"]) == len(overhead["lightning_loop_s"]) == 3
    ratio = sum(overhead["lightning_loop_s"]) / sum(overhead["plain_loop_s"])
    assert abs(overhead["ratio"] - ratio) < 1e-9

    data = results["parts"]["data"]
    assert data["dataloader_batches_per_s"] > 0 and data["model_steps_per_s"] > 0
    assert 0 < data["data_share_of_step"] < 1  # the model step includes the data

    callbacks = results["parts"]["callbacks"]["runs"]
    assert {"none", "default"} <= set(callbacks) and callbacks["none"]["added_s"] == 0
    default = callbacks["default"]
    epochs = results["parts"]["callbacks"]["default_epochs"]
    base_run = callbacks["none"]["wall_s"] + (epochs - 1) * callbacks["none"]["loop_s"]
    assert default["added_share_of_default_run"] == pytest.approx(default["added_s"] / base_run)
    assert set(results["parts"]["full"]["runs"]) == {"default", "seed"}

    for part in results["parts"].values():  # the load around every part; tiny never repeats
        load = part["load"]
        assert len(load["before"]) == len(load["after"]) == 3 and load["repeated"] is False

    table = (out / "results.md").read_text()
    # its rows, its load row, its frontier row and its precision row
    assert table.count("| speedrun |") == 3 + 1 + 1 + 1
    assert "| overhead |" in table
    assert "tiny mode" in table and "| load average (1 min) at start -> end |" in table
    assert table.count("| callbacks | callbacks=") == len(callbacks) - 1  # each against none


def test_tiny_precision_trains_each_preset_in_both_precisions_seed_by_seed(
    tiny_bench: tuple[Path, dict],
) -> None:
    out, results = tiny_bench
    presets = results["parts"]["precision"]["presets"]
    assert list(presets) == list(PRESETS)
    for name, p in presets.items():
        runs = p["runs"]
        assert [r["seed"] for r in runs["32-true"]] == [r["seed"] for r in runs["bf16-mixed"]]
        for precision, done in runs.items():
            for run in done:  # the run really trained in that precision (its saved config)
                (folder,) = (out / "runs").glob(f"run*-precision-{name}-{precision}-s{run['seed']}")
                saved = yaml.safe_load((folder / "config.yaml").read_text())
                assert saved["trainer"]["precision"] == precision
            assert p["summary"][precision]["test_acc"] == [r["test_acc"] for r in done]
        ratios = [a["fit_s"] / b["fit_s"] for a, b in zip(*runs.values(), strict=True)]
        assert p["speedup_median"] == pytest.approx(statistics.median(ratios))
    assert (out / "results.md").read_text().count("| speedrun | 0, 1 |") == 1


def _check_preset(name: str, p: dict[str, Any], peak: dict[str, Any]) -> None:
    """One preset's record: values in range and its summary consistent with its runs."""
    target = PRESETS[name]
    assert [r["seed"] for r in p["runs"]] == p["seeds"]
    accs = [r["test_acc"] for r in p["runs"]]
    assert all(0.0 <= a <= 1.0 for a in accs)
    assert p["acc_mean"] == pytest.approx(statistics.mean(accs)) and p["acc_min"] == min(accs)
    assert p["acc_std"] == (pytest.approx(statistics.stdev(accs)) if len(accs) > 1 else None)
    for run in p["runs"]:
        assert run["steps"] == 3 and run["images"] == 3 * 32
        assert 0 < run["loop_s"] <= run["fit_s"] <= run["wall_s"]
        expected = p["flops_per_image"] * run["images"] / run["loop_s"] / 1e9
        assert run["gflops"] == pytest.approx(expected)
    for key in ("fit_s", "wall_s"):
        times = [r[key] for r in p["runs"]]
        assert p[key] == {"median": statistics.median(times), "min": min(times), "max": max(times)}
    by_seed = dict(zip(p["seeds"], accs, strict=True))
    own = all(by_seed.get(seed, 1.0) >= acc for seed, acc in target.seed_acc)
    assert p["every_seed_reached_acc"] == (min(accs) >= target.min_acc and own)
    mean_met = p["acc_mean"] >= (target.min_mean_acc or 0)
    assert p["acc_met"] == (p["every_seed_reached_acc"] and mean_met)
    # Times normalized by the higher of the peaks read before and after the preset.
    fp32 = p["peak"]["fp32"]
    assert fp32 == max(p["peak"]["fp32_before"], p["peak"]["fp32_after"])
    median = p[target.time]["median"] * fp32 / REFERENCE_PEAK
    assert p["normalized"][target.time]["median"] == pytest.approx(median)
    assert p["time_met"] == (median <= target.max_s)
    assert p["met"] == (p["acc_met"] and p["time_met"])
    assert p["flops_per_image"] > 1e6  # every preset's net: millions of FLOPs per image
    used = p["peak"]["bf16"] if "bf16" in p["precision"] else fp32
    assert p["peak_gflops"] == used and p["peak_share"] == pytest.approx(p["gflops"] / used)
    assert p["load"]["repeated"] is False and len(p["load"]["before"]) == 3


def test_tiny_ablations_keep_a_technique_only_when_it_raises_validation_accuracy(
    tiny_bench: tuple[Path, dict],
) -> None:
    """Greedy forward selection: each row builds on the best row so far, is kept only when
    its mean validation accuracy beats that row's, and its deltas are against that row."""
    out, results = tiny_bench
    table = results["parts"]["ablations"]["tables"]["quick"]
    base, *rows = table["rows"]
    assert base["overrides"] == list(TABLES["quick"].baseline) and len(rows) == 2
    best, kept = base, list(TABLES["quick"].baseline)
    for row, technique in zip(rows, TABLES["quick"].techniques, strict=False):
        assert row["overrides"] == [*kept, *technique.overrides]
        assert row["val_mean"] == pytest.approx(statistics.mean(r["val_acc"] for r in row["runs"]))
        assert row["delta_val"] == pytest.approx(row["val_mean"] - best["val_mean"])
        assert row["kept"] == (row["val_mean"] > best["val_mean"])
        if row["kept"]:
            best, kept = row, row["overrides"]
        peak = row["peak_gflops"]
        assert row["normalized_fit_s"] == pytest.approx(row["fit_s"] * peak / REFERENCE_PEAK)
    assert table["final"] == kept
    # Each run's record is what its own metrics.json says.
    run = rows[0]["runs"][0]
    folder = out / "runs" / f"{run_folder('quick', rows[0]['name'])}-s{run['seed']}"
    assert json.loads((folder / "metrics.json").read_text())["val/acc_best"] == run["val_acc"]


def test_an_ablation_run_spelled_otherwise_is_read_back_not_trained(tmp_path: Path) -> None:
    """A table whose overrides changed spelling but compose the same config (a baseline that
    undoes what its preset took up since) reads its kept runs back; another config trains."""
    data = write_synthetic_dataset(tmp_path / "data", 24, 8)
    base = [f"data.root={data}", *SYNTHETIC_DATA_OVERRIDES]
    ctx = Context(workdir=tmp_path / "runs", tiny=True, base_overrides=base)
    baseline = list(TABLES["quick"].baseline)
    first = run_seed(ctx, baseline, 0, "row")
    same = run_seed(ctx, [*baseline, "model.kernel_size=3"], 0, "row")  # the default size
    other = run_seed(ctx, [*baseline, "model.kernel_size=5"], 0, "row")
    assert same["read_back"] and "read_back" not in first and "read_back" not in other
    assert same["overrides"] == [*baseline, "model.kernel_size=3"]
    assert (same["wall_s"], same["test_acc"]) == (first["wall_s"], first["test_acc"])
    saved = yaml.safe_load((tmp_path / "runs" / "row-s0" / "config.yaml").read_text())
    assert saved["model"]["kernel_size"] == 5  # the other config's run replaced the first


def test_tiny_frontier_records_every_preset_and_draws_the_figure(
    tiny_bench: tuple[Path, dict],
) -> None:
    out, results = tiny_bench
    frontier = results["parts"]["frontier"]
    assert list(frontier["presets"]) == list(PRESETS)
    assert frontier["presets"]["speedrun"]["seeds"] == [0, 1]
    assert all(
        frontier["presets"][n]["seeds"] == [PRESETS[n].seeds[0]] for n in PRESETS if n != "speedrun"
    )
    peak = frontier["peak_gflops"]
    assert peak["fp32"] > 0 and (peak["bf16"] is None) == (not hardware.has_bf16_hardware())
    for name, preset in frontier["presets"].items():
        _check_preset(name, preset, peak)
    # The cnn FLOPs scale as the nets do: cpu_best has two convs per block of the default's.
    flops = {n: p["flops_per_image"] for n, p in frontier["presets"].items()}
    assert flops["speedrun"] == flops["quick"] < flops["default"] < flops["cpu_best"]
    assert frontier["reference"]["time_s"] == (
        134.0 if "amx_bf16" in hardware.cpu_flags() else 104.0
    )

    # --keep-runs: each frontier run's directory stays, named by preset and seed, with the
    # metrics the bench recorded (analyze.py task=compare/robustness read these directories).
    for name, preset in frontier["presets"].items():
        for run in preset["runs"]:
            (kept,) = (out / "runs").glob(f"run*-frontier-{name}-s{run['seed']}")
            assert json.loads((kept / "metrics.json").read_text())["test/acc"] == run["test_acc"]
            recorded = list(OmegaConf.load(kept / ".hydra" / "overrides.yaml"))
            assert {*PRESETS[name].overrides, f"seed={run['seed']}"} <= set(recorded)

    figure = out / frontier["figure"]
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = imread(figure)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 500 and pixels.std() > 0  # not blank

    table = (out / "results.md").read_text()
    for name, preset in PRESETS.items():
        assert f"| {name} | `{preset.command}` |" in table
    assert "frontier.png" in table and "GFLOP/s" in table


def test_a_second_run_of_one_preset_keeps_the_other_parts_and_presets(
    tiny_bench: tuple[Path, dict], tmp_path: Path
) -> None:
    out, first = tiny_bench
    shutil.copy(out / "results.json", tmp_path / "results.json")
    main(["--tiny", "--parts", "frontier", "--presets", "quick:1", "--out", str(tmp_path)])
    second = json.loads((tmp_path / "results.json").read_text())
    assert set(second["parts"]) == set(PARTS)
    presets = second["parts"]["frontier"]["presets"]
    assert list(presets) == list(PRESETS) and presets["quick"]["seeds"] == [1]
    assert presets["speedrun"] == first["parts"]["frontier"]["presets"]["speedrun"]


def test_presets_option_rejects_an_unknown_preset_or_seed(capsys: pytest.CaptureFixture) -> None:
    for bad, message in (("quik", "unknown preset 'quik'"), ("quick:a", "must be integers")):
        with pytest.raises(SystemExit):
            main(["--tiny", "--parts", "frontier", "--presets", bad])
        assert message in capsys.readouterr().err


def test_training_flops_of_a_tiny_conv_net_match_a_hand_count() -> None:
    # conv 1->2 channels, 3x3, same padding, 28x28 (no bias: not counted), 2x2 max pool,
    # linear 2*14*14=392 -> 10. A multiply-add is 2 FLOPs.
    net = CNN(filters=[2], kernel_size=3, batch_norm=False, dropout=0.0, hidden=0)
    conv = 2 * (28 * 28) * 2 * (1 * 3 * 3)  # 28,224 per image
    linear = 2 * 392 * 10  # 7,840
    # Backward: the conv's weight gradient only (the input needs none), the linear layer's
    # input and weight gradients.
    assert training_flops_per_image(net, batch_size=4) == 2 * conv + 3 * linear == 79_968
    with torch.device("meta"):  # counted from shapes alone, as for the presets
        assert training_flops_per_image(CNN(filters=[2], batch_norm=False, hidden=0), 4) == 79_968


def _fake_load(monkeypatch: pytest.MonkeyPatch, state: dict[str, float]) -> list[float]:
    """The 1-minute load average reads ``state["load"]``; sleeping is recorded, not done."""
    monkeypatch.setattr(os, "getloadavg", lambda: (state["load"], 1.0, 1.0))
    sleeps: list[float] = []
    monkeypatch.setattr(time, "sleep", sleeps.append)
    return sleeps


def test_load_guard_waits_then_repeats_a_piece_that_started_busy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = {"load": 3.0}
    sleeps = _fake_load(monkeypatch, state)
    starts: list[float] = []

    def piece() -> int:
        starts.append(state["load"])
        state["load"] = 0.5  # the other process finished during the first attempt
        return len(starts)

    result, record = LoadGuard(limit=1.5, max_wait_s=10, poll_s=5).run(piece)
    assert result == 2 and starts == [3.0, 0.5] and sleeps == [5, 5]  # waited 10 s, in vain
    assert record["repeated"] is True and record["before"][0] == 0.5 and record["waited_s"] == 0
    assert record["first_attempt"]["before"][0] == 3.0 and record["first_attempt"]["waited_s"] == 10


def test_load_guard_runs_once_when_quiet_and_repeats_only_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = {"load": 0.4}
    sleeps = _fake_load(monkeypatch, state)
    result, record = LoadGuard(max_wait_s=60).run(lambda: "ran")
    assert result == "ran" and sleeps == [] and record["repeated"] is False
    assert record["before"] == [0.4, 1.0, 1.0] and "first_attempt" not in record

    state["load"] = 9.0  # busy throughout: two attempts, then the result is kept anyway
    calls: list[int] = []
    _, record = LoadGuard(max_wait_s=0).run(lambda: calls.append(1))
    assert len(calls) == 2 and record["repeated"] is True and record["before"][0] == 9.0
    _, record = LoadGuard(repeat=False).run(lambda: calls.append(1))  # as in --tiny
    assert len(calls) == 3 and record["repeated"] is False


def _fake_cpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, flags: str) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Fake CPU\nflags\t\t: fpu sse2 {flags}\n")
    monkeypatch.setattr(hardware, "CPUINFO", cpuinfo)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [("avx2 avx512f amx_bf16 amx_tile", "bf16-mixed"), ("avx2 avx512f avx512_bf16", "bf16-mixed"),
     ("avx2 avx512f", "32-true"), ("avx2", "32-true")],
)  # fmt: skip
def test_cpu_runs_take_bf16_where_the_cpu_does_it_in_hardware_and_trainer_gpu_keeps_its_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, flags: str, expected: str
) -> None:
    def precision(*overrides: str) -> str:
        return compose_config("train", list(overrides), tmp_path).trainer.precision

    _fake_cpu(monkeypatch, tmp_path, flags)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert hardware.cpu_model() == "Fake CPU"
    assert precision() == precision("experiment=speedrun") == precision("trainer=cpu") == expected
    assert precision("trainer=gpu") == "bf16-mixed"  # the gpu config's own
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert precision() == "32-true"  # accelerator auto finds the GPU: not a CPU run
    assert precision("trainer=cpu") == expected
    # trainer=gpu replaces the preset's trainer; the preset's other trainer settings stay
    cfg = compose_config("train", ["experiment=speedrun", "trainer=gpu"], tmp_path)
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.max_steps == 430


def test_without_the_resolver_registered_the_error_names_it(tmp_path: Path) -> None:
    cfg = compose_config("train", ["experiment=speedrun"], tmp_path)
    OmegaConf.clear_resolver(hardware.RESOLVER)
    try:
        with pytest.raises(UnsupportedInterpolationType, match="fmnist.cpu_precision"):
            _ = cfg.trainer.precision
    finally:
        OmegaConf.register_new_resolver(hardware.RESOLVER, hardware.cpu_precision)


def test_readme_and_docs_quote_the_result_files_as_they_are() -> None:
    # Every table between include markers is the file a bench command wrote, byte for byte,
    # in the README and in every page under docs/: `python -m bench.readme --check` agrees.
    quoted = {page: page.read_text() for page in pages()}
    assert "<!-- include bench/results.json#presets -->" in quoted[ROOT / "README.md"]
    assert sum(text.count("<!-- include bench/") for text in quoted.values()) >= 4
    for page, text in quoted.items():
        folder = page.parent.relative_to(ROOT).as_posix()
        assert synced(text, ROOT, folder) == text, f"{page.name} is stale: python -m bench.readme"
    assert readme_main(["--check"]) == 0


def test_readme_sync_rewrites_only_the_include_blocks(tmp_path: Path) -> None:
    (tmp_path / "table.md").write_text("| a | 1 |\n")
    text = "intro\n<!-- include table.md -->\nold | 0\n<!-- end include -->\nafter\n"
    assert synced(text, tmp_path) == (
        "intro\n<!-- include table.md -->\n| a | 1 |\n<!-- end include -->\nafter\n"
    )
    # A figure next to the included file is linked from the including page's folder.
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "r.md").write_text("![fig](f.png) [web](https://x.org/a.png)\n")
    text = "<!-- include sub/r.md -->\n<!-- end include -->"
    assert "![fig](sub/f.png) [web](https://x.org/a.png)" in synced(text, tmp_path)
    assert "![fig](../sub/f.png)" in synced(text, tmp_path, "docs")
    assert "![fig](f.png)" in synced(text, tmp_path, "sub")
    with pytest.raises(FileNotFoundError, match="missing.md"):
        synced("<!-- include missing.md -->\n<!-- end include -->", tmp_path)
    with pytest.raises(KeyError, match="no view 'nope'"):
        (tmp_path / "r.json").write_text("{}")
        synced("<!-- include r.json#nope -->\n<!-- end include -->", tmp_path)


def test_the_tasks_view_lists_each_task_file_by_its_first_line(tmp_path: Path) -> None:
    (tmp_path / "eda.yaml").write_text("# task=eda: figures of the data.\n_target_: x\n")
    (tmp_path / "pca.yaml").write_text("# task=pca: components.\n# more\n")
    assert tasks_table(tmp_path).splitlines()[2:] == [
        "| `eda` | figures of the data. |",
        "| `pca` | components. |",
    ]
    (tmp_path / "tsne.yaml").write_text("# t-SNE\n")
    with pytest.raises(ValueError, match="tsne.yaml: its first line must be '# task=tsne: "):
        tasks_table(tmp_path)


def test_sync_writes_stale_pages_and_check_reports_them(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "t.md").write_text("new\n")
    for page in ("README.md", "docs/p.md"):
        (tmp_path / page).write_text("<!-- include t.md -->\nold\n<!-- end include -->\n")
    assert readme_main(["--root", str(tmp_path), "--check"]) == 1
    assert "old" in (tmp_path / "docs/p.md").read_text()  # --check writes nothing
    assert readme_main(["--root", str(tmp_path)]) == 0
    for page in ("README.md", "docs/p.md"):
        assert (tmp_path / page).read_text() == "<!-- include t.md -->\nnew\n<!-- end include -->\n"
    assert readme_main(["--root", str(tmp_path), "--check"]) == 0


def test_the_presets_view_is_the_frontier_in_short() -> None:
    # The README's table, read back, against the per-seed runs of bench/results.json.
    results = json.loads((ROOT / "bench/results.json").read_text())
    lines = presets_table(results).splitlines()
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in lines[4:]}
    assert list(rows) == list(results["parts"]["frontier"]["presets"])
    for name, preset in results["parts"]["frontier"]["presets"].items():
        accs = [100 * run["test_acc"] for run in preset["runs"]]
        _, command, acc, seeds, fit, wall, met = rows[name]
        assert command == f"`{preset['command']}`" and int(seeds) == len(accs)
        assert acc.startswith(f"{statistics.mean(accs):.2f}%")
        assert acc.endswith(f"({min(accs):.2f}%)")
        if len(accs) > 1:
            assert f"± {statistics.stdev(accs):.2f}" in acc
        assert fit == f"{statistics.median(r['fit_s'] for r in preset['runs']):.0f} s"
        assert wall == f"{statistics.median(r['wall_s'] for r in preset['runs']):.0f} s"
        assert met.rstrip(" |").startswith("**yes**" if preset["met"] else "no")
    assert "AMD EPYC (2 cores, no GPU)" in lines[0] or results["machine"]["gpu"]


def test_forget_drops_a_kept_part_and_kept_parts_say_when_they_were_measured(
    tiny_bench: tuple[Path, dict], tmp_path: Path
) -> None:
    out, results = tiny_bench
    shutil.copy(out / "results.json", tmp_path / "results.json")
    again = main(["--tiny", "--parts", "data", "--out", str(tmp_path)])
    assert again["parts_measured"] == ["data"]
    assert again["parts"]["speedrun"] == results["parts"]["speedrun"]  # kept as measured
    table = (tmp_path / "results.md").read_text()
    stamp = results["parts"]["speedrun"]["measured"]
    assert f"| speedrun | kept from an earlier command, measured | {stamp['date']} on " in table
    assert "| data | kept from" not in table

    rewritten = main(["--tiny", "--parts", "--forget", "full", "--out", str(tmp_path)])
    assert "full" not in rewritten["parts"] and rewritten["parts_measured"] == ["data"]
    assert rewritten["date"] == again["date"] and rewritten["machine"] == again["machine"]
    assert rewritten["command"].startswith(f"{again['command']}` then `python -m bench.run --tiny")
    assert "| full |" not in (tmp_path / "results.md").read_text()


def test_a_recorded_command_names_paths_relative_to_the_project() -> None:
    from bench.report import ROOT, command_line

    outside = ROOT.parent / "runs" / "abl"
    line = command_line("bench.run", ["--keep-runs", str(outside), f"--ckpt={ROOT / 'x.ckpt'}"])
    assert line == "python -m bench.run --keep-runs ../runs/abl --ckpt=x.ckpt"


#: An absolute path of a machine (a home, a work or temporary folder) in committed text.
MACHINE_PATH = re.compile(r"(?<![\w.~])/(?:home|work|tmp|root|Users|mnt|srv)/[\w.-]+")


def test_committed_results_and_docs_name_no_machine_paths() -> None:
    from bench.report import ROOT

    files = [ROOT / "README.md", *ROOT.glob("docs/**/*.md"), *ROOT.glob("bench/*.md"),
             *ROOT.glob("bench/*.json")]  # fmt: skip
    found = {f.relative_to(ROOT).as_posix(): MACHINE_PATH.findall(f.read_text()) for f in files}
    assert {name: paths for name, paths in found.items() if paths} == {}
