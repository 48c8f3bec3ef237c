"""Study the data and trained models: `python analyze.py task=eda|pca|data|model ...`.

See conf/analyze.yaml. Each task writes figures and report.md into its run directory under
logs/analyze/, and logs the same figures to TensorBoard.
"""

import hydra
from omegaconf import DictConfig

from fmnist.analysis.tasks import run_analysis
from fmnist.runs.cli import run_reporting_errors


@hydra.main(version_base="1.3", config_path="conf", config_name="analyze")
def main(cfg: DictConfig) -> None:
    run_reporting_errors(run_analysis, cfg)


if __name__ == "__main__":
    main()
