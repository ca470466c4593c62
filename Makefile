# One place for the commands the README gives. Everything runs in .venv, made from pyproject.toml.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test test-fast clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

# Byte-compiled as pip compiles an installed package (an editable install is not, and where
# PYTHONDONTWRITEBYTECODE is set nothing would be): every import would compile the sources again.
setup: $(VENV)/.installed
	$(PY) -m compileall -q tinyrt kernels exporter benchmarks

demo: setup
	$(PY) -m exporter demo

# The emulated boards (tests/boards/): each runs every kernel path it has in one session (boardtest.py), so
# the second pass leaves them out instead of repeating the same runs under qemu.
BOARD_TESTS := $(wildcard tests/boards/test_armv7*.py tests/boards/test_arm64.py tests/boards/test_riscv64.py)

# Every test on both kernel paths: numba (the default where it imports), then tinyrt's numpy ops.
test: setup
	$(PY) -m pytest
	@echo "make test, second pass (TINYRT_KERNELS=numpy): the emulated boards ran both paths in the first pass:" \
	    "$(notdir $(BOARD_TESTS)) left out"
	TINYRT_KERNELS=numpy $(PY) -m pytest -q -p no:cacheprovider $(addprefix --ignore=,$(BOARD_TESTS))

# The quick loop while working: the numba path, without the tests marked slow or install.
test-fast: setup
	$(PY) -m pytest -q -m "not slow and not install"

clean:
	rm -rf $(VENV) .pytest_cache
