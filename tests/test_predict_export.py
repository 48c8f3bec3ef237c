"""Prediction on real-world files and export round trips, from one tiny trained checkpoint."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.synthetic import make_images, write_idx
from fmnist.data import CLASS_NAMES
from fmnist.errors import CheckpointError, ConfigError, OutputDirError
from fmnist.inference.export import export_onnx, export_torchscript, exportable
from fmnist.inference.images import load_inputs
from fmnist.inference.predict import predict
from fmnist.training.load import load_classifier


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint: Path) -> Path:
    """The session's small CNN trained on the synthetic squares (class = square position)."""
    return tiny_checkpoint


def square_images(labels: list[int]) -> np.ndarray:
    return make_images(torch.tensor(labels), seed=5).numpy()


def predict_cfg(ckpt: Path, images, output: Path | None, **extra):
    from omegaconf import OmegaConf

    return OmegaConf.create(
        {
            "ckpt": str(ckpt),
            "images": images,
            "invert": "auto",
            "batch_size": 4,
            "top_k": 3,
            "output": str(output) if output else None,
            "print_limit": 5,
            "progress": False,
            **extra,
        }
    )


def test_predict_png_jpeg_npy_idx_folder_with_a_corrupt_file(checkpoint, tmp_path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    images = square_images([0, 3, 7, 9, 2, 5])
    # PNG as is; a light-background JPEG at 4x size (inverted and resized back).
    Image.fromarray(images[0]).save(folder / "a.png")
    big_light = np.kron(255 - images[1], np.ones((4, 4), dtype=np.uint8))
    Image.fromarray(big_light).save(folder / "b.jpg", quality=95)
    np.save(folder / "c.npy", images[2:4])
    write_idx(folder / "d-idx3-ubyte", torch.from_numpy(images[4:6]))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    (folder / "notes.txt").write_text("not an image")
    output = tmp_path / "out" / "predictions.csv"

    # trim=false: the synthetic classes are the square's place in the frame, which trimming
    # to the item (the square, once the noisy background is made black) would take away.
    predictions = predict(predict_cfg(checkpoint, str(folder), output, trim=False))

    assert [p.source.split("/")[-1] for p in predictions] == [
        "a.png",
        "b.jpg",
        "c.npy[0]",
        "c.npy[1]",
        "d-idx3-ubyte[0]",
        "d-idx3-ubyte[1]",
    ]
    assert [p.label for p in predictions] == [0, 3, 7, 9, 2, 5]
    for p in predictions:
        assert 0.1 < p.probability <= 1.0 and p.top[0] == (p.name, p.probability)
        assert [prob for _, prob in p.top] == sorted((prob for _, prob in p.top), reverse=True)
    rows = list(csv.DictReader(output.open()))
    assert len(rows) == 6 and rows[1]["class"] == CLASS_NAMES[3]
    assert float(rows[0]["probability"]) == pytest.approx(predictions[0].probability, abs=1e-6)


def test_unreadable_files_are_skipped_and_reported(tmp_path) -> None:
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (tmp_path / "labels.npy").write_bytes(b"not numpy")
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "ok.png")
    inputs = load_inputs([tmp_path, tmp_path / "missing.png"])
    assert inputs.sources == [str(tmp_path / "ok.png")]
    reasons = dict(inputs.skipped)
    assert set(reasons) == {str(tmp_path / n) for n in ("broken.jpg", "labels.npy", "missing.png")}
    assert "not an image" in reasons[str(tmp_path / "broken.jpg")]
    assert "does not exist" in reasons[str(tmp_path / "missing.png")]


def test_no_readable_image_and_unwritable_output_are_clear_errors(checkpoint, tmp_path) -> None:
    (tmp_path / "x.txt").write_text("text")
    with pytest.raises(ConfigError, match="could be read as images"):
        predict(predict_cfg(checkpoint, str(tmp_path / "x.txt"), None))
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "ok.png")
    with pytest.raises(OutputDirError, match="Cannot write the prediction output directory"):
        predict(predict_cfg(checkpoint, str(tmp_path / "ok.png"), blocker / "sub" / "p.csv"))


