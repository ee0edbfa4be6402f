# Two entry points: `make demo` (set up, generate a sample recording, inspect and query it) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAMPLE := output/sample.parquet

.PHONY: demo test test-fast check bench clean

$(BIN)/rezgen: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/python -m compileall -q rezgen  # bytecode now, as a wheel install does (PYTHONDONTWRITEBYTECODE may be set)
	touch $@

demo: $(BIN)/rezgen
	mkdir -p output
	$(BIN)/rezgen sample -o $(SAMPLE)
	$(BIN)/rezgen query $(SAMPLE) 'sum(irate(cpu_usage[5m])) / sum(cpu_cores) / 1e9' --step 1m
	$(BIN)/rezgen build $(SAMPLE) -o output/site

test: $(BIN)/rezgen
	$(BIN)/pytest -q -rs

# The inner loop: everything but real browsers, real-time live servers, the Prometheus oracle and slow tests.
test-fast: $(BIN)/rezgen
	$(BIN)/pytest -q -rs -m "not browser and not live and not oracle and not slow"

# The layers (import-linter contracts in pyproject.toml), lint and types.
check: $(BIN)/rezgen
	$(BIN)/lint-imports
	$(BIN)/ruff check rezgen tests benchmarks
	$(BIN)/mypy rezgen

bench: $(BIN)/rezgen
	$(BIN)/python benchmarks/bench_query.py

clean:
	rm -rf $(VENV) output
