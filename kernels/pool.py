"""2-D pooling kernels on channels-last memory (float32, NHWC): MaxPool, AveragePool, GlobalAveragePool.

x (N, H, W, C), y (N, OH, OW, C): each output pixel combines its window's taps with one loop over the
channels (vectorised), the layout the conv kernels read and write (see conv.py).

Geometry comes from the caller (tinyrt's ``_window.geometry``): pads_begin (pt, pl), the model's end pads
(pb, pr, for count_include_pad) and the output size through ``y``. Taps that fall outside the input are
skipped, except that MaxPool counts them as -inf taps, which only matters after a NaN: the running max
``m = m if x < m else x`` of the numpy op (tinyrt/ops/pool.py) is followed tap by tap, NaN rules included.
AveragePool divides by the taps inside the input (count_include_pad=0) or inside input + model pads
(count_include_pad=1); taps added by ceil_mode beyond the pads never count.
"""
import numpy as np
from . import _simd as simd
from ._jit import helper, kernel, start, finished
from ._simd import LANES

U = np.uint64  # unsigned indices: no negative-index wraparound, loops vectorise


@kernel
def max_pool(x, y, kh, kw, sh, sw, dh, dw, pt, pl, ctr):
    """The running max of each window, on vectors of LANES channels kept in a register across the taps
    (a tap outside the input is a -inf tap: see the module docstring)."""
    N, H, W, C = x.shape
    OH, OW = y.shape[1], y.shape[2]
    xp, yp = U(x.ctypes.data), U(y.ctypes.data)
    outside = simd.splat(np.float32(-np.inf))
    total = N * OH  # one block per output row
    me, t = start(ctr, total)
    while t < total:
        n = t // OH
        oy = t % OH
        for ox in range(OW):
            yo = yp + U(((n * OH + oy) * OW + ox) * C) * U(4)
            for c0 in range(0, C, LANES):
                nc = min(LANES, C - c0)
                best = outside
                for i in range(kh):
                    iy = oy * sh - pt + i * dh
                    for j in range(kw):
                        ix = ox * sw - pl + j * dw
                        if iy < 0 or iy >= H or ix < 0 or ix >= W:
                            v = outside
                        else:
                            xo = xp + U(((n * H + iy) * W + ix) * C + c0) * U(4)
                            v = simd.load(xo) if nc == LANES else simd.load_first(xo, nc)
                        best = simd.at_least(v, best)  # best if v < best else v: the numpy op's running max
                if nc == LANES:
                    simd.store(yo + U(c0 * 4), best)
                else:
                    simd.store_first(yo + U(c0 * 4), best, nc)
        t = finished(ctr, me, total)
    return total


@helper
def _count(o, s, pad, k, d, lo, hi):
    """Taps of the window at output o whose coordinate lies in [lo, hi)."""
    cnt = 0
    for i in range(k):
        p = o * s - pad + i * d
        if p >= lo and p < hi:
            cnt += 1
    return cnt


@kernel
def avg_pool(x, y, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, include_pad, ctr):
    N, H, W, C = x.shape
    OH, OW = y.shape[1], y.shape[2]
    ylo, yhi = (-pt, H + pb) if include_pad else (0, H)
    xlo, xhi = (-pl, W + pr) if include_pad else (0, W)
    x1 = x.reshape(-1)
    y1 = y.reshape(-1)
    Cu = U(C)
    total = N * OH  # one block per output row
    me, t = start(ctr, total)
    while t < total:
        n = t // OH
        oy = t % OH
        cy = _count(oy, sh, pt, kh, dh, ylo, yhi)
        for ox in range(OW):
            yo = U(((n * OH + oy) * OW + ox) * C)
            for c in range(Cu):
                y1[yo + c] = 0
            for i in range(kh):
                iy = oy * sh - pt + i * dh
                if iy < 0 or iy >= H:
                    continue
                for j in range(kw):
                    ix = ox * sw - pl + j * dw
                    if ix < 0 or ix >= W:
                        continue
                    xo = U(((n * H + iy) * W + ix) * C)
                    for c in range(Cu):
                        y1[yo + c] += x1[xo + c]
            cnt = np.float32(max(cy * _count(ox, sw, pl, kw, dw, xlo, xhi), 1))
            for c in range(Cu):
                y1[yo + c] /= cnt
        t = finished(ctr, me, total)
    return total


@kernel
def global_avg_pool(x, y, ctr):
    """GlobalAveragePool: x (N, P, C) channels-last, y (N, C) = the mean over the P pixels, summed in
    order in float32 (one vectorised loop over channels per pixel)."""
    N, P, C = x.shape
    x1 = x.reshape(-1)
    y1 = y.reshape(-1)
    Cu = U(C)
    scale = np.float32(P)
    me, t = start(ctr, N)
    while t < N:
        o = U(t * C)
        for c in range(Cu):
            y1[o + c] = 0
        for p in range(P):
            xo = U((t * P + p) * C)
            for c in range(Cu):
                y1[o + c] += x1[xo + c]
        for c in range(Cu):
            y1[o + c] /= scale
        t = finished(ctr, me, N)
    return N