def test_checkpoint_errors_name_the_problem(checkpoint, tmp_path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_classifier(tmp_path / "nope.ckpt")
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(checkpoint.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="not a readable checkpoint.*corrupt"):
        load_classifier(truncated)
    other = tmp_path / "tensor.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="not a checkpoint written by train.py"):
        load_classifier(other)
    contents = torch.load(checkpoint, weights_only=True)
    contents["hyper_parameters"]["net"]["filters"] = [16, 64]
    torch.save(contents, other)
    with pytest.raises(CheckpointError, match=r"features\.1\.0\.weight holds .*64"):
        load_classifier(other)


def _reference_logits(checkpoint: Path, images: torch.Tensor) -> torch.Tensor:
    module, _ = load_classifier(checkpoint)
    with torch.no_grad():
        return module(images)


def test_torchscript_export_matches_the_checkpoint(checkpoint, tmp_path) -> None:
    images = torch.from_numpy(square_images(list(range(10))))
    path = export_torchscript(exportable(checkpoint), tmp_path / "model.pt")
    loaded = torch.jit.load(str(path))
    expected = _reference_logits(checkpoint, images)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(loaded(images.float() / 255), expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(loaded(images[:, None]), expected, rtol=1e-5, atol=1e-5)


def test_onnx_export_matches_the_checkpoint(checkpoint, tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (extra: export)")
    pytest.importorskip("onnx", reason="onnx not installed (extra: export)")
    images = torch.from_numpy(square_images(list(range(10)) + [1, 4, 6]))  # 13: dynamic batch
    expected = _reference_logits(checkpoint, images)
    for input_dtype, feed in (("uint8", images.numpy()), ("float", images.numpy() / 255.0)):
        path = export_onnx(exportable(checkpoint), tmp_path / f"{input_dtype}.onnx", input_dtype)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        dtype = np.uint8 if input_dtype == "uint8" else np.float32
        (logits,) = session.run(None, {"images": feed.astype(dtype)})
        np.testing.assert_allclose(logits, expected.numpy(), rtol=1e-4, atol=1e-4)
        assert (logits.argmax(1) == expected.argmax(1).numpy()).all()


def test_output_may_not_overwrite_the_checkpoint_or_an_image(tmp_path) -> None:
    ckpt = tmp_path / "run" / "model.ckpt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"precious")  # not loadable: the check must come before loading
    photos = tmp_path / "photos"
    (photos / "tops").mkdir(parents=True)
    image = photos / "tops" / "shirt.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(image)
    (tmp_path / "link.csv").symlink_to(image)
    cases = [
        (ckpt, "checkpoint", ckpt),
        (tmp_path / "run" / ".." / "run" / "model.ckpt", "checkpoint", ckpt),
        (image, "input image", image),
        (tmp_path / "link.csv", "input image", image),
    ]
    for output, what, original in cases:
        with pytest.raises(ConfigError, match=rf"output={output} is the {what} {original}"):
            predict(predict_cfg(ckpt, str(photos), output))
    with pytest.raises(ConfigError, match=rf"output={photos} is a directory"):
        predict(predict_cfg(ckpt, str(image), photos))
    assert ckpt.read_bytes() == b"precious"
    assert Image.open(image).size == (28, 28)


def test_export_output_may_not_overwrite_the_checkpoint(tmp_path) -> None:
    from omegaconf import OmegaConf

    from fmnist.inference.export import export

    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"precious")
    cfg = OmegaConf.create(
        {"ckpt": str(ckpt), "format": "onnx", "input": "uint8", "output": str(ckpt),
         "paths": {"output_dir": str(tmp_path)}}
    )  # fmt: skip
    with pytest.raises(ConfigError, match=rf"output={ckpt} is the checkpoint {ckpt}"):
        export(cfg)
    assert ckpt.read_bytes() == b"precious"


@pytest.mark.parametrize("top_k", [0, -1, "three", True])
def test_top_k_must_be_a_positive_integer(tmp_path, top_k) -> None:
    with pytest.raises(ConfigError, match=rf"^top_k={top_k!r} must be a positive integer"):
        predict(predict_cfg(tmp_path / "model.ckpt", str(tmp_path), None, top_k=top_k))
