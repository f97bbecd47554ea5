# Two commands on a fresh machine:
#   make run    set up .venv and run the whole pipeline on the embedded demo data (offline, CPU, minutes)
#   make test   set up .venv and run the test suite (what CI runs, through .ci/run)
#   make label-studio   serve Label Studio for `electra annotate` (its own venv, data in annotate.data_dir)
# For maintainers: `make lock` refreshes requirements.lock after a change to pyproject.toml's dependencies.
SHELL := /bin/bash
VENV := .venv
BIN := $(abspath $(VENV))/bin
UV := $(BIN)/uv
UV_INSTALL := $(UV) pip install --python $(BIN)/python
UV_VERSION ?= 0.13.9
# torch is not in requirements.lock: which build a machine needs depends on its GPU. The Dockerfiles pin the same.
TORCH_VERSION ?= 2.13.0
# Without a GPU, take the CPU build of torch: a bare `torch` from PyPI is a multi-GB CUDA build.
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_WHEEL_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/electra-pipeline/wheels
# With a GPU, onnxruntime-gpu replaces onnxruntime, as in Dockerfile.gpu. Both install the `onnxruntime` module, so
# only one may be installed at a time: a re-run takes the GPU build out before the lock puts onnxruntime back.
ORT_GPU_VERSION ?= 1.31.1
# Where `make lock` reads torch's CPU wheel (for its dependencies); a folder holding it works too:
#   make lock TORCH_WHEELS=/opt/wheels      `make lock LOCK_ARGS=--upgrade` moves every pin to the newest allowed.
TORCH_WHEELS ?= $(TORCH_CPU_INDEX)/torch/
LOCK_ARGS ?=
# Python caches bytecode as it imports, except where PYTHONDONTWRITEBYTECODE is set (as on CI): there every process
# would compile torch, transformers, mlflow, prefect and dvc again (importing them: 10 s -> 30 s). On such a machine
# setup imports what the pipeline and its servers load, twice in parallel, with caching on for those two processes:
# that writes the compiled files of the 7,000 modules they use, not of all 25,000 in site-packages
# (benchmarks/RESULTS.md, "Setup time").
WARM := env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -c 'import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]'
WARM_ML := torch torch.onnx transformers transformers.models.electra.modeling_electra tokenizers datasets safetensors \
  onnx onnxscript onnxruntime onnxruntime.quantization seqeval.metrics matplotlib.pyplot
WARM_OPS := mlflow mlflow.pyfunc mlflow.server prefect prefect.server.api.server dvc.api dvc.repo dvc.cli.parser
# The project's own packages too: every stage process imports 50-100 of their modules (a second of compiling each
# time, 8% of a fine-tuning stage's start-up). An edited module is compiled again in memory, as without this.
PROJECT_PACKAGES := electra_model stages flows
export PATH := $(BIN):$(PATH)
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 180
export DVC_NO_ANALYTICS := 1
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: setup run test lock clean label-studio label-studio-env

# Label Studio runs from an environment of its own (its Django stack would fight requirements.lock), installed with
# uv from its own lock, exact versions, no resolver run: about a minute from a cold cache, seconds from a warm one.
LABEL_STUDIO_VENV := .venv-label-studio

$(UV):
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"

