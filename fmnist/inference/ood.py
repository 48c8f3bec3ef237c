"""How unlike the training data an image is, and a flag when it is too unlike (out of
distribution, OOD): a classifier answers every image with some class, clothing or not.

The score sums two measures, each standardized on the validation split, because each misses
what the other catches (docs/photos-and-serving.md): the **energy** of the calibrated logits
(misses uniform noise) and the **Mahalanobis distance** of the penultimate features (inputs
of :func:`final_layer`) to the nearest class mean of training images (misses digits). ``ood``
is true above the score that ``ood.pass_rate`` of validation images stay under. All of it,
with the checksum of its weights, is read from the checkpoint (:data:`OOD_KEY`) or from a
cache outside the checkpoint's folder, which may be read-only (:func:`detector_for`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from fmnist.analysis.stages import logits_layer
from fmnist.data import IMAGE_SIZE
from fmnist.data.batches import EVAL_BATCH_SIZE
from fmnist.errors import CheckpointError, ConfigError, FmnistError
from fmnist.files import write_torch

if TYPE_CHECKING:
    from fmnist.inference.images import Prediction

log = logging.getLogger(__name__)

#: Seeded training images whose features give the class means and covariance.
FEATURE_SAMPLES = 10_000
#: Ridge added to the covariance's diagonal, relative to its mean variance (dead units).
RIDGE = 1e-6


def final_layer(module: Any) -> nn.Module:
    """The network's layer that outputs the logits (``stages.logits_layer``: found by a hook,
    or named by the network's ``logits_layer`` attribute); its inputs are the features."""
    generator = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, (2, IMAGE_SIZE, IMAGE_SIZE), generator=generator)
    example = module.classifier.preprocess(noise.to(torch.uint8).to(module.device))
    name = logits_layer(module.net, example)
    if name is None:
        raise CheckpointError(
            f"No layer of {type(module.net).__name__} outputs its logits, which the OOD score "
            "needs: give the class an attribute logits_layer = '<name of the module whose "
            "inputs are the features>', or pass ood.enabled=false."
        )
    return module.net.get_submodule(name)


def classify(
    module: Any, images: Tensor, batch_size: int = EVAL_BATCH_SIZE, progress: bool = False
) -> tuple[Tensor, Tensor, Tensor]:
    """Probabilities (the one prediction path, ``predict_proba``), the calibrated logits and
    the penultimate features of raw images, from one pass of the network. A linear final
    layer's logits are computed from the TTA-averaged features in double precision: the
    network's numbers, since TTA averages both linearly."""
    layer = final_layer(module)
    passes: list[tuple[Tensor, Tensor]] = []  # the layer's inputs and outputs, pass by pass
    handle = layer.register_forward_hook(
        lambda _, args, out: passes.append(
            (args[0].detach().flatten(1).double().cpu(), out.detach().double().cpu())
        )
    )
    try:
        probabilities = module.predict_proba(images, batch_size, progress=progress)
        if not len(images):  # one image for the shapes of an empty answer
            module.predict_proba(torch.zeros(1, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8))
    finally:
        handle.remove()
    step = module.classifier.views  # under TTA, each batch's passes are averaged
    groups = [passes[i : i + step] for i in range(0, len(passes), step)]
    feats = torch.cat([sum(f for f, _ in group) / step for group in groups])[: len(images)]
    logits = torch.cat([sum(out for _, out in group) / step for group in groups])[: len(images)]
    if isinstance(layer, nn.Linear):
        bias = None if layer.bias is None else layer.bias.detach().double().cpu()
        logits = nn.functional.linear(feats, layer.weight.detach().double().cpu(), bias)
    return probabilities, logits / float(module.classifier.temperature), feats


def energy(logits: Tensor) -> Tensor:
    """Energy of calibrated logits: higher for images unlike the training data."""
    return -torch.logsumexp(logits, dim=-1)


