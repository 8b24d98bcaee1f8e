# Two commands on a fresh machine: `make repro` (set-up + the whole pipeline) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export MLFLOW_DISABLE_TELEMETRY := true
export GX_ANALYTICS_ENABLED := False
export DVC_NO_ANALYTICS := 1
export PYTHONUNBUFFERED := 1

.PHONY: setup repro paper test test-fast bench device-kit ui clean

setup: $(STAMP)

# Dependencies are pinned by requirements.lock (a constraints file: exact versions of
# everything, generated from a working install with `make lock`). uv installs the same pinned
# set as pip, faster (benchmarks/setup_bench.py, results in benchmarks/results.md); pip remains
# the fallback.
UV_VERSION := 0.13.9
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	($(BIN)/python -m pip install -q uv==$(UV_VERSION) \
	  && $(BIN)/uv pip install -q --python $(BIN)/python -c requirements.lock -e '.[dev]') \
	  || ($(BIN)/python -m pip install -q --upgrade pip && $(BIN)/python -m pip install -q -c requirements.lock -e '.[dev]')
	touch $(STAMP)

# dvc.yaml's per-run stages follow params.yaml (`python -m aebench.plan`); the warm stage server (opt-in,
# aebench.warm) saves each stage its 2-10 s of library imports.
repro: $(STAMP)
	$(BIN)/python -m aebench.plan
	PATH="$(CURDIR)/$(BIN):$$PATH" AEBENCH_WARM=1 $(BIN)/dvc repro

# The papers' comparisons on real MNIST (+ Omniglot, shapes, the manifolds) at the papers'
# settings, over several training seeds: profiles/paper.yaml run as its own DVC workspace in
# .profiles/paper (hours on 2 cores: docs/benchmarks.md; a GPU is used when present); results
# land in results/paper/.
paper: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/aebench profile paper

test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q

test-fast: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q -m "not slow"

# Benchmarks (not tests): each script prints a table and updates benchmarks/results.json;
# pythae and pydiffmap are the peers, installed here only. Takes about an hour on 2 cores.
bench: $(STAMP)
	$(BIN)/python -m pip install -q -c requirements.lock pythae==0.1.2 pydiffmap==0.2.0.1
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/eval_speed.py
	$(BIN)/python benchmarks/diffmap_bench.py
	$(BIN)/python benchmarks/acn_neighbours.py
	$(BIN)/python benchmarks/pipeline_bench.py
	$(BIN)/python benchmarks/write_tables.py

# What a lent GPU machine (Python 3.12, no network) needs for benchmarks/device_check.py beside
# its own torch: the wheels of pydantic and POT as requirements.lock pins them (.whl/) and the
# real datasets (.gpu/data/); both are git-ignored and travel as the call's `carry`.
DEVICE_WHEELS := pydantic pydantic_core annotated-types typing-inspection POT
device-kit:
	mkdir -p .whl .gpu && cp -r ../shared/data .gpu/
	for p in $(DEVICE_WHEELS); do $(PYTHON) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
	  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
	  --platform manylinux2014_x86_64 -d .whl "$$(grep -i "^$$p==" requirements.lock)" || exit 1; done

ui: $(STAMP)
	$(BIN)/aebench ui

lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

clean:
	rm -rf data/raw data/processed models eval reports mlflow.db mlartifacts .aebench
