# RobERt: the two README commands are `make run` and `make test`.
# Both need nothing but Python 3.11 and the package registries.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
# seconds per download (uv's default, 30, gives up where a slow registry stalls; pip here waits 180)
export UV_HTTP_TIMEOUT ?= 180
# `make run DEVICE=cuda`: the simulator, the trainer and the evaluation on the GPU (conf/train.yaml: device)
ifdef DEVICE
export ROBERT_DEVICE := $(DEVICE)
endif

.PHONY: run run-all paper test data venv lint lock bench ui summary

# torch (pinned to 2.13.0, the CPU wheel: a range would pull a multi-GB CUDA build) comes from pip, which finds a
# local copy where the machine has one; uv installs everything else in parallel (about two thirds of pip's time),
# every package at its version in constraints.txt, compiled to bytecode as pip does (without it every stage's
# imports compile mlflow, lightning, pandas ... again where PYTHONDONTWRITEBYTECODE is set: ~9 s a process)
UV := $(VENV)/bin/uv pip install --python $(PY) --quiet --compile-bytecode -c constraints.txt

$(RUN_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet uv==0.13.8 torch==2.13.0
	$(UV) -e .
	touch $(RUN_STAMP)

# the tests also need pytest/ruff (dev), TauREx 3 for the cross-checks (validate), the PostgreSQL driver (tune)
$(TEST_STAMP): $(RUN_STAMP)
	$(UV) -e '.[dev,validate,tune]'
	touch $(TEST_STAMP)

## lock: rewrite constraints.txt from the test environment (after a change of pyproject.toml's dependencies)
lock: $(TEST_STAMP)
	{ sed -n '1,2p' constraints.txt; $(PY) -m pip freeze --exclude-editable | grep -v -e '^#' -e '^uv==' \
	  | sed 's/+cpu$$//'; } > constraints.txt.tmp && mv constraints.txt.tmp constraints.txt

venv: $(RUN_STAMP)

## data: obtain and verify the real input files (data/, tracked by data.dvc)
data: venv
	$(PY) src/fetch_data.py

## run: the main job on the embedded defaults (both geometries' champions, evaluations, the emission dreams)
run: data
	mkdir -p build
	set -o pipefail; dvc repro dream examples 2>&1 | tee build/run.log
	$(PY) src/summary.py --log build/run.log

## run-all: every pipeline stage that is not frozen (adds the paper's regime and the transmission dreams)
run-all: data
	mkdir -p build
	set -o pipefail; dvc repro 2>&1 | tee build/run.log
	$(PY) src/summary.py --log build/run.log

## paper: the paper's regime (its fingerprint set, the 500-200-50 DBN on the spectrum alone, argmax accuracy)
paper: data
	dvc repro evaluate-paper

summary: venv
	$(PY) src/summary.py --log build/run.log

## test: the test suite (pytest exit 5 - no tests collected - is a failure)
test: data $(TEST_STAMP)
	$(PY) -m pytest -q -p no:cacheprovider; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

bench: data $(TEST_STAMP)
	$(PY) benchmarks/opacities.py
	$(PY) benchmarks/validate_opacity.py
	$(PY) benchmarks/simulate.py
	$(PY) benchmarks/train.py
	$(PY) benchmarks/any_coverage.py
	$(PY) benchmarks/thresholds.py
	$(PY) benchmarks/predict.py
	$(PY) benchmarks/tune.py

## ui: the MLflow UI on the default local store, bound to localhost
ui: venv
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db --host 127.0.0.1 --port 5000
