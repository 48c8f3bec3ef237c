"""A run directory across the starts of one run: what a killed start left behind is removed
by the next one.

A killed process leaves temporary files of interrupted atomic writes
(:data:`fmnist.runs.files.TMP_PREFIX`), and checkpoints of the epochs after the one it
will be resumed from: the resumed run redoes those epochs, and Lightning would save them as
``epoch_001-v1.ckpt`` next to the stale ``epoch_001.ckpt``. Only files named as this
project names them are removed, and never one the resumed checkpoint refers to.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fmnist.inference.checkpoint import read_checkpoint
from fmnist.runs.files import TMP_PREFIX
from fmnist.runs.resume import last_checkpoint

log = logging.getLogger(__name__)

#: Checkpoint names of conf/callbacks/default.yaml, with Lightning's ``-vN`` version suffix.
CHECKPOINT_NAME = re.compile(r"(?:epoch_(?P<epoch>\d+)|last)(?P<version>-v\d+)?\.ckpt")


def referenced_checkpoints(checkpoint: Mapping[str, Any]) -> set[str]:
    """File names of the checkpoints the callbacks' states in ``checkpoint`` refer to."""
    names: set[str] = set()
    for state in (checkpoint.get("callbacks") or {}).values():
        if not isinstance(state, Mapping):
            continue
        paths = [state.get(k) for k in ("best_model_path", "kth_best_model_path")]
        paths += [state.get("last_model_path"), *(state.get("best_k_models") or {})]
        names |= {Path(p).name for p in paths if isinstance(p, str) and p}
    return names


def stale_checkpoints(checkpoint_dir: Path, resume_from: Path) -> list[Path]:
    """Checkpoints of ``checkpoint_dir`` written after ``resume_from`` by the killed start,
    and ``-vN`` duplicates; neither ``resume_from`` nor one it refers to."""
    checkpoint = read_checkpoint(resume_from)
    keep = referenced_checkpoints(checkpoint) | {resume_from.name, "last.ckpt"}
    epoch = checkpoint.get("epoch") if isinstance(checkpoint.get("epoch"), int) else None
    stale = []
    for path in sorted(checkpoint_dir.glob("*.ckpt")):
        match = CHECKPOINT_NAME.fullmatch(path.name)
        if match is None or path.name in keep:
            continue
        later = (
            match["epoch"] is not None and isinstance(epoch, int) and int(match["epoch"]) > epoch
        )
        if match["version"] or later:
            stale.append(path)
    return stale


def remove_leftovers(output_dir: Path, ckpt_path: str | None) -> list[Path]:
    """Remove the temporary files of interrupted writes in ``output_dir``, and, when resuming
    from one of its own checkpoints, the stale checkpoints (:func:`stale_checkpoints`)."""
    leftovers = [p for p in output_dir.rglob(f"{TMP_PREFIX}*") if p.is_file()]
    checkpoint_dir = last_checkpoint(output_dir).parent
    if ckpt_path and Path(ckpt_path).resolve().parent == checkpoint_dir.resolve():
        leftovers += stale_checkpoints(checkpoint_dir, Path(ckpt_path))
    for path in leftovers:
        path.unlink(missing_ok=True)
        log.info("Removed %s, left by an interrupted start of this run", path)
    return leftovers
