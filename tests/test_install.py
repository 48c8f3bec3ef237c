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

import csv
import os
import site
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_tested
from omegaconf import OmegaConf
from PIL import Image

from bench.stand_ins import as_photo, png_bytes
from bench.synthetic import SYNTHETIC_DATA_OVERRIDES, make_images

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


def declared_distributions(extras: tuple[str, ...] = ()) -> set[str]:
    """The distributions ``pip install .[extras]`` brings: fmnist's requirements (and the
    extras'), then theirs, recursively, with markers evaluated for this interpreter."""
    from importlib import metadata

    import tomllib
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [
        *project["dependencies"],
        *(r for e in extras for r in project["optional-dependencies"][e]),
    ]
    todo, seen = [Requirement(r) for r in wanted], set()
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        for line in metadata.requires(name) or []:
            needed = Requirement(line)
            if needed.marker is None or any(
                needed.marker.evaluate({"extra": e}) for e in (*requirement.extras, "")
            ):
                todo.append(needed)
    return {name for name, _ in seen}


def borrow_only(own_site: Path, distributions: set[str]) -> None:
    """Make only ``distributions`` of this interpreter importable in the child: a folder of
    links to their top-level files, as a fresh ``pip install`` of them would lay out. What
    fmnist imports without declaring it then fails there as it fails for a user."""
    from importlib import metadata

    from packaging.utils import canonicalize_name

    borrowed = own_site.parent / "borrowed"
    borrowed.mkdir()
    for dist in metadata.distributions():
        if canonicalize_name(dist.metadata["Name"]) not in distributions:
            continue
        tops = {f.parts[0] for f in dist.files or () if f.parts[0] not in ("..", "__pycache__")}
        for top in tops - {t for t in tops if t.endswith(".pth")}:
            link = borrowed / top
            if not link.exists():  # a namespace folder (nvidia/, google/) is shared: link once
                link.symlink_to(Path(dist.locate_file(top)))
    (own_site / "_fmnist_test_dependencies.pth").write_text(str(borrowed))


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
    assert_tested(run_dir, 64)  # trainer=debug: one test batch

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


def plain_install(tmp_path: Path, extras: tuple[str, ...] = ()) -> Path:
    """The wheel in a fresh virtualenv that sees only what ``pip install .[extras]`` brings;
    returns its python."""
    source = copy_source(tmp_path / "source")
    python, own_site = fresh_venv(tmp_path / "venv")
    install(source, python, editable=False)
    borrow_only(own_site, declared_distributions(extras))
    return python


def user_images(folder: Path) -> tuple[list[Path], list[np.ndarray]]:
    """Three tiles as one .npy array, a tile as PNG, and a photo of one as JPEG (the photo
    takes the conversion's item-finding path): the files and the arrays predict reads."""
    tiles = make_images(torch.tensor([0, 3, 7, 9, 5]), seed=11).numpy()
    folder.mkdir()
    np.save(folder / "three.npy", tiles[:3])
    Image.fromarray(tiles[3]).save(folder / "tile.png")
    Image.fromarray(as_photo(tiles[4])).save(folder / "photo.jpg", quality=95)
    arrays = [*tiles[:3], tiles[3], np.asarray(Image.open(folder / "photo.jpg"))]
    return sorted(folder.iterdir()), arrays


def test_a_plain_install_predicts_arrays_and_photos(
    tmp_path: Path, tiny_checkpoint: Path, fake_data_dir: Path
) -> None:
    """``pip install .`` and nothing else (no extras: no scikit-image), then ``fmnist-predict``
    from another directory on .npy, PNG and JPEG files: the classes and probabilities that
    the development environment computes for the same files."""
    from fmnist.inference.images import load_inputs
    from fmnist.training.load import load_classifier

    python = plain_install(tmp_path)
    work = tmp_path / "elsewhere"
    files, _ = user_images(work)
    missing = subprocess.run([python, "-c", "import skimage"], cwd=work, capture_output=True)
    assert missing.returncode != 0  # the child sees only what the core install declares

    run([python.parent / "fmnist-predict", f"ckpt={tiny_checkpoint}", f"images={work}",
         f"output={work / 'out.csv'}", f"ood.data_root={fake_data_dir}",
         "ood.search_system=false", "ood.strict=false", "progress=false"], work)  # fmt: skip
    with (work / "out.csv").open() as file:
        rows = list(csv.DictReader(file))
    inputs = load_inputs(files)
    module, _ = load_classifier(tiny_checkpoint)
    expected = module.predict_proba(torch.from_numpy(np.stack(inputs.images)))
    assert [r["source"] for r in rows] == inputs.sources and len(rows) == 5
    assert [int(r["label"]) for r in rows] == expected.argmax(1).tolist()
    got = np.array([float(r["probability"]) for r in rows])
    np.testing.assert_allclose(got, expected.max(1).values.numpy(), atol=1e-5)


def test_a_serve_install_answers_photos_over_http(
    tmp_path: Path, tiny_checkpoint: Path, fake_data_dir: Path
) -> None:
    """``pip install .[serve]`` and nothing else: the server converts a photo and answers
    with the class the development environment's conversion and model give."""
    from bench.serving import post, served
    from fmnist.inference.convert import convert
    from fmnist.training.load import load_classifier

    python = plain_install(tmp_path, ("serve",))
    photo = as_photo(make_images(torch.tensor([7]), seed=3).numpy()[0])
    overrides = [f"ckpt={tiny_checkpoint}", f"ood.data_root={fake_data_dir}",
                 "ood.search_system=false", "ood.strict=false"]  # fmt: skip
    with served(overrides, tmp_path / "serve", python=python) as url:
        status, answer = post(f"{url}/predict", png_bytes(photo), "image/png")
    assert status == 200, answer
    module, _ = load_classifier(tiny_checkpoint)
    tile = torch.from_numpy(convert(photo).tile)[None]
    assert answer["predictions"][0]["label"] == int(module.predict_proba(tile).argmax())


def test_a_missing_package_is_named_not_blamed_on_the_file(tmp_path: Path, monkeypatch) -> None:
    """An import that fails while reading images stops with the package and its install line,
    instead of skipping every file as unreadable."""
    from fmnist.errors import MissingPackageError
    from fmnist.inference import images

    def needs_skimage(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'skimage'", name="skimage")

    monkeypatch.setattr(images, "convert", needs_skimage)
    np.save(tmp_path / "x.npy", np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(MissingPackageError, match=r"'scikit-image'.*pip install scikit-image"):
        images.load_inputs([tmp_path / "x.npy"])
