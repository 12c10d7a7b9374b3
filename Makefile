# Quick start: `make demo` (sandbox -> tap -> DuckDB via Meltano) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MELTANO_VENV := .venv-meltano
MELTANO := $(MELTANO_VENV)/bin/meltano
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: install meltano demo test test-fast bench postgres clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_FLAGS) --upgrade pip
	$(BIN)/pip install $(PIP_FLAGS) -e '.[test]'
	touch $@

install: $(BIN)/.installed

# Meltano lives in its own venv: its pins must not decide the tap's.
$(MELTANO_VENV)/.installed:
	$(PYTHON) -m venv $(MELTANO_VENV)
	$(MELTANO_VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(MELTANO_VENV)/bin/pip install $(PIP_FLAGS) 'meltano==4.4.1'
	touch $@

meltano: $(MELTANO_VENV)/.installed

demo: install meltano
	$(BIN)/python scripts/demo.py --meltano $(MELTANO)

test: install meltano
	$(BIN)/ruff check tap_callreports tests bench scripts
	MELTANO=$(abspath $(MELTANO)) $(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

bench: install
	$(BIN)/pip install $(PIP_FLAGS) -e '.[test,bench]'
	$(BIN)/python bench/run.py --profile

# A PostgreSQL server on loopback for the warehouse test (Debian packages; CI runs this as root).
postgres:
	bash scripts/postgres.sh start

clean:
	rm -rf $(VENV) $(MELTANO_VENV) .meltano output
