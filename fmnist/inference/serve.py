"""A served model: `fmnist-serve ckpt=PATH` (conf/serve.yaml), with LitServe (extra ``serve``).

``POST /predict`` takes an image file (a multipart form or the raw body) or JSON (base64
images) and answers ``{"predictions": [...]}``, one :func:`answer` per image (the format:
docs/photos-and-serving.md). ``GET /`` serves ``static/index.html``; ``GET /health`` is LitServe's.

Bad requests never reach the model: LitServe decodes in the inference worker, where one bad
request of a batch fails the whole batch (litserve 0.2). So :class:`ImageBodies`, an ASGI
middleware in the HTTP process, reads the body within a size and pixel budget, decodes and
converts each image as prediction does (``fmnist.inference.decode``, ``.convert``) and
answers a 4xx itself; the worker receives only valid tiles, batched across requests. That CPU
work runs in a few threads, one image per job, with a deadline per request, so a full server
answers 503 with ``Retry-After`` instead of queueing without end.
"""

from __future__ import annotations

import base64
import inspect
import io
import itertools
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from pydantic import Field, PositiveInt

from fmnist.config import checked
from fmnist.errors import ConfigError, MissingPackageError
from fmnist.inference.connections import guarded_protocol
from fmnist.inference.convert import check_invert, convert
from fmnist.inference.decode import (
    ImageTooLargeError,
    NotAnImageError,
    decode_image,
    header_pixels,
)
from fmnist.inference.images import Prediction, to_predictions
from fmnist.inference.ood import detector_for, mark_ood, predict_with_ood

if TYPE_CHECKING:
    from starlette.types import Message, Receive, Scope, Send

try:  # the optional extra "serve"
    from litserve import LitAPI, LitServer
except ImportError:  # serve() says how to install it
    LitAPI, LitServer = object, None

log = logging.getLogger(__name__)

#: A body over the limit is still read (and dropped) up to this many times the limit.
DRAIN_FACTOR = 4
#: Seconds a client is asked to wait after a 503.
RETRY_AFTER_S = 2


class RequestError(Exception):
    """A bad request: answered with ``status`` and the message, never passed on."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def busy(message: str) -> RequestError:
    """503: the server cannot take the request now (answered with ``Retry-After``)."""
    return RequestError(503, f"{message} Try again in {RETRY_AFTER_S} s.")


@dataclass(frozen=True)
class Limits:
    """What one request may hold, and how much converting the HTTP process takes on at
    once (conf/serve.yaml)."""

    max_body_bytes: int
    max_images: int
    max_pixels: int = 100_000_000  # all images and frames of a request, as decoded
    invert: bool | str = "auto"
    trim: bool = True
    workers: int = 2  # threads converting images
    max_pending: int = 128  # requests converting or waiting for a worker; then 503
    deadline: float = 20.0  # seconds a request's conversion may take; then 503
    read_timeout: float = 30.0  # seconds to send a request's headers, then again its body


@dataclass
class Budget:
    """What is left of one request's limits while its images are decoded."""

    images: int
    pixels: int


@contextmanager
def image_errors(items: list[tuple[str, bytes]], index: int) -> Iterator[None]:
    """The decoder's errors as 413 and 415 answers; an error about one of several images
    names it."""
    try:
        yield
    except ImageTooLargeError as exc:
        error = RequestError(413, f"The image has {exc}.")
    except NotAnImageError as exc:
        error = RequestError(
            415,
            f"Not an image that can be read ({exc}): send a PNG, JPEG, GIF, BMP, TIFF or "
            "WebP file.",
        )
    except RequestError as exc:
        error = exc
    else:
        return
    if len(items) > 1:
        error = RequestError(error.status, f"image {index + 1} ({items[index][0]}): {error}")
    raise error from None


