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

# The review's browser tests drive Debian's chromium (Playwright's own browser download is not reachable).
# Installed here when missing (needs root); if it still is, those tests fail and say how to install it.
$(VENV)/.chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
		apt-get install -y chromium || (apt-get update && apt-get install -y chromium) || \
		echo "warning: chromium is missing and could not be installed (as root: apt-get install -y chromium);" \
			"the review's browser tests will fail" >&2; \
	fi
	@if command -v chromium >/dev/null 2>&1; then touch $@; fi

# The shared-store tests start a throwaway PostgreSQL server from Debian's package (as the unprivileged
# postgres user). Installed here when missing (needs root); if it still is, those tests fail and say so.
$(VENV)/.postgresql:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		apt-get install -y postgresql || (apt-get update && apt-get install -y postgresql) || \
		echo "warning: PostgreSQL is missing and could not be installed (as root: apt-get install -y postgresql);" \
			"the shared-store tests will fail" >&2; \
	fi
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then touch $@; fi

# Lint and the layers contract first: an upward import or a lint error fails the build before the tests run.
test: $(VENV)/.installed $(VENV)/.chromium $(VENV)/.postgresql
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

# The main job, offline: three tasks (one of each kind) with tiny local models, then the check.
demo: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(BIN)/vischain generate --domain engineering --profile demo --tasks 3 --out runs/demo
	HF_HUB_OFFLINE=1 $(BIN)/vischain validate runs/demo

clean:
	rm -rf $(VENV)
