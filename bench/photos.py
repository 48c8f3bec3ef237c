"""Your own photos: `python -m bench.photos --ckpt PATH [--n 200] [--figure PATH] [--sheets DIR]`
(`--conditions NAME ...`: only those conditions of the photo suite, printed).

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
   orientation) and two non-clothing images, made by ``predict contact_sheet=true``;
4. the photo suite (:data:`CONDITIONS`): the same items photographed on backgrounds of every
   grey level and several colours, under gradients, vignettes and shadows, with sensor noise,
   as JPEGs of falling quality, turned and at several sizes (``stand_ins.scene``); per
   condition the accuracy through the conversion predict uses, the share the OOD flag marks,
   the share whose background was not separated, the accuracy at each sharpening strength,
   and the conversion's time on a 1-megapixel photo; with ``--sheets``, one contact sheet per
   family of conditions (a row per condition).
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
from bench.stand_ins import as_photo, digits, off_centre, uniform_noise, write_pngs
from fmnist.data import FashionMNISTDataModule, load_fashion_mnist
from fmnist.inference.ood import classify, detector_for, energy, mahalanobis, predict_with_ood
from fmnist.inference.predict import predict
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
    if "suite" in results:
        lines += suite_markdown(results["suite"])
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True, help="a checkpoint written by train.py")
    parser.add_argument("--n", type=int, default=200, help="seeded test images to re-render")
    parser.add_argument("--figure", type=Path, help="also write the contact sheet PNG here")
    parser.add_argument("--out", type=Path, default=BENCH_DIR, help="folder of photos.json/md")
    parser.add_argument(
        "--sheets", type=Path, help="also write the suite's contact sheets (one per family) here"
    )
    parser.add_argument("--no-suite", action="store_true", help="skip the photo suite")
    parser.add_argument(
        "--conditions",
        nargs="+",
        choices=list(CONDITIONS),
        metavar="NAME",
        help="only these conditions of the suite, printed, nothing else measured or written",
    )
    args = parser.parse_args(argv)
    raw = load_fashion_mnist()
    tiles, labels = seeded_sample(raw.test_images, raw.test_labels, args.n)
    if args.conditions:
        with tempfile.TemporaryDirectory() as tmp:
            suite, _ = photo_suite(args.ckpt, tiles, labels, Path(tmp), args.conditions)
        print("\n".join(suite_markdown({"images": args.n, **suite, "timing": None})))
        return suite
    with tempfile.TemporaryDirectory() as tmp:
        accuracy = photo_accuracies(args.ckpt, tiles, labels, Path(tmp))
        ood = ood_rates(args.ckpt, Path(tmp))
        if args.figure:
            contact_sheet_figure(args.ckpt, raw, args.figure, Path(tmp))
        suite = None
        if not args.no_suite:
            suite, shown = photo_suite(args.ckpt, tiles, labels, Path(tmp))
            suite = {"images": args.n, **suite, "timing": conversion_ms()}
            if args.sheets:
                condition_sheets(shown, suite, args.sheets)
    results = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "command": command_line("bench.photos", argv),
        "ckpt": str(args.ckpt),
        "accuracy": {"images": args.n, **accuracy},
        "ood": ood,
        **({"suite": suite} if suite else {}),
    }
    write_results(args.out, "photos", results, markdown)
    return results


# --- The photo suite: the same items on the backgrounds people photograph them on ----------

#: Each condition: (family, scene() settings, JPEG quality or None). Everything not named is
#: scene()'s default: a white background, the item's square spanning 35-65% of a 224x224
#: frame at a random place, upright, even light, no shadow or noise, saved as PNG.
CONDITIONS: dict[str, tuple[str, dict[str, Any], int | None]] = {
    "black (0)": ("grey level", {"background": (0, 0, 0)}, None),
    "grey 40": ("grey level", {"background": (40, 40, 40)}, None),
    "grey 90": ("grey level", {"background": (90, 90, 90)}, None),
    "grey 128": ("grey level", {"background": (128, 128, 128)}, None),
    "grey 128, light item": ("grey level", {"background": (128,) * 3, "ink": (255,) * 3}, None),
    "grey 170": ("grey level", {"background": (170, 170, 170)}, None),
    "grey 215": ("grey level", {"background": (215, 215, 215)}, None),
    "white (255)": ("grey level", {}, None),
    "beige sheet": ("colour", {"background": (228, 214, 186)}, None),
    "blue": ("colour", {"background": (40, 90, 180)}, None),
    "red": ("colour", {"background": (190, 40, 40)}, None),
    "green": ("colour", {"background": (70, 140, 80)}, None),
    "navy item on white": ("colour", {"ink": (20, 30, 90)}, None),
    "red item on beige": ("colour", {"background": (228, 214, 186), "ink": (170, 40, 30)}, None),
    "gradient 30%": ("light", {"gradient": 0.3}, None),
    "gradient 60%": ("light", {"gradient": 0.6}, None),
    "vignette 40%": ("light", {"vignette": 0.4}, None),
    "grey 170, gradient 40%": ("light", {"background": (170,) * 3, "gradient": 0.4}, None),
    "shadow 15%": ("light", {"shadow": 0.15}, None),
    "shadow 30%": ("light", {"shadow": 0.3}, None),
    # A dark item on a white table lit from one side (230 falling to about 150 across the
    # frame, in a random direction) with a soft drop shadow: product photos taken by a window.
    "side light 230-150, soft shadow": (
        "light",
        {"background": (230,) * 3, "gradient": 0.35, "shadow": 0.3},
        None,
    ),
    "noise 5": ("noise", {"noise": 5.0}, None),
    "noise 10": ("noise", {"noise": 10.0}, None),
    "noise 20": ("noise", {"noise": 20.0}, None),
    "JPEG q90": ("noise", {}, 90),
    "JPEG q50": ("noise", {}, 50),
    "JPEG q20": ("noise", {}, 20),
    "grey 170, noise 5, JPEG q75": ("noise", {"background": (170,) * 3, "noise": 5.0}, 75),
    "turned 5 degrees": ("geometry", {"rotation": 5.0}, None),
    "turned 10 degrees": ("geometry", {"rotation": 10.0}, None),
    "turned 15 degrees": ("geometry", {"rotation": 15.0}, None),
    "item 30% of the side": ("geometry", {"cover": (0.3, 0.3)}, None),
    "item 60% of the side": ("geometry", {"cover": (0.6, 0.6)}, None),
    "item 90% of the side": ("geometry", {"cover": (0.9, 0.9)}, None),
}
#: Unsharp-mask strengths compared on every condition (convert.SHARPEN_AMOUNT is the one used).
SHARPEN_AMOUNTS = (0.0, 0.5, 1.0)
#: Items shown per condition in the README's contact sheets.
SHOWN = 6


def condition_files(
    tiles: np.ndarray, settings: dict[str, Any], quality: int | None, folder: Path
) -> list[Path]:
    """The items photographed under one condition (the same seed for every condition: the
    same places and turns), written as PNG or JPEG files."""
    from bench.stand_ins import jpeg_bytes, png_bytes, scene

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, tile in enumerate(tiles):
        photo = scene(tile, rng, **settings)
        path = folder / f"item_{i:04d}.{'jpg' if quality else 'png'}"
        path.write_bytes(jpeg_bytes(photo, quality) if quality else png_bytes(photo))
        paths.append(path)
    return paths


def conversion_ms(repeats: int = 20) -> dict[str, float]:
    """Median milliseconds to convert a 1000x1000 photo (an item on grey under a gradient,
    with noise) on one core, against the seven steps alone."""
    from threadpoolctl import threadpool_limits

    from bench.stand_ins import scene
    from fmnist.inference.convert import convert, fashion_mnist_tile

    raw = load_fashion_mnist()
    rng = np.random.default_rng(0)
    photos = [
        scene(raw.test_images[i].numpy(), rng, background=(170,) * 3, size=1000, gradient=0.3,
              noise=3.0)
        for i in range(5)
    ]  # fmt: skip
    timings: dict[str, list[float]] = {"convert": [], "seven_steps": []}
    with threadpool_limits(1):
        torch_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for _ in range(repeats):
                for photo in photos:
                    for name, run in (("convert", convert), ("seven_steps", fashion_mnist_tile)):
                        start = time.perf_counter()
                        run(photo)
                        timings[name].append(1000 * (time.perf_counter() - start))
        finally:
            torch.set_num_threads(torch_threads)
    return {f"{name}_ms": float(np.median(v)) for name, v in timings.items()}


def photo_suite(
    ckpt: str | Path,
    tiles: np.ndarray,
    labels: np.ndarray,
    workdir: Path,
    conditions: list[str] | None = None,
) -> dict[str, Any]:
    """Per condition (all of :data:`CONDITIONS`, or the ones named): accuracy of the tiles
    made the way predict makes them (read_file, then convert), the share the OOD flag marks
    and the share whose background was not separated; and the accuracy at each of
    :data:`SHARPEN_AMOUNTS`. Against the raw tiles' accuracy."""
    from fmnist.inference.convert import SHARPEN_AMOUNT, convert
    from fmnist.inference.images import read_file, to_predictions
    from fmnist.inference.ood import mark_ood

    cfg = predict_config([f"ckpt={ckpt}", "images=none"], workdir)
    module, settings = load_classifier(ckpt)
    detector = detector_for(ckpt, module, settings, cfg.ood)
    raw = module.predict_proba(torch.from_numpy(tiles)).argmax(1).numpy()
    results: dict[str, Any] = {"raw_tiles": float((raw == labels).mean()), "conditions": {}}
    shown: dict[str, Any] = {}
    for name in conditions or CONDITIONS:
        family, scene_settings, quality = CONDITIONS[name]
        folder = workdir / "suite" / f"{len(results['conditions']):02d}"
        decoded = [read_file(p).images[0] for p in condition_files(tiles, scene_settings,
                                                                    quality, folder)]  # fmt: skip
        row: dict[str, Any] = {"family": family, "jpeg_quality": quality, **scene_settings}
        for amount in sorted({*SHARPEN_AMOUNTS, SHARPEN_AMOUNT}):
            conversions = [convert(np.asarray(image), sharpen_amount=amount) for image in decoded]
            stack = torch.from_numpy(np.stack([c.tile for c in conversions]))
            probabilities, scores = predict_with_ood(module, detector, stack, 512)
            predictions = to_predictions(
                [str(i) for i in range(len(stack))], probabilities,
                backgrounds=[c.background for c in conversions],
            )  # fmt: skip
            mark_ood(predictions, scores, detector)
            correct = np.array([p.label for p in predictions]) == labels
            row[f"accuracy_sharpen_{amount:g}"] = float(correct.mean())
            if amount == SHARPEN_AMOUNT:
                row["accuracy"] = float(correct.mean())
                row["ood_flagged"] = (
                    None if detector is None else float(np.mean([bool(p.ood) for p in predictions]))
                )
                row["not_separated"] = float(np.mean([not p.separated for p in predictions]))
                shown[name] = (decoded[:SHOWN], [c.tile for c in conversions[:SHOWN]],
                               [p.name for p in predictions[:SHOWN]],
                               [bool(p.ood) for p in predictions[:SHOWN]])  # fmt: skip
        row["points_below_raw"] = 100 * (results["raw_tiles"] - row["accuracy"])
        results["conditions"][name] = row
    results["sharpen_amount"] = SHARPEN_AMOUNT
    return results, shown


