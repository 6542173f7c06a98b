# The two commands of the README: `make run` and `make test`. Both install first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test lint bench bench-quick soak canary-sim clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: install
	$(BIN)/trimtab serve

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/run.py

bench-quick: install
	$(BIN)/python bench/run.py --quick

soak: install
	$(BIN)/python bench/soak.py --minutes 10

canary-sim: install
	$(BIN)/python bench/canary_sim.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
