# `make train` and `make test` each create .venv and install the project when needed, and get
# the dataset when it is missing (`make data`).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install data train test test-fast lint format bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,sweep,slurm,export,serve,baselines,mlflow,wandb]"
	touch $(STAMP)

install: $(STAMP)

# Fashion-MNIST where runs look for it, got when missing: Debian's package as root, else
# torchvision's download (fmnist/data/fetch.py). The data.* overrides in ARGS say where, as for
# train.py. Without the data `make train` stops with how to get it; `make test` goes on and
# skips the tests that need it.
data: $(STAMP)
	$(BIN)/python -m fmnist.cli fetch $(FETCH_FLAGS) \
		$(filter data.root=% data.download=% data.search_system=%,$(ARGS))

train: $(STAMP) data
	$(BIN)/python train.py $(ARGS)

test: FETCH_FLAGS = --optional
test: $(STAMP) data
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not real_data and not slow"

# Style, then the layering contract of pyproject.toml ([tool.importlinter]).
lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

# The benchmark, then the copies of its tables in the README and docs/ (bench/readme.py).
bench: $(STAMP)
	$(BIN)/python -m bench.run $(ARGS)
	$(BIN)/python -m bench.readme

clean:
	rm -rf outputs multirun .pytest_cache
