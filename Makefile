# Everything runs in a local virtual environment that this Makefile creates.
#   make demo   installs only what the demo needs (anyjob and its `cli` extra: rich), then runs it
#   make test   installs the whole development toolchain (`dev` extra), then lints, type-checks, tests
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DEMO   := $(VENV)/.demo
DEV    := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(DEMO): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[cli]'
	touch $(DEMO)

$(DEV): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(DEV)

demo: $(DEMO)
	$(PY) -m anyjob demo

lint: $(DEV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(DEV)
	$(VENV)/bin/mypy
	$(VENV)/bin/pyright

pytest: $(DEV)
	$(PY) -m pytest -q

test: lint typecheck pytest

bench: $(DEV)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
