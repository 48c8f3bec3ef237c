"""Files a run writes: locations checked before any work, and writes that are atomic and
strict (a file is either the old one or the whole new one; JSON without NaN)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from fmnist.errors import OutputDirError


def ensure_writable_dir(path: str | Path, what: str = "output directory") -> Path:
    """Create ``path`` if needed and check a file can be written in it."""
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise OutputDirError(
            f"Cannot write the {what} {path} ({type(exc).__name__}: {exc.strerror or exc}). "
            "Choose a writable location (e.g. hydra.run.dir=... or paths.log_dir=... for "
            "runs, output=... for prediction files), or fix its permissions."
        ) from exc
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that ``path`` is always either the old file or the whole
    new one: a temporary file in the same directory, flushed and fsynced, then renamed over
    it (a rename within one filesystem is atomic; ``/tmp`` may be another filesystem)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def finite_or_none(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None, recursively: JSON has no
    NaN, and strict readers (``JSON.parse``) reject the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(v) for v in value]
    return value


def write_json(path: str | Path, data: Any) -> Path:
    """Strict JSON (``null`` for a metric that was not computed, never ``NaN``), atomically."""
    return atomic_write_text(path, json.dumps(finite_or_none(data), indent=2, allow_nan=False))
