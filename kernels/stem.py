"""The first conv of a CNN (the "stem": 3 input channels read from the model's NCHW input, a 3x3 kernel
at stride 2), computed directly from the input as it lies, with no im2col buffer:

    y = act(conv(x, w) + bias + z), then the QDQ rounding, as kernels/conv.py's kernels

x (N, C, H, W), y (N, OH, OW, M) channels-last. Any kernel, stride and dilation with group 1 serves; the
wrapper (tinyrt/kernel_wrappers/conv.py) chooses it for few taps (C * kh * kw <= STEM_TAPS), where
im2col_nchw's gather costs as much as its GEMM (K = 27: each gathered value is used by few multiply-adds).

A tile is 8 output pixels of one row by one panel of the packed weights (gemm.pack's, rows (c, i, j)
channel-major as im2col_nchw's): 16 running sums of LANES floats (two vectors of output channels a pixel,
one where the panel has at most LANES columns), kept in registers over the taps inside (a table of
(input offset, weight offset) made once a row, so the loop is one flat loop over it):

    for c, i, j:   w0, w1 = W[(c, i, j), 0:L], W[(c, i, j), L:2L]
                   for p in 0..7:  a = x[c, iy0 + i * dh, ix0 + p * sw + j * dw];  s[p] += a * w0, a * w1

each sum starting as the bias, then the taps in im2col_nchw's order (c, i, j) as fused multiply-adds, then
gemm.store's tail (residual, activation, rounding) at its single store: the same numbers as im2col_nchw
and its GEMM, whose taps in the padding add 0 * w (here skipped: at most the sign of a zero differs).
Rows of windows crossing the top or bottom border sum their rows inside (i0 .. i1); the few pixels whose
windows cross the left or right border go one at a time with their columns inside. A run's last tile of
3-7 pixels reads its last pixel again for the missing ones (never stored); 1 or 2 left go one at a time.

Blocks of ``rows`` output rows, taken with start / finished, so the pool's threads share a layer.

With rs != 0 the input is rounded first, as a QDQ model's QuantizeDequantize rounds it (eltwise.py's
quantize_dequantize: clip(rint(x / rs), rlo, rhi) * rs, _round.py): each block rounds the input rows its
windows read into a band of its own (a few KB, in cache) and reads the band, instead of a sweep writing a
rounded copy of the whole input before the conv (FusedConv's input_rounding). The same numbers.
"""
import numpy as np

from ._jit import helper, kernel, start, finished
from . import _round as _rounding, _simd as v, gemm
from .conv import _finish, _inside, _round

LANES = v.LANES
PANEL = gemm.PANEL
U = np.uint64  # unsigned indices and addresses (an address below a window's start wraps: only taps inside are read)
_VB = U(4 * LANES)  # bytes in a vector
_WK = U(4 * PANEL)  # bytes between two taps' weights in a panel
_0 = np.float32(0)


@helper
def _tile2(xp, xstep, n, taps, nt, wp, bp, zp, has_z, yp, ys, mc, mode, vp, vq, vlo,
           vhi):
    """n consecutive pixels of a row whose windows' columns are all inside (xp: the first window's tap
    (0, 0, 0), windows xstep bytes apart) by one panel of LANES < mc <= PANEL columns, 8 pixels a tile;
    the nt taps of ``taps``: (bytes from a window's tap (0, 0, 0), bytes from the panel's first weights)."""
    for r in range(0, n, 8):
        n8 = min(8, n - r)
        x0, x1, x2, x3, x4, x5, x6, x7 = gemm._rows(U(xp) + U(r) * xstep, xstep, n8)
        b0, b1 = v.load(bp), v.load(bp + _VB)
        c00, c01, c10, c11, c20, c21, c30, c31 = b0, b1, b0, b1, b0, b1, b0, b1
        c40, c41, c50, c51, c60, c61, c70, c71 = b0, b1, b0, b1, b0, b1, b0, b1
        for t in range(nt):
            o = U(taps[2 * t])
            w = U(wp) + U(taps[2 * t + 1])
            w0, w1 = v.load(w), v.load(w + _VB)
            a = v.splat_load(x0 + o)
            c00, c01 = v.fma(a, w0, c00), v.fma(a, w1, c01)
            a = v.splat_load(x1 + o)
            c10, c11 = v.fma(a, w0, c10), v.fma(a, w1, c11)
            a = v.splat_load(x2 + o)
            c20, c21 = v.fma(a, w0, c20), v.fma(a, w1, c21)
            a = v.splat_load(x3 + o)
            c30, c31 = v.fma(a, w0, c30), v.fma(a, w1, c31)
            a = v.splat_load(x4 + o)
            c40, c41 = v.fma(a, w0, c40), v.fma(a, w1, c41)
            a = v.splat_load(x5 + o)
            c50, c51 = v.fma(a, w0, c50), v.fma(a, w1, c51)
            a = v.splat_load(x6 + o)
            c60, c61 = v.fma(a, w0, c60), v.fma(a, w1, c61)
            a = v.splat_load(x7 + o)
            c70, c71 = v.fma(a, w0, c70), v.fma(a, w1, c71)
        y8, z8 = U(yp) + U(r) * ys, U(zp) + U(r) * ys
        gemm._put8(y8, z8, ys, n8, has_z, LANES, c00, c10, c20, c30, c40, c50, c60, c70, mode, vp, vq, vlo, vhi)
        gemm._put8(y8 + _VB, z8 + _VB, ys, n8, has_z, mc - LANES, c01, c11, c21, c31, c41, c51, c61, c71,
                   mode, vp, vq, vlo, vhi)


