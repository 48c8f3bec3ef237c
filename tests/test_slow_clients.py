"""Slow, stalled and greedy clients against a real fmnist-serve on 127.0.0.1, with raw
sockets: each gets its status within its deadline, holds nothing after it, and good requests
keep their answers meanwhile. Every socket has a timeout and every loop a bound."""

from __future__ import annotations

import json
import select
import socket
import time
from pathlib import Path

import pytest
import torch

from bench.serving import post, served
from bench.stand_ins import png_bytes
from bench.synthetic import make_images

pytest.importorskip("litserve", reason="LitServe not installed (extra: serve)")
pytest.importorskip("multipart", reason="python-multipart not installed (extra: serve)")

pytestmark = pytest.mark.slow  # starting the server's processes takes 10-60 s
READ_TIMEOUT = 2  # seconds, read_timeout of conf/serve.yaml
PER_CLIENT = 8
MAX_BODY = 100_000
#: The most seconds any one answer may take here: the deadline and the machine's slowness.
SLACK = 20


@pytest.fixture(scope="module")
def server(tiny_checkpoint: Path, fake_data_dir: Path, tmp_path_factory) -> tuple[str, int]:
    overrides = [
        f"ckpt={tiny_checkpoint}", f"ood.data_root={fake_data_dir}", "ood.search_system=false",
        "ood.strict=false", f"read_timeout={READ_TIMEOUT}", f"max_body_bytes={MAX_BODY}",
        f"max_connections_per_client={PER_CLIENT}",
    ]  # fmt: skip
    with served(overrides, tmp_path_factory.mktemp("slow_clients")) as url:
        yield url, int(url.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def good_png() -> tuple[bytes, int]:
    """A tile the tiny model knows, and its label."""
    return png_bytes(make_images(torch.tensor([3]), seed=11).numpy()[0]), 3


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=SLACK)
    sock.settimeout(SLACK)
    return sock


def head(length: int, kind: str = "image/png") -> bytes:
    return (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {kind}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def answer(sock: socket.socket) -> tuple[int, dict, bytes]:
    """(status, JSON body, raw bytes) of the one answer on ``sock``, read until the server
    closes the connection (every answer here ends it) or the socket's timeout."""
    data = b""
    while len(data) < 1_000_000:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
    if not data:
        return 0, {}, data
    status = int(data.split(b" ", 2)[1])
    body = data.split(b"\r\n\r\n", 1)[1]
    return status, json.loads(body) if body else {}, data


def good_request_answers(url: str, good: tuple[bytes, int]) -> None:
    status, result = post(f"{url}/predict", good[0], "image/png")
    assert status == 200 and result["predictions"][0]["label"] == good[1]


def test_a_declared_length_over_the_limit_is_refused_from_the_header(server, good_png) -> None:
    url, port = server
    with connect(port) as sock:
        start = time.monotonic()
        sock.sendall(head(1_000_000_000) + b"x" * 100)
        status, body, _ = answer(sock)
        elapsed = time.monotonic() - start
    assert status == 413 and "over the limit of 100,000 bytes" in body["detail"]
    assert elapsed < READ_TIMEOUT, elapsed  # not after a deadline: at once
    good_request_answers(url, good_png)


@pytest.mark.parametrize("trickle", [False, True])
def test_a_short_or_trickling_body_gets_408_at_its_deadline(server, good_png, trickle) -> None:
    url, port = server
    with connect(port) as sock:
        start = time.monotonic()
        sock.sendall(head(5000) + b"x" * 100)
        status = 0
        for _ in range(SLACK * 5):  # 10 bytes every 0.2 s: never finishing in time
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:
                break
            if trickle:
                try:
                    sock.sendall(b"x" * 10)
                except OSError:
                    break
        status, body, raw = answer(sock)
        elapsed = time.monotonic() - start
    assert status == 408 and f"within {READ_TIMEOUT} s" in body["detail"]
    assert b"connection: close" in raw.lower()
    assert READ_TIMEOUT - 0.5 < elapsed < READ_TIMEOUT + SLACK, elapsed
    good_request_answers(url, good_png)


def test_a_half_closed_connection_still_gets_its_status(server, good_png) -> None:
    url, port = server
    with connect(port) as sock:  # the body ends, short, when the client closes its side
        sock.sendall(head(5000) + b"x" * 100)
        sock.shutdown(socket.SHUT_WR)
        status, body, _ = answer(sock)
    assert status == 400 and "ended after 100 of the 5,000 bytes" in body["detail"]
    with connect(port) as sock:  # a whole request, then the client's side closed
        sock.sendall(head(len(good_png[0])) + good_png[0])
        sock.shutdown(socket.SHUT_WR)
        status, body, _ = answer(sock)
    assert status == 200 and body["predictions"][0]["label"] == good_png[1]
    good_request_answers(url, good_png)


def test_headers_sent_a_byte_at_a_time_get_408(server) -> None:
    _, port = server
    with connect(port) as sock:
        start = time.monotonic()
        status = 0
        for byte in head(10)[: SLACK * 5]:  # one byte every 0.2 s (slowloris)
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:
                break
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
        status, body, _ = answer(sock)
        elapsed = time.monotonic() - start
    assert status == 408 and "No complete request" in body["detail"]
    assert elapsed < READ_TIMEOUT + SLACK, elapsed


def still_open(sock: socket.socket) -> bool:
    """Whether the server has left ``sock`` open (nothing to read, no end of file)."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return True
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except OSError:
        return False


def test_200_idle_connections_hold_little_and_good_requests_keep_answering(
    server, good_png
) -> None:
    url, port = server
    idle = [connect(port) for _ in range(200)]
    try:
        started = time.monotonic()
        for _ in range(5):
            good_request_answers(url, good_png)
        time.sleep(0.5)  # the server closes the connections it evicts
        held = sum(still_open(sock) for sock in idle)
        assert held <= PER_CLIENT, held  # one more connection closes the oldest idle one
        deadline = started + READ_TIMEOUT + SLACK
        while any(still_open(s) for s in idle) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(still_open(s) for s in idle)  # idle past read_timeout: closed
    finally:
        for sock in idle:
            sock.close()
    good_request_answers(url, good_png)


def test_all_busy_connections_of_one_client_make_the_next_one_wait(server, good_png) -> None:
    url, port = server
    busy = [connect(port) for _ in range(PER_CLIENT)]
    try:
        for sock in busy:  # requests in progress: their bodies are still coming
            sock.sendall(head(5000) + b"x")
        time.sleep(0.5)
        with connect(port) as extra:  # refused at once, before it sends anything
            status, body, _ = answer(extra)
        assert status == 429 and "wait for one" in body["detail"]
        assert [answer(sock)[0] for sock in busy] == [408] * PER_CLIENT
    finally:
        for sock in busy:
            sock.close()
    good_request_answers(url, good_png)
