# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export MLFLOW_DISABLE_TELEMETRY := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: setup demo test test-production check lint format clean-demo

setup: $(VENV)/.installed

# torch is installed alone first, pinned exactly, so pip takes the local CPU wheel and never the
# multi-GB CUDA build; everything else is then resolved around it.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "torch==2.13.0"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

demo: setup
	$(BIN)/rewarm demo $(ARGS)

test: setup
	$(BIN)/python -m pytest -q $(ARGS)

# The same suite on the production profile: PostgreSQL, an MLflow tracking server and a Prefect server
# (tests/conftest.py starts them on loopback); only one environment variable differs.
test-production: setup
	REWARM_TEST_PROFILE=production $(BIN)/python -m pytest -q $(ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

check: lint test

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
