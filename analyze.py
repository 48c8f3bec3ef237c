"""Study the data and trained models: `python analyze.py task=eda|pca|data|model ...`.

See conf/analyze.yaml. Each task writes figures and report.md into its run directory under
logs/analyze/, and logs the same figures to TensorBoard.
"""

from fmnist.cli import analyze_main

if __name__ == "__main__":
    analyze_main()
