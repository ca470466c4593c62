"""How many threads numpy's BLAS may use while tinyrt runs (``SessionOptions.intra_op_num_threads``).

numpy cannot be told after import; the BLAS library it loaded can. Like threadpoolctl (which this mirrors
in a few lines, to stay dependency-free), find the loaded OpenBLAS and call its set/get functions. Where
there is none (or another BLAS), the setting is a no-op, and ``blas_threads_controllable()`` says so.
"""
import ctypes
import os
import threading

# Symbol names differ by build: plain OpenBLAS, numpy's scipy-openblas wheels (64-bit ints).
_SYMBOL_PAIRS = [
    ("openblas_set_num_threads", "openblas_get_num_threads"),
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
]
_lock = threading.Lock()
_found = None


def _blas():
    """(set, get) functions of the OpenBLAS numpy loaded, or None."""
    global _found
    if _found is None:
        _found = False
        for path in _loaded_libraries():
            if "openblas" not in os.path.basename(path).lower():
                continue
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for set_name, get_name in _SYMBOL_PAIRS:
                if hasattr(lib, set_name) and hasattr(lib, get_name):
                    _found = (getattr(lib, set_name), getattr(lib, get_name))
                    break
            if _found:
                break
    return _found or None


def _loaded_libraries():
    import numpy  # noqa: F401  (make sure numpy's BLAS is loaded)
    try:
        with open("/proc/self/maps") as f:
            return sorted({line.split()[-1] for line in f if ".so" in line and "/" in line})
    except OSError:  # not Linux: no control, no harm
        return []


def blas_threads_controllable():
    return _blas() is not None


def get_blas_threads():
    blas = _blas()
    return int(blas[1]()) if blas else None


class blas_threads:
    """Context manager: BLAS uses ``n`` threads inside (n <= 0 leaves it alone)."""

    def __init__(self, n):
        self.n = n
        self.previous = None

    def __enter__(self):
        blas = _blas() if self.n and self.n > 0 else None
        if blas:
            _lock.acquire()
            self.previous = int(blas[1]())
            if self.previous != self.n:
                blas[0](int(self.n))
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            blas = _blas()
            if self.previous != self.n:
                blas[0](self.previous)
            self.previous = None
            _lock.release()
        return False