def check_budget(items: list[tuple[str, bytes]], max_pixels: int) -> None:
    """413 when the images' first frames alone are over the request's pixel budget, from
    their headers, before a pixel is decoded (a JPEG counts at its reduced draft)."""
    total = 0
    for index, (_, data) in enumerate(items):
        with image_errors(items, index):
            total += header_pixels(data)
    if total > max_pixels:
        raise RequestError(
            413,
            f"The images have {total:,} pixels, more than the {max_pixels:,} one request may "
            "hold: send fewer or smaller images.",
        )


def tile_png(tile: np.ndarray) -> str:
    """A tile as a base64 PNG (what the page shows and the worker reads back)."""
    buffer = io.BytesIO()
    Image.fromarray(tile).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def convert_image(name: str, data: bytes, limits: Limits, budget: Budget) -> list[dict[str, str]]:
    """One image -> {"source", "tile", "background"} per frame (``name#k`` for the frames of
    an animated image, as prediction names them), by the decoder and conversion prediction
    uses; its frames and pixels are spent from ``budget``."""
    decoded = decode_image(data, max_frames=budget.images, budget=budget.pixels)
    if decoded.left_out:
        raise RequestError(
            413, f"The image has {decoded.left_out}: send at most {limits.max_images} images."
        )
    budget.images -= len(decoded.frames)
    budget.pixels -= decoded.pixels
    conversions = [convert(frame, limits.invert, limits.trim) for frame in decoded.frames]
    frames = len(conversions)
    names = [f"{name}#{k}" for k in range(frames)] if frames > 1 else [name]
    return [
        {"source": n, "tile": tile_png(c.tile), "background": c.background}
        for n, c in zip(names, conversions, strict=True)
    ]


def _base64_image(value: Any, index: int) -> tuple[str, bytes]:
    """One JSON entry: a base64 string, optionally a data URL (``data:image/png;base64,...``)."""
    if not isinstance(value, str):
        raise RequestError(400, f"JSON entry {index + 1} is a {type(value).__name__}, not a "
                           "base64 string.")  # fmt: skip
    text = "".join((value.split(",", 1)[1] if value.startswith("data:") else value).split())
    try:
        return f"image {index + 1}", base64.b64decode(text, validate=True)
    except ValueError:  # binascii.Error included
        raise RequestError(400, f"JSON entry {index + 1} is not valid base64.") from None


def too_many(count: int | str, max_images: int) -> RequestError:
    return RequestError(413, f"{count} images in one request; send at most {max_images}.")


def json_images(body: bytes, max_images: int) -> list[tuple[str, bytes]]:
    """A JSON body: a list of base64 images, or an object with one under "images". Its
    entries are counted before it is parsed (by its commas: one between entries, one in a
    data URL) and again before any is decoded."""
    if body.count(b",") > 2 * max_images + 8:
        raise too_many("More than " + str(max_images), max_images)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise RequestError(400, f"The body is not valid JSON ({exc}).") from None
    if isinstance(data, dict) and "images" in data:
        data = data["images"]
    if not isinstance(data, list):
        raise RequestError(
            400, 'JSON bodies are a list of base64 images, or {"images": [...]}: got neither.'
        )
    if len(data) > max_images:
        raise too_many(len(data), max_images)
    return [_base64_image(value, i) for i, value in enumerate(data)]


async def body_images(
    scope: Scope, receive: Receive, body: bytes, limits: Limits, run: Callable[..., Awaitable[Any]]
) -> list[tuple[str, bytes]]:
    """The images of a request body, by its content type: a form's files in order (its other
    fields ignored), JSON (parsed by ``run``, off the event loop), or one raw image."""
    from starlette.requests import Request

    request = Request(scope, replay_then(body, receive))
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        try:
            async with request.form(max_files=limits.max_images + 1) as form:
                files = [v for _, v in form.multi_items() if hasattr(v, "read")]
                items = [
                    (f.filename or f"file {i + 1}", await f.read()) for i, f in enumerate(files)
                ]
        except Exception as exc:  # starlette's MultiPartException and parser errors
            raise RequestError(400, f"The multipart form could not be read ({exc}).") from None
    elif content_type == "application/json":
        items = await run(json_images, body, limits.max_images)
    else:
        items = [("body", body)] if body else []
    if not items:
        raise RequestError(
            400,
            "No image in the request: POST the image file (curl --data-binary @photo.jpg, or "
            "-F file=@photo.jpg) or JSON with a list of base64 images.",
        )
    if len(items) > limits.max_images:
        raise too_many(len(items), limits.max_images)
    return items