@helper
def _tile1(xp, xstep, n, taps, nt, wp, bp, zp, has_z, yp, ys, mc, mode, vp, vq, vlo,
           vhi):
    """``_tile2`` for a panel of mc <= LANES columns: one vector a pixel."""
    for r in range(0, n, 8):
        n8 = min(8, n - r)
        x0, x1, x2, x3, x4, x5, x6, x7 = gemm._rows(U(xp) + U(r) * xstep, xstep, n8)
        b0 = v.load(bp)
        c0, c1, c2, c3, c4, c5, c6, c7 = b0, b0, b0, b0, b0, b0, b0, b0
        for t in range(nt):
            o = U(taps[2 * t])
            w0 = v.load(U(wp) + U(taps[2 * t + 1]))
            c0 = v.fma(v.splat_load(x0 + o), w0, c0)
            c1 = v.fma(v.splat_load(x1 + o), w0, c1)
            c2 = v.fma(v.splat_load(x2 + o), w0, c2)
            c3 = v.fma(v.splat_load(x3 + o), w0, c3)
            c4 = v.fma(v.splat_load(x4 + o), w0, c4)
            c5 = v.fma(v.splat_load(x5 + o), w0, c5)
            c6 = v.fma(v.splat_load(x6 + o), w0, c6)
            c7 = v.fma(v.splat_load(x7 + o), w0, c7)
        gemm._put8(U(yp) + U(r) * ys, U(zp) + U(r) * ys, ys, n8, has_z, mc, c0, c1, c2, c3, c4, c5, c6, c7,
                   mode, vp, vq, vlo, vhi)


@helper
def _pixel(xp, C, cs, i0, i1, rstep, kh, kw, j0, j1, jstep, wp, bp, zp, has_z, yp, mc, mode, vp, vq, vlo, vhi):
    """One pixel (its window's tap (0, 0, 0) at xp, maybe outside) by one panel: the taps (c, i, j) with
    i in [i0, i1) and j in [j0, j1), in that order. For the pixels of a border and the last one or two
    of a run."""
    c0, c1 = v.load(bp), v.load(bp + _VB)
    for c in range(C):
        for i in range(i0, i1):
            o = U(xp) + U(c) * cs + U(i) * rstep + U(j0) * jstep
            w = U(wp) + U((c * kh + i) * kw + j0) * _WK
            for j in range(j0, j1):
                a = v.splat_load(o)
                c0, c1 = v.fma(a, v.load(w), c0), v.fma(a, v.load(w + _VB), c1)
                o += jstep
                w += _WK
    gemm.store(yp, zp, has_z, min(mc, LANES), c0, mode, vp, vq, vlo, vhi)
    if mc > LANES:
        gemm.store(yp + _VB, zp + _VB, has_z, mc - LANES, c1, mode, vp, vq, vlo, vhi)


