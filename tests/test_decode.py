"""One image decoder: the same bytes give the same tile from a file (prediction, the contact
sheet) and from an HTTP body (the server and its page), for every image mode Pillow reads.

The HTTP side goes through the server's own request middleware (``ImageBodies``) in this
process, with the body as a raw image, a multipart form and base64 JSON; ``test_serve.py``
sends some of the same files to a real server."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import anyio
import numpy as np
import pytest
from PIL import Image

from fmnist.inference.contact_sheet import originals
from fmnist.inference.decode import MAX_PIXELS, ImageTooLargeError, decode_image
from fmnist.inference.images import load_inputs

pytest.importorskip("multipart", reason="python-multipart not installed (extra: serve)")

from fmnist.inference.serve import ImageBodies, Limits  # noqa: E402

LIMITS = Limits(max_body_bytes=5_000_000, max_images=8)


def scene(height: int = 60, width: int = 40) -> np.ndarray:
    """Levels in [0, 1]: a light gradient background and a dark item off-centre."""
    rows = np.linspace(0.8, 1.0, height)[:, None] * np.ones((1, width))
    rows[15:45, 8:26] = np.linspace(0.05, 0.4, 18)[None, :]
    return rows


def rgb_scene() -> np.ndarray:
    levels = scene()
    return (np.stack([levels, levels**2, np.sqrt(levels)], -1) * 255).round().astype(np.uint8)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def animated() -> bytes:
    frames = [Image.fromarray((scene() * 255 * k / 3).astype(np.uint8)) for k in (1, 2, 3)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:])


def with_alpha(mode: str) -> Image.Image:
    gray = (scene() * 255).astype(np.uint8)
    alpha = np.full_like(gray, 255)
    alpha[:10] = 0  # a transparent band: composited on white
    image = Image.fromarray(rgb_scene() if mode == "RGBA" else gray)
    image.putalpha(Image.fromarray(alpha))
    return image


#: (mode Pillow reports when it opens the bytes, the bytes).
SAMPLES = {
    "1": lambda: ("1", encode(Image.fromarray(scene() > 0.5), "PNG")),
    "L": lambda: ("L", encode(Image.fromarray((scene() * 255).astype(np.uint8)), "PNG")),
    "I;16": lambda: ("I;16", encode(Image.fromarray((scene() * 65535).astype(np.uint16)), "PNG")),
    "I": lambda: ("I", encode(Image.fromarray((scene() * 65535).astype(np.int32)), "TIFF")),
    "F": lambda: ("F", encode(Image.fromarray(scene().astype(np.float32)), "TIFF")),
    "P": lambda: ("P", encode(Image.fromarray(rgb_scene()).convert("P"), "PNG")),
    "P+transparency": lambda: (
        "P",
        encode(Image.fromarray(rgb_scene()).convert("P"), "PNG", transparency=0),
    ),
    "LA": lambda: ("LA", encode(with_alpha("LA"), "PNG")),
    "RGB": lambda: ("RGB", encode(Image.fromarray(rgb_scene()), "PNG")),
    "RGB JPEG": lambda: ("RGB", encode(Image.fromarray(rgb_scene()), "JPEG", quality=90)),
    "RGBA": lambda: ("RGBA", encode(with_alpha("RGBA"), "PNG")),
    "CMYK": lambda: ("CMYK", encode(Image.fromarray(rgb_scene()).convert("CMYK"), "JPEG")),
    "animated": lambda: ("P", animated()),
}
SUFFIXES = {"I": ".tif", "F": ".tif", "RGB JPEG": ".jpg", "CMYK": ".jpg", "animated": ".gif"}


def multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = "decode-test"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"'
    body = f"{head}\r\nContent-Type: application/octet-stream\r\n\r\n".encode() + data
    return body + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def through_middleware(body: bytes, content_type: str, limits: Limits = LIMITS) -> tuple:
    """(status, JSON) of the middleware's answer: 200 and what it forwards to the model when
    the body is good, else its own 4xx."""
    forwarded: dict = {}

    async def model(scope, receive, send) -> None:
        forwarded.update(json.loads((await receive())["body"]))

    async def run() -> list[dict]:
        headers = [(b"content-type", content_type.encode())]
        headers.append((b"content-length", str(len(body)).encode()))
        scope = {"type": "http", "path": "/predict", "method": "POST", "headers": headers}
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        sent: list[dict] = []

        async def receive() -> dict:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        with anyio.fail_after(30):
            await ImageBodies(model, "/predict", limits)(scope, receive, send)
        return sent

    sent = anyio.run(run)
    if not sent:
        return 200, forwarded
    return sent[0]["status"], json.loads(sent[1]["body"])


def tiles_of(answer: dict) -> list[np.ndarray]:
    return [
        np.asarray(Image.open(io.BytesIO(base64.b64decode(item["tile"]))))
        for item in answer["images"]
    ]


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_a_file_and_an_http_body_give_the_same_tile(kind: str, tmp_path: Path) -> None:
    mode, data = SAMPLES[kind]()
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == mode  # the mode this case is about
    path = tmp_path / f"image{SUFFIXES.get(kind, '.png')}"
    path.write_bytes(data)
    from_file = load_inputs([path])
    assert from_file.skipped == []
    assert len(from_file.images) == (3 if kind == "animated" else 1)
    as_form = multipart(path.name, data)
    as_json = (json.dumps([base64.b64encode(data).decode()]).encode(), "application/json")
    for body, content_type in ((data, "application/octet-stream"), as_form, as_json):
        status, answer = through_middleware(body, content_type)
        assert status == 200, answer
        served = tiles_of(answer)
        assert len(served) == len(from_file.images)
        for tile, expected in zip(served, from_file.images, strict=True):
            assert np.array_equal(tile, expected), (kind, content_type)
    if kind == "animated":
        sources = [item["source"] for item in answer["images"]]
        assert sources == ["image 1#0", "image 1#1", "image 1#2"]
        assert [s.rsplit("/", 1)[-1] for s in from_file.sources] == [
            "image.gif#0",
            "image.gif#1",
            "image.gif#2",
        ]


@pytest.mark.parametrize("kind", ["I;16", "I", "F"])
def test_deep_grey_keeps_its_levels_instead_of_being_binarized(kind: str) -> None:
    _, data = SAMPLES[kind]()
    (rgb,) = decode_image(data).frames
    expected = (scene() * 255).round()
    assert np.abs(rgb[..., 0].astype(int) - expected).max() <= 1  # the high byte: <= 1 off
    assert len(np.unique(rgb)) > 20  # convert("RGB") left 2 values: 0 and 255


def test_the_contact_sheet_shows_what_the_decoder_read(tmp_path: Path) -> None:
    _, data = SAMPLES["I;16"]()
    (tmp_path / "deep.png").write_bytes(data)
    (thumbnail,) = originals([str(tmp_path / "deep.png")], [np.zeros((28, 28), np.uint8)])
    assert np.array_equal(thumbnail, decode_image(data).frames[0])  # small: shown as it is


def header_only_png(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height``: refused before any decoding."""
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1))  # one row of the many it claims
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_one_pixel_limit_for_files_and_bodies(tmp_path: Path) -> None:
    side = int(MAX_PIXELS**0.5) + 1
    data = header_only_png(side, side)
    (tmp_path / "big.png").write_bytes(data)
    with pytest.raises(ImageTooLargeError, match="32-megapixel limit"):
        decode_image(data)
    skipped = dict(load_inputs([tmp_path / "big.png"]).skipped)
    assert "more than the 32-megapixel limit" in skipped[str(tmp_path / "big.png")]
    status, answer = through_middleware(data, "image/png")
    assert status == 413 and "32-megapixel limit" in answer["detail"]


