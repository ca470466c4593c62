"""2-D pooling kernels (float32, NCHW): MaxPool and AveragePool.

Geometry comes from the caller (tinyrt's ``_window.geometry``): pads_begin (pt, pl), the model's end pads
(pb, pr, for count_include_pad) and the output size through ``y``. Taps that fall outside the input are
skipped (MaxPool: pads never win; a window with no tap inside gives -inf, as the numpy op does).
AveragePool divides by the taps inside the input (count_include_pad=0) or inside input + model pads
(count_include_pad=1); taps added by ceil_mode beyond the pads never count.
"""
import numpy as np
from numba import njit, prange

from ._jit import kernel


@kernel
def max_pool(x, y, kh, kw, sh, sw, dh, dw, pt, pl):
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    for t in prange(N * C):
        n = t // C
        c = t % C
        for oy in range(OH):
            for ox in range(OW):
                best = -np.inf
                for i in range(kh):
                    iy = oy * sh - pt + i * dh
                    if iy < 0 or iy >= H:
                        continue
                    for j in range(kw):
                        ix = ox * sw - pl + j * dw
                        if ix >= 0 and ix < W:
                            v = x[n, c, iy, ix]
                            if v > best or v != v:  # NaN wins, as np.maximum lets it
                                best = v
                y[n, c, oy, ox] = best


@njit(cache=True)
def _count(o, s, pad, k, d, lo, hi):
    """Taps of the window at output o whose coordinate lies in [lo, hi)."""
    cnt = 0
    for i in range(k):
        p = o * s - pad + i * d
        if p >= lo and p < hi:
            cnt += 1
    return cnt


@kernel
def avg_pool(x, y, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, include_pad):
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    ylo, yhi = (-pt, H + pb) if include_pad else (0, H)
    xlo, xhi = (-pl, W + pr) if include_pad else (0, W)
    for t in prange(N * C):
        n = t // C
        c = t % C
        for oy in range(OH):
            cy = _count(oy, sh, pt, kh, dh, ylo, yhi)
            for ox in range(OW):
                s = np.float32(0)
                for i in range(kh):
                    iy = oy * sh - pt + i * dh
                    if iy < 0 or iy >= H:
                        continue
                    for j in range(kw):
                        ix = ox * sw - pl + j * dw
                        if ix >= 0 and ix < W:
                            s += x[n, c, iy, ix]
                cnt = max(cy * _count(ox, sw, pl, kw, dw, xlo, xhi), 1)
                y[n, c, oy, ox] = s / np.float32(cnt)