# uv installs the locked versions as they are (--no-deps: no resolver runs), then `uv pip check` fails the setup
# if the lock misses a dependency. torch goes first, on its own: the CPU index is asked only when it answers, so an
# index this machine cannot reach costs a second, not pip's retries per package. Without it, pip's own
# configuration (a mirror, a wheel folder) finds the wheel; pip only fetches it into TORCH_WHEEL_CACHE, where the
# file keeps its date, so uv's cache knows it the next time (uv unpacks a 190 MB wheel once; pip would every time).
$(VENV)/.installed: $(UV) pyproject.toml requirements.lock
	if command -v nvidia-smi >/dev/null 2>&1; then \
	  $(UV_INSTALL) --constraint requirements.lock "torch==$(TORCH_VERSION)"; \
	elif $(BIN)/python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' \
	    "$(TORCH_CPU_INDEX)/torch/" 2>/dev/null; then \
	  $(UV_INSTALL) --no-deps --index-url $(TORCH_CPU_INDEX) "torch==$(TORCH_VERSION)"; \
	else \
	  echo "$(TORCH_CPU_INDEX) cannot be reached: torch $(TORCH_VERSION) from pip's configured sources"; \
	  $(BIN)/python -m pip download --quiet --no-deps --dest "$(TORCH_WHEEL_CACHE)" "torch==$(TORCH_VERSION)"; \
	  $(UV_INSTALL) --no-deps --no-index --find-links "$(TORCH_WHEEL_CACHE)" "torch==$(TORCH_VERSION)"; \
	fi
	if command -v nvidia-smi >/dev/null 2>&1; then $(UV) pip uninstall --python $(BIN)/python onnxruntime-gpu; fi
	$(UV_INSTALL) --no-deps -r requirements.lock -e .
	$(UV) pip check --python $(BIN)/python
	if command -v nvidia-smi >/dev/null 2>&1; then \
	  $(UV) pip uninstall --python $(BIN)/python onnxruntime; \
	  $(UV_INSTALL) --no-deps "onnxruntime-gpu==$(ORT_GPU_VERSION)"; \
	fi
	$(if $(PYTHONDONTWRITEBYTECODE),printf '%s\n' "$(WARM_ML)" "$(WARM_OPS)" | xargs -P 2 -L 1 $(WARM))
	$(if $(PYTHONDONTWRITEBYTECODE),env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m compileall -q -j 2 $(PROJECT_PACKAGES))
	touch $@

setup: $(VENV)/.installed

run: setup
	$(BIN)/python -m flows.pipeline

test: setup
	$(MAKE) label-studio-env || echo "Label Studio's environment could not be built: its end-to-end tests will skip"
	$(BIN)/python -m pytest

$(LABEL_STUDIO_VENV)/.installed: $(UV) requirements-label-studio.lock
	$(UV) venv --quiet --allow-existing --python python3 $(LABEL_STUDIO_VENV)
	$(UV) pip install --quiet --no-deps --python $(LABEL_STUDIO_VENV)/bin/python -r requirements-label-studio.lock
	touch $@

# Label Studio migrates its database on every start: minutes on a busy 2-core machine for a new one. Migrating an
# empty one here, once, lets each new data folder (the tests', a user's first) start from a copy in under a minute.
$(LABEL_STUDIO_VENV)/migrated/label_studio.sqlite3: $(LABEL_STUDIO_VENV)/.installed
	rm -rf $(LABEL_STUDIO_VENV)/migrated
	LABEL_STUDIO_BASE_DATA_DIR=$(abspath $(LABEL_STUDIO_VENV))/migrated LATEST_VERSION_CHECK=false \
	  $(LABEL_STUDIO_VENV)/bin/label-studio version > $(LABEL_STUDIO_VENV)/migrate.log 2>&1 \
	  || { tail -20 $(LABEL_STUDIO_VENV)/migrate.log; exit 1; }

label-studio-env: $(LABEL_STUDIO_VENV)/migrated/label_studio.sqlite3

label-studio: setup label-studio-env
	$(BIN)/python -m electra_model.annotate.server

# Exact versions of everything but torch, for Python >= 3.11 on any platform, resolved against torch's CPU build.
# Existing pins are kept where pyproject.toml still allows them.
lock: $(UV)
	$(UV) pip compile pyproject.toml --extra dev --universal --quiet \
	  --find-links $(TORCH_WHEELS) --override <(echo "torch==$(TORCH_VERSION)+cpu") --no-emit-package torch \
	  --custom-compile-command "make lock" $(LOCK_ARGS) --output-file requirements.lock

clean:
	rm -rf data models reports metrics plots cache mlflow.db mlartifacts dvc.lock
