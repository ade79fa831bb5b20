# Two commands on a fresh machine (Python 3.11+ and make): `make demo` and `make test`.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' && echo $$p && break; done)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: install demo test lint typecheck unit integration bench audit train clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "newsclass needs Python 3.11 or newer"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(STAMP)  ## create .venv with newsclass and its development tools

demo: $(STAMP)  ## run the embedded stack: local Redis + worker + SQLite, sample articles
	$(BIN)/newsclass demo

test: lint typecheck  ## lint, types and the whole test suite
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	$(BIN)/pytest tests/integration

bench: $(STAMP)  ## throughput and latency figures, printed as a table and JSON
	$(BIN)/python -m bench

audit: $(STAMP)  ## known vulnerabilities in the installed dependencies (needs the network)
	$(BIN)/python -m pip install --quiet pip-audit
	$(BIN)/pip-audit --skip-editable

train: $(STAMP)  ## retrain the shipped model from ../shared/data
	$(BIN)/python -m classifiers.train --data ../shared/data/wikinews/train.jsonl --out classifiers/default \
		--unlabeled ../shared/data/wikinews/unlabeled.jsonl \
		$(foreach f,$(sort $(wildcard classifiers/supplement/*.jsonl)),--supplement $(f)) \
		--dev ../shared/data/wikinews/dev.jsonl --bbc ../shared/data/bbc/bbc.jsonl

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache newsclass.db newsclass.db-*
