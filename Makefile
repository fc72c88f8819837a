# The README's two commands. Both create .venv when it is missing.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
TORCH   := torch==2.13.0

.PHONY: demo test install install-test lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: $(VENV)/.installed
	$(BIN)/deepcausalmmm demo --out outputs/demo

# One pytest-xdist worker per core (at most 8), each pinned to its core (tests/conftest.py);
# a test file's tests stay in one worker, so its module fixtures are fitted once.
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n auto --maxprocesses 8 --dist loadfile

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy src/deepcausalmmm

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/mmm_panel.py

clean:
	rm -rf $(VENV) outputs build *.egg-info src/*.egg-info
