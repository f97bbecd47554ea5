# Two commands on a fresh machine:
#   make run    set up .venv and run the whole pipeline on the embedded demo data (offline, CPU, minutes)
#   make test   set up .venv and run the test suite (what CI runs, through .ci/run)
SHELL := /bin/bash
VENV := .venv
BIN := $(abspath $(VENV))/bin
TORCH_VERSION ?= 2.13.0
# Without a GPU, take the CPU build of torch: a bare `torch` from PyPI is a multi-GB CUDA build.
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
export PATH := $(BIN):$(PATH)
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 180
export DVC_NO_ANALYTICS := 1
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: setup run test clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1; then \
	  $(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)"; \
	else \
	  $(BIN)/python -m pip install --quiet --extra-index-url $(TORCH_CPU_INDEX) "torch==$(TORCH_VERSION)"; \
	fi
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

run: setup
	$(BIN)/python -m flows.pipeline

test: setup
	$(BIN)/python -m pytest

clean:
	rm -rf data models reports metrics plots cache mlflow.db mlartifacts dvc.lock
