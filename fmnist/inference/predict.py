"""Classify your own images: `python -m fmnist.cli predict ckpt=PATH images=PATH_OR_FOLDER`.

See conf/predict.yaml. PNG/JPEG/... files, folders of them, ``.npy`` arrays and IDX files;
unreadable files are skipped and listed, the others are still predicted.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from rich.console import Console

from fmnist.errors import ConfigError
from fmnist.files import check_output_spares_inputs, ensure_writable_dir
from fmnist.inference.contact_sheet import write_contact_sheet
from fmnist.inference.convert import check_invert
from fmnist.inference.images import (
    Prediction,
    expand_paths,
    load_inputs,
    to_predictions,
    write_csv,
)
from fmnist.inference.ood import detector_for, mark_ood, predict_with_ood
from fmnist.tables import rich_table
from fmnist.training.load import load_classifier

log = logging.getLogger(__name__)


def print_predictions(predictions: list[Prediction], limit: int, console: Console) -> None:
    rows = []
    for p in predictions[:limit]:
        top = ", ".join(f"{name} {prob:.2f}" for name, prob in p.top)
        ood = "" if p.ood is None else f"{'yes' if p.ood else 'no'} ({p.ood_score:.1f})"
        rows.append([p.source, p.name, f"{p.probability:.3f}", top, ood])
    headers = ["image", "class", "probability", "top 3", "ood (score)"]
    title = f"Predictions ({len(predictions)} images)"
    console.print(rich_table(title, headers, rows, left=set(headers) - {"probability"}))
    if len(predictions) > limit:
        console.print(f"... {len(predictions) - limit} more rows in the CSV file.")


def predict(cfg: DictConfig) -> list[Prediction]:
    """Load the checkpoint, read the images, predict, print and write the CSV."""
    images = cfg.images
    if images is None or images == "" or images == []:
        raise ConfigError("No images given: pass images=FILE_OR_FOLDER or images=[a.png,b.jpg].")
    paths: list[Any] = list(images) if isinstance(images, ListConfig | list) else [images]
    top_k = cfg.top_k
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ConfigError(f"top_k={top_k!r} must be a positive integer (classes listed per image).")
    invert = cfg.get("invert", "auto")
    check_invert(invert)
    files = expand_paths(paths)
    if cfg.get("output"):  # fail before the work, not after it
        read = [("checkpoint", cfg.ckpt), *(("input image", file) for file in files)]
        check_output_spares_inputs(cfg.output, read)
        ensure_writable_dir(Path(cfg.output).expanduser().parent, "prediction output directory")
    module, settings = load_classifier(cfg.ckpt)
    detector = detector_for(cfg.ckpt, module, settings, cfg.get("ood"))
    inputs = load_inputs(files, invert=invert, progress=cfg.progress, trim=cfg.get("trim", True))
    for source, reason in inputs.skipped:
        log.warning("Skipped %s: %s", source, reason)
    if not inputs.images:
        raise ConfigError(
            f"None of {OmegaConf.to_container(images) if not isinstance(images, str) else images}"
            " could be read as images (see the skipped files above). Give PNG/JPEG files, "
            "folders of them, .npy arrays or IDX image files."
        )
    stack = torch.from_numpy(np.stack(inputs.images))
    probabilities, scores = predict_with_ood(module, detector, stack, cfg.batch_size, cfg.progress)
    predictions = to_predictions(inputs.sources, probabilities, k=top_k)
    mark_ood(predictions, scores, detector)
    print_predictions(predictions, cfg.print_limit, Console())
    if inputs.skipped:
        log.warning("%d file(s) skipped, %d image(s) predicted.", len(inputs.skipped), len(stack))
    if cfg.get("output"):
        log.info("Wrote %s", write_csv(predictions, cfg.output))
    if cfg.get("contact_sheet"):
        sheet = Path(cfg.get("paths", {}).get("output_dir", ".")) / "contact_sheet.png"
        limit = cfg.get("contact_sheet_limit", 48)
        log.info("Wrote %s", write_contact_sheet(predictions, inputs.images, sheet, limit))
    return predictions
