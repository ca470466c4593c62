"""The elementwise tails left after fusion, in blocks for the thread pool.

* ``channel_scale``: y = x * s with x (N, C, H, W) and s (N, C, 1, 1): the gating Mul of a
  squeeze-excite block (s is the sigmoid / hard-sigmoid of the excitation, already fused into its conv),
  on channels-last memory (x and y as (N, H * W, C)), the layout the convs write.
* ``add``: y = a + b for two float32 arrays of one shape (a residual Add that could not be fused).
* ``softmax``: along the rows of a matrix (a classifier's last op, a detector's class scores), on SIMD
  vectors.
* ``quantize_dequantize``: y = clip(rint((x [+ b]) / s), lo, hi) * s, a QDQ model's activation rounding
  (tinyrt's QuantizeDequantize, see tinyrt/passes/quantization.py), a residual Add folded in, in one sweep.
"""
import numpy as np

from ._jit import helper, kernel, start, finished
from . import _round as _rounding, _simd as simd


@kernel
def channel_scale(x, s, y, ctr):
    """x, y (N, P, C) channels-last, s (N, C); blocks of 64 pixels."""
    N, P, C = x.shape
    rows = 64
    nblk = (P + rows - 1) // rows
    total = N * nblk
    me, t = start(ctr, total)
    while t < total:
        n = t // nblk
        p0 = t % nblk * rows
        for p in range(p0, min(P, p0 + rows)):
            for c in range(C):
                y[n, p, c] = x[n, p, c] * s[n, c]
        t = finished(ctr, me, total)
    return total


@kernel
def add(a, b, y, ctr):
    """a, b, y flat, blocks of 16K floats."""
    n = a.shape[0]
    block = 16384
    total = (n + block - 1) // block
    me, t = start(ctr, total)
    while t < total:
        for i in range(t * block, min(n, (t + 1) * block)):
            y[i] = a[i] + b[i]
        t = finished(ctr, me, total)
    return total


@kernel
def softmax(x, y, ctr):
    """y = exp(x - max) / sum(exp(x - max)) along each row of x (R, L), both C-contiguous; blocks of rows
    (about 4K floats), on SIMD vectors (_simd.exp: a polynomial within 2 ulp of libm's). A NaN in a row
    makes the whole row NaN, as in the numpy op: its exp is NaN, and so is the sum every element is
    multiplied by the inverse of."""
    R, L = x.shape
    rows = max(1, 4096 // L)
    total = (R + rows - 1) // rows
    lanes = np.empty(simd.LANES, np.float32)  # one vector's lanes, to reduce them to one number
    lp = lanes.ctypes.data
    full = L - L % simd.LANES  # the whole vectors of a row; the rest, n < LANES floats, go by load_first
    n = L - full
    me, t = start(ctr, total)
    while t < total:
        for r in range(t * rows, min(R, (t + 1) * rows)):
            _softmax_row(x.ctypes.data + r * L * 4, y.ctypes.data + r * L * 4, x[r, 0], full, n, lanes, lp)
        t = finished(ctr, me, total)
    return total


@helper
def _softmax_row(xr, yr, m, full, n, lanes, lp):
    """One row of ``softmax``: ``full`` floats in whole vectors, then n more, at addresses xr and yr; m its
    first float (where its maximum starts)."""
    if full:
        vm = simd.load(xr)
        for i in range(simd.LANES, full, simd.LANES):
            vm = simd.at_least(simd.load(xr + i * 4), vm)  # lane by lane maxima
        simd.store(lp, vm)
        for i in range(simd.LANES):
            m = max(m, lanes[i])
    if n:
        simd.store(lp, simd.load_first(xr + full * 4, n))
        for i in range(n):
            m = max(m, lanes[i])
    neg_m = simd.splat(-m)
    vs = simd.splat(np.float32(0))
    for i in range(0, full, simd.LANES):
        e = simd.exp(simd.add(simd.load(xr + i * 4), neg_m))
        simd.store(yr + i * 4, e)
        vs = simd.add(vs, e)
    if n:
        simd.store_first(yr + full * 4, simd.exp(simd.add(simd.load_first(xr + full * 4, n), neg_m)), n)
        vs = simd.add(vs, simd.load_first(yr + full * 4, n))  # the lanes past n read as 0
    simd.store(lp, vs)
    s = lanes[0]
    for i in range(1, simd.LANES):
        s += lanes[i]
    vr = simd.splat(np.float32(1) / s)  # times 1 / sum (within 1.5 ulp of dividing, and much faster)
    for i in range(0, full, simd.LANES):
        simd.store(yr + i * 4, simd.mul(simd.load(yr + i * 4), vr))
    if n:
        simd.store_first(yr + full * 4, simd.mul(simd.load_first(yr + full * 4, n), vr), n)


@kernel
def quantize_dequantize(x, b, has_b, y, s, lo, hi, ctr):
    """y = clip(rint((x [+ b]) / s), lo, hi) * s: x, b, y flat float32 (b, a residual Add's other addend,
    read only when has_b), s the scale, lo/hi the clip bounds (qmin - zp, qmax - zp); blocks of 16K floats.
    The quotient is x / s's float32 and rint rounds half to even, as the numpy op (and QuantizeLinear) do;
    on SIMD vectors (_round.py)."""
    n = x.shape[0]
    block = 16384
    total = (n + block - 1) // block
    xp, bp, yp = x.ctypes.data, b.ctypes.data, y.ctypes.data
    blo, bhi = lo * s, hi * s  # clipping first is the same: rounding is monotonic, the bounds whole steps
    me, t = start(ctr, total)
    while t < total:
        i0 = t * block
        _rounding.run(xp + i0 * 4, bp + i0 * 4, has_b, yp + i0 * 4, min(n, i0 + block) - i0, s, blo, bhi)
        t = finished(ctr, me, total)
    return total
