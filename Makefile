# Two commands on a fresh machine: `make repro` (set-up + the whole pipeline) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export MLFLOW_DISABLE_TELEMETRY := true
export GX_ANALYTICS_ENABLED := False
export DVC_NO_ANALYTICS := 1
export PYTHONUNBUFFERED := 1

.PHONY: setup repro test test-fast bench ui clean

setup: $(STAMP)

# Dependencies are pinned by requirements.lock (a constraints file: exact versions of
# everything, generated from a working install with `make lock`).
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[dev]'
	touch $(STAMP)

repro: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q

test-fast: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q -m "not slow"

ui: $(STAMP)
	$(BIN)/aebench ui

lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

clean:
	rm -rf data/raw data/processed models eval reports mlflow.db mlartifacts .aebench
