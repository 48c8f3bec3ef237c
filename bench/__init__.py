"""The benchmark harness: `python -m bench.run` (see bench/run.py). Not part of the package."""
