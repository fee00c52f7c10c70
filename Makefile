# Two commands for a newcomer: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: run test lint typecheck unit bench migrate clean help

help:
	@echo "make run    - set up, migrate and serve on http://127.0.0.1:8000 (SQLite under ./var/)"
	@echo "make test   - lint, type-check and run the whole suite (SQLite and PostgreSQL)"
	@echo "make bench  - benchmarks (bench/), ratios against raw baselines measured in the same run"

$(STAMP):
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required, found " + sys.version.split()[0]'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

migrate: $(STAMP)
	$(BIN)/kaoping migrate

run: $(STAMP)
	@mkdir -p var
	$(BIN)/kaoping migrate
	$(BIN)/kaoping serve

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
