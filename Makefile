# tropicrop: `make demo` runs the main job on built-in synthetic data, `make test` runs the checks
# (ruff, mypy, pytest and the documentation's strict build: `make docs`).
# Both create .venv on first use and reuse it afterwards.
#
# TORCH: the torch requirement installed first. The default is the CPU build that this project's machines
# keep on disk; on a GPU machine use e.g. `make test TORCH="torch==2.13.0 --index-url <your CUDA wheel index>"`
# or TORCH=torch to take whatever build pip resolves.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
DEMO_OUT ?= runs/demo

.PHONY: demo test test-fast lint typecheck pytest docs bench clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/tropicrop demo --out $(DEMO_OUT)

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks docs/hooks

typecheck: $(BIN)/.installed
	$(BIN)/mypy src

pytest: $(BIN)/.installed
	$(BIN)/python -m pytest -q

test: lint typecheck pytest docs

test-fast: $(BIN)/.installed  # the fast tier while changing code; `make test` runs everything
	$(BIN)/python -m pytest -q -m "not slow"

docs: $(BIN)/.installed  # the documentation site into site/; --strict: a broken link, reference or table file fails
	$(BIN)/mkdocs build --strict --site-dir site

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) runs site .pytest_cache .mypy_cache .ruff_cache
