# ChurnOps: `make demo` and `make test` set everything up from scratch on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# A working Python 3.12: $PYTHON, then python3.12 on PATH, then pyenv's, then uv's.
PY312 := $(shell \
  for c in "$$PYTHON" python3.12 \
           "$$(pyenv prefix 3.12 2>/dev/null | head -n1)/bin/python" \
           $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python 2>/dev/null); do \
    [ -n "$$c" ] && "$$c" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null \
      && { command -v "$$c" || echo "$$c"; } && break; \
  done | head -n1)
TOOLS := .tools
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
RUN := $(UV) run --frozen
export UV_PYTHON := $(PY312)

.PHONY: help setup demo test lint typecheck check bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(TOOLS)/bin/uv:
	@if [ -z "$(PY312)" ]; then echo "Python 3.12 not found: install it or set PYTHON=/path/to/python3.12" >&2; exit 1; fi
	$(PY312) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet 'uv>=0.5'

.venv/.synced: uv.lock pyproject.toml shared/pyproject.toml $(wildcard services/*/pyproject.toml) | $(UV)
	$(UV) sync --frozen --all-packages --python "$(PY312)"
	@touch $@

setup: .venv/.synced ## Create .venv with every package (uv, Python 3.12, from the lock file)

demo: setup ## Run the whole lifecycle in embedded mode (no services needed)
	$(RUN) churnops demo

test: setup ## Run the test suite (service tests skip when Redis/Postgres are absent)
	$(RUN) pytest $(PYTEST_ARGS)

lint: setup ## ruff
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: setup ## mypy (strict) on every package
	$(RUN) mypy shared/src services/*/src

check: lint typecheck test ## Everything CI runs

clean: ## Remove the environment and local state
	rm -rf .venv $(TOOLS) .churnops .pytest_cache .mypy_cache .ruff_cache
