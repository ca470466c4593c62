"""2-D convolution kernels that write channels-last memory (float32, NHWC), each with the FusedConv tail
built in:

    y = act(conv(x, w) + bias + z)      act codes: see ACT; z optional, same shape as y

Why channels-last: a 1x1 conv is then one plain GEMM over pixels, Y[P, M] = X[P, K] @ Wt[K, M]; a
depthwise conv reads, for each output pixel and kernel tap, one contiguous run of C channels, so its
inner loop is a long vectorised multiply-add over channels instead of many short rows of pixels; and
each conv's output is already in the layout the next conv wants. tinyrt keeps ONNX's shapes: the arrays
it passes around are (N, C, H, W) views of (N, H, W, C) memory (see tinyrt/kernels_select.py).

* ``pointwise``: 1x1, stride 1, no padding: GEMMs over blocks of pixels. Each block starts as the bias
  (plus the residual), the GEMM adds its product to it (beta = 1), and the activation runs right after,
  while the block is still in cache. The input may be NHWC (X[P, K]) or NCHW (X[K, P] per image, read
  transposed by the GEMM), so the first conv needs no copy.
* ``depthwise``: one output channel per input channel (group == C == M), NHWC in. Per output pixel one
  loop over channels sums all 9 taps of a 3x3 kernel (5 taps a pass for 5x5 kernels); with few channels
  (a 3x3 at stride 1) a whole row's interior is one loop instead. Pixels whose window crosses the border
  add only their taps inside, so no padded copy is made (the caller pads small planes, which are mostly
  border, into a copy first).
* ``im2col`` (NHWC in) and ``im2col_nchw`` (NCHW in): every other conv (the stem, grouped, dilated and
  strided 1x1 convs, channel multipliers): per block of output rows, gather the windows into a matrix
  (zeros for padding), one GEMM per group. From NHWC the gather copies runs of C/group channels into
  (pixels, taps * C/group); from NCHW it copies runs of pixels into (C * taps, pixels), which the GEMM
  reads transposed: for the stem's 3 input channels that is 3x faster than gathering channels.

Weights come pre-packed by the caller: (K, M) for pointwise, (group, taps * C/group, M/group) for
im2col (tap-major rows; im2col_nchw: channel-major), (taps, C) for depthwise. Geometry (pads, output
size) is resolved by the caller; kernels take the begin pads (pt, pl) and read the output size from y.
"""
import numpy as np
from numba import njit

from ._jit import kernel, start, finished
from . import _blas, gemm

# activation codes (FusedConv's activation names -> int); the caller passes ReLU as Clip(0, inf)
ACT = {"": 0, "Relu": 1, "Clip": 2, "LeakyRelu": 3, "HardSigmoid": 4, "HardSwish": 5, "Sigmoid": 6}
HAVE_BLAS = _blas.AVAILABLE
_sgemm = _blas.sgemm
_ROW, _NT, _T = _blas.ROW_MAJOR, _blas.NO_TRANS, _blas.TRANS
U = np.uint64  # unsigned indices: numba adds no negative-index wraparound, loops vectorise
_0, _1 = np.float32(0), np.float32(1)  # float32 constants: comparing a float32 with 0 would go via float64


@njit(cache=True, inline="always")
def _act(v, act, a, b):
    """One value through activation ``act`` (ACT codes); comparisons written so that NaN passes."""
    if act == 1:
        return _0 if v < _0 else v
    if act == 2:
        v = a if v < a else v
        return b if v > b else v
    if act == 3:
        return v if v >= _0 else v * a
    if act == 4:
        v = v * a + b
        v = _0 if v < _0 else v
        return _1 if v > _1 else v
    if act == 5:
        g = v * np.float32(1.0 / 6) + np.float32(0.5)
        g = _0 if g < _0 else g
        g = _1 if g > _1 else g
        return v * g
    if act == 6:
        return _1 / (_1 + np.exp(-v))
    return v


@njit(cache=True)
def _bias_tile(bias, pixels):
    """The bias repeated for ``pixels`` pixels: (pixels * M,), what a GEMM block's output starts from."""
    M = bias.shape[0]
    tile = np.empty(pixels * M, np.float32)
    for p in range(pixels):
        o = U(p * M)
        for m in range(U(M)):
            tile[o + m] = bias[m]
    return tile


