# Quick start: `make demo` (sandbox -> tap -> DuckDB via Meltano) and `make test`.
PYTHON ?= python3
PORT ?= 8765
VENV := .venv
BIN := $(VENV)/bin
MELTANO_VENV := .venv-meltano
MELTANO := $(MELTANO_VENV)/bin/meltano
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: install meltano demo sandbox generate test test-fast bench bench-latency bench-targets postgres clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_FLAGS) --upgrade pip
	$(BIN)/pip install $(PIP_FLAGS) -e '.[test,sandbox]'
	touch $@

install: $(BIN)/.installed

# Meltano lives in its own venv: its pins must not decide the tap's. The postgres extra (psycopg)
# lets its system database, and so its state, live on PostgreSQL (docs/meltano.md "Scaling out").
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

# meltano.yml's plugin block, the Hub definition and docs/settings.md's tables, from the settings schema.
generate: install
	$(BIN)/python scripts/generate.py

# The suite in TEST_WORKERS pytest-xdist processes (`make test TEST_WORKERS=0` runs it in one), a test
# file to a worker, in its order (the SDK's standard attribute tests pass only in theirs; a module's
# fixtures are made once); tests of two files that share a place under .tmp take a file lock.
TEST_WORKERS ?= 3
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

test: install meltano
	$(BIN)/ruff check tap_callreports tests bench scripts
	$(BIN)/ruff format --check tap_callreports tests bench scripts
	$(BIN)/mypy
	MELTANO=$(abspath $(MELTANO)) $(PYTEST)

# `make test-fast PYTHON=python3.13 VENV=.tmp/venv-3.13`: the fast suite on another Python (.ci/run).
test-fast: install
	$(PYTEST) -m "not slow"

# The Singer targets the end-to-end bench pipes into, each in its own venv (the versions meltano.yml pins).
BENCH_TARGETS := .tmp/bench-targets
bench-targets:
	@for spec in "jsonl:target-jsonl==0.1.4" "duckdb:target-duckdb==0.8.0 duckdb==1.1.3" \
	             "postgres:meltanolabs-target-postgres==0.8.1"; do \
	  name=$${spec%%:*}; dir=$(BENCH_TARGETS)/$$name; \
	  [ -f $$dir/.installed ] || { $(PYTHON) -m venv $$dir && $$dir/bin/pip install $(PIP_FLAGS) $${spec#*:} \
	    && touch $$dir/.installed; } || exit 1; \
	done

# The tap against its baselines (1M and 100k rows, 3 interleaved rounds, one round of the naive SDK
# stream, a profile), then the tap piped into target-jsonl, target-duckdb and target-postgres (the
# `make postgres` server; without it the PostgreSQL rows are skipped with a note); then the job
# latency bench; then each figure against its goal (bench/goals.py). Over an hour on 2 cores: the
# 1M-row part alone is about 20 minutes (3 rounds of 2 bodies, a 1M-row job built for each tap run).
bench: install bench-targets
	$(BIN)/pip install $(PIP_FLAGS) -e '.[test,sandbox,bench]'
	-bash scripts/postgres.sh start
	$(BIN)/python bench/run.py --profile --rounds 3 --naive-rounds 1
	$(BIN)/python bench/run.py --pipeline
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/goals.py

# How long a run waits for the vendors' report jobs (jobs of 20 s, default settings): about 2 minutes.
bench-latency: install
	$(BIN)/python bench/latency.py

# A PostgreSQL server on loopback for the warehouse test (Debian packages; CI runs this as root).
postgres:
	bash scripts/postgres.sh start

clean:
	rm -rf $(VENV) $(MELTANO_VENV) .meltano output