def condition_sheets(shown: dict[str, Any], results: dict[str, Any], folder: Path) -> list[Path]:
    """One contact sheet per family of conditions: a row per condition, each item's photo
    beside the tile the model saw (its answer above, red when flagged)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    families: dict[str, list[str]] = {}
    for name, row in results["conditions"].items():
        families.setdefault(row["family"], []).append(name)
    paths = []
    for family, names in families.items():
        fig, axes = plt.subplots(
            len(names), 2 * SHOWN, figsize=(1.1 * 2 * SHOWN, 1.35 * len(names)), squeeze=False
        )
        for r, name in enumerate(names):
            photos, tiles, answers, flags = shown[name]
            acc = results["conditions"][name]["accuracy"]
            for i in range(SHOWN):
                photo_ax, tile_ax = axes[r, 2 * i], axes[r, 2 * i + 1]
                photo_ax.imshow(photos[i], cmap="gray" if photos[i].ndim == 2 else None)
                tile_ax.imshow(tiles[i], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
                tile_ax.set_title(answers[i], fontsize=7, color="tab:red" if flags[i] else "k")
                for ax in (photo_ax, tile_ax):
                    ax.set_xticks([])
                    ax.set_yticks([])
            axes[r, 0].set_ylabel(f"{name}\n{100 * acc:.1f}%", fontsize=7, rotation=0,
                                  ha="right", va="center")  # fmt: skip
        fig.tight_layout()
        path = folder / f"photos_{family.replace(' ', '_')}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        paths.append(path)
    return paths


def suite_markdown(suite: dict[str, Any]) -> list[str]:
    """The suite's table, for bench/photos.md."""
    amounts = [k for k in next(iter(suite["conditions"].values())) if k.startswith("accuracy_s")]
    timing = suite["timing"]
    lines = [
        "",
        f"Photo suite: the same {suite['images']} items, raw tiles {100 * suite['raw_tiles']:.1f}%"
        + (
            f"; conversion of a 1-megapixel photo {timing['convert_ms']:.2f} ms on one core"
            f" (the seven steps alone: {timing['seven_steps_ms']:.2f} ms)"
            if timing
            else ""
        )
        + f". Sharpening used: {suite['sharpen_amount']:g}.",
        "",
        "| condition | accuracy | points below raw | OOD flagged | background not separated | "
        + " | ".join(f"sharpen {a.rsplit('_', 1)[-1]}" for a in amounts)
        + " |",
        "| --- | --- | --- | --- | --- | " + " | ".join("---" for _ in amounts) + " |",
    ]
    for name, row in suite["conditions"].items():
        flagged = "-" if row["ood_flagged"] is None else f"{100 * row['ood_flagged']:.1f}%"
        cells = " | ".join(f"{100 * row[a]:.1f}%" for a in amounts)
        lines.append(
            f"| {name} | {100 * row['accuracy']:.1f}% | {row['points_below_raw']:+.1f} | "
            f"{flagged} | {100 * row['not_separated']:.1f}% | {cells} |"
        )
    return lines


if __name__ == "__main__":
    main()
