# Efficient Learning, Reproduced. The two commands: `make book` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of PyTorch, installed before anything that depends on torch.
TORCH ?= torch==2.13.0
# The device `make gpu-check` checks: cuda, or cpu for a dry run of every step at small shapes.
DEVICE ?= cuda
MATHJAX := _assets/mathjax/tex-mml-chtml.js
# Data files the book may not ship (the dopewolfe chapter's published features) are read from
# $REPROBOOK_DATA; when it is unset and a data folder sits beside the project, the tests,
# the portability check and the reruns read from it.
ifeq ($(REPROBOOK_DATA),)
ifneq ($(wildcard ../shared/data),)
export REPROBOOK_DATA := $(abspath ../shared/data)
endif
endif

# The test suite runs on two cores: one pytest-xdist worker per core, one thread each; each
# notebook (a file) on one worker, the longest handed out first (tests/conftest.py); the slowest
# tests and files and the time per kind of test are listed at the end.
PYTEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder --durations=25 --durations-min=5
LINTED := src tests chapters

.PHONY: help venv lab book test lint format portability reproduce bench gpu-check artifacts scoreboard student clean

help:
	@echo "make book       build the HTML book (offline-ready) into _build/html"
	@echo "make lab        JupyterLab (installed on first use) on the book's folder"
	@echo "make test       the whole test suite (lint, library, notebooks, book, browser)"
	@echo "make portability  rerun notebooks and tests with other CPU kernels (AVX2, no SIMD, 2 threads)"
	@echo "make format     format and fix the code with ruff (src, tests, notebook sources)"
	@echo "make reproduce  re-execute every notebook in place at its book profile"
	@echo "make bench      benchmarks: ratios against baselines measured in the same run"
	@echo "make gpu-check  the GPU paths against the CPU, then timed (DEVICE=cpu: a dry run); writes gpu-check.json"
	@echo "make artifacts  train every laboratory language model into the cache (about 20 minutes)"
	@echo "make student    student copies of the notebooks (solutions removed) in student/"
	@echo "make clean      remove build outputs and runs (keeps .venv)"

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" > /dev/null
	touch $@

venv: $(VENV)/.installed

lab: venv
	$(BIN)/python -m pip install --quiet -e ".[lab]"
	$(BIN)/jupyter lab

$(MATHJAX): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	rm -rf _assets/mathjax
	mkdir -p _assets
	cp -r node_modules/mathjax/es5 _assets/mathjax
	touch $@

book: venv $(MATHJAX)
	$(BIN)/jupyter-book build --all --warningiserror --nitpick --keep-going .
	@echo "The book is built. Open: $(CURDIR)/_build/html/index.html"

lint: venv
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

format: venv
	$(BIN)/ruff format $(LINTED)
	$(BIN)/ruff check --fix $(LINTED)

test: venv $(MATHJAX) lint
	$(PYTEST)

# PORTABILITY_VARIANTS: the variants to run (names in tests/portability.py); empty runs all.
PORTABILITY_VARIANTS ?=
portability: venv
	$(BIN)/python tests/portability.py --workers $(PYTEST_WORKERS) $(foreach v,$(PORTABILITY_VARIANTS),--variant $(v))

reproduce: venv
	$(BIN)/reprobook reproduce

bench: venv
	$(BIN)/python tests/benchmarks/run.py

gpu-check: venv
	$(BIN)/python tests/benchmarks/gpu_check.py --device $(DEVICE) --out gpu-check.json

artifacts: venv
	$(BIN)/reprobook models --build

scoreboard: venv
	$(BIN)/reprobook scoreboard

student: venv
	$(BIN)/reprobook student --output student

clean:
	rm -rf _build _runs _sweeps student .hypothesis