@kernel
def stem(x, wt, bias, z, has_z, y, kh, kw, sh, sw, dh, dw, pt, pl, act, a, b, qs, rows, rs, rlo, rhi, ctr):
    """x (N, C, H, W) contiguous; wt (1, panels, C * kh * kw, PANEL): gemm.pack's panels of the (c, i, j)
    channel-major (K, M) weights (im2col_nchw's, group 1); bias (1, panels * PANEL); y (N, OH, OW, M), z
    like y (the residual, when has_z); the tail (act, a, b, qs) as kernels/conv.py's. Blocks of ``rows``
    output rows of one image. rs != 0: x rounded first (scale rs, bounds rlo, rhi: see the module
    docstring)."""
    N, C, H, W = x.shape
    OH, OW, M = y.shape[1], y.shape[2], y.shape[3]
    K = wt.shape[2]
    nblk = (OH + rows - 1) // rows
    xp, wp, bp, yp, zp = x.ctypes.data, wt.ctypes.data, bias.ctypes.data, y.ctypes.data, z.ctypes.data
    mode, p, q, lo, hi, rest = gemm.rounding_tail(act, a, b, qs)
    vp, vq, vlo, vhi = v.splat(p), v.splat(q), v.splat(lo), v.splat(hi)
    y1 = y.reshape(-1)
    rstep, jstep = U(dh * W * 4), U(dw * 4)                     # bytes between window rows, columns
    xstep, ys = U(sw * 4), U(M * 4)                              # between windows, output pixels
    qlo, qhi = _inside(-pl, sw, W - (kw - 1) * dw, OW)  # the pixels whose window's columns are all inside
    if qhi <= qlo:
        qlo, qhi = OW, OW                                # none: every pixel is a border one
    cnt = qhi - qlo
    left = cnt % 8
    tiled = cnt - left if left <= 2 else cnt             # 1 or 2 left: one at a time (see the docstring)
    panels = (M + PANEL - 1) // PANEL
    taps = np.empty(2 * K, np.int64)  # a row's taps inside: (input offset, weight offset) in bytes
    BH = (rows - 1) * sh + (kh - 1) * dh + 1 if rs != _0 else 0  # the rows of a block's rounded band
    band = np.empty(max(1, C * BH * W), np.float32)
    bandp = band.ctypes.data
    blo, bhi = rlo * rs, rhi * rs  # (as eltwise.quantize_dequantize)
    total = N * nblk
    me, t = start(ctr, total)
    while t < total:
        n = t // nblk
        oy0 = (t % nblk) * rows
        oy1 = min(OH, oy0 + rows)
        if rs != _0:  # the rows this block's windows read, rounded into the band; row iy at xbase + iy * W * 4
            r0, r1 = max(0, oy0 * sh - pt), min(H, (oy1 - 1) * sh - pt + (kh - 1) * dh + 1)
            for c in range(C):
                if r1 > r0:
                    src = U(xp) + U(((n * C + c) * H + r0) * W * 4)
                    _rounding.run(src, src, False, U(bandp) + U(c * BH * W * 4), (r1 - r0) * W, rs, blo, bhi)
            xbase, chan = U(bandp) - U(r0 * W * 4), BH * W * 4
        else:
            xbase, chan = U(xp) + U(n * C * H * W * 4), H * W * 4
        cs = U(chan)                                     # bytes between channels
        for oy in range(oy0, oy1):
            iy0 = oy * sh - pt
            i0, i1 = _inside(iy0, dh, H, kh)             # the window rows inside the input
            xrow = xbase + U(iy0 * W * 4)                # the windows' first row, column 0 (may be outside)
            row = U((n * OH + oy) * OW) * ys
            nt = 0
            for c in range(C):
                for i in range(i0, i1):
                    for j in range(kw):
                        taps[2 * nt] = c * chan + i * dh * W * 4 + j * dw * 4
                        taps[2 * nt + 1] = ((c * kh + i) * kw + j) * PANEL * 4
                        nt += 1
            yrow, zrow = U(yp) + row, U(zp) + row
            for jp in range(panels):
                mc = min(PANEL, M - jp * PANEL)
                wj, bj, col = U(wp) + U(jp * K) * _WK, U(bp) + U(jp) * _WK, U(jp) * _WK
                if tiled > 0:
                    x0 = xrow + U(qlo * sw - pl) * U(4)
                    yq, zq = yrow + U(qlo) * ys + col, zrow + U(qlo) * ys + col
                    if mc > LANES:
                        _tile2(x0, xstep, tiled, taps, nt, wj, bj, zq, has_z, yq, ys, mc,
                               mode, vp, vq, vlo, vhi)
                    else:
                        _tile1(x0, xstep, tiled, taps, nt, wj, bj, zq, has_z, yq, ys, mc,
                               mode, vp, vq, vlo, vhi)
                for ox in range(qlo + tiled, qhi):       # the last one or two of the run
                    _pixel(xrow + U(ox * sw - pl) * U(4), C, cs, i0, i1, rstep, kh, kw, 0, kw, jstep, wj, bj,
                           zrow + U(ox) * ys + col, has_z, yrow + U(ox) * ys + col, mc, mode, vp, vq, vlo, vhi)
                for ox in range(qlo):                    # the border pixels: left and right of the run
                    ix0 = ox * sw - pl
                    j0, j1 = _inside(ix0, dw, W, kw)
                    _pixel(xrow + U(ix0) * U(4), C, cs, i0, i1, rstep, kh, kw, j0, j1, jstep, wj, bj,
                           zrow + U(ox) * ys + col, has_z, yrow + U(ox) * ys + col, mc, mode, vp, vq, vlo, vhi)
                for ox in range(qhi, OW):
                    ix0 = ox * sw - pl
                    j0, j1 = _inside(ix0, dw, W, kw)
                    _pixel(xrow + U(ix0) * U(4), C, cs, i0, i1, rstep, kh, kw, j0, j1, jstep, wj, bj,
                           zrow + U(ox) * ys + col, has_z, yrow + U(ox) * ys + col, mc, mode, vp, vq, vlo, vhi)
        first = (n * OH + oy0) * OW * M
        if rest != 0:  # an activation the tiles do not apply (LeakyRelu, Sigmoid), while the block is in cache
            _finish(y1, first, (oy1 - oy0) * OW * M, rest, a)
        if qs != _0 and mode < 3:  # likewise the QDQ rounding where the tiles do not round (gemm.rounding_tail)
            _round(y1, first, (oy1 - oy0) * OW * M, qs)
        t = finished(ctr, me, total)
    return total
