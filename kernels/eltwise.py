"""The elementwise tails left after fusion, in blocks for the thread pool.

* ``channel_scale``: y = x * s with x (N, C, H, W) and s (N, C, 1, 1): the gating Mul of a
  squeeze-excite block (s is the sigmoid / hard-sigmoid of the excitation, already fused into its conv),
  on channels-last memory (x and y as (N, H * W, C)), the layout the convs write.
* ``add``: y = a + b for two float32 arrays of one shape (a residual Add that could not be fused).
* ``softmax``: along the rows of a matrix (a classifier's last op).
* ``quantize_dequantize``: y = clip(rint((x [+ b]) / s), lo, hi) * s, a QDQ model's activation rounding
  (tinyrt's QuantizeDequantize, see tinyrt/passes/quantization.py), a residual Add folded in, in one sweep.
"""
import numpy as np

from ._jit import kernel, start, finished
from . import _round as _rounding


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
    """y = exp(x - max) / sum(exp(x - max)) along each row of x (R, L), as the numpy op computes it (a
    NaN in a row makes the whole row NaN); one block per row."""
    R, L = x.shape
    me, t = start(ctr, R)
    while t < R:
        m = x[t, 0]
        for i in range(1, L):
            v = x[t, i]
            if v > m or v != v:  # a NaN wins: once m is NaN, both tests are false
                m = v
        s = np.float32(0)
        for i in range(L):
            e = np.exp(x[t, i] - m)
            y[t, i] = e
            s += e
        for i in range(L):
            y[t, i] /= s
        t = finished(ctr, me, R)
    return R


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