async def respond(scope: Scope, receive: Receive, send: Send, error: RequestError) -> None:
    """``{"detail": message}``, sent directly (the app behind never sees the request): a 408
    or 413 ends the connection after it (the body was not read to its end); a 503 says when
    to retry."""
    from starlette.responses import JSONResponse

    headers = {"connection": "close"} if error.status in (408, 413) else {}
    if error.status == 503:
        headers["retry-after"] = str(RETRY_AFTER_S)
    await JSONResponse({"detail": str(error)}, error.status, headers)(scope, receive, send)


async def read_body(scope: Scope, receive: Receive, max_bytes: int, timeout: float) -> bytes:
    """The whole body, or 408 when it is not in within ``timeout`` seconds, 400 when it ends
    before the length it declared, 413 when it is over ``max_bytes``: at once when declared
    over :data:`DRAIN_FACTOR` times that, else after reading and dropping the rest (most
    clients send the whole body before reading the answer: they would see a broken pipe)."""
    import anyio
    from starlette.datastructures import Headers

    declared = Headers(scope=scope).get("content-length", "")
    declared_size = int(declared) if declared.isdigit() else None
    chunks, size, complete = [], 0, False
    with anyio.move_on_after(timeout):
        while (declared_size or 0) <= DRAIN_FACTOR * max_bytes:  # else 413 at once, unread
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestError(400, "The client went away before sending the whole body.")
            chunk = message.get("body", b"")
            size += len(chunk)
            if max(size, declared_size or 0) <= max_bytes:
                chunks.append(chunk)
            if not message.get("more_body", False) or size > DRAIN_FACTOR * max_bytes:
                complete = True
                break
    if max(size, declared_size or 0) > max_bytes:
        raise RequestError(
            413, f"The body is over the limit of {max_bytes:,} bytes: send a smaller image."
        )
    if not complete:
        raise RequestError(
            408,
            f"The body did not arrive within {timeout:g} s ({size:,} of "
            f"{declared_size if declared_size is not None else 'an unknown number of'} bytes).",
        )
    if declared_size is not None and size < declared_size:
        raise RequestError(
            400, f"The body ended after {size:,} of the {declared_size:,} bytes it declared."
        )
    return b"".join(chunks)


