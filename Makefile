# Quick start: `make demo` (sandbox -> tap -> DuckDB via Meltano) and `make test`.
PYTHON ?= python3
PORT ?= 8765
VENV := .venv
BIN := $(VENV)/bin
MELTANO_VENV := .venv-meltano
MELTANO := $(MELTANO_VENV)/bin/meltano
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: install meltano demo sandbox generate test test-fast bench postgres clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_FLAGS) --upgrade pip
	$(BIN)/pip install $(PIP_FLAGS) -e '.[test,sandbox]'
	touch $@

install: $(BIN)/.installed

# Meltano lives in its own venv: its pins must not decide the tap's. The postgres extra (psycopg)
# lets its system database, and so its state, live on PostgreSQL (README "Scaling out").
$(MELTANO_VENV)/.installed-4.4.1-postgres:
	$(PYTHON) -m venv $(MELTANO_VENV)
	$(MELTANO_VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(MELTANO_VENV)/bin/pip install $(PIP_FLAGS) 'meltano[postgres]==4.4.1'
	touch $@

meltano: $(MELTANO_VENV)/.installed-4.4.1-postgres

# `make demo PORT=9000` runs the sandbox on another port (a busy port is refused).
demo: install meltano
	$(BIN)/python scripts/demo.py --meltano $(MELTANO) --port $(PORT)

# The sandbox alone, in the foreground, for the README's Meltano commands.
sandbox: install
	$(BIN)/callreports-sandbox --port $(PORT) --seed 1 --job-polls 2

# meltano.yml's plugin block, the Hub definition and the README settings table, from the settings schema.
generate: install
	$(BIN)/python scripts/generate.py

test: install meltano
	$(BIN)/ruff check tap_callreports tests bench scripts
	MELTANO=$(abspath $(MELTANO)) $(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

bench: install
	$(BIN)/pip install $(PIP_FLAGS) -e '.[test,sandbox,bench]'
	$(BIN)/python bench/run.py --profile

# A PostgreSQL server on loopback for the warehouse test (Debian packages; CI runs this as root).
postgres:
	bash scripts/postgres.sh start

clean:
	rm -rf $(VENV) $(MELTANO_VENV) .meltano output
