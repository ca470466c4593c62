"""A QDQ model's activation rounding on SIMD vectors, for the conv kernels (their fused QuantizeDequantize)
and eltwise.quantize_dequantize:

    y = clip(rint(x / s), lo, hi) * s           rint half to even, x / s the float32 quotient

x / s without a division: a vector divide is the slowest float instruction (on AVX-512 one 16-lane
``vdivps`` every 10 cycles or so, against two multiply-adds a cycle), and the rounding must give
exactly the integers of QuantizeLinear's true division (onnxruntime's), so a multiply by 1 / s alone
will not do (it is one float32 step off now and then, and near k + 0.5 that changes the integer). The
quotient is computed as in Markstein's division (IBM J. Res. Dev. 34(1), 1990; Muller et al., Handbook of
Floating-Point Arithmetic, "Markstein's theorem"): with r = RN(1 / s), t = RN(x * r) is within one step
of x / s, the remainder e = x - t * s is exact as one fused multiply-add, and RN(t + e * r), one more, is
the correctly rounded quotient RN(x / s): the same float32 as the division, for every x. That needs a
true FMA (one rounding): where the CPU has none (_simd.FMA false) the division is kept; and no overflow or
underflow on the way: ``exact_range`` (a scale within 2^-60 .. 2^60, x clipped to whole steps of it, so
|x / s| < 2^17), else the division too.
tests/test_quantized_models.py holds this against numpy's x / s, ties and their neighbours included.

Addresses are plain integers as in _simd.py; lo and hi are the clip bounds already times s (infinite for
none: the conv kernels clip in their tail, before the rounding).
"""
import numpy as np

from ._jit import helper
from . import _simd as v

LANES = v.LANES
U = np.uint64


@helper
def exact_range(s, lo, hi):
    """Whether rounding by ``rounded`` with fast=True gives the division's integers: finite clip bounds
    (lo, hi: times s) and a scale far from overflow and underflow (see the module docstring)."""
    return s >= np.float32(2.0 ** -60) and s <= np.float32(2.0 ** 60) and lo > -np.float32(np.inf) \
        and hi < np.float32(np.inf)


@helper
def rounded(a, vs, vr, vns, fast):
    """rint(a / s) * s for one vector a; vs, vr, vns: s, RN(1 / s), -s in every lane; ``fast``: the
    division-free quotient (see exact_range), else a division."""
    if v.FMA and fast:
        t = v.mul(a, vr)
        q = v.fma(v.fma(t, vns, a), vr, t)  # RN(x / s) (see the module docstring)
    else:
        q = v.div(a, vs)
    return v.mul(v.rint(q), vs)


@helper
def run(src, add, has_add, dst, n, s, lo, hi):
    """dst[0:n] = clip(rint((src + add) / s), lo / s, hi / s) * s over n floats (``add`` read only when
    has_add); src and dst may be the same memory. lo, hi: the bounds times s (float32), or infinite."""
    vs, vr, vns = v.splat(s), v.splat(np.float32(1) / s), v.splat(-s)
    vlo, vhi = v.splat(lo), v.splat(hi)
    fast = exact_range(s, lo, hi)
    src, add, dst = U(src), U(add), U(dst)
    full = U(n - n % LANES)
    for i in range(U(0), full, U(LANES)):
        o = i * U(4)
        a = v.load(src + o)
        if has_add:
            a = v.add(a, v.load(add + o))
        v.store(dst + o, rounded(v.at_most(v.at_least(a, vlo), vhi), vs, vr, vns, fast))
    k = U(n) - full
    if k > 0:
        o = full * U(4)
        a = v.load_first(src + o, k)
        if has_add:
            a = v.add(a, v.load_first(add + o, k))
        v.store_first(dst + o, rounded(v.at_most(v.at_least(a, vlo), vhi), vs, vr, vns, fast), k)