def mahalanobis(features: Tensor, means: Tensor, precision: Tensor) -> Tensor:
    """Distance of each feature vector to the nearest class mean under the shared covariance
    (expanded as f'Pf - 2f'Pm + m'Pm: no (images x classes x features) tensor)."""
    projected = features @ precision
    squared = (
        (projected * features).sum(1, keepdim=True)
        - 2 * projected @ means.T
        + ((means @ precision) * means).sum(1)[None]
    )
    return squared.min(1).values.clamp_min(0).sqrt()


@dataclass
class OodDetector:
    """What the score needs, fitted once per checkpoint (see the module's docstring)."""

    means: Tensor  # (classes, features): class means of training features
    precision: Tensor  # (features, features): inverse of their shared covariance
    energy_mean: float  # energy and distance on the validation split, to standardize them
    energy_std: float
    distance_mean: float
    distance_std: float
    threshold: float  # scores above it are flagged
    pass_rate: float  # share of validation images under the threshold
    weights_sha256: str  # the weights these statistics belong to

    def score(self, logits: Tensor, features: Tensor) -> Tensor:
        """z(energy) + z(Mahalanobis distance): about 0 for typical validation images."""
        e = (energy(logits.double()) - self.energy_mean) / self.energy_std
        d = mahalanobis(features.double(), self.means, self.precision)
        return e + (d - self.distance_mean) / self.distance_std


def class_statistics(features: Tensor, labels: Tensor, classes: int) -> tuple[Tensor, Tensor]:
    """Class means and the inverse of the shared (within-class) covariance of ``features``;
    a class without images gets the overall mean."""
    overall = features.mean(0)
    means = torch.stack(
        [features[labels == c].mean(0) if (labels == c).any() else overall for c in range(classes)]
    )
    centred = features - means[labels]
    covariance = centred.T @ centred / max(len(centred) - 1, 1)
    ridge = RIDGE * float(covariance.diagonal().mean()) + 1e-12
    return means, torch.linalg.inv(covariance + ridge * torch.eye(len(covariance)).double())


def fit_detector(
    module: Any,
    train: tuple[Tensor, Tensor],
    val_images: Tensor,
    pass_rate: float,
    batch_size: int = EVAL_BATCH_SIZE,
) -> OodDetector:
    """Fit the score on ``FEATURE_SAMPLES`` seeded training images and the threshold on the
    validation images (raw uint8 images and labels, as the data module gives them)."""
    from fmnist.checkpoint import weights_checksum

    if not 0.0 < pass_rate < 1.0:
        raise ConfigError(f"ood.pass_rate={pass_rate} must be a share in (0, 1), e.g. 0.96.")
    images, labels = train
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:FEATURE_SAMPLES]
    _, _, train_features = classify(module, images[pick], batch_size)
    means, precision = class_statistics(
        train_features, labels[pick].cpu(), module.hparams.num_classes
    )
    _, logits, features = classify(module, val_images, batch_size)
    e, d = energy(logits), mahalanobis(features, means, precision)
    detector = OodDetector(
        means=means,
        precision=precision,
        energy_mean=float(e.mean()),
        energy_std=float(e.std()),
        distance_mean=float(d.mean()),
        distance_std=float(d.std()),
        threshold=0.0,
        pass_rate=pass_rate,
        weights_sha256=weights_checksum(module.state_dict()),
    )
    scores = detector.score(logits, features)
    detector.threshold = float(torch.quantile(scores, pass_rate))
    return detector


#: The checkpoint entry that holds OOD statistics: wherever a checkpoint goes, they go with it.
OOD_KEY = "fmnist_ood"


def cache_path(cache_dir: str | Path, weights_sha256: str) -> Path:
    """Where fitted statistics are cached: ``<cache_dir>/<weights checksum>.ood.pt``, one
    file per set of weights, whatever the checkpoint's name or folder."""
    return Path(cache_dir).expanduser() / f"{weights_sha256[:16]}.ood.pt"


