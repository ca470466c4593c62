"""tinyrt on an emulated 64-bit Raspberry Pi OS: Debian bookworm arm64 under qemu-aarch64-static.

The board has Debian's Python 3.11, numpy 1.24, Pillow 9.4 and numba 0.56.4 (with llvmlite / LLVM 14), and
a copied ``tinyrt/`` and ``kernels/``. The root is built once (about 20-60 s; 450 MB on disk) and cached.

* the numpy path (``TINYRT_KERNELS=numpy``) must match the goldens, like armv7;
* numba itself must work there: a serial ``@njit(cache=True)`` function compiles and runs;
* tinyrt's numba kernels (the default when numba imports) must match the goldens too, on the numba path.
  They use no ``prange``: measured on qemu-aarch64 7.2 (Debian bookworm's qemu-user-static), every
  ``@njit(parallel=True)`` function with a ``prange`` loop died there with SIGSEGV, under both threading
  layers. The kernels' own thread pool (kernels/_pool.py: Python threads, numba atomics) runs there.
"""
import pytest

from boardtest import check_model, model_names, run_board_check

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def arm64_numpy():
    parsed, _ = run_board_check("arm64", env={"TINYRT_KERNELS": "numpy"}, numba_check=True)
    return parsed


def test_platform(arm64_numpy):
    assert arm64_numpy["machine"] == "aarch64"
    assert arm64_numpy["numpy"].startswith("1.24."), arm64_numpy["numpy"]
    assert arm64_numpy["numba"], "Debian's python3-numba is missing from the root"


@pytest.mark.parametrize("name", model_names())
def test_numpy_path_matches_golden(arm64_numpy, name):
    check_model(arm64_numpy, name)


def test_numba_compiles_there(arm64_numpy):
    check = arm64_numpy.get("numba_check")
    assert check and check["ok"], arm64_numpy["errors"]


def test_numba_kernels_match_golden():
    parsed, _ = run_board_check("arm64", env={"TINYRT_KERNELS": "numba"})
    for name in model_names():
        check_model(parsed, name)
    assert {m.get("kernels") for m in parsed["models"]} == {"numba"}, parsed["errors"]
