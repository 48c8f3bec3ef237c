"""Serving latency: `python -m bench.serving --ckpt PATH [--concurrency 100] [--rounds 5]`.

Starts ``fmnist-serve`` on a free localhost port (its own process group, stopped with
SIGTERM), sends a few warm-up requests, then ``--rounds`` rounds of ``--concurrency``
simultaneous ``POST /predict`` requests, each a 112x112 PNG photo of a test item (so the
conversion runs too). Every request's latency is measured by the client, from sending to
the parsed answer. Writes ``bench/serving.json`` and ``bench/serving.md``: p50, p95 and max
latency, requests per second, and errors (any status but 200). The client runs on the same
machine, and its threads take CPU from the server: on few cores, this is a worst case.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body: bytes, content_type: str | None = None) -> tuple[int, dict]:
    """(status, JSON answer) of a POST; 4xx/5xx answers are returned, not raised."""
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _wait_until_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"fmnist-serve exited ({process.returncode}):\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError(f"fmnist-serve not healthy after {timeout} s:\n{log.read_text()[-3000:]}")


def _group_ended(process: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process.poll()  # reap the main process: a zombie still counts as one of the group
        try:
            os.killpg(process.pid, 0)  # signal 0: is any process of the group left?
        except ProcessLookupError:
            return True
        time.sleep(0.5)
    return False


@contextmanager
def served(
    overrides: list[str], run_dir: Path, timeout: float = 300, python: Path | None = None
) -> Iterator[str]:
    """``python -m fmnist.cli serve`` with ``overrides`` on a free port: its URL. ``python``:
    an interpreter with its own fmnist install (then this checkout is not put on its path).

    On exit SIGTERM goes to the main process only, which must stop the HTTP and inference
    processes; a RuntimeError says so when any is left (they are then killed).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    port, log_path = free_port(), run_dir / "server.log"
    command = [str(python or sys.executable), "-m", "fmnist.cli", "serve", f"port={port}",
               f"hydra.run.dir={run_dir}", *overrides]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if python is None:
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, cwd=run_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_healthy(url, process, log_path, timeout)
            yield url
        finally:
            process.send_signal(signal.SIGTERM)
            ended = _group_ended(process, timeout=90)
            if not ended:
                os.killpg(process.pid, signal.SIGKILL)
    if not ended:
        raise RuntimeError("SIGTERM left fmnist-serve processes running (killed them)")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def load_round(url: str, body: bytes, concurrency: int) -> tuple[list[float], list[int], float]:
    """``concurrency`` simultaneous requests: their latencies (s), statuses and wall time."""

    def one(_: int) -> tuple[float, int]:
        start = time.perf_counter()
        status, _ = post(f"{url}/predict", body, "image/png")
        return time.perf_counter() - start, status

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(one, range(concurrency)))
    return [r[0] for r in results], [r[1] for r in results], time.perf_counter() - start


def measure(url: str, body: bytes, concurrency: int, rounds: int) -> dict[str, Any]:
    """Warm up, then ``rounds`` rounds of ``concurrency`` requests."""
    for _ in range(5):
        post(f"{url}/predict", body, "image/png")
    latencies: list[float] = []
    statuses: list[int] = []
    walls = []
    for _ in range(rounds):
        round_latencies, round_statuses, wall = load_round(url, body, concurrency)
        latencies += round_latencies
        statuses += round_statuses
        walls.append(wall)
    return {
        "requests": len(latencies),
        "errors": sum(status != 200 for status in statuses),
        "p50_ms": 1000 * percentile(latencies, 50),
        "p95_ms": 1000 * percentile(latencies, 95),
        "max_ms": 1000 * max(latencies),
        "requests_per_s": len(latencies) / sum(walls),
    }


def markdown(results: dict[str, Any]) -> str:
    m, r = results["machine"], results["latency"]
    return (
        f"Measured {results['date']} with `{results['command']}` on {m['cpu']} ({m['cores']} "
        f"cores, GPU: {m['gpu'] or 'none'}, load average at start "
        f"{', '.join(f'{x:.1f}' for x in m['load_average_at_start'] or [])}).\n\n"
        f"| {results['concurrency']} concurrent requests x {results['rounds']} rounds, "
        "112x112 PNG each | value |\n| --- | --- |\n"
        f"| p50 latency | {r['p50_ms']:.0f} ms |\n| p95 latency | {r['p95_ms']:.0f} ms |\n"
        f"| max latency | {r['max_ms']:.0f} ms |\n"
        f"| throughput | {r['requests_per_s']:.0f} requests/s |\n"
        f"| errors | {r['errors']} of {r['requests']} |\n"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from bench.report import command_line, write_results
    from bench.run import machine
    from bench.stand_ins import as_photo, png_bytes
    from fmnist.data import load_fashion_mnist

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True, help="a checkpoint written by train.py")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=BENCH_DIR)
    parser.add_argument("overrides", nargs="*", help="conf/serve.yaml overrides, key=value")
    args = parser.parse_args(argv)
    body = png_bytes(as_photo(load_fashion_mnist().test_images[0].numpy()))
    results: dict[str, Any] = {"machine": machine(), "date": time.strftime("%Y-%m-%dT%H:%M:%S")}
    with (
        tempfile.TemporaryDirectory() as run_dir,
        # The server runs in its own directory: a path relative to here is made absolute for
        # it (the command recorded keeps the path as given, with no machine's folders in it).
        served([f"ckpt={Path(args.ckpt).resolve()}", *args.overrides], Path(run_dir)) as url,
    ):
        results["latency"] = measure(url, body, args.concurrency, args.rounds)
    results.update(concurrency=args.concurrency, rounds=args.rounds)
    results["command"] = command_line("bench.serving", argv)
    write_results(args.out, "serving", results, markdown)
    return results


if __name__ == "__main__":
    main()
