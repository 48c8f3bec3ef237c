"""The package as a user installs it: the console scripts find their configs from any directory.

Each test builds fmnist as pip does (setuptools' PEP 517 backend, as with
``--no-build-isolation``), installs it with ``--no-deps`` into a fresh, empty virtualenv, and
only then lets the child import this interpreter's site-packages (torch, Lightning, ...)
through a ``.pth`` file, so nothing is downloaded and pip never sees this environment's own
fmnist. A plain path in a ``.pth`` file does not run the ``.pth`` files found there, so an
editable install of fmnist here stays out of the child's way: the tests check that fmnist is
imported from the fresh install.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from fmnist.data.synthetic import SYNTHETIC_DATA_OVERRIDES

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
#: Not copied for the build: the build needs the package, conf/, and what pyproject.toml names.
SKIP_AT_TOP = {".git", ".venv", "logs", "data", "build", "dist", "outputs", "multirun"}
WHERE = "import fmnist, fmnist.config as c; print(fmnist.__file__); print(c.CONF_DIR)"


def copy_source(destination: Path) -> Path:
    """The repository without its runs, data and build leftovers: the build writes build/ and
    an .egg-info into the tree it builds, which must not be the one other runs use."""
    import shutil

    def ignore(directory: str, names: list[str]) -> list[str]:
        top = Path(directory) == ROOT
        return [
            n
            for n in names
            if (top and n in SKIP_AT_TOP) or n == "__pycache__" or n.endswith(".egg-info")
        ]

    shutil.copytree(ROOT, destination, ignore=ignore)
    return destination


def fresh_venv(path: Path) -> tuple[Path, Path]:
    """A virtualenv with nothing installed; returns its python and its site-packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    own_site = Path(subprocess.check_output([python, "-c", purelib], text=True).strip())
    return python, own_site


def borrow_dependencies(own_site: Path) -> None:
    """Make this interpreter's site-packages importable in the child, after its own."""
    (own_site / "_fmnist_test_dependencies.pth").write_text("\n".join(site.getsitepackages()))


def install(source: Path, python: Path, editable: bool) -> None:
    """Build ``source`` with this interpreter's setuptools, install it with this interpreter's
    pip into the child (which has no pip, setuptools or anything else of its own)."""
    hook = "build_editable" if editable else "build_wheel"
    build = f"import sys; from setuptools import build_meta; print(build_meta.{hook}(sys.argv[1]))"
    wheels = source.parent / "wheels"
    wheel = subprocess.run(
        [sys.executable, "-c", build, str(wheels)], cwd=source, check=True, capture_output=True,
        text=True,
    ).stdout.splitlines()[-1]  # fmt: skip
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps"]
    subprocess.run([*pip, "--quiet", str(wheels / wheel)], check=True)


def run(command: list[str | Path], cwd: Path) -> subprocess.CompletedProcess:
    """Run a command in ``cwd`` as a user would: without this test run's PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FMNIST_ROOT")}
    result = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{command[0]} failed:\n{result.stdout}\n{result.stderr}"
    return result


def only_run_dir(runs: Path) -> Path:
    [run_dir] = list(runs.iterdir())  # one run, in the directory the command ran in
    return run_dir


def test_wheel_install_runs_from_any_directory(tmp_path: Path, fake_data_dir: Path) -> None:
    """``pip install .`` (not editable), then the console scripts from another directory."""
    source = copy_source(tmp_path / "source")
    python, own_site = fresh_venv(tmp_path / "venv")
    install(source, python, editable=False)
    borrow_dependencies(own_site)
    bin_dir, work = python.parent, tmp_path / "elsewhere"
    work.mkdir()

    module_file, conf_dir = run([python, "-c", WHERE], work).stdout.split()
    assert Path(module_file).is_relative_to(own_site)  # the wheel, not the source tree
    assert Path(conf_dir) == own_site / "fmnist" / "conf"

    data = [*SYNTHETIC_DATA_OVERRIDES, f"data.root={fake_data_dir}"]
    run([bin_dir / "fmnist-train", "trainer=debug", "logger=none", "callbacks=none", *data], work)
    run_dir = only_run_dir(work / "logs" / "train" / "runs")
    assert (run_dir / "train.log").is_file()  # the log is named after the task, as before
    assert OmegaConf.load(run_dir / "config.yaml").data.root == str(fake_data_dir)
    assert 0.0 <= json.loads((run_dir / "metrics.json").read_text())["test/acc"] <= 1.0

    run([bin_dir / "fmnist-analyze", "task=eda", "task.n_random_pixels=1", *data], work)
    assert (only_run_dir(work / "logs" / "analyze" / "runs") / "report.md").is_file()

    for command, args, line in (
        ("fmnist-predict", ["ckpt=x", "images=y"], "top_k: 3"),
        ("fmnist-export", ["ckpt=x"], "format: onnx"),
    ):  # composed from the packaged configs (--cfg job shows the config and runs nothing)
        assert line in run([bin_dir / command, "--cfg", "job", *args], work).stdout.splitlines()


def test_editable_install_reads_the_source_tree(tmp_path: Path) -> None:
    """``pip install -e .`` (as the Makefile does): code and configs come from the checkout."""
    source = copy_source(tmp_path / "source")
    python, own_site = fresh_venv(tmp_path / "venv")
    install(source, python, editable=True)
    borrow_dependencies(own_site)
    work = tmp_path / "elsewhere"
    work.mkdir()

    module_file, conf_dir = run([python, "-c", WHERE], work).stdout.split()
    assert Path(module_file) == source / "fmnist" / "__init__.py"
    assert Path(conf_dir) == source / "conf"
    shown = run([python.parent / "fmnist-train", "--cfg", "job", "model.hidden=7"], work)
    assert "  hidden: 7" in shown.stdout.splitlines()
