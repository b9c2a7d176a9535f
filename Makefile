# RobERt: the two README commands are `make run` and `make test`.
# Both need nothing but Python 3.11 and the package registries.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: run test data venv lint bench ui

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch is pinned to 2.13.0 (the CPU wheel); `validate` brings TauREx 3 for the cross-checks,
	# `tune` the PostgreSQL driver and optuna-dashboard
	$(PY) -m pip install --quiet -e '.[dev,validate,tune]'
	touch $(STAMP)

venv: $(STAMP)

## data: obtain and verify the real input files (data/, tracked by data.dvc)
data: venv
	$(PY) src/fetch_data.py

## run: the whole pipeline on the embedded defaults
run: data
	dvc repro

## test: the test suite (pytest exit 5 - no tests collected - is a failure)
test: data
	$(PY) -m pytest -q -p no:cacheprovider; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks

bench: data
	$(PY) benchmarks/opacities.py
	$(PY) benchmarks/validate_opacity.py
	$(PY) benchmarks/simulate.py
	$(PY) benchmarks/tune.py

## ui: the MLflow UI on the default local store, bound to localhost
ui: venv
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db --host 127.0.0.1 --port 5000
