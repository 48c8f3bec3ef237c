"""Get Fashion-MNIST on a fresh machine: ``fmnist-fetch [data.root=DIR ...]``
(``fmnist.cli.fetch_main``; ``make train`` and ``make test`` run it first).

Nothing to do when the files are where a run looks (:func:`fmnist.data.files.locate_data`).
Otherwise, as root where apt-get exists, Debian's ``dataset-fashion-mnist``; then, with
``data.download``, torchvision's download into ``data.root``; else a message saying how. The
overrides are a training run's, read from the same config, so the files land where
``train.py`` with them looks.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from fmnist.config import CONF_DIR
from fmnist.data.files import locate_data
from fmnist.errors import DatasetNotFoundError

log = logging.getLogger(__name__)

#: Debian's package with the four original files (in fmnist.data.files.SYSTEM_DATA_DIR).
APT_PACKAGE = "dataset-fashion-mnist"


def data_settings(overrides: Sequence[str] = ()) -> DictConfig:
    """The training config's ``data`` group with ``overrides``, resolved: the same root,
    download and search_system as ``train.py`` with those overrides. Clears Hydra's global
    state first, as every compose outside an app must."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", list(overrides))
    return OmegaConf.create(OmegaConf.to_container(cfg.data, resolve=True))


def find_dataset(root: str | Path | None, search_system: bool = True) -> dict[str, Path] | None:
    """The four files where a run looks, or None; downloads nothing."""
    try:
        return locate_data(root, download=False, search_system=search_system)
    except DatasetNotFoundError:
        return None


def can_use_apt() -> bool:
    """Root on a system with apt-get: Debian's package can be installed without asking."""
    return getattr(os, "geteuid", lambda: -1)() == 0 and shutil.which("apt-get") is not None


def _apt_get(*args: str) -> bool:
    """Run apt-get without questions; False, with apt's last words logged, when it fails."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(["apt-get", *args], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:]
        log.warning("`apt-get %s` failed (exit %d): %s", " ".join(args), result.returncode, last)
    return result.returncode == 0


def apt_install() -> bool:
    """Install Debian's package; False when that fails (offline, or no such package here)."""
    log.info("Installing Debian's %s with apt-get", APT_PACKAGE)
    _apt_get("update", "-qq")  # when it fails, the lists it had may still do
    return _apt_get("install", "-y", "-qq", APT_PACKAGE)


def fetch(root: str | Path | None, download: bool, search_system: bool = True) -> dict[str, Path]:
    """The four files, got as the module says when missing; DatasetNotFoundError (with how to
    get them) when no way worked."""
    files = find_dataset(root, search_system)
    if files is not None:
        return files
    # Debian's package lands in the system folder, where only search_system runs look.
    if search_system and can_use_apt() and apt_install():
        files = find_dataset(root, search_system)
        if files is not None:
            return files
    elif search_system:
        log.info("Not root, or no apt-get: not installing Debian's %s", APT_PACKAGE)
    return locate_data(root, download, search_system)  # downloads if allowed, else the message