def save_detector(detector: OodDetector, path: Path) -> Path:
    """Write the statistics atomically (tensors and plain values only), making the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_torch(path, asdict(detector))


def as_detector(stored: Any, weights_sha256: str, where: Path) -> OodDetector | None:
    """Stored statistics as a detector, or None (with the reason logged) when they are
    damaged or belong to other weights (``last.ckpt`` is rewritten every epoch)."""
    try:
        detector = OodDetector(**stored)
    except Exception as exc:  # damaged statistics are refitted, not fatal
        log.warning("Ignoring the OOD statistics in %s (%s): fitting them again", where, exc)
        return None
    if detector.weights_sha256 != weights_sha256:
        log.info("The OOD statistics in %s belong to other weights: fitting them again", where)
        return None
    return detector


def load_detector(path: Path, weights_sha256: str) -> OodDetector | None:
    """The statistics cached in ``path``, or None (see :func:`as_detector`)."""
    if not path.is_file():
        return None
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged file is refitted, not fatal
        log.warning("Ignoring %s (%s): fitting the OOD statistics again", path, exc)
        return None
    return as_detector(stored, weights_sha256, path)


def detector_for(
    ckpt: str | Path, module: Any, settings: dict[str, Any], cfg: Any
) -> OodDetector | None:
    """The checkpoint's OOD detector: from the checkpoint itself, else from the cache
    (``cfg.cache_dir``), else fitted and cached there; never written beside the checkpoint.
    None when ``cfg.enabled`` is false or (with a warning) the data to fit it is missing:
    predictions are made without the flag. A cache that cannot be written costs a refit."""
    from fmnist.checkpoint import read_checkpoint, weights_checksum
    from fmnist.training.load import datamodule_for

    if cfg is None or not cfg.get("enabled", True):
        return None
    checksum = weights_checksum(module.state_dict())
    stored = read_checkpoint(ckpt).get(OOD_KEY)
    detector = None if stored is None else as_detector(stored, checksum, Path(ckpt))
    cache = cfg.get("cache_dir")
    path = None if cache is None else cache_path(cache, checksum)
    if detector is None and path is not None:
        detector = load_detector(path, checksum)
    if detector is not None:
        return detector
    where = {
        "root": cfg.get("data_root"),
        "download": False,
        "search_system": cfg.get("search_system", True),
        "strict": cfg.get("strict", True),
    }
    try:  # on the checkpoint's own training/validation split (its val_size and split_seed)
        data = datamodule_for(where, settings)
        train, val = data.split("train"), data.split("val")
        log.info("Fitting the OOD score on %d validation images", len(val.images))
        detector = fit_detector(module, (train.images, train.labels), val.images, cfg.pass_rate)
    except FmnistError as exc:
        log.warning("No OOD flag: its threshold is fitted on the validation split. %s", exc)
        return None
    if path is not None:
        try:
            log.info("Wrote %s", save_detector(detector, path))
        except (OSError, FmnistError) as exc:
            log.warning(
                "Could not cache the OOD statistics in %s (%s): refitted next time", path, exc
            )
    return detector


def mark_ood(
    predictions: Sequence[Prediction], scores: Tensor | None, detector: OodDetector | None
) -> None:
    """Fill in each prediction's score and flag (left None without a detector). An image
    whose background the conversion could not separate is flagged whatever its score: its
    tile is a guess (``Prediction.separated``)."""
    if detector is None or scores is None:
        return
    for prediction, score in zip(predictions, scores.tolist(), strict=True):
        prediction.ood_score = score
        prediction.ood = score > detector.threshold or not prediction.separated


def predict_with_ood(
    module: Any,
    detector: OodDetector | None,
    images: Tensor,
    batch_size: int,
    progress: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Probabilities and OOD scores (None without a detector) of raw images."""
    if detector is None:
        return module.predict_proba(images, batch_size, progress=progress), None
    probabilities, logits, features = classify(module, images, batch_size, progress)
    return probabilities, detector.score(logits, features)
