"""Hostile and unusual input files: one bad file is skipped with its reason, never the batch."""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import os
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import idx_header
from PIL import Image
from rich.console import Console

from fmnist.errors import ConfigError
from fmnist.inference.images import load_inputs, to_predictions, write_csv
from fmnist.inference.predict import print_predictions


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


def write_gzip_bomb(path: Path, head: bytes, inflated: int) -> Path:
    """``head`` then ``inflated`` zero bytes, gzip-compressed: about 1 kB on disk per MB."""
    zeros = gzip.compress(bytes(1 << 20), compresslevel=9)
    with path.open("wb") as f:
        f.write(gzip.compress(head))
        for _ in range(inflated >> 20):
            f.write(zeros)  # gzip members concatenate into one stream
    return path


#: Imports once, then reads each file in a forked child, which starts with its peak resident
#: memory (ru_maxrss) at its resident memory, and prints how far reading raised that peak.
MEASURE = """
import json, os, resource, sys
from fmnist.inference.images import load_inputs

def resident_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20

def measure(path):
    with open("/proc/self/statm") as f:  # a safety net: a regression fails, not the machine
        size = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (size + 3 * 2**30, resource.RLIM_INFINITY))
    before = resident_mb()
    inputs = load_inputs([path])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return [peak - before, inputs.sources, inputs.skipped]

results = {}
for path in sys.argv[1:]:
    read, write = os.pipe()
    if os.fork() == 0:
        os.close(read)
        with os.fdopen(write, "w") as out:
            json.dump(measure(path), out)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        results[path] = json.loads(answer.read() or "null")
    os.wait()
print(json.dumps(results))
"""


@pytest.mark.slow
def test_bombs_are_skipped_within_a_memory_ceiling(tmp_path) -> None:
    photo = np.full((6000, 6000), 230, np.uint8)  # a dark item on white, 36 megapixels
    photo[1000:5000, 2000:4000] = 30
    files = {
        "bomb.png": (write_png(tmp_path / "bomb.png", 40_000, 40_000, rows=10), 100),
        "wide.png": (write_png(tmp_path / "wide.png", 12_000, 12_000), 100),
        "liar": (
            write_gzip_bomb(tmp_path / "liar-idx3-ubyte.gz", idx_header((100, 28, 28)), 2**30),
            100,
        ),
        "huge": (
            write_gzip_bomb(
                tmp_path / "huge-idx3-ubyte.gz", idx_header((1_300_000, 28, 28)), 2**30
            ),
            100,
        ),
        "photo.jpg": (tmp_path / "photo.jpg", 30),  # decoded reduced
    }
    Image.fromarray(photo).save(tmp_path / "photo.jpg", quality=90)
    assert (tmp_path / "wide.png").stat().st_size < 500_000
    assert (tmp_path / "liar-idx3-ubyte.gz").stat().st_size < 2_000_000
    paths = [str(path) for path, _ in files.values()]
    run = subprocess.run(
        [sys.executable, "-c", MEASURE, *paths], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(run.stdout.splitlines()[-1])
    growth = {name: results[str(path)][0] for name, (path, _) in files.items()}
    print("peak memory growth (MB):", {k: round(v, 1) for k, v in growth.items()})
    for name, (_, ceiling) in files.items():
        assert growth[name] < ceiling, (name, growth[name])
    skipped = {
        name: dict(results[str(path)][2]).get(str(path), "") for name, (path, _) in files.items()
    }
    assert "1600000000 pixels, more than the 32-megapixel limit" in skipped["bomb.png"]
    assert "144000000 pixels, more than the 32-megapixel limit" in skipped["wide.png"]
    assert "holds more than the 78400 bytes its header" in skipped["liar"]
    assert "1019200000 bytes, more than the limit of 100000000" in skipped["huge"]
    assert results[str(tmp_path / "photo.jpg")][1] == [str(tmp_path / "photo.jpg")]


def test_16_bit_png_keeps_its_grey_levels(tmp_path) -> None:
    levels = np.linspace(0, 65535, 28 * 28).round().astype(np.uint16).reshape(28, 28)
    Image.fromarray(levels).save(tmp_path / "deep.png")  # 16-bit grey PNG
    wide = np.tile(np.linspace(0, 65535, 2048).round().astype(np.uint16), (2048, 1))
    Image.fromarray(wide).save(tmp_path / "wide.png")  # reduced after decoding
    inputs = load_inputs([tmp_path / "deep.png", tmp_path / "wide.png"], invert=False)
    assert inputs.skipped == []
    gray = inputs.images[0]
    assert np.abs(gray.astype(int) - np.round(levels / 257)).max() <= 1
    assert len(np.unique(gray)) > 200  # was 5 levels: all above 255 clipped to 255
    assert inputs.images[1][14, 0] < 10 and inputs.images[1][14, -1] > 245


def save_frames(path: Path, frames: list[np.ndarray]) -> Path:
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:])
    return path


