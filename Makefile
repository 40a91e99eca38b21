# The two commands a new user runs are `make run` and `make test`; everything else hangs off them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CC ?= cc
CFLAGS ?= -O2 -Wall -Wextra -std=c99
SHIM := hooks/keycard-hook

.PHONY: run test check lint typecheck bench stress shim clean

$(VENV)/.stamp-base: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.stamp-test: pyproject.toml $(VENV)/.stamp-base
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

$(SHIM): hooks/keycard-hook.c
	$(CC) $(CFLAGS) -o $@ $<

shim: $(SHIM)

run: $(VENV)/.stamp-base shim
	$(VENV)/bin/keycardd --foreground

lint: $(VENV)/.stamp-test
	$(VENV)/bin/ruff check keycardd tests bench packaging
	$(VENV)/bin/ruff format --check keycardd tests bench packaging

typecheck: $(VENV)/.stamp-test
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy packaging/update_formula.py

check: lint typecheck

test: $(VENV)/.stamp-test shim check
	$(PY) -m pytest -q -m "not slow"

stress: $(VENV)/.stamp-test shim
	$(PY) -m pytest -q -m slow

bench: $(VENV)/.stamp-test shim
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(SHIM) build dist *.egg-info