def test_frames_count_against_the_images_a_request_may_hold() -> None:
    status, answer = through_middleware(animated(), "image/gif", Limits(5_000_000, 2))
    assert status == 413 and "more than 2 frames" in answer["detail"]


async def forwarding_model(scope, receive, send) -> None:
    scope["forwarded"].update(json.loads((await receive())["body"]))


async def post_to(middleware: ImageBodies, body: bytes, content_type: str) -> tuple:
    """(status, headers, JSON) of one request through ``middleware`` (200: what it forwards)."""
    forwarded: dict = {}
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict] = []
    headers = [(b"content-type", content_type.encode())]
    scope = {"type": "http", "path": "/predict", "method": "POST", "headers": headers}
    scope["forwarded"] = forwarded  # where forwarding_model puts what reaches it

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await middleware(scope, receive, send)
    if not sent:
        return 200, {}, forwarded
    return sent[0]["status"], dict(sent[0]["headers"]), json.loads(sent[1]["body"])


def png_of(side: int) -> bytes:
    return encode(Image.fromarray(np.full((side, side), 200, np.uint8)), "PNG")


def test_a_json_flood_is_refused_by_its_count_before_it_is_parsed(monkeypatch) -> None:
    import types

    import fmnist.inference.serve as serve

    def parse(_):
        raise AssertionError("parsed")

    monkeypatch.setattr(serve, "json", types.SimpleNamespace(loads=parse, dumps=json.dumps))
    flood = json.dumps([""] * 100_000).encode()  # the 6.6 M empty strings, smaller
    status, answer = through_middleware(flood, "application/json")
    assert status == 413 and "More than 8 images in one request" in answer["detail"]


