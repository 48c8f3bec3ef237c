"""Output locations, checked before any work so a bad path fails at once with the fix."""

from __future__ import annotations

import tempfile
from pathlib import Path

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