@njit(cache=True)
def _start(y1, start, n, tile, z1, has_z):
    """y[start:start + n] = bias tile (+ z): a GEMM with beta = 1 then adds its product in place, so bias
    and residual cost no pass of their own (with beta = 0 OpenBLAS would zero the block first anyway)."""
    s = U(start)
    if has_z:
        for i in range(U(n)):
            y1[s + i] = tile[i] + z1[s + i]
    else:
        for i in range(U(n)):
            y1[s + i] = tile[i]


@njit(cache=True)
def _finish(y1, start, n, z1, has_z, act, a, b):
    """y[start:start + n] = act(y + z) over a flat range: one vectorised sweep (a loop per activation, so
    the branch is taken once per call, not once per value)."""
    s = U(start)
    if has_z:
        for i in range(U(n)):
            y1[s + i] += z1[s + i]
    if act == 2:  # Clip; also ReLU as Clip(0, inf): "0 if v < 0 else v" alone compiles to a conditional
        # store that does not vectorise (measured 4x slower)
        for i in range(U(n)):
            v = y1[s + i]
            v = a if v < a else v
            y1[s + i] = b if v > b else v
    elif act == 4:
        for i in range(U(n)):
            g = y1[s + i] * a + b
            g = _0 if g < _0 else g
            y1[s + i] = _1 if g > _1 else g
    elif act == 5:
        for i in range(U(n)):
            v = y1[s + i]
            g = v * np.float32(1.0 / 6) + np.float32(0.5)
            g = _0 if g < _0 else g
            y1[s + i] = v * (_1 if g > _1 else g)
    elif act != 0:
        for i in range(U(n)):
            y1[s + i] = _act(y1[s + i], act, a, b)


@kernel
def pointwise(x, wp, bp, z, has_z, y, act, a, b, rows, cols, nchw, ctr):
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
    mul, p, q, lo, hi, rest = gemm.tail(act, a, b)
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
                   M * 4, m0, m0 + mc, mul, p, q, lo, hi)
        if rest != 0:  # an activation the tiles do not apply, while the block is in cache
            for r in range(cnt):
                _finish(y1, first + r * M + m0, mc, y1, False, rest, a, b)
        t = finished(ctr, me, total)
    return total


@njit(cache=True, inline="always")
def _taps3x3(y1, yo, x1, r0, r1, r2, s1, s2, w1, bias, C):
    """y[yo + c] = bias[c] + the 9 taps of a 3x3 window, for every channel c: one vectorised loop.

    r0, r1, r2: where the window's three rows start in x; s1, s2: offsets of its 2nd and 3rd columns."""
    Cu = U(C)
    for c in range(Cu):
        y1[yo + c] = (bias[c]
                      + w1[c] * x1[r0 + c] + w1[Cu + c] * x1[r0 + s1 + c] + w1[U(2) * Cu + c] * x1[r0 + s2 + c]
                      + w1[U(3) * Cu + c] * x1[r1 + c] + w1[U(4) * Cu + c] * x1[r1 + s1 + c]
                      + w1[U(5) * Cu + c] * x1[r1 + s2 + c]
                      + w1[U(6) * Cu + c] * x1[r2 + c] + w1[U(7) * Cu + c] * x1[r2 + s1 + c]
                      + w1[U(8) * Cu + c] * x1[r2 + s2 + c])


@njit(cache=True, inline="always")
def _taps_row(y1, yo, x1, xo, step, w1, wo, C, kw):
    """y[yo + c] += sum over the kw taps j of one kernel row of w[wo + j * C + c] * x[xo + j * step + c]."""
    Cu, s = U(C), U(step)
    if kw == 5:
        for c in range(Cu):
            y1[yo + c] += (w1[wo + c] * x1[xo + c] + w1[wo + Cu + c] * x1[xo + s + c]
                           + w1[wo + U(2) * Cu + c] * x1[xo + U(2) * s + c]
                           + w1[wo + U(3) * Cu + c] * x1[xo + U(3) * s + c]
                           + w1[wo + U(4) * Cu + c] * x1[xo + U(4) * s + c])
    elif kw == 3:
        for c in range(Cu):
            y1[yo + c] += (w1[wo + c] * x1[xo + c] + w1[wo + Cu + c] * x1[xo + s + c]
                           + w1[wo + U(2) * Cu + c] * x1[xo + U(2) * s + c])
    else:
        for j in range(U(kw)):
            for c in range(Cu):
                y1[yo + c] += w1[wo + j * Cu + c] * x1[xo + j * s + c]


