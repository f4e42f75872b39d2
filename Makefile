# The README's two commands are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export DATABASE_URL ?= sqlite:///./var/ledger.db
# Where `make run` listens; exported so the seed step prints the same URL.
export HOST ?= 127.0.0.1
export PORT ?= 8000

.PHONY: run test install install-dev migrate seed lint typecheck openapi bench bench-reports clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(BIN)/ledger migrate

seed: migrate
	$(BIN)/ledger seed-demo

## Start the service with demo data on embedded SQLite: http://127.0.0.1:8000/docs
run: seed
	$(BIN)/uvicorn --factory app.main:app_factory --host $(HOST) --port $(PORT) --no-access-log \
		--timeout-graceful-shutdown 8

## Run the whole suite (SQLite always; PostgreSQL too when TEST_POSTGRES_URL is set)
test: install-dev
	$(BIN)/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check app tests bench
	$(BIN)/ruff format --check app tests bench
	$(BIN)/mypy

openapi: install
	$(BIN)/ledger openapi --out openapi/openapi.json

## Ledger write benchmark on PostgreSQL (TEST_POSTGRES_URL or the local server)
bench: install-dev
	$(BIN)/python bench/ledger_bench.py

## Quarterly report on 1,000,000 loans (PostgreSQL): the data once (~15 min), then the timings
bench-reports: install-dev
	nice -n 10 $(BIN)/python bench/report_data.py
	$(BIN)/python bench/report_bench.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
