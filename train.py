"""Train and test a classifier: `python train.py [overrides]` (see conf/train.yaml)."""

import hydra
from omegaconf import DictConfig

from fmnist.runs.cli import run_reporting_errors
from fmnist.training.run import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Returns the monitored metric's best value, which Hydra sweepers optimize."""
    metrics = run_reporting_errors(train, cfg)
    return None if metrics is None else metrics["monitor"]["best"]


if __name__ == "__main__":
    main()