@njit(cache=True, inline="always")
def _taps3x3_run(y1, yo, x1, r0, r1, r2, s1, s2, wtile, btile, n):
    """``_taps3x3`` over a run of n floats = (pixels, channels) of one output row at stride 1: there the
    window of each next pixel starts C floats further on, so the whole run is one flat loop, with the
    weights and bias tiled along it (``wtile`` (9, OW * C), ``btile`` (OW * C,)). Few channels (16, 24)
    would otherwise leave each pixel's loop too short to vectorise."""
    L = U(btile.shape[0])
    w1 = wtile.reshape(-1)
    for f in range(U(n)):
        y1[yo + f] = (btile[f]
                      + w1[f] * x1[r0 + f] + w1[L + f] * x1[r0 + s1 + f] + w1[U(2) * L + f] * x1[r0 + s2 + f]
                      + w1[U(3) * L + f] * x1[r1 + f] + w1[U(4) * L + f] * x1[r1 + s1 + f]
                      + w1[U(5) * L + f] * x1[r1 + s2 + f]
                      + w1[U(6) * L + f] * x1[r2 + f] + w1[U(7) * L + f] * x1[r2 + s1 + f]
                      + w1[U(8) * L + f] * x1[r2 + s2 + f])


@kernel
def depthwise(x, wt, bias, z, has_z, y, kh, kw, sh, sw, dh, dw, pt, pl, act, a, b, wtile, btile, ctr):
    """x (N, H, W, C), wt (kh * kw, C), y (N, OH, OW, C); output channel c reads input channel c only.

    With tiles (3x3, stride 1, see ``_taps3x3_run``: ``btile`` not empty) the interior of each row is one
    run; the other pixels go one at a time."""
    N, H, W, C = x.shape
    OH, OW = y.shape[1], y.shape[2]
    x1 = x.reshape(-1)
    w1 = wt.reshape(-1)
    y1 = y.reshape(-1)
    z1 = z.reshape(-1)
    Cu = U(C)
    runs = btile.shape[0] > 0
    qlo = min(OW, pl)                              # with runs: the pixels whose whole window is inside
    qhi = max(qlo, min(OW, W - 2 * dw + pl))
    total = N * OH
    me, t = start(ctr, total)
    while t < total:
        n = t // OH
        oy = t % OH
        iy0 = oy * sh - pt
        rows_inside = iy0 >= 0 and iy0 + (kh - 1) * dh < H
        run = runs and rows_inside and qhi > qlo
        if run:
            r0 = U(((n * H + iy0) * W + qlo - pl) * C)
            r1 = r0 + U(dh * W * C)
            _taps3x3_run(y1, U(((n * OH + oy) * OW + qlo) * C), x1, r0, r1, r1 + U(dh * W * C), U(dw * C),
                         U(2 * dw * C), wtile, btile, (qhi - qlo) * C)
        for ox in range(OW):
            if run and ox >= qlo and ox < qhi:
                continue
            yo = U(((n * OH + oy) * OW + ox) * C)
            ix0 = ox * sw - pl
            cols_inside = ix0 >= 0 and ix0 + (kw - 1) * dw < W
            if rows_inside and cols_inside and kh == 3 and kw == 3:
                r0 = U(((n * H + iy0) * W + ix0) * C)
                r1 = r0 + U(dh * W * C)
                _taps3x3(y1, yo, x1, r0, r1, r1 + U(dh * W * C), U(dw * C), U(2 * dw * C), w1, bias, C)
                continue
            for c in range(Cu):
                y1[yo + c] = bias[c]
            for i in range(kh):
                iy = iy0 + i * dh
                if iy < 0 or iy >= H:
                    continue
                row = (n * H + iy) * W
                if cols_inside:
                    _taps_row(y1, yo, x1, U((row + ix0) * C), dw * C, w1, U(i * kw * C), C, kw)
                    continue
                for j in range(kw):  # a border pixel: the taps inside the input, one at a time
                    ix = ix0 + j * dw
                    if ix >= 0 and ix < W:
                        _taps_row(y1, yo, x1, U((row + ix) * C), 0, w1, U((i * kw + j) * C), C, 1)
        _finish(y1, (n * OH + oy) * OW * C, OW * C, z1, has_z, act, a, b)
        t = finished(ctr, me, total)
    return total


