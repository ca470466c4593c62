"""2-D convolution kernels that write channels-last memory (float32, NHWC), each with the FusedConv tail
built in:

    y = act(conv(x, w) + bias + z)      act codes: see ACT; z optional, same shape as y
    y = rint(y / qs) * qs               when qs != 0: a QDQ model's rounding (FusedConv's activation
                                        QuantizeDequantize, tinyrt/passes/quantization.py); its clip to
                                        [qmin - zp, qmax - zp] * qs is the Clip act, applied first; both
                                        in the tiles' store (gemm.rounding_tail, _round.py)

Why channels-last: a 1x1 conv is then one plain GEMM over pixels, Y[P, M] = X[P, K] @ Wt[K, M]; a
depthwise conv reads, for each output pixel and kernel tap, one contiguous run of C channels, so its
inner loop is a long vectorised multiply-add over channels instead of many short rows of pixels; and
each conv's output is already in the layout the next conv wants. tinyrt keeps ONNX's shapes: the arrays
it passes around are (N, C, H, W) views of (N, H, W, C) memory (see tinyrt/kernels_select.py).

* ``pointwise``: 1x1, stride 1, no padding: the GEMM of gemm.py over blocks of pixels, bias, residual
  and activation applied in registers before each output is stored. The input may be NHWC (X[P, K]) or
  NCHW (X[K, P] per image: the GEMM reads X through strides), so the first conv needs no copy.
* ``depthwise``: one output channel per input channel (group == C == M), NHWC in, on SIMD vectors of
  channels (_simd.py): per output row, the pixels whose windows' columns are inside go in runs (many
  pixels when there are few channels, 8 when there are many), by every vector of channels in turn, each
  tap one vector multiply-add, 4 neighbouring pixels at a time: a 3x3 kernel in a row whose windows are
  inside with its 9 weights in registers (at stride 1 the windows share columns: 6 loads a kernel row for
  12 multiply-adds; 9 at stride 2), 5-tap rows sharing their loads alike, other kernels and strides
  (7x7, dilated, stride 3) each weight loaded once for the four. That loop has plain loads and
  clip-and-store only: a residual or another tail is applied by a pass over each finished row. The few
  pixels near the left and right borders sum only their taps inside the input, so no padded copy is made.
* ``im2col`` (NHWC in) and ``im2col_nchw`` (NCHW in): every other conv (the stem, grouped, dilated and
  strided 1x1 convs, channel multipliers): per block of output rows, gather the windows into a matrix
  (zeros for padding), then gemm.py's GEMM per group. From NHWC the gather copies runs of C/group
  channels into (pixels, taps * C/group); from NCHW it copies runs of pixels into (C * taps, pixels),
  which the GEMM reads through strides: for the stem's 3 input channels that is 3x faster than gathering
  channels.

Weights come pre-packed by the caller (tinyrt/kernels_select.py): gemm.pack's panels of each group's
(rows, M/group) matrix for the GEMMs (rows (i, j, c) tap-major for im2col, (c, i, j) channel-major for
im2col_nchw and pointwise), (taps, C) zero-padded to whole vectors for depthwise; the bias padded alike.
Geometry (pads, output size) is resolved by the caller; kernels take the begin pads (pt, pl) and read
the output size from y.
"""
import numpy as np
from numba import njit

from ._jit import helper, kernel, start, finished
from . import _round as _rounding, _simd as simd, gemm

# activation codes (FusedConv's activation names -> int); the caller passes ReLU as Clip(0, inf)
ACT = {"": 0, "Relu": 1, "Clip": 2, "LeakyRelu": 3, "HardSigmoid": 4, "HardSwish": 5, "Sigmoid": 6}
LANES = simd.LANES
U = np.uint64  # unsigned indices: numba adds no negative-index wraparound, loops vectorise
_0, _1 = np.float32(0), np.float32(1)  # float32 constants: comparing a float32 with 0 would go via float64


@njit(cache=True, inline="always")
def _act(v, act, a):
    """One value through an activation the tiles leave for a pass of their own (gemm.tail's ``rest``):
    LeakyRelu (3) or Sigmoid (6); comparisons written so that NaN passes."""
    if act == 3:
        return v if v >= _0 else v * a
    return _1 / (_1 + np.exp(-v))


