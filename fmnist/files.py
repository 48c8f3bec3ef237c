"""Files a run writes: locations checked before any work, and writes that are atomic and
strict (a file is either the old one or the whole new one; JSON without NaN)."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fmnist.errors import ConfigError, OutputDirError, UnreadableRunError

#: A run directory's record of a finished run (fit summary and test metrics)...
METRICS_FILE = "metrics.json"
#: ...and of its resolved config, which a resume is compared with...
CONFIG_FILE = "config.yaml"
#: ...and of the command-line overrides that started it. Like the two above, only the run
#: itself writes it, once it holds its directory; Hydra's ``.hydra/`` copy is written before.
OVERRIDES_FILE = "overrides.yaml"


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


#: Name prefix of the temporary files of atomic writes: a killed process leaves them behind,
#: and the next start of the same run removes them (``fmnist.training.rundir``).
TMP_PREFIX = ".fmnist-tmp-"


def check_output_spares_inputs(
    output: str | Path, inputs: Iterable[tuple[str, str | Path]], key: str = "output"
) -> None:
    """Before any work, refuse an ``output`` file that is one of the ``(what, path)`` inputs
    (the checkpoint, an image; through any symlink or hard link): writing it would destroy
    the input. A directory is refused too, since a file is written there."""
    output = Path(output).expanduser()
    if output.is_dir():
        raise ConfigError(f"{key}={output} is a directory: give a file name inside it.")
    if not output.exists():
        return
    for what, path in inputs:
        path = Path(path).expanduser()
        if path.exists() and os.path.samefile(output, path):
            raise ConfigError(
                f"{key}={output} is the {what} {path}: writing there would destroy it. Give "
                f"another {key}= path."
            )


def atomic_write_bytes(path: str | Path, data: bytes | memoryview) -> Path:
    """Write ``data`` to ``path`` so that ``path`` is always either the old file or the whole
    new one: a temporary file in the same directory, flushed and fsynced, then renamed over
    it (a rename within one filesystem is atomic; ``/tmp`` may be another filesystem).

    Any failure (a full disk included) is an ``OutputDirError`` naming the file and the free
    space, with the temporary file removed and ``path`` untouched.
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp = _create_temporary(path)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)  # the rename itself survives a power loss
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _write_error(path, exc, len(data)) from exc
        raise
    return path


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new file next to ``path`` with the permissions an ordinary write would give it:
    ``path``'s own when it exists, else 0666 less the umask (``mkstemp`` would make 0600)."""
    while True:
        tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{secrets.token_hex(4)}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        with contextlib.suppress(FileNotFoundError):
            os.fchmod(fd, stat.S_IMODE(os.stat(path).st_mode))
        return fd, tmp


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be opened
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_error(path: Path, exc: OSError, size: int) -> OutputDirError:
    """One line: which file, why, its size and how much space is left where it goes."""
    try:
        free = f"{human_bytes(shutil.disk_usage(path.parent).free)} free there"
    except OSError:
        free = "free space unknown"
    full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
    fix = "Free some space or choose" if full else "Choose"
    return OutputDirError(
        f"Cannot write {path}: {exc.strerror or exc} ({human_bytes(size)} to write, {free}). "
        f"{fix} another location "
        "(hydra.run.dir=... for runs, output=... for prediction and export files); any "
        "earlier version of the file is unchanged."
    )


def human_bytes(size: float) -> str:
    """1536 -> '1.5 KiB'."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    power = 0
    while size >= 1024 and power < len(units) - 1:
        size, power = size / 1024, power + 1
    return f"{size:.0f} B" if power == 0 else f"{size:.1f} {units[power]}"


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def write_figure(path: str | Path, figure: Any, dpi: int = 100, tight: bool = True) -> Path:
    """A matplotlib figure as a PNG, atomically (rendered in memory first); ``tight`` crops
    it to what is drawn (``bbox_inches="tight"``)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    return atomic_write_bytes(path, buffer.getbuffer())


def write_torch(path: str | Path, obj: Any) -> Path:
    """``torch.save(obj)``, atomically: serialized in memory first (torch aborts the process
    on a full disk), then written as :func:`atomic_write_bytes` writes."""
    import torch  # the base modules load without torch until one is written

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getbuffer())


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


#: The largest run file read: metrics and configs are a few kB, 10,000 test predictions < 1 MB.
MAX_READ_BYTES = 64 * 2**20


def read_run_file(path: Path) -> bytes | None:
    """A run's file (metrics, config, predictions) as bytes; None when there is none. Only a
    regular file is read, opened without blocking, so that a FIFO is refused instead of
    waited on; anything else is an :class:`UnreadableRunError`."""
    shown = f"{path.parent.name}/{path.name}" if path.parent.name == ".hydra" else path.name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UnreadableRunError(f"{shown}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableRunError(f"{shown} is not a regular file")
        if info.st_size > MAX_READ_BYTES:
            size = f"{info.st_size:,} bytes, over {MAX_READ_BYTES:,}"
            raise UnreadableRunError(f"{shown} holds {size}")
        with os.fdopen(fd, "rb", closefd=False) as file:
            return file.read(MAX_READ_BYTES + 1)
    except OSError as exc:
        raise UnreadableRunError(f"{shown}: {exc.strerror}") from None
    finally:
        os.close(fd)
