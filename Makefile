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
	@echo "installing Kaoping and its tools into $(VENV) (pip's output: $(VENV)/install.log)"
	@{ $(BIN)/python -m pip install --upgrade pip && $(BIN)/python -m pip install -e '.[dev]'; } \
	  >$(VENV)/install.log 2>&1 || { tail -n 30 $(VENV)/install.log; echo "pip failed: see $(VENV)/install.log"; exit 1; }
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

# scripts/system-deps: what pip cannot install (chromium, a CJK font, PostgreSQL running).
test: lint typecheck
	@scripts/system-deps
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
