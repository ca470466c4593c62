"""``@kernel``: a numba function compiled twice, lazily and cached: threaded (``prange`` spreads over numba's
threads) and serial (``.serial``: ``prange`` is a plain loop). At one thread the serial one runs: launching
a parallel region costs tens of microseconds even with one thread (measured: a 64x192x196 pointwise conv
took twice as long through the parallel launcher), and a network makes about a hundred such calls.
"""
import types

from numba import njit


def _copy(fn, suffix):
    """The same function under another name: numba keys its disk cache on the qualified name."""
    g = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + suffix, fn.__defaults__, fn.__closure__)
    g.__qualname__ = fn.__qualname__ + suffix
    g.__doc__ = fn.__doc__
    g.__module__ = fn.__module__
    return g


# "contract" lets LLVM fuse a * b + c into one FMA instruction (one rounding instead of two, as
# onnxruntime's kernels do); no other fast-math liberty: NaN and infinity keep numpy's rules.
FASTMATH = {"contract"}


def kernel(fn):
    threaded = njit(parallel=True, cache=True, fastmath=FASTMATH)(fn)
    threaded.serial = njit(cache=True, fastmath=FASTMATH)(_copy(fn, "_serial"))
    return threaded


def pick(k, threads):
    """The variant of kernel ``k`` to call at ``threads`` threads."""
    return k if threads > 1 else k.serial