def test_a_request_over_its_pixel_budget_is_refused_from_the_headers(monkeypatch) -> None:
    import fmnist.inference.serve as serve

    def decode(*_, **__):
        raise AssertionError("decoded")

    monkeypatch.setattr(serve, "decode_image", decode)
    limits = Limits(max_body_bytes=5_000_000, max_images=8, max_pixels=30_000)
    body = json.dumps([base64.b64encode(png_of(100)).decode()] * 4).encode()  # 4 x 10,000
    status, answer = through_middleware(body, "application/json", limits)
    assert status == 413 and "40,000 pixels, more than the 30,000" in answer["detail"]


def test_animated_frames_spend_the_same_budget() -> None:
    limits = Limits(max_body_bytes=5_000_000, max_images=8, max_pixels=60 * 40 * 2)
    status, answer = through_middleware(animated(), "image/gif", limits)  # 3 frames of 60x40
    assert status == 413 and "7200 pixels in its frames, more than the 4800" in answer["detail"]


def run_requests(limits: Limits, bodies: list[bytes], convert_image) -> list[tuple]:
    """Post ``bodies`` at once through one middleware whose conversion is ``convert_image``."""
    import fmnist.inference.serve as serve

    answers: list = [None] * len(bodies)

    async def main() -> None:
        middleware = ImageBodies(forwarding_model, "/predict", limits)

        async def one(i: int) -> None:
            answers[i] = await post_to(middleware, bodies[i], "application/json")

        async with anyio.create_task_group() as group:
            for i in range(len(bodies)):
                group.start_soon(one, i)
                await anyio.sleep(0.05)  # in this order

    original = serve.convert_image
    serve.convert_image = convert_image
    try:
        anyio.run(main)
    finally:
        serve.convert_image = original
    return answers


def test_the_images_of_concurrent_requests_take_turns_in_the_workers() -> None:
    import time

    done: list[int] = []

    def slow(name, data, limits, budget):
        time.sleep(0.05)
        done.append(len(data))
        return [{"source": name}]

    big = json.dumps([base64.b64encode(png_of(10)).decode()] * 6).encode()
    small = json.dumps({"images": [base64.b64encode(png_of(12)).decode()]}).encode()
    limits = Limits(max_body_bytes=5_000_000, max_images=8, workers=1)
    answers = run_requests(limits, [big, big, small], slow)
    assert [len(a[2]["images"]) for a in answers] == [6, 6, 1]
    # one worker: the small request's image is converted after one or two of each large
    # request's, not after all twelve
    assert done.index(len(png_of(12))) <= 4, done


def test_a_full_server_or_a_late_request_gets_503_with_retry_after() -> None:
    import threading
    import time

    release = threading.Event()

    def held(name, data, limits, budget):
        release.wait(5)
        return []

    one = json.dumps([base64.b64encode(png_of(10)).decode()]).encode()
    limits = Limits(max_body_bytes=5_000_000, max_images=8, max_pending=1)
    threading.Timer(1.0, release.set).start()
    first, second = run_requests(limits, [one, one], held)
    assert first[0] == 200
    assert second[0] == 503 and second[1][b"retry-after"] == b"2"
    assert "1 requests are being converted" in second[2]["detail"]

    converted: list[str] = []

    def slow(name, data, limits, budget):
        time.sleep(0.2)
        converted.append(name)
        return []

    two = json.dumps([base64.b64encode(png_of(10)).decode()] * 2).encode()
    late = Limits(max_body_bytes=5_000_000, max_images=8, deadline=0.1)
    ((status, headers, answer),) = run_requests(late, [two], slow)
    assert status == 503 and "not converted within 0.1 s" in answer["detail"]
    assert converted == ["image 1"]  # the image in a worker at the deadline ends; no other starts
