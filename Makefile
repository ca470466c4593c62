# One place for the commands the README gives. Everything runs in .venv, made from pyproject.toml.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test test-fast test-armhf-numba clean

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

# Opt-in, not part of `make test` or CI: the two armhf boards (bullseye numba 0.52, bookworm numba 0.56) on the
# numba path: the board models against the x86 goldens, the JPEG runs and the node cases, the sessions
# reporting numba. The first run after a change of kernels/ compiles every kernel under qemu (about 10
# minutes a board on a quiet machine, over an hour on a busy one); later runs load them from the cache
# beside the root. One board at a time, at the lowest priority. The numpy path is make test's.
test-armhf-numba: setup
	TINYRT_BOARD_ARMHF_NUMBA=1 TINYRT_BOARD_JOBS=1 nice -n 19 $(PY) -m pytest -v -p no:cacheprovider \
	    -k "not numpy" tests/boards/test_armv7.py tests/boards/test_armv7_bookworm.py

clean:
	rm -rf $(VENV) .pytest_cache
