"""tinyrt on an emulated 64-bit Raspberry Pi OS: Debian bookworm arm64 under qemu-aarch64-static.

The board has Debian's Python 3.11, numpy 1.24, Pillow 9.4 and numba 0.56.4 (with llvmlite / LLVM 14), and
a copied ``tinyrt/`` and ``kernels/``. The root is built once and cached.

* numba itself must work there: a serial ``@njit(cache=True)`` function compiles and runs;
* the board models must match the goldens on both paths, in every pytest session (see boardtest.py): the
  numba kernels (cached beside the root) and the numpy ops (TINYRT_KERNELS=numpy).
  The kernels use no ``prange``: measured on qemu-aarch64 7.2 (Debian bookworm's qemu-user-static), every
  ``@njit(parallel=True)`` function with a ``prange`` loop died there with SIGSEGV, under both threading
  layers. The kernels' own thread pool (kernels/_pool.py: Python threads, numba atomics) runs there.
"""
import pytest

from boardtest import PATHS, board_check, check_model, model_names

pytestmark = pytest.mark.slow
BOARD = "arm64"


@pytest.fixture(scope="module", params=PATHS[BOARD])
def path(request):
    return request.param


@pytest.fixture(scope="module")
def arm64(path):
    return board_check(BOARD, path)


def test_platform(arm64):
    assert arm64["machine"] == "aarch64"
    assert arm64["numpy"].startswith("1.24."), arm64["numpy"]
    assert arm64["numba"], "Debian's python3-numba is missing from the root"


def test_numba_compiles_there():
    checked = board_check(BOARD, PATHS[BOARD][0])
    check = checked.get("numba_check")
    assert check and check["ok"], checked["errors"]


def test_session_path(arm64, path):
    assert {m["kernels"] for m in arm64["models"]} == {path}, arm64["errors"]


@pytest.mark.parametrize("name", model_names())
def test_model_matches_golden(arm64, path, name):
    check_model(arm64, name, path)
