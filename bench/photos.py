"""Your own photos: `python -m bench.photos --ckpt PATH [--n 200] [--figure PATH]`.

Writes ``bench/photos.json`` and ``bench/photos.md`` (the README's numbers) for one checkpoint:

1. accuracy on ``--n`` seeded test images as the model sees them (the raw tiles) and as people
   would send them, through ``predict()``: re-rendered as 112x112 dark-on-white PNGs, and the
   same pasted off-centre on a 224x224 white canvas, with and without trimming (``trim=false``
   shrinks the whole frame, as prediction did before the dataset's conversion);
2. the share of images the OOD flag marks: the validation split (fitted to pass
   ``ood.pass_rate`` of it), the test set, scikit-learn's digits, uniform noise, and the test
   tiles inverted (dark on light, unconverted);
3. with ``--figure``, a contact sheet of a few re-rendered test items (photos, an off-centre
   canvas, a JPEG on grey paper, a transparent cut-out, a sideways JPEG with an EXIF
   orientation) and two non-clothing images, made by ``predict contact_sheet=true``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict
from PIL import Image

from bench.report import command_line, write_results
from fmnist.data import FashionMNISTDataModule, load_fashion_mnist
from fmnist.inference.ood import classify, detector_for, energy, mahalanobis
from fmnist.inference.predict import predict
from fmnist.inference.stand_ins import as_photo, digits, off_centre, uniform_noise, write_pngs
from fmnist.training.load import load_classifier

BENCH_DIR = Path(__file__).resolve().parent
CONF_DIR = BENCH_DIR.parent / "conf"


def predict_config(overrides: list[str], output_dir: Path) -> DictConfig:
    """conf/predict.yaml with ``overrides``, as the command line would compose it."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="predict", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    GlobalHydra.instance().clear()
    return cfg


def seeded_sample(images: torch.Tensor, labels: torch.Tensor, n: int, seed: int = 0) -> tuple:
    """``n`` seeded test images (uint8 numpy) and their labels."""
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
    return images[pick].numpy(), labels[pick].numpy()


def predicted_labels(ckpt: str | Path, folder: Path, *extra: str) -> np.ndarray:
    """The classes ``predict()`` gives the PNG files of ``folder``, in file order."""
    cfg = predict_config(
        [f"ckpt={ckpt}", f"images={folder}", "ood.enabled=false", "output=null", "print_limit=0",
         "progress=false", *extra],
        folder.parent / "predict",
    )  # fmt: skip
    return np.array([p.label for p in predict(cfg)])


def photo_accuracies(ckpt: str | Path, tiles: np.ndarray, labels: np.ndarray, workdir: Path):
    """Accuracy on the raw tiles, on 112x112 photos and on off-centre canvases (trimmed or
    not), all through the same checkpoint."""
    module, _ = load_classifier(ckpt)
    raw = module.predict_proba(torch.from_numpy(tiles)).argmax(1).numpy()
    photos = [as_photo(t) for t in tiles]
    rng = np.random.default_rng(0)
    write_pngs(photos, workdir / "photos", "photo")
    write_pngs([off_centre(p, rng) for p in photos], workdir / "canvas", "canvas")
    answers = {
        "raw_tiles": raw,
        "photos_112": predicted_labels(ckpt, workdir / "photos"),
        "off_centre_224": predicted_labels(ckpt, workdir / "canvas"),
        "off_centre_224_untrimmed": predicted_labels(ckpt, workdir / "canvas", "trim=false"),
    }
    return {name: float((found == labels).mean()) for name, found in answers.items()}


def candidate_scores(detector: Any, logits: torch.Tensor, features: torch.Tensor) -> dict:
    """The scores the flag was chosen from (higher: less like the training data)."""
    return {
        "max_softmax": 1 - logits.softmax(-1).max(-1).values,
        "energy": energy(logits),
        "mahalanobis": mahalanobis(features, detector.means, detector.precision),
        "energy_plus_mahalanobis": detector.score(logits, features),  # the one used
    }


def ood_rates(ckpt: str | Path, workdir: Path) -> dict[str, Any]:
    """Share of each set the OOD flag marks (conf/ood/default.yaml's settings), and what each
    candidate score would mark with its own threshold at the same validation pass rate."""
    cfg = predict_config([f"ckpt={ckpt}", "images=none"], workdir)
    module, settings = load_classifier(ckpt)
    detector = detector_for(ckpt, module, settings, cfg.ood)
    split = {k: settings[k] for k in ("val_size", "split_seed") if k in settings}
    data = FashionMNISTDataModule(root=cfg.ood.data_root, download=False, **split)
    test = data.split("test").images
    sets = {
        "validation": data.split("val").images,
        "test": test,
        "digits": torch.from_numpy(digits()),
        "uniform_noise": torch.from_numpy(uniform_noise(2000)),
        "inverted_test_tiles": 255 - test,
    }
    scores = {
        name: candidate_scores(detector, *classify(module, x)[1:]) for name, x in sets.items()
    }
    thresholds = {
        k: float(torch.quantile(v, detector.pass_rate)) for k, v in scores["validation"].items()
    }
    thresholds["energy_plus_mahalanobis"] = detector.threshold
    rates = {
        name: {
            "images": len(sets[name]),
            **{k: float((v > thresholds[k]).double().mean()) for k, v in candidates.items()},
        }
        for name, candidates in scores.items()
    }
    return {"pass_rate": detector.pass_rate, "threshold": detector.threshold, "rates": rates}


