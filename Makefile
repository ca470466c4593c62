# One place for the commands the README gives. Everything runs in .venv, made from pyproject.toml.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) -m exporter demo

# Every test on both kernel paths: numba (the default where it imports), then tinyrt's numpy ops.
test: setup
	$(PY) -m pytest
	TINYRT_KERNELS=numpy $(PY) -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) .pytest_cache