class ImageBodies:
    """ASGI middleware in front of ``POST <path>`` (see the module's docstring): forwards the
    JSON the inference worker reads (``{"images": [{"source", "tile", "background"}]}``, tiles
    as base64 PNGs) or answers ``{"detail": message}`` itself. Its CPU work (parsing JSON,
    reading headers, decoding, converting) runs in ``limits.workers`` threads, one image per
    job, first come first served (anyio's limiter): a small request waits for one image of
    each large one, not for whole requests."""

    def __init__(self, app: Callable[..., Awaitable[None]], path: str, limits: Limits) -> None:
        self.app, self.path, self.limits = app, path, limits
        self.limiter: Any = None
        self.pending = 0

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` in a worker thread, in turn."""
        import anyio

        if self.limiter is None:  # made in the event loop
            self.limiter = anyio.CapacityLimiter(self.limits.workers)
        return await anyio.to_thread.run_sync(function, *args, limiter=self.limiter)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        from starlette.datastructures import MutableHeaders

        try:
            body = await read_body(
                scope, receive, self.limits.max_body_bytes, self.limits.read_timeout
            )
            images = await self.within_deadline(scope, receive, body)
        except RequestError as exc:
            error = exc
        except ImportError as exc:  # the server's install lacks a package: say so, not "bad image"
            missing = MissingPackageError.from_import(exc, "Converting images")
            log.error("%s", missing)
            error = RequestError(500, str(missing))
        except Exception as exc:  # a bug here must not become a 500 without a word
            log.exception("Could not read a request")
            error = RequestError(400, f"The request could not be read ({exc}).")
        else:
            forwarded = json.dumps({"images": images}).encode()
            scope = {**scope, "headers": list(scope["headers"])}
            headers = MutableHeaders(scope=scope)  # edits the copy's list in place
            headers["content-type"] = "application/json"
            headers["content-length"] = str(len(forwarded))
            await self.app(scope, replay_then(forwarded, receive), send)
            return
        await respond(scope, receive, send, error)

    async def within_deadline(
        self, scope: Scope, receive: Receive, body: bytes
    ) -> list[dict[str, str]]:
        """The request's converted images, if it is taken on and done within the deadline."""
        import anyio

        limits = self.limits
        if self.pending >= limits.max_pending:
            raise busy(f"{self.pending} requests are being converted, the most the server takes.")
        self.pending += 1
        try:
            with anyio.move_on_after(limits.deadline):
                items = await body_images(scope, receive, body, limits, self.run)
                await self.run(check_budget, items, limits.max_pixels)
                budget, images = Budget(limits.max_images, limits.max_pixels), []
                for index, (name, data) in enumerate(items):
                    with image_errors(items, index):
                        images += await self.run(convert_image, name, data, limits, budget)
                return images
        finally:
            self.pending -= 1
        raise busy(f"The images were not converted within {limits.deadline:g} s.")


def replay_then(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once, then the client's own messages (disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


def answer(prediction: Prediction, tile: str) -> dict[str, Any]:
    """One image's answer, as JSON."""
    return {
        "source": prediction.source,
        "class": prediction.name,
        "label": prediction.label,
        "probability": prediction.probability,
        "top": [{"class": name, "probability": p} for name, p in prediction.top],
        "ood_score": prediction.ood_score,
        "ood": prediction.ood,
        "background": prediction.background,
        "tile": f"data:image/png;base64,{tile}",
    }


class FashionMNISTAPI(LitAPI):  # type: ignore[misc, valid-type]
    """The model in LitServe's inference worker: valid tiles in (see :class:`ImageBodies`),
    answers out; the images of concurrent requests are predicted as one batch."""

    def __init__(self, ckpt: str, ood: dict[str, Any], top_k: int, **batching: Any) -> None:
        super().__init__(api_path="/predict", **batching)
        self.ckpt, self.ood, self.top_k = ckpt, ood, top_k

    def setup(self, device: str) -> None:
        from fmnist.training.load import load_classifier

        module, settings = load_classifier(self.ckpt)
        self.module = module.to(device)
        self.detector = detector_for(self.ckpt, module, settings, OmegaConf.create(self.ood))

    # ``request`` stays unannotated: LitServe gives the endpoint the annotation's type, and
    # only the default (starlette's Request) makes it read the JSON body.
    def decode_request(self, request) -> list[dict[str, Any]]:  # noqa: ANN001
        """The middleware's images, each with its tile's pixels (uint8) read back."""
        return [
            {**item, "pixels": np.asarray(Image.open(io.BytesIO(base64.b64decode(item["tile"]))))}
            for item in request["images"]
        ]

    def predict(self, x: list[Any]) -> list[Any]:
        """One request's images, or (batched: LitAPI's default ``batch`` keeps the list) a
        list of requests."""
        batched = isinstance(x[0], list)
        requests = x if batched else [x]
        flat = [item for request in requests for item in request]
        tiles = torch.from_numpy(np.stack([item["pixels"] for item in flat]))
        probabilities, scores = predict_with_ood(self.module, self.detector, tiles, len(flat))
        sources, backgrounds = [i["source"] for i in flat], [i.get("background") for i in flat]
        predictions = to_predictions(sources, probabilities, k=self.top_k, backgrounds=backgrounds)
        mark_ood(predictions, scores, self.detector)
        answers = [answer(p, item["tile"]) for p, item in zip(predictions, flat, strict=True)]
        remaining = iter(answers)
        per_request = [list(itertools.islice(remaining, len(request))) for request in requests]
        return per_request if batched else per_request[0]

    def unbatch(self, output: list[Any]) -> list[Any]:
        return output

    def encode_response(self, output: list[dict[str, Any]]) -> dict[str, Any]:
        return {"predictions": output}


def build_server(cfg: DictConfig) -> Any:
    """The LitServer: the API, the request middleware and the page at ``GET /``."""
    from importlib.resources import files

    from starlette.responses import HTMLResponse

    limits = Limits(**{field.name: cfg[field.name] for field in fields(Limits)})
    api = FashionMNISTAPI(
        str(cfg.ckpt),
        OmegaConf.to_container(cfg.ood, resolve=True),
        cfg.top_k,
        max_batch_size=cfg.max_batch_size,
        batch_timeout=cfg.batch_timeout,
    )
    server = LitServer(
        api,
        accelerator=cfg.accelerator,
        timeout=cfg.timeout,
        middlewares=[(ImageBodies, {"path": api.api_path, "limits": limits})],
    )
    html = files("fmnist.inference").joinpath("static/index.html").read_text(encoding="utf-8")
    routes = server.app.router.routes  # LitServe answers GET / with "litserve running"
    routes[:] = [route for route in routes if getattr(route, "path", None) != "/"]
    server.app.add_api_route("/", lambda: HTMLResponse(html), methods=["GET"])
    return server


Seconds = Annotated[float, Field(gt=0, lt=1e6)]


@checked("serve")
def check_settings(
    host: Literal["127.0.0.1", "0.0.0.0", "::"],  # the hosts LitServe binds to
    port: Annotated[int, Field(ge=1024, le=65535)],
    max_body_bytes: PositiveInt,
    max_images: PositiveInt,
    max_pixels: PositiveInt,
    workers: PositiveInt,
    max_pending: PositiveInt,
    max_batch_size: PositiveInt,
    top_k: PositiveInt,
    max_connections_per_client: PositiveInt,
    read_timeout: Seconds,
    deadline: Seconds,
) -> None:
    """Refuse settings LitServe would fail on later, with the fix (one line, by pydantic)."""


def serve(cfg: DictConfig) -> None:
    """Check the config and the checkpoint (and fit its OOD statistics once, here, so the
    worker reads them), then serve until stopped."""
    from fmnist.training.load import load_classifier

    if LitServer is None:
        raise ConfigError(
            "fmnist-serve needs LitServe: pip install 'fmnist[serve]' (or pip install litserve "
            "python-multipart)."
        )
    check_invert(cfg.invert)
    check_settings(**{name: cfg[name] for name in inspect.signature(check_settings).parameters})
    module, settings = load_classifier(cfg.ckpt)
    detector_for(cfg.ckpt, module, settings, cfg.ood)
    server = build_server(cfg)
    # LitServe shuts its worker processes down on Ctrl+C only; a SIGTERM (kill, systemd,
    # docker stop) would leave them running and holding the port. So SIGTERM is Ctrl+C here,
    # and the default end in the HTTP processes forked from here (which inherit the handler).
    main_pid = os.getpid()

    def interrupt(signum: int, frame: Any) -> None:
        if os.getpid() == main_pid:
            raise KeyboardInterrupt
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, interrupt)
    log.info("Serving %s on http://%s:%d/", cfg.ckpt, cfg.host, cfg.port)
    server.run(
        host=cfg.host,
        port=int(cfg.port),
        num_api_servers=cfg.num_api_servers,
        log_level=cfg.log_level,
        generate_client_file=False,
        # Connection limits and deadlines below the app (fmnist.inference.connections).
        http=guarded_protocol(float(cfg.read_timeout), cfg.max_connections_per_client),
    )