@kernel
def im2col(x, wt, bias, z, has_z, y, kh, kw, sh, sw, dh, dw, pt, pl, act, a, b, rows, ctr):
    """x (N, H, W, C), wt (group, kh * kw * C/group, M/group) tap-major, y (N, OH, OW, M)."""
    N, H, W, C = x.shape
    OH, OW, M = y.shape[1], y.shape[2], y.shape[3]
    group, Kc, Mg = wt.shape
    Cg = C // group
    nblk = (OH + rows - 1) // rows
    wp = wt.ctypes.data
    yp = y.ctypes.data
    x1 = x.reshape(-1)
    y1 = y.reshape(-1)
    z1 = z.reshape(-1)
    tile = _bias_tile(bias, min(OH, rows) * OW)
    total = N * nblk
    me, t = start(ctr, total)
    while t < total:
        n = t // nblk
        oy0 = (t % nblk) * rows
        npix = (min(OH, oy0 + rows) - oy0) * OW
        first = (n * OH + oy0) * OW  # the block's first output pixel
        _start(y1, first * M, npix * M, tile, z1, has_z)
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
            _sgemm(_ROW, _NT, _NT, npix, Mg, Kc, np.float32(1), col.ctypes.data, Kc, wp + g * Kc * Mg * 4, Mg,
                   np.float32(1), yp + (first * M + g * Mg) * 4, M)
        _finish(y1, first * M, npix * M, z1, False, act, a, b)
        t = finished(ctr, me, total)
    return total


@kernel
def im2col_nchw(x, wt, bias, z, has_z, y, kh, kw, sh, sw, dh, dw, pt, pl, act, a, b, rows, ctr):
    """x (N, C, H, W), wt (group, C/group * kh * kw, M/group) channel-major, y (N, OH, OW, M)."""
    N, C, H, W = x.shape
    OH, OW, M = y.shape[1], y.shape[2], y.shape[3]
    group, Kc, Mg = wt.shape
    Cg = C // group
    nblk = (OH + rows - 1) // rows
    wp = wt.ctypes.data
    yp = y.ctypes.data
    x1 = x.reshape(-1)
    y1 = y.reshape(-1)
    z1 = z.reshape(-1)
    tile = _bias_tile(bias, min(OH, rows) * OW)
    total = N * nblk
    me, t = start(ctr, total)
    while t < total:
        n = t // nblk
        oy0 = (t % nblk) * rows
        oy1 = min(OH, oy0 + rows)
        npix = (oy1 - oy0) * OW
        first = (n * OH + oy0) * OW
        _start(y1, first * M, npix * M, tile, z1, has_z)
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
            _sgemm(_ROW, _T, _NT, npix, Mg, Kc, np.float32(1), col.ctypes.data, npix, wp + g * Kc * Mg * 4, Mg,
                   np.float32(1), yp + (first * M + g * Mg) * 4, M)
        _finish(y1, first * M, npix * M, z1, False, act, a, b)
        t = finished(ctr, me, total)
    return total


@njit(cache=True)
def _inside(off, s, size, out):
    """[lo, hi): the outputs q whose input column q * s + off lies inside [0, size)."""
    lo = 0 if off >= 0 else (-off + s - 1) // s
    last = size - 1 - off
    hi = 0 if last < 0 else min(out, last // s + 1)
    return min(lo, out), max(min(lo, out), hi)
