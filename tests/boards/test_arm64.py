"""tinyrt on an emulated 64-bit Raspberry Pi OS: Debian bookworm arm64 under qemu-aarch64-static.

The board has Debian's Python 3.11, numpy 1.24, Pillow 9.4 and numba 0.56.4 (with llvmlite / LLVM 14), and
a copied ``tinyrt/`` and ``kernels/``. The root is built once and cached.

* numba itself must work there: a serial ``@njit(cache=True)`` function compiles and runs;
* the board models must match the goldens on this pass's path (see boardtest.py): the numba kernels on the
  default pass, the numpy ops on the TINYRT_KERNELS=numpy pass.
  The kernels use no ``prange``: measured on qemu-aarch64 7.2 (Debian bookworm's qemu-user-static), every
  ``@njit(parallel=True)`` function with a ``prange`` loop died there with SIGSEGV, under both threading
  layers. The kernels' own thread pool (kernels/_pool.py: Python threads, numba atomics) runs there.
"""
import pytest

from boardtest import board_check, check_model, board_path, model_names

pytestmark = pytest.mark.slow
BOARD = "arm64"


@pytest.fixture(scope="module")
def arm64():
    return board_check(BOARD, numba_check=True)


def test_platform(arm64):
    assert arm64["machine"] == "aarch64"
    assert arm64["numpy"].startswith("1.24."), arm64["numpy"]
    assert arm64["numba"], "Debian's python3-numba is missing from the root"


def test_numba_compiles_there(arm64):
    check = arm64.get("numba_check")
    assert check and check["ok"], arm64["errors"]


def test_session_path(arm64):
    assert {m["kernels"] for m in arm64["models"]} == {board_path(BOARD)}, arm64["errors"]


@pytest.mark.parametrize("name", model_names())
def test_model_matches_golden(arm64, name):
    check_model(BOARD, arm64, name)
