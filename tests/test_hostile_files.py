"""Hostile and unusual input files: one bad file is skipped with its reason, never the batch."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from fmnist.inference.images import load_inputs


def write_png(path: Path, width: int, height: int, rows: int | None = None) -> Path:
    """A black grayscale PNG claiming ``width`` x ``height``; ``rows`` of them are written
    (all by default), so a bomb can be a few bytes on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    compressor = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte + pixels
    idat = b"".join(compressor.compress(row) for _ in range(rows or height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    body = chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def write_npy_header(path: Path, shape: tuple[int, ...], payload: bytes = b"") -> Path:
    """A .npy file whose header claims ``shape`` of uint8, followed by ``payload`` only."""
    with path.open("wb") as f:
        header = {"descr": "|u1", "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(f, header)
        f.write(payload)
    return path


def save_gray(path: Path, value: int = 7, size: tuple[int, int] = (28, 28)) -> Path:
    Image.fromarray(np.full(size, value, np.uint8)).save(path)
    return path


def test_a_hostile_file_is_skipped_with_its_reason_and_the_rest_read(tmp_path) -> None:
    bomb = write_png(tmp_path / "bomb.png", 40_000, 40_000, rows=10)  # 1.6 gigapixels, 2 kB
    huge = write_npy_header(tmp_path / "huge.npy", (10**9, 28, 28), bytes(784))
    empty = write_npy_header(tmp_path / "empty.npy", (0, 28, 28))
    short = write_npy_header(tmp_path / "short.npy", (2, 28, 28), bytes(784))
    ok = save_gray(tmp_path / "ok.png")
    inputs = load_inputs([tmp_path])
    assert inputs.sources == [str(ok)]
    assert inputs.images[0].shape == (28, 28) and int(inputs.images[0].max()) == 7
    reasons = dict(inputs.skipped)
    assert set(reasons) == {str(p) for p in (bomb, huge, empty, short)}
    assert "1600000000 pixels, more than the" in reasons[str(bomb)]
    assert "megapixel limit" in reasons[str(bomb)]
    assert "(1000000000, 28, 28) of uint8" in reasons[str(huge)]
    assert "more than the limit" in reasons[str(huge)]
    assert "holds no images" in reasons[str(empty)]
    assert "truncated" in reasons[str(short)]


def test_any_error_while_reading_one_file_skips_only_that_file(tmp_path, monkeypatch) -> None:
    np.save(tmp_path / "a.npy", np.zeros((28, 28), np.uint8))
    ok = save_gray(tmp_path / "ok.png")

    def fails(*args, **kwargs):
        raise RuntimeError("the disk said no")

    monkeypatch.setattr(np, "load", fails)
    inputs = load_inputs([tmp_path])
    assert inputs.sources == [str(ok)]
    assert inputs.skipped == [(str(tmp_path / "a.npy"), "RuntimeError: the disk said no")]
