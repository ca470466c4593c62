"""``@kernel``: how every kernel is compiled: lazily (on first call), cached on disk, releasing the GIL.

A kernel splits its work into numbered blocks and takes them with ``start`` / ``finished``
(``_sync.py``) until none is left, then returns how many there were; the pool (``_pool.py``) runs that
same function on each of its threads at once. One compiled function serves one thread or several: at one
thread it simply takes every block itself.
"""
from numba import njit

from ._sync import start, finished  # noqa: F401  (what kernel modules use with @kernel)

# "contract" lets LLVM fuse a * b + c into one FMA instruction (one rounding instead of two, as
# onnxruntime's kernels do); no other fast-math liberty: NaN and infinity keep numpy's rules.
FASTMATH = {"contract"}


def kernel(fn):
    return njit(nogil=True, cache=True, fastmath=FASTMATH)(fn)


# The functions kernels call are compiled the same way, each on its own: LLVM inlines the small ones where
# they are called (numba's inline="always" would copy their IR at every call site, and compiling took
# minutes on an emulated board).
helper = kernel