def _jpeg(image: Image.Image, **save: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, **save)
    return buffer.getvalue()


def figure_files(tiles: np.ndarray, labels: np.ndarray, folder: Path) -> None:
    """The contact sheet's inputs: one test item per class in several guises (file names
    start with its label), then a digit and noise."""
    rng = np.random.default_rng(1)
    first = {int(c): i for i, c in reversed(list(enumerate(labels)))}  # one item per class
    photo = {c: as_photo(tiles[i]) for c, i in first.items()}
    folder.mkdir(parents=True, exist_ok=True)
    for c in (1, 3):
        Image.fromarray(photo[c]).save(folder / f"{c:02d}_photo.png")
    for c in (7, 2):
        Image.fromarray(off_centre(photo[c], rng)).save(folder / f"{c:02d}_off_centre.png")
    paper = np.array([226, 221, 212]) + rng.normal(0, 3, (168, 168, 3))
    shade = np.asarray(Image.fromarray(photo[0]).resize((120, 120)))[..., :1] / 255.0
    paper[24:144, 24:144] *= shade  # the item, darker where the photo is dark
    grey = Image.fromarray(paper.clip(0, 255).astype(np.uint8))
    (folder / "00_grey_paper.jpg").write_bytes(_jpeg(grey))
    cutout = np.zeros((112, 112, 4), np.uint8)
    cutout[..., 3] = 255 - photo[8][..., 0]  # opaque where the item is, transparent around
    Image.fromarray(cutout, "RGBA").save(folder / "08_cutout.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways; viewers turn it 90 degrees clockwise
    sideways = Image.fromarray(np.ascontiguousarray(np.rot90(photo[9])))
    (folder / "09_sideways.jpg").write_bytes(_jpeg(sideways, exif=exif))
    darkness = (255 - photo[4].astype(float)) / 255  # a red coat: dark parts become red
    tinted = 255 - darkness * (255 - np.array([170, 40, 30]))
    Image.fromarray(tinted.clip(0, 255).astype(np.uint8)).save(folder / "04_red.png")
    Image.fromarray(as_photo(digits()[3])).save(folder / "10_digit.png")
    Image.fromarray(rng.integers(0, 256, (112, 112, 3), np.uint8)).save(folder / "11_noise.png")


def contact_sheet_figure(ckpt: str | Path, raw: Any, path: Path, workdir: Path) -> Path:
    """The README's contact sheet, made by predict contact_sheet=true."""
    tiles, labels = raw.test_images.numpy(), raw.test_labels.numpy()
    figure_files(tiles[:100], labels[:100], workdir / "figure")
    cfg = predict_config(
        [f"ckpt={ckpt}", f"images={workdir / 'figure'}", "contact_sheet=true", "output=null",
         "progress=false"],
        workdir / "figure_run",
    )  # fmt: skip
    predict(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((workdir / "figure_run" / "contact_sheet.png").read_bytes())
    return path


def markdown(results: dict[str, Any]) -> str:
    """The README's tables."""
    acc = results["accuracy"]
    lines = [
        f"Measured {results['date']} with `{results['command']}` on `{results['ckpt']}`.",
        "",
        f"| {acc['images']} seeded test images | accuracy |",
        "| --- | --- |",
    ]
    names = {
        "raw_tiles": "raw 28x28 tiles (the model alone)",
        "photos_112": "112x112 dark-on-white PNGs, through predict",
        "off_centre_224": "the same, off-centre on a 224x224 white canvas",
        "off_centre_224_untrimmed": "the canvas with `trim=false` (shrunk whole, as before)",
    }
    lines += [f"| {text} | {100 * acc[key]:.1f}% |" for key, text in names.items()]
    ood = results["ood"]
    lines += [
        "",
        f"| share flagged (threshold: {ood['pass_rate']:.0%} of validation passes) | images | "
        "**energy + Mahalanobis (used)** | energy | Mahalanobis | max softmax |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, rate in ood["rates"].items():
        cells = [
            rate[k] for k in ("energy_plus_mahalanobis", "energy", "mahalanobis", "max_softmax")
        ]
        shown = " | ".join(f"{100 * c:.1f}%" for c in cells)
        lines.append(f"| {name.replace('_', ' ')} | {rate['images']} | {shown} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True, help="a checkpoint written by train.py")
    parser.add_argument("--n", type=int, default=200, help="seeded test images to re-render")
    parser.add_argument("--figure", type=Path, help="also write the contact sheet PNG here")
    parser.add_argument("--out", type=Path, default=BENCH_DIR, help="folder of photos.json/md")
    args = parser.parse_args(argv)
    raw = load_fashion_mnist()
    tiles, labels = seeded_sample(raw.test_images, raw.test_labels, args.n)
    with tempfile.TemporaryDirectory() as tmp:
        accuracy = photo_accuracies(args.ckpt, tiles, labels, Path(tmp))
        ood = ood_rates(args.ckpt, Path(tmp))
        if args.figure:
            contact_sheet_figure(args.ckpt, raw, args.figure, Path(tmp))
    results = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "command": command_line("bench.photos", argv),
        "ckpt": str(args.ckpt),
        "accuracy": {"images": args.n, **accuracy},
        "ood": ood,
    }
    write_results(args.out, "photos", results, markdown)
    return results


if __name__ == "__main__":
    main()
