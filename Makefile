# Every target sets itself up: a fresh machine needs only Python 3.11 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
STAMP := $(VENV)/.installed

.PHONY: setup run test lint e2e bench clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)

## run: migrate, load demo data into an empty database, serve on 127.0.0.1:$(PORT)
run: setup
	HRDFUND_ENV=development $(BIN)/flask db upgrade
	HRDFUND_ENV=development $(BIN)/flask hrdfund demo-data --if-empty
	@echo "Demo accounts (login, password, TOTP secret): instance/demo-accounts.json"
	HRDFUND_ENV=development $(BIN)/flask run --host 127.0.0.1 --port $(PORT)

## test: the whole suite (PostgreSQL too when HRDFUND_TEST_DATABASE_URL is set)
test: setup
	$(BIN)/pytest

## e2e: only the browser tests
e2e: setup
	$(BIN)/pytest tests/e2e

## bench: build a large dataset in a temporary folder, measure against baselines, write
## bench/results.json and the table in bench/README.md
bench: setup
	$(BIN)/python -m bench.run

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
