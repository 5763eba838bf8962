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
BENCH := .bench
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
RUN := $(UV) run --frozen
export UV_PYTHON := $(PY312)

.PHONY: help setup demo notebook test system-test lint typecheck check bench clean up down logs

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(TOOLS)/bin/uv:
	@if [ -z "$(PY312)" ]; then echo "Python 3.12 not found: install it or set PYTHON=/path/to/python3.12" >&2; exit 1; fi
	$(PY312) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet 'uv>=0.5'

.venv/.synced: uv.lock pyproject.toml shared/pyproject.toml $(wildcard services/*/pyproject.toml) | $(UV)
	$(UV) sync --frozen --all-packages --compile-bytecode --python "$(PY312)"
	@touch $@

# Airflow has its own environment (Airflow + the shared package, no ML stack), as in its image.
airflow/.venv/.synced: airflow/uv.lock airflow/pyproject.toml shared/pyproject.toml | $(UV)
	cd airflow && $(abspath $(UV)) sync --frozen --compile-bytecode --python "$(PY312)"
	@touch $@

setup: .venv/.synced airflow/.venv/.synced ## Create the environments (uv, Python 3.12, from the lock files)

demo: setup ## Run the whole lifecycle in embedded mode (no services needed)
	$(RUN) churnops demo

NOTEBOOK_HOME ?= .churnops/demo
notebook: setup ## Execute the EDA/explainability notebook on the demo's state; HTML to the reports bucket
	@test -f $(NOTEBOOK_HOME)/monitoring.db || $(RUN) churnops demo --home $(NOTEBOOK_HOME)
	$(RUN) python notebooks/render.py --home $(NOTEBOOK_HOME)

test: setup ## Run the test suite (service tests skip when Redis/Postgres are absent)
	$(RUN) pytest -m "not system" $(PYTEST_ARGS)
	cd airflow && $(abspath $(UV)) run --frozen pytest tests $(PYTEST_ARGS)

system-test: setup ## The stack as local processes (commands from compose.yaml): lifecycle, faults
	$(RUN) pytest -m system tests/system $(PYTEST_ARGS)

bench: setup $(BENCH)/nannyml/.installed ## Benchmarks: PSI vs Evidently, training vs baselines, 1 vs 2 trainers, scoring vs naive path
	$(RUN) python services/quality/benchmarks/bench_psi.py
	$(RUN) python services/quality/benchmarks/bench_psi.py --whole-process
	$(RUN) python services/quality/benchmarks/bench_limits.py
	$(RUN) python services/trainer/benchmarks/bench_train.py
	$(RUN) python services/trainer/benchmarks/bench_distributed.py
	$(RUN) python services/scorer/benchmarks/bench_score.py
	$(RUN) python services/scorer/benchmarks/bench_score_cli.py
	$(RUN) python services/ingest/benchmarks/bench_ingest.py
	$(RUN) python services/monitor/benchmarks/bench_estimate.py --nannyml-python $(BENCH)/nannyml/bin/python

# NannyML, the label-free estimation benchmark's anchor, in its own environment: never in the
# services' lock (heavy, and its upkeep is uncertain). The stamp is written once NannyML
# imports, so an interrupted install is retried at the next run.
$(BENCH)/nannyml/.installed: | $(UV)
	$(UV) venv --quiet --allow-existing --python "$(PY312)" $(BENCH)/nannyml
	VIRTUAL_ENV=$(abspath $(BENCH)/nannyml) $(UV) pip install --quiet nannyml statsmodels
	$(BENCH)/nannyml/bin/python -c "import nannyml" && touch $@

lint: setup ## ruff
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: setup ## mypy (strict) on every package
	$(RUN) mypy shared/src services/*/src
	cd airflow && $(abspath $(UV)) run --frozen mypy dags

check: lint typecheck test ## Everything CI runs

COMPOSE ?= docker compose

up: ## Build and start the full stack in the background (needs Docker and a filled-in .env)
	@test -f .env || { echo "no .env: cp .env.example .env and fill in the required secrets" >&2; exit 1; }
	$(COMPOSE) up -d --build $(if $(SCALE),--scale $(SCALE))
	@echo "MinIO console http://127.0.0.1:9001  MLflow http://127.0.0.1:5001  Airflow http://127.0.0.1:18080  Flower http://127.0.0.1:5555  Grafana http://127.0.0.1:3000  Prometheus http://127.0.0.1:9090"

down: ## Stop the stack (data stays in its volumes; `docker compose down -v` wipes them)
	$(COMPOSE) down

logs: ## Follow the stack's logs (one service: make logs SERVICE=scorer)
	$(COMPOSE) logs --follow --tail=200 $(SERVICE)

clean: ## Remove the environment and local state
	rm -rf .venv $(TOOLS) $(BENCH) .churnops .pytest_cache .mypy_cache .ruff_cache
