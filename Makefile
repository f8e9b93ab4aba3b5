# `make test` and `make demo` create .venv on first use, so one command sets up a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: test demo bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	# The CPU build first: anything that later asks for `torch` finds it satisfied instead of
	# pulling several GB of CUDA wheels.
	$(BIN)/pip install -q torch==2.13.0
	# xgrammar without its triton dependency (1 GB, unused on the CPU path).
	$(BIN)/pip install -q --no-deps xgrammar==0.2.8 apache-tvm-ffi==0.1.15.post2
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# Lint and the layers contract first: an upward import or a lint error fails the build before the tests run.
test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

# The main job, offline: three tasks (one of each kind) with tiny local models, then the check.
demo: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(BIN)/vischain generate --domain engineering --profile demo --tasks 3 --out runs/demo
	HF_HUB_OFFLINE=1 $(BIN)/vischain validate runs/demo

clean:
	rm -rf $(VENV)
