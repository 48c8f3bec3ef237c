"""Hypothesis against the image decoder, the dataset-file reader, the server's request
parser and the readers of run directories: random bytes, truncated and corrupted
PNG/JPEG/GIF/TIFF/IDX files, random multipart boundaries and declared lengths, random damage
to a real run's files. Each answer is one of the promised ones (an image, a reason to skip the
file, a 4xx with a message, a summary with the run listed as unreadable), never another
exception, a 500, a logged traceback or a hang. Bounded (max_examples, deadlines), about 30 s
in all on a loaded 2-core machine."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import logging
import os
import shutil
import signal
from datetime import timedelta
from pathlib import Path

import anyio
import numpy as np
import pytest
import yaml
from conftest import idx_header
from test_decode import SAMPLES, multipart, through_middleware

from fmnist.errors import ConfigError
from fmnist.inference.decode import ImageTooLargeError, NotAnImageError, decode_image
from fmnist.inference.images import load_inputs

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis not installed (extra: dev)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as npst  # noqa: E402

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


# --- Readers of run directories (sweep summary, leaderboard, task=compare) -------------------

REFERENCE_RUN = Path(__file__).parent / "fixtures" / "reference_run"
RUN_FILES = ("metrics.json", "predictions.npz", "config.yaml", "overrides.yaml",
             ".hydra/overrides.yaml", ".hydra/config.yaml", "error.txt")  # fmt: skip
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def write_real_run(run_dir: Path) -> Path:
    """The reference run's metrics and predictions, with the records train.py writes beside."""
    shutil.copytree(REFERENCE_RUN, run_dir)
    (run_dir / ".hydra").mkdir()
    config = {"seed": 0, "model": {"filters": [8, 16]}, "trainer": {"max_epochs": 1}}
    for name in ("config.yaml", ".hydra/config.yaml"):
        (run_dir / name).write_text(yaml.safe_dump(config))
    for name in ("overrides.yaml", ".hydra/overrides.yaml"):
        (run_dir / name).write_text(yaml.safe_dump(["seed=0", "model.filters=[8,16]"]))
    return run_dir


@st.composite
def run_damage(draw) -> tuple[str, object]:
    """(file, what happens to it): bytes cut or changed, a JSON or YAML value replaced, arrays
    dropped or reshaped, or the file swapped for a FIFO, a directory, a link or nothing."""
    name = draw(st.sampled_from(RUN_FILES))
    kinds = ["bytes", "special"] + {"metrics.json": ["json"], "predictions.npz": ["npz"]}.get(
        name, ["yaml"]
    )
    kind = draw(st.sampled_from(kinds))
    if kind == "bytes":
        good = {name: (REFERENCE_RUN / name).read_bytes() if (REFERENCE_RUN / name).exists()
                else b"- seed=0\n"}  # fmt: skip
        return name, draw(st.one_of(damaged(good), st.binary(max_size=512)))
    if kind == "special":
        return name, draw(st.sampled_from(["fifo", "directory", "dangling", "loop", "deleted"]))
    if kind == "json":
        key = draw(st.sampled_from(["test/acc", "val/acc_best", "monitor", "seed", "parameters",
                                    "train_time_s", "baseline", "test/nll", "other"]))  # fmt: skip
        return name, ("json", key, draw(JSON_VALUES))
    if kind == "npz":
        shapes = npst.array_shapes(min_dims=0, max_dims=2, max_side=12)
        keys = st.sampled_from(["labels", "predicted", "probabilities"])
        arrays = st.dictionaries(keys, npst.arrays(npst.scalar_dtypes(), shapes), max_size=3)
        return name, ("npz", draw(arrays))
    return name, ("yaml", draw(JSON_VALUES))


def apply_damage(run_dir: Path, name: str, damage: object) -> None:
    path = run_dir / name
    if isinstance(damage, bytes):
        path.write_bytes(damage)
    elif isinstance(damage, str):
        path.unlink(missing_ok=True)
        {"fifo": os.mkfifo, "directory": Path.mkdir, "deleted": lambda p: None,
         "dangling": lambda p: p.symlink_to(run_dir / "nowhere"),
         "loop": lambda p: p.symlink_to(p)}[damage](path)  # fmt: skip
    elif damage[0] == "json":
        metrics = json.loads((REFERENCE_RUN / "metrics.json").read_text())
        path.write_text(json.dumps({**metrics, damage[1]: damage[2]}))  # NaN written as NaN
    elif damage[0] == "npz":
        with path.open("wb") as file:
            np.savez(file, **damage[1])
    else:
        path.write_text(yaml.safe_dump(damage[1]))


@contextlib.contextmanager
def hang_guard(seconds: float = 20):
    """A reader that blocks (a FIFO opened for reading) fails the test instead of hanging it."""

    def hung(*_) -> None:
        raise TimeoutError("a reader hung")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def one_line(reason: str) -> bool:
    return bool(reason) and "\n" not in reason and "Traceback" not in reason


@FUZZ
@given(damage=run_damage())
def test_every_reader_of_a_damaged_run_gives_a_result_or_one_line(tmp_path_factory, damage):
    from fmnist.results.leaderboard import find_entries, leaderboard, row_cells
    from fmnist.results.sweep import print_summary, read_job, write_summary
    from fmnist.tasks.compare import compare_pair, contestants_of

    sweep = tmp_path_factory.mktemp("sweep")
    good, bad = write_real_run(sweep / "0"), write_real_run(sweep / "1")
    apply_damage(bad, *damage)
    with hang_guard():
        job = read_job(bad)  # the sweep summary and its multirun callback
        assert job.status in {"completed", "failed", "unfinished", "unreadable"}
        assert job.status != "unreadable" or one_line(job.error)
        jobs, groups = write_summary(sweep)  # (a job without .hydra/overrides.yaml is no job)
        print_summary(jobs, groups, "Sweep summary")
        assert jobs[0].job == "0" and jobs[0].status == "completed" and len(jobs) <= 2
        assert (sweep / "summary.md").exists()

        entries, skipped = find_entries([sweep])  # the leaderboard
        assert good in {e.path for e in entries} and len(entries) + len(skipped) <= 2
        assert all(one_line(line) for line in skipped)
        for rank, row in enumerate(leaderboard(entries), 1):
            row_cells(rank, row)

        left_out: list[str] = []  # task=compare
        (reference,) = contestants_of(good, left_out)
        try:
            compared = contestants_of(bad, left_out)
        except ConfigError as error:  # no metrics.json: neither a run nor a sweep directory
            assert one_line(str(error)) and not (bad / "metrics.json").is_file()
            return
        assert len(compared) + len(left_out) == 1 and all(one_line(line) for line in left_out)
        options = {"n_resamples": 20, "seed": 0, "confidence": 0.9, "alpha": 0.05}
        for other in compared:
            compare_pair(reference, other, options)
