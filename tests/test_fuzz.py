"""Hypothesis against the image decoder, the dataset-file reader and the server's request
parser: random bytes, truncated and corrupted PNG/JPEG/GIF/TIFF/IDX files, random multipart
boundaries and declared lengths. Each answer is one of the promised ones (an image, a reason
to skip the file, a 4xx with a message), never another exception, a 500, a logged traceback
or a hang. Bounded (max_examples, deadlines), about 20 s in all on a loaded 2-core machine."""

from __future__ import annotations

import base64
import gzip
import json
import logging
import os
from datetime import timedelta

import anyio
import numpy as np
import pytest
from conftest import idx_header
from test_decode import SAMPLES, multipart, through_middleware

from fmnist.inference.decode import ImageTooLargeError, NotAnImageError, decode_image
from fmnist.inference.images import load_inputs

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis not installed (extra: dev)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fmnist.inference.serve import Limits  # noqa: E402

FUZZ = settings(
    # FMNIST_FUZZ_EXAMPLES=2000 for a longer hunt; CI keeps 60 per test.
    max_examples=int(os.environ.get("FMNIST_FUZZ_EXAMPLES", 60)),
    deadline=timedelta(seconds=10),  # per example: a hang fails instead of waiting
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize="FMNIST_FUZZ_EXAMPLES" not in os.environ,  # CI: the same examples every time
)
GOOD = {kind: SAMPLES[kind]()[1] for kind in ("RGB", "RGB JPEG", "animated", "I", "CMYK")}
LIMITS = Limits(max_body_bytes=200_000, max_images=4, read_timeout=5)
ANSWERS = {200, 400, 408, 413, 415}


def idx_file() -> bytes:
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    return idx_header(images.shape) + images.tobytes()


@st.composite
def damaged(draw, good: dict[str, bytes]) -> bytes:
    """A good file cut short, with a few bytes changed, or both."""
    data = bytearray(good[draw(st.sampled_from(sorted(good)))])
    for _ in range(draw(st.integers(0, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


def check_decoded(data: bytes) -> None:
    try:
        decoded = decode_image(data)
    except (ImageTooLargeError, NotAnImageError) as exc:
        assert str(exc)  # a reason, said
        return
    for frame in decoded.frames:
        assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_are_an_image_or_a_reason(data: bytes) -> None:
    check_decoded(data)


@FUZZ
@given(damaged(GOOD))
def test_damaged_images_are_an_image_or_a_reason(data: bytes) -> None:
    check_decoded(data)


@FUZZ
@given(data=st.one_of(damaged({"idx": idx_file()}), st.binary(max_size=2048)), packed=st.booleans())
def test_damaged_idx_files_are_read_or_skipped_with_a_reason(tmp_path_factory, data, packed):
    path = tmp_path_factory.mktemp("idx") / ("images-idx3-ubyte" + (".gz" if packed else ""))
    path.write_bytes(gzip.compress(data) if packed else data)
    inputs = load_inputs([path])
    assert len(inputs.images) + len(inputs.skipped) >= 1
    for image in inputs.images:
        assert image.shape == (28, 28) and image.dtype == np.uint8
    for _, reason in inputs.skipped:
        assert reason and "Traceback" not in reason


def check_answer(body: bytes, content_type: str, caplog) -> int:
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="fmnist.inference.serve"):
        status, answer = through_middleware(body, content_type, LIMITS)
    assert status in ANSWERS, (status, answer)
    if status != 200:
        assert isinstance(answer["detail"], str) and answer["detail"]
    assert not caplog.records  # "Could not read a request": a bug's traceback
    return status


CONTENT_TYPES = st.sampled_from(
    ["image/png", "application/json", "multipart/form-data; boundary=x", "text/plain", ""]
)


@FUZZ
@given(body=st.one_of(st.binary(max_size=4096), damaged(GOOD)), content_type=CONTENT_TYPES)
def test_random_bodies_get_a_promised_answer(body, content_type, caplog) -> None:
    check_answer(body, content_type, caplog)


@FUZZ
@given(
    entries=st.lists(
        st.one_of(
            st.text(max_size=40),
            st.integers(),
            st.none(),
            damaged(GOOD).map(lambda data: base64.b64encode(data).decode()),
        ),
        max_size=6,
    ),
    wrap=st.booleans(),
)
def test_random_json_gets_a_promised_answer(entries, wrap, caplog) -> None:
    body = json.dumps({"images": entries} if wrap else entries).encode()
    check_answer(body, "application/json", caplog)


#: RFC 2046's boundary characters; the fuzz adds others, which must be refused cleanly.
BCHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?"


@FUZZ
@given(
    boundary=st.one_of(st.text(BCHARS, min_size=1, max_size=70), st.text(max_size=80)),
    declared=st.one_of(st.none(), st.text(max_size=80)),
    cut=st.one_of(st.none(), st.integers(0, 2000)),
)
def test_random_multipart_boundaries_get_a_promised_answer(boundary, declared, cut, caplog):
    body, content_type = multipart("item.png", GOOD["RGB"])
    body = body.replace(b"decode-test", boundary.encode("utf-8", "replace"))
    if declared is not None:  # the boundary the header names, not always the body's
        boundary = declared
    content_type = content_type.replace("decode-test", boundary)
    status = check_answer(body[:cut] if cut is not None else body, content_type, caplog)
    if cut is None and declared is None and set(boundary) <= set(BCHARS) and " " not in boundary:
        assert status == 200


@FUZZ
@given(body=damaged(GOOD), declared=st.integers(0, 10**12))
def test_any_declared_length_gets_a_promised_answer(body, declared, caplog) -> None:
    status, answer = with_length(body, declared)
    assert status in ANSWERS and (status == 200 or answer["detail"])
    if declared > 4 * LIMITS.max_body_bytes:
        assert status == 413


def with_length(body: bytes, declared: int) -> tuple[int, dict]:
    """The middleware's answer when the header declares ``declared`` bytes."""
    from fmnist.inference.serve import ImageBodies

    async def model(scope, receive, send) -> None:
        await receive()

    sent: list[dict] = []

    async def run() -> None:
        headers = [(b"content-type", b"image/png"), (b"content-length", str(declared).encode())]
        scope = {"type": "http", "path": "/predict", "method": "POST", "headers": headers}
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        with anyio.fail_after(10):
            await ImageBodies(model, "/predict", LIMITS)(scope, receive, send)

    anyio.run(run)
    return (200, {}) if not sent else (sent[0]["status"], json.loads(sent[1]["body"]))
