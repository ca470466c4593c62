"""The single-precision GEMM of the BLAS numpy loaded, made callable from numba-compiled code.

numpy's wheels bundle OpenBLAS; its ``cblas_sgemm`` (under a wheel-specific name) is found in the loaded
libraries, registered with LLVM under one fixed symbol name, and declared as an external function. Code
calling it is cacheable: the cache refers to the symbol by name, and the symbol is registered again (at
this module's import) before any cached kernel is loaded.

Row-major ``C[M, N] = A[M, K] @ B[K, N]`` with leading dimensions lda, ldb, ldc; pointers are passed as
integers (``array.ctypes.data``). AVAILABLE is False when no such BLAS is there; the kernels then run the
GEMM through numpy instead.
"""
import ctypes
import os

from numba import types

SYMBOL = "tinyrt_cblas_sgemm"
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112

# (name, integer width): plain OpenBLAS, numpy >= 2's scipy-openblas (64-bit ints), numpy 1.x wheels.
_CANDIDATES = [("scipy_cblas_sgemm64_", 64), ("cblas_sgemm64_", 64), ("scipy_cblas_sgemm", 32),
               ("cblas_sgemm", 32)]


def _loaded_libraries():
    import numpy  # noqa: F401
    try:
        with open("/proc/self/maps") as f:
            return sorted({line.split()[-1] for line in f if ".so" in line and "/" in line})
    except OSError:
        return []


def _find():
    for path in _loaded_libraries():
        name = os.path.basename(path).lower()
        if "blas" not in name:
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol, bits in _CANDIDATES:
            fn = getattr(lib, symbol, None)
            if fn is not None:
                return ctypes.cast(fn, ctypes.c_void_p).value, bits
    return None, 0


_address, INT_BITS = _find()
AVAILABLE = _address is not None
sgemm = None
if AVAILABLE:
    import llvmlite.binding as llvm
    llvm.add_symbol(SYMBOL, _address)
    _int = types.int64 if INT_BITS == 64 else types.int32
    _ptr = types.uintp  # a pointer, passed in an integer register like any pointer
    sgemm = types.ExternalFunction(SYMBOL, types.void(
        types.int32, types.int32, types.int32, _int, _int, _int, types.float32, _ptr, _int, _ptr, _int,
        types.float32, _ptr, _int))