def test_every_frame_of_an_animated_gif_and_a_multipage_tiff_is_read(tmp_path) -> None:
    save_frames(tmp_path / "a.gif", [np.full((28, 28), v, np.uint8) for v in (30, 120, 200)])
    save_frames(
        tmp_path / "b.tif", [np.full((28, 28), 90, np.uint8), np.full((40, 20), 160, np.uint8)]
    )
    save_frames(tmp_path / "c.gif", [np.full((8, 8), 2 * k, np.uint8) for k in range(105)])
    inputs = load_inputs([tmp_path], invert=False)
    names = [source.removeprefix(f"{tmp_path}/") for source in inputs.sources]
    assert names == ["a.gif#0", "a.gif#1", "a.gif#2", "b.tif#0", "b.tif#1"] + [
        f"c.gif#{k}" for k in range(100)
    ]
    assert [int(image.mean()) for image in inputs.images[:5]] == [30, 120, 200, 90, 160]
    assert [int(image.max()) for image in inputs.images[5:]] == [2 * k for k in range(100)]
    assert inputs.skipped == [
        (str(tmp_path / "c.gif"), "more than 100 frames: only #0-#99 were read")
    ]


def test_a_file_name_that_is_not_utf8_reaches_the_csv(tmp_path) -> None:
    save_gray(tmp_path / os.fsdecode(b"caf\xe9.png"))  # Latin-1 bytes, as old cameras write
    gone = tmp_path / os.fsdecode(b"gone\xff.png")
    inputs = load_inputs([tmp_path, gone])
    assert inputs.sources == [f"{tmp_path}/caf\\xe9.png"]
    assert inputs.skipped == [(f"{tmp_path}/gone\\xff.png", "does not exist")]
    predictions = to_predictions(inputs.sources, torch.full((1, 10), 0.1))
    rows = list(csv.DictReader(write_csv(predictions, tmp_path / "p.csv").open(encoding="utf-8")))
    assert rows[0]["source"] == f"{tmp_path}/caf\\xe9.png"


def unblock_a_reader_later(fifo: Path, seconds: float = 3.0) -> None:
    """Opens ``fifo`` for writing after ``seconds`` and closes it, so that a reader blocked on
    it gets end-of-file: the test then fails instead of hanging."""

    def open_and_close() -> None:
        time.sleep(seconds)
        with contextlib.suppress(OSError):  # ENXIO: nobody is reading, as it should be
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    threading.Thread(target=open_and_close, daemon=True).start()


def test_a_fifo_or_device_is_skipped_not_waited_for(tmp_path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    ok = save_gray(folder / "ok.png")
    for fifo in (tmp_path / "pipe.png", folder / "inner.png"):
        os.mkfifo(fifo)
        unblock_a_reader_later(fifo)
    (folder / "zero.npy").symlink_to("/dev/zero")  # endless, if it were read
    inputs = load_inputs([tmp_path / "pipe.png", folder])
    assert inputs.sources == [str(ok)]
    reasons = dict(inputs.skipped)
    assert set(reasons) == {
        str(p) for p in (tmp_path / "pipe.png", folder / "inner.png", folder / "zero.npy")
    }
    assert all(reason.startswith("not a regular file") for reason in reasons.values())


@pytest.mark.parametrize("invert", ["maybe", 1])
def test_an_invalid_invert_is_one_config_error_before_any_file_is_read(tmp_path, invert) -> None:
    save_gray(tmp_path / "ok.png")
    with pytest.raises(ConfigError) as error:
        load_inputs([tmp_path, tmp_path / "missing.png"], invert=invert)
    assert str(error.value) == f"invert={invert!r} must be auto, true or false."


def test_a_file_name_with_rich_markup_is_printed_as_it_is() -> None:
    console = Console(file=io.StringIO(), width=200)
    sources = ["[/x].png", "[bold]y.png"]  # a closing tag alone was a MarkupError
    print_predictions(to_predictions(sources, torch.full((2, 10), 0.1)), 5, console)
    printed = console.file.getvalue()
    assert "[/x].png" in printed and "[bold]y.png" in printed
