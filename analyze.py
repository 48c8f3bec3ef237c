"""Study the data and trained models: `python analyze.py task=NAME [overrides]`.

The tasks are the files of conf/task/ (`python analyze.py --help` lists them; see
conf/analyze.yaml). Each writes figures and report.md into its run directory under
logs/analyze/, and logs the same figures to TensorBoard.
"""

from fmnist.cli import analyze_main

if __name__ == "__main__":
    analyze_main()