@njit(cache=True)
def _finish(y1, start, n, act, a):
    """y[start:start + n] = act(y) over a flat range, while it is still in cache."""
    s = U(start)
    for i in range(U(n)):
        y1[s + i] = _act(y1[s + i], act, a)


@njit(cache=True)
def _round(y1, start, n, qs):
    """y[start:start + n] = rint(y / qs) * qs over a flat range, while it is still in cache: the rounding
    of a QDQ model's QuantizeDequantize (x / qs the float32 quotient, rint half to even, as QuantizeLinear)."""
    inf = np.float32(np.inf)
    p = y1.ctypes.data + start * 4
    _rounding.run(p, p, False, p, n, qs, -inf, inf)  # exact x / qs without dividing: see _round.py


@kernel
def pointwise(x, wp, bp, z, has_z, y, act, a, b, qs, rows, cols, nchw, ctr):
    """1x1 conv. x (N, P, K) pixels by channels, or with ``nchw`` (N, K, P); wp, bp the weights and
    bias packed by gemm.pack / gemm.pack_bias; y (N, P, M) (or (N, H, W, M)), z like y: the residual
    when has_z.

    Blocks of ``rows`` pixels (never crossing an image) by ``cols`` output channels (a multiple of
    gemm.PANEL): a layer with few pixels is split by channels instead, so that every thread has work."""
    N = x.shape[0]
    P = x.shape[2] if nchw else x.shape[1]
    K = x.shape[1] if nchw else x.shape[2]
    M = y.shape[-1]
    rs, ks = (4, P * 4) if nchw else (K * 4, 4)  # bytes between pixels, between channels
    nblk = (P + rows - 1) // rows
    mblk = (M + cols - 1) // cols
    xp, wpp, bpp, yp, zp = x.ctypes.data, wp.ctypes.data, bp.ctypes.data, y.ctypes.data, z.ctypes.data
    mode, p, q, lo, hi, rest = gemm.rounding_tail(act, a, b, qs)
    y1 = y.reshape(-1)
    total = N * nblk * mblk
    me, t = start(ctr, total)
    while t < total:
        n = t // (nblk * mblk)
        p0 = (t // mblk % nblk) * rows
        m0 = (t % mblk) * cols
        cnt = min(P, p0 + rows) - p0
        mc = min(M, m0 + cols) - m0
        first = (n * P + p0) * M  # the block's first pixel in y (and z)
        gemm.block(xp + n * P * K * 4 + p0 * rs, rs, ks, cnt, wpp, K, bpp, zp + first * 4, has_z, yp + first * 4,
                   M * 4, m0, m0 + mc, mode, p, q, lo, hi)
        if rest != 0:  # an activation the tiles do not apply, while the block is in cache
            for r in range(cnt):
                _finish(y1, first + r * M + m0, mc, rest, a)
        if qs != _0 and mode < 3:  # likewise the QDQ rounding, where the tiles do not round (rounding_tail)
            for r in range(cnt):
                _round(y1, first + r * M + m0, mc, qs)
        t = finished(ctr, me, total)
    return total


@helper
def _window(acc, x0, rstep, cstep, w0, wrow, wcol, i0, i1, j0, j1, nc):
    """acc + the taps (i, j) in [i0, i1) x [j0, j1) of one pixel's window, for one vector of channels of
    which nc are loaded (masked loads): input at x0 + i * rstep + j * cstep, weights at w0 + i * wrow +
    j * wcol (addresses in bytes)."""
    for i in range(i0, i1):
        xr = x0 + U(i) * rstep
        wr = w0 + U(i) * wrow
        for j in range(j0, j1):
            acc = simd.fma(simd.load_first(xr + U(j) * cstep, nc), simd.load(wr + U(j) * wcol), acc)
    return acc


# The lean path of depthwise: runs of pixels whose windows' columns are inside, one vector of channels at a
# time (most of the work). Its loads are plain (no mask, and no choice between a masked and a plain load
# per load: a partial last vector is loaded whole, see depthwise), its stores a clip and a plain store with
# no residual or other tail to test per store (a layer with those gets them in a pass over each finished
# row, ``_tail_row``): the same numbers as gemm.store, without its branches in the loop. Addresses are in
# bytes: x the first pixel's window (its first row and column), y its output, w0 and bp the vector's
# weights (tap (i, j) at w0 + i * wrow + j * wcol) and bias; xstep between neighbouring windows, rstep and
# cstep between a window's rows and columns, ystep between outputs.
_VB = U(4 * LANES)  # bytes in a vector


@helper
def _put(y, c, vlo, vhi, nc, rnd):
    """gemm.store of a vector's first nc floats with no residual and a clip tail (mode 0), rounded to
    whole numbers after it when ``rnd`` (mode 4): a plain store for a whole vector."""
    g = simd.at_most(simd.at_least(c, vlo), vhi)
    if rnd:
        g = simd.rint(g)
    if nc == LANES:
        simd.store(y, g)
    else:
        simd.store_first(y, g, nc)


@helper
def _r3(acc, x, cstep, k0, k1, k2):
    """acc + one kernel row (3 taps, weights k0..k2) of one pixel's window, which starts at x."""
    acc = simd.fma(simd.load(x), k0, acc)
    acc = simd.fma(simd.load(x + cstep), k1, acc)
    return simd.fma(simd.load(x + U(2) * cstep), k2, acc)


@helper
def _r3x4(a, b, c, d, x, cstep, k0, k1, k2):
    """``_r3`` for 4 neighbouring pixels at stride 1: their windows share columns, so 6 loads serve
    12 multiply-adds, in 4 independent chains."""
    x0, x1, x2 = simd.load(x), simd.load(x + cstep), simd.load(x + U(2) * cstep)
    x3, x4, x5 = simd.load(x + U(3) * cstep), simd.load(x + U(4) * cstep), simd.load(x + U(5) * cstep)
    a = simd.fma(x2, k2, simd.fma(x1, k1, simd.fma(x0, k0, a)))
    b = simd.fma(x3, k2, simd.fma(x2, k1, simd.fma(x1, k0, b)))
    c = simd.fma(x4, k2, simd.fma(x3, k1, simd.fma(x2, k0, c)))
    d = simd.fma(x5, k2, simd.fma(x4, k1, simd.fma(x3, k0, d)))
    return a, b, c, d


@helper
def _r3x4s2(a, b, c, d, x, cstep, k0, k1, k2):
    """``_r3x4`` at stride 2 (windows 2 columns apart: 9 loads, 12 multiply-adds)."""
    x0, x1, x2 = simd.load(x), simd.load(x + cstep), simd.load(x + U(2) * cstep)
    x3, x4, x5 = simd.load(x + U(3) * cstep), simd.load(x + U(4) * cstep), simd.load(x + U(5) * cstep)
    x6, x7, x8 = simd.load(x + U(6) * cstep), simd.load(x + U(7) * cstep), simd.load(x + U(8) * cstep)
    a = simd.fma(x2, k2, simd.fma(x1, k1, simd.fma(x0, k0, a)))
    b = simd.fma(x4, k2, simd.fma(x3, k1, simd.fma(x2, k0, b)))
    c = simd.fma(x6, k2, simd.fma(x5, k1, simd.fma(x4, k0, c)))
    d = simd.fma(x8, k2, simd.fma(x7, k1, simd.fma(x6, k0, d)))
    return a, b, c, d


@helper
def _dw3(x, xstep, rstep, cstep, y, ystep, n, w0, wrow, wcol, bp, vlo, vhi, nc, rnd):
    """n consecutive pixels of a 3x3 depthwise row whose windows are wholly inside the input, one vector
    of channels (nc stored; xstep == cstep, or 2 * cstep at stride 2): 4 pixels at a time with the 9
    weight vectors in registers; each sum the bias, then the taps in row-major order, then ``_put``."""
    k0, k1, k2 = simd.load(w0), simd.load(w0 + wcol), simd.load(w0 + U(2) * wcol)
    w1 = w0 + wrow
    k3, k4, k5 = simd.load(w1), simd.load(w1 + wcol), simd.load(w1 + U(2) * wcol)
    w2 = w1 + wrow
    k6, k7, k8 = simd.load(w2), simd.load(w2 + wcol), simd.load(w2 + U(2) * wcol)
    b0 = simd.load(bp)
    x1, x2 = x + rstep, x + U(2) * rstep
    blocks = n // 4
    if xstep == cstep:
        for _ in range(blocks):
            a, b, c, d = _r3x4(b0, b0, b0, b0, x, cstep, k0, k1, k2)
            a, b, c, d = _r3x4(a, b, c, d, x1, cstep, k3, k4, k5)
            a, b, c, d = _r3x4(a, b, c, d, x2, cstep, k6, k7, k8)
            _put(y, a, vlo, vhi, nc, rnd)
            _put(y + ystep, b, vlo, vhi, nc, rnd)
            _put(y + U(2) * ystep, c, vlo, vhi, nc, rnd)
            _put(y + U(3) * ystep, d, vlo, vhi, nc, rnd)
            x, x1, x2 = x + U(4) * xstep, x1 + U(4) * xstep, x2 + U(4) * xstep
            y += U(4) * ystep
    else:
        for _ in range(blocks):
            a, b, c, d = _r3x4s2(b0, b0, b0, b0, x, cstep, k0, k1, k2)
            a, b, c, d = _r3x4s2(a, b, c, d, x1, cstep, k3, k4, k5)
            a, b, c, d = _r3x4s2(a, b, c, d, x2, cstep, k6, k7, k8)
            _put(y, a, vlo, vhi, nc, rnd)
            _put(y + ystep, b, vlo, vhi, nc, rnd)
            _put(y + U(2) * ystep, c, vlo, vhi, nc, rnd)
            _put(y + U(3) * ystep, d, vlo, vhi, nc, rnd)
            x, x1, x2 = x + U(4) * xstep, x1 + U(4) * xstep, x2 + U(4) * xstep
            y += U(4) * ystep
    for _ in range(n - 4 * blocks):
        acc = _r3(b0, x, cstep, k0, k1, k2)
        acc = _r3(acc, x1, cstep, k3, k4, k5)
        acc = _r3(acc, x2, cstep, k6, k7, k8)
        _put(y, acc, vlo, vhi, nc, rnd)
        x, x1, x2 = x + xstep, x1 + xstep, x2 + xstep
        y += ystep


@helper
def _r5x4(a, b, c, d, x, xstep, cstep, wr, wcol):
    """One kernel row of 5 taps (weights at wr, wcol bytes apart) for 4 neighbouring pixels at stride 1
    (8 loads) or 2 (11 loads) serving 20 multiply-adds, in 4 independent chains."""
    k0, k1, k2 = simd.load(wr), simd.load(wr + wcol), simd.load(wr + U(2) * wcol)
    k3, k4 = simd.load(wr + U(3) * wcol), simd.load(wr + U(4) * wcol)
    x0, x1, x2 = simd.load(x), simd.load(x + cstep), simd.load(x + U(2) * cstep)
    x3, x4, x5 = simd.load(x + U(3) * cstep), simd.load(x + U(4) * cstep), simd.load(x + U(5) * cstep)
    x6, x7 = simd.load(x + U(6) * cstep), simd.load(x + U(7) * cstep)
    a = simd.fma(x4, k4, simd.fma(x3, k3, simd.fma(x2, k2, simd.fma(x1, k1, simd.fma(x0, k0, a)))))
    if xstep == cstep:
        b = simd.fma(x5, k4, simd.fma(x4, k3, simd.fma(x3, k2, simd.fma(x2, k1, simd.fma(x1, k0, b)))))
        c = simd.fma(x6, k4, simd.fma(x5, k3, simd.fma(x4, k2, simd.fma(x3, k1, simd.fma(x2, k0, c)))))
        d = simd.fma(x7, k4, simd.fma(x6, k3, simd.fma(x5, k2, simd.fma(x4, k1, simd.fma(x3, k0, d)))))
    else:
        x8, x9, x10 = simd.load(x + U(8) * cstep), simd.load(x + U(9) * cstep), simd.load(x + U(10) * cstep)
        b = simd.fma(x6, k4, simd.fma(x5, k3, simd.fma(x4, k2, simd.fma(x3, k1, simd.fma(x2, k0, b)))))
        c = simd.fma(x8, k4, simd.fma(x7, k3, simd.fma(x6, k2, simd.fma(x5, k1, simd.fma(x4, k0, c)))))
        d = simd.fma(x10, k4, simd.fma(x9, k3, simd.fma(x8, k2, simd.fma(x7, k1, simd.fma(x6, k0, d)))))
    return a, b, c, d


@helper
def _dwk(x, xstep, rstep, cstep, y, ystep, n, w0, wrow, wcol, bp, i0, i1, kw, vlo, vhi, nc, rnd):
    """``_dw3`` for any kernel, stride and dilation, and the window rows i0 .. i1-1 only (all, or a row
    near the top or bottom border): 4 pixels at a time, each weight vector loaded once for the 4
    multiply-adds it takes part in (a 5-tap row at stride 1 or 2 by ``_r5x4``, its loads shared)."""
    b0 = simd.load(bp)
    blocks = n // 4
    five = kw == 5 and (xstep == cstep or xstep == U(2) * cstep)
    for _ in range(blocks):
        a, b, c, d = b0, b0, b0, b0
        for i in range(i0, i1):
            xr = x + U(i) * rstep
            wr = w0 + U(i) * wrow
            if five:
                a, b, c, d = _r5x4(a, b, c, d, xr, xstep, cstep, wr, wcol)
                continue
            for j in range(kw):
                w = simd.load(wr + U(j) * wcol)
                xj = xr + U(j) * cstep
                a = simd.fma(simd.load(xj), w, a)
                b = simd.fma(simd.load(xj + xstep), w, b)
                c = simd.fma(simd.load(xj + U(2) * xstep), w, c)
                d = simd.fma(simd.load(xj + U(3) * xstep), w, d)
        _put(y, a, vlo, vhi, nc, rnd)
        _put(y + ystep, b, vlo, vhi, nc, rnd)
        _put(y + U(2) * ystep, c, vlo, vhi, nc, rnd)
        _put(y + U(3) * ystep, d, vlo, vhi, nc, rnd)
        x += U(4) * xstep
        y += U(4) * ystep
    for _ in range(n - 4 * blocks):
        acc = b0
        for i in range(i0, i1):
            xr = x + U(i) * rstep
            wr = w0 + U(i) * wrow
            for j in range(kw):
                acc = simd.fma(simd.load(xr + U(j) * cstep), simd.load(wr + U(j) * wcol), acc)
        _put(y, acc, vlo, vhi, nc, rnd)
        x += xstep
        y += ystep


@helper
def _tail_row(y, z, has_z, n, mode, vp, vq, vlo, vhi):
    """The n floats at y (a finished output row, written with no tail) through gemm.store: + the residual
    at z, the activation or rounding; elementwise, so the same numbers as storing each sum so."""
    whole = n // LANES
    for i in range(whole):
        o = U(i) * _VB
        gemm.store(y + o, z + o, has_z, LANES, simd.load(y + o), mode, vp, vq, vlo, vhi)
    left = n - whole * LANES
    if left > 0:
        o = U(whole) * _VB
        gemm.store(y + o, z + o, has_z, left, simd.load_first(y + o, left), mode, vp, vq, vlo, vhi)


@helper
def _pixel(x0, rstep, cstep, y, z, j0, j1, wp, wrow, wcol, bp, i0, i1, c0, C, whole, has_z, mode, vp, vq, vlo, vhi):
    """One pixel's taps (i, j) in [i0, i1) x [j0, j1) (its window starting at x0), for the channels from c0
    on: the vectors before ``whole`` by the lean path (plain loads, ``_put``: the caller then gives no
    residual and a clip tail), the others with masked loads and gemm.store. For the pixels whose windows
    cross the left or right border, and what the lean path cannot do (see ``depthwise``)."""
    for v in range(c0 // LANES, whole):
        cb = U(v) * _VB
        acc = simd.load(bp + cb)
        for i in range(i0, i1):
            xr = x0 + cb + U(i) * rstep
            wr = wp + cb + U(i) * wrow
            for j in range(j0, j1):
                acc = simd.fma(simd.load(xr + U(j) * cstep), simd.load(wr + U(j) * wcol), acc)
        _put(y + cb, acc, vlo, vhi, LANES, mode == 4)
    for c in range(max(c0, whole * LANES), C, LANES):
        cb = U(c * 4)
        nc = min(LANES, C - c)
        acc = _window(simd.load(bp + cb), x0 + cb, rstep, cstep, wp + cb, wrow, wcol, i0, i1, j0, j1, nc)
        gemm.store(y + cb, z + cb, has_z, nc, acc, mode, vp, vq, vlo, vhi)


@helper
def _edge(xrow, rstep, cstep, y, z, px, ix0, dw, W, kw, wp, wrow, wcol, bp, i0, i1, C, whole, has_z, mode, vp, vq, vlo,
          vhi):
    """``_pixel`` for a pixel whose window starts at column ix0 of the row at xrow: its columns inside."""
    j0, j1 = _inside(ix0, dw, W, kw)
    x0 = xrow + U(ix0) * px  # wraps below 0 with ix0 < 0; only taps inside are read
    _pixel(x0, rstep, cstep, y, z, j0, j1, wp, wrow, wcol, bp, i0, i1, 0, C, whole, has_z, mode, vp, vq, vlo, vhi)


# Pixels per call of the lean path at most: SPAN bytes of output, so that a call sweeps many pixels with its
# weights in registers when there are few channels, and with many channels memory is still read nearly in
# order (the windows of a run by all its channels, SPAN * 3 rows * stride bytes, stay in a small L1 cache
# from one vector's call to the next; runs of 8 pixels at least, for the weights' loads). Measured on
# AVX-512: 16384 made 32 and 64 channels 15-25% slower than 2048-4096.
SPAN = 2048


@kernel
def depthwise(x, wt, bias, z, has_z, y, kh, kw, sh, sw, dh, dw, pt, pl, act, a, b, qs, ctr):
    """x (N, H, W, C), wt (kh * kw, Cp) and bias (Cp,) zero-padded to Cp = C rounded up to LANES,
    y (N, OH, OW, C); output channel c reads input channel c only.

    Per output row, for each vector of LANES channels, every pixel sums its taps with one vector
    multiply-add each (the channels are contiguous): bias, then the taps inside the input in row-major
    order, then the residual and the tail, as gemm.store applies them. The pixels whose windows' columns
    are all inside go a run at a time (``span`` pixels, fewer the more channels), by every vector of
    channels in turn, on the lean path: ``_dw3`` for a 3x3 kernel at stride 1 or 2 in a row whose window
    rows are all inside, ``_dwk`` for the others. The few pixels whose windows cross the left or right
    border sum only their taps inside (``_pixel``), so no padded copy is made.

    The lean path has no residual and no tail but a clip in its stores: a layer with those has its rows
    written with no tail, then finished by a pass over each row (``_tail_row``) while it is in cache. A
    partial last vector of channels is loaded whole (its lanes past C read the next pixel's channels, and
    are never stored) unless that would read past x: there, and for a residual that overlaps y (that pass
    would read sums where the residual was; tinyrt never passes one), ``_pixel`` does the rest."""
    N, H, W, C = x.shape
    OH, OW = y.shape[1], y.shape[2]
    Cp = wt.shape[1]
    xp, wp, bp, yp, zp = x.ctypes.data, wt.ctypes.data, bias.ctypes.data, y.ctypes.data, z.ctypes.data
    mode, p, q, lo, hi, rest = gemm.rounding_tail(act, a, b, qs)
    vp, vq, vlo, vhi = simd.splat(p), simd.splat(q), simd.splat(lo), simd.splat(hi)
    plain = (mode == 0 or mode == 4) and not has_z  # the stores' own tail: a clip (and rint: mode 4)
    post = not plain and not (has_z and U(zp) < U(yp) + U(y.size * 4) and U(yp) < U(zp) + U(z.size * 4))
    lean = plain or post                            # the lean path applies
    inf = np.float32(np.inf)
    if post:  # the tail the stores apply: none (_tail_row applies the layer's)
        m_, z_, wlo, whi, rnd = 0, False, simd.splat(-inf), simd.splat(inf), False
    else:
        m_, z_, wlo, whi, rnd = mode, has_z, vlo, vhi, mode == 4
    y1 = y.reshape(-1)
    px = U(C * 4)                                   # bytes between pixels
    xstep, rstep, cstep = U(sw) * px, U(dh * W) * px, U(dw) * px  # between windows, a window's rows, columns
    wrow, wcol = U(kw * Cp * 4), U(Cp * 4)
    qlo, qhi = _inside(-pl, sw, W - (kw - 1) * dw, OW)  # the pixels whose window's columns are all inside
    if qhi <= qlo:
        qlo, qhi = OW, OW                           # none: every pixel is a border one
    three = kh == 3 and kw == 3 and (xstep == cstep or xstep == U(2) * cstep)  # _dw3's shapes
    whole = C // LANES if lean else 0               # the whole vectors of channels the lean path does
    xend = U(xp) + U(x.size * 4)
    span = max(8, SPAN // (C * 4) // 4 * 4)
    total = N * OH
    me, t = start(ctr, total)
    while t < total:
        n = t // OH
        oy = t % OH
        iy0 = oy * sh - pt
        i0, i1 = _inside(iy0, dh, H, kh)            # the window rows inside the input
        row = (n * OH + oy) * OW                    # the output row's first pixel
        xrow = U(xp) + U((n * H + iy0) * W) * px    # the window's first row, at column 0 (may be outside)
        yrow, zrow = U(yp) + U(row) * px, U(zp) + U(row) * px
        regs = three and i0 == 0 and i1 == 3        # _dw3 (its weights in registers), else _dwk
        for q0 in range(qlo, qhi, span):
            cnt = min(span, qhi - q0)
            x0 = xrow + U((q0 * sw - pl) * C * 4)
            o = U(q0) * px
            c1 = whole * LANES                      # the channels the lean path does: up to c1
            if lean and c1 < C:  # the partial last vector too, if its loads stay inside x
                if x0 + U(i1 - 1) * rstep + U(cnt - 1) * xstep + U(kw - 1) * cstep + U(Cp * 4) <= xend:
                    c1 = C
            for c in range(0, c1, LANES):
                cb = U(c * 4)
                nc = min(LANES, C - c)
                if regs:
                    _dw3(x0 + cb, xstep, rstep, cstep, yrow + o + cb, px, cnt, U(wp) + cb, wrow, wcol, U(bp) + cb,
                         wlo, whi, nc, rnd)
                else:
                    _dwk(x0 + cb, xstep, rstep, cstep, yrow + o + cb, px, cnt, U(wp) + cb, wrow, wcol, U(bp) + cb,
                         i0, i1, kw, wlo, whi, nc, rnd)
            for k in range(cnt if c1 < C else 0):  # the rest, a pixel at a time
                _pixel(x0 + U(k) * xstep, rstep, cstep, yrow + o + U(k) * px, zrow + o + U(k) * px, 0, kw, U(wp),
                       wrow, wcol, U(bp), i0, i1, c1, C, 0, z_, m_, vp, vq, wlo, whi)
        for ox in range(qlo):                       # the pixels left of the runs' (all when there are none)
            _edge(xrow, rstep, cstep, yrow + U(ox) * px, zrow + U(ox) * px, px, ox * sw - pl, dw, W, kw, U(wp), wrow,
                  wcol, U(bp), i0, i1, C, whole, z_, m_, vp, vq, wlo, whi)
        for ox in range(qhi, OW):                   # right of them
            _edge(xrow, rstep, cstep, yrow + U(ox) * px, zrow + U(ox) * px, px, ox * sw - pl, dw, W, kw, U(wp), wrow,
                  wcol, U(bp), i0, i1, C, whole, z_, m_, vp, vq, wlo, whi)
        if post:
            _tail_row(yrow, zrow, has_z, OW * C, mode, vp, vq, vlo, vhi)
        if rest != 0:
            _finish(y1, row * C, OW * C, rest, a)
        if qs != _0 and mode < 3:
            _round(y1, row * C, OW * C, qs)
        t = finished(ctr, me, total)
    return total


@kernel
def im2col(x, wt, bias, z, has_z, y, kh, kw, sh, sw, dh, dw, pt, pl, act, a, b, qs, rows, ctr):
    """x (N, H, W, C); wt (group, panels, kh * kw * C/group, PANEL): each group's (taps x channels, M/group)
    weights, tap-major, packed by gemm.pack; bias (group, panels * PANEL) likewise; y (N, OH, OW, M)."""
    N, H, W, C = x.shape
    OH, OW, M = y.shape[1], y.shape[2], y.shape[3]
    group, Kc = wt.shape[0], wt.shape[2]
    Cg, Mg = C // group, M // group
    nblk = (OH + rows - 1) // rows
    x1 = x.reshape(-1)
    y1 = y.reshape(-1)
    tail = gemm.rounding_tail(act, a, b, qs)  # (mode, p, q, lo, hi, rest)
    total = N * nblk
    me, t = start(ctr, total)
    while t < total:
        n = t // nblk
        oy0 = (t % nblk) * rows
        npix = (min(OH, oy0 + rows) - oy0) * OW
        first = (n * OH + oy0) * OW  # the block's first output pixel
        col = np.empty((npix, Kc), np.float32)
        col1 = col.reshape(-1)
        for g in range(group):
            for p in range(npix):
                oy = oy0 + p // OW
                ox = p % OW
                for i in range(kh):
                    iy = oy * sh - pt + i * dh
                    for j in range(kw):
                        ix = ox * sw - pl + j * dw
                        co = U(p * Kc + (i * kw + j) * Cg)
                        if iy < 0 or iy >= H or ix < 0 or ix >= W:
                            for c in range(U(Cg)):
                                col1[co + c] = 0
                        else:
                            xo = U(((n * H + iy) * W + ix) * C + g * Cg)
                            for c in range(U(Cg)):
                                col1[co + c] = x1[xo + c]
            _group_gemm(col.ctypes.data, Kc * 4, 4, npix, wt, bias, g, z, has_z, y, first, Mg, tail)
        if tail[5] != 0:
            _finish(y1, first * M, npix * M, tail[5], a)
        if qs != _0 and tail[0] < 3:
            _round(y1, first * M, npix * M, qs)
        t = finished(ctr, me, total)
    return total


@kernel
def im2col_nchw(x, wt, bias, z, has_z, y, kh, kw, sh, sw, dh, dw, pt, pl, act, a, b, qs, rows, ctr):
    """x (N, C, H, W); wt, bias as for ``im2col`` but channel-major (rows (c, i, j)); y (N, OH, OW, M)."""
    N, C, H, W = x.shape
    OH, OW, M = y.shape[1], y.shape[2], y.shape[3]
    group, Kc = wt.shape[0], wt.shape[2]
    Cg, Mg = C // group, M // group
    nblk = (OH + rows - 1) // rows
    x1 = x.reshape(-1)
    y1 = y.reshape(-1)
    tail = gemm.rounding_tail(act, a, b, qs)  # (mode, p, q, lo, hi, rest)
    total = N * nblk
    me, t = start(ctr, total)
    while t < total:
        n = t // nblk
        oy0 = (t % nblk) * rows
        oy1 = min(OH, oy0 + rows)
        npix = (oy1 - oy0) * OW
        first = (n * OH + oy0) * OW
        col = np.empty((Kc, npix), np.float32)
        col1 = col.reshape(-1)
        for g in range(group):
            for c in range(Cg):
                for i in range(kh):
                    for j in range(kw):
                        k = (c * kh + i) * kw + j
                        off = j * dw - pl
                        lo, hi = _inside(off, sw, W, OW)
                        for oy in range(oy0, oy1):
                            d = U(k * npix + (oy - oy0) * OW)
                            iy = oy * sh - pt + i * dh
                            if iy < 0 or iy >= H:
                                lo_, hi_ = OW, OW
                            else:
                                lo_, hi_ = lo, hi
                            for q in range(U(lo_)):
                                col1[d + q] = 0
                            src = U(((n * C + g * Cg + c) * H + iy) * W + lo_ * sw + off)  # >= 0
                            dl = d + U(lo_)
                            for q in range(U(hi_ - lo_)):
                                col1[dl + q] = x1[src + q * U(sw)]
                            for q in range(U(hi_), U(OW)):
                                col1[d + q] = 0
            _group_gemm(col.ctypes.data, 4, npix * 4, npix, wt, bias, g, z, has_z, y, first, Mg, tail)
        if tail[5] != 0:
            _finish(y1, first * M, npix * M, tail[5], a)
        if qs != _0 and tail[0] < 3:
            _round(y1, first * M, npix * M, qs)
        t = finished(ctr, me, total)
    return total


@helper
def _group_gemm(colp, rs, ks, npix, wt, bias, g, z, has_z, y, first, Mg, tail):
    """Group g's GEMM of an im2col block: the columns of group g of y's pixels first .. first + npix."""
    M = y.shape[-1]
    mode, p, q, lo, hi, _ = tail
    o = (first * M + g * Mg) * 4  # bytes to the block's first output of group g
    gemm.block(colp, rs, ks, npix, wt[g].ctypes.data, wt.shape[2], bias[g].ctypes.data, z.ctypes.data + o, has_z,
               y.ctypes.data + o, M * 4, 0, Mg, mode, p, q, lo, hi)


@helper
def _inside(off, s, size, out):
    """[lo, hi): the q < out whose input q * s + off lies inside [0, size) (output columns of im2col,
    kernel taps of depthwise)."""
    if s == 1:  # the common case, without the divisions (per pixel in depthwise)
        lo = max(0, -off)
        hi = min(out, size - off)
    else:
        lo = 0 if off >= 0 else (-off + s - 1) // s
        last = size - 1 - off
        hi = 0 if last < 0 else min(out, last // s + 1)
    return min(lo, out), max(min(lo, out), hi)
