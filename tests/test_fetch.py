"""Getting the dataset on a fresh machine (fmnist.data.fetch), with apt-get and torchvision's
download replaced by fakes: no network, no root."""

from __future__ import annotations

import logging
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import fmnist.data.files
from bench.synthetic import write_synthetic_dataset
from fmnist.cli import fetch_main
from fmnist.data import fetch
from fmnist.data.files import HOW_TO_GET_DATA, find_data_files

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def system_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty stand-in for Debian's /usr/share/datasets/fashion-mnist."""
    folder = tmp_path / "system"
    monkeypatch.setattr(fmnist.data.files, "SYSTEM_DATA_DIR", folder)
    return folder


@pytest.fixture
def fake_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, system_dir: Path):
    """Root, with an apt-get on PATH that logs its arguments and whose ``install`` copies the
    files into ``system_dir`` (or fails like an offline machine, with ``works=False``)."""
    source = write_synthetic_dataset(tmp_path / "debian_package")
    calls, bin_dir = tmp_path / "apt_calls.txt", tmp_path / "bin"

    def make(works: bool = True) -> Path:
        bin_dir.mkdir()
        copy = f'mkdir -p "{system_dir}" && cp "{source}"/* "{system_dir}"'
        install = copy if works else "exit 100"
        script = bin_dir / "apt-get"
        script.write_text(
            f'#!/bin/sh\necho "$@" >> "{calls}"\n[ "$1" = install ] || exit 0\n{install}\n'
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
        monkeypatch.setattr(fetch.os, "geteuid", lambda: 0)
        return calls

    return make


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision's download, which must not happen."""

    def download(*args, **kwargs):
        raise AssertionError("torchvision's download was called")

    monkeypatch.setattr("torchvision.datasets.FashionMNIST", download)


def test_data_in_root_is_used_as_it_is(tmp_path: Path, fake_apt, no_download) -> None:
    root = write_synthetic_dataset(tmp_path / "data")
    calls = fake_apt()
    assert fetch_main([f"data.root={root}"]) == 0
    assert not calls.exists()  # apt-get was never run
    assert fetch.fetch(root, download=True) == find_data_files(root)


def test_apt_as_root_installs_debians_package(tmp_path: Path, fake_apt, system_dir, no_download):
    calls = fake_apt()
    assert fetch_main([f"data.root={tmp_path / 'data'}", "data.download=false"]) == 0
    assert calls.read_text().splitlines() == ["update -qq", "install -y -qq dataset-fashion-mnist"]
    assert find_data_files(system_dir) is not None
    assert not (tmp_path / "data").exists()


def test_download_when_apt_fails(tmp_path: Path, fake_apt, monkeypatch) -> None:
    calls = fake_apt(works=False)
    downloads = []

    def fake_fashion_mnist(root: str, train: bool, download: bool) -> None:
        downloads.append((train, download))  # torchvision's layout: <root>/FashionMNIST/raw
        write_synthetic_dataset(Path(root) / "FashionMNIST" / "raw")

    monkeypatch.setattr("torchvision.datasets.FashionMNIST", fake_fashion_mnist)
    root = tmp_path / "data"
    assert fetch_main([f"data.root={root}"]) == 0
    assert "install -y -qq dataset-fashion-mnist" in calls.read_text().splitlines()
    assert downloads == [(True, True), (False, True)]
    assert find_data_files(root)["train-images-idx3-ubyte"].parent == root / "FashionMNIST" / "raw"


@pytest.mark.parametrize("why", ["not root", "no apt-get"])
def test_no_way_left_is_the_message(
    why: str, tmp_path: Path, system_dir, monkeypatch, caplog, no_download
) -> None:
    if why == "not root":
        monkeypatch.setattr(fetch.os, "geteuid", lambda: 1000)
    else:
        monkeypatch.setenv("PATH", str(tmp_path))  # an apt-get-free PATH
    args = [f"data.root={tmp_path / 'data'}", "data.download=false"]
    caplog.set_level(logging.INFO)
    with pytest.raises(SystemExit) as exit_info:  # make train stops here
        fetch_main(args)
    assert exit_info.value.code == 1
    assert HOW_TO_GET_DATA in caplog.text and "Not root, or no apt-get" in caplog.text

    caplog.clear()
    assert fetch_main(["--optional", *args]) == 0  # make test goes on, without the real data
    assert HOW_TO_GET_DATA in caplog.text and "marked real_data will be skipped" in caplog.text


@pytest.mark.slow
def test_real_data_tests_are_skipped_without_the_data(tmp_path: Path) -> None:
    """``make test`` on a machine where the data could not be got: skipped, saying why."""
    run_tests = (
        "import sys, pathlib, pytest, fmnist.data.files as files; "
        "files.SYSTEM_DATA_DIR = pathlib.Path(sys.argv[1]); sys.exit(pytest.main(sys.argv[2:]))"
    )
    args = ["-q", "-rs", "-p", "no:cacheprovider", "-m", "real_data", "tests/test_data.py"]
    result = subprocess.run(
        [sys.executable, "-c", run_tests, str(tmp_path / "system"), *args],
        cwd=ROOT,
        env={**os.environ, "FMNIST_ROOT": str(tmp_path)},  # data.root: an empty folder
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b\d+ skipped", result.stdout) and " passed" not in result.stdout
    assert f"Fashion-MNIST is in neither {tmp_path}/data nor {tmp_path}/system" in result.stdout
