"""2-D convolution kernels (float32, NCHW), each with the FusedConv tail built in:

    y = act(conv(x, w) + bias + z)      act codes: see ACT below; z optional (same shape as y)

* ``pointwise``: a 1x1 conv (stride 1, no padding) is one GEMM per image, Y[M, L] = W[M, K] @ X[K, L]
  with L = H * W. It runs as GEMMs over blocks of columns (and of rows when there are few columns), each
  block finished (bias, residual, activation) right after its GEMM, while it is still in cache. The
  blocks are spread over numba's threads; each GEMM is a single-threaded BLAS call.
* ``depthwise``: one output channel reads one input channel. Per output row, each kernel tap adds
  w * (a strided slice of one input row) into a row accumulator; taps that fall into the padding are
  skipped by clipping the column range, so no padded copy of the input is made.
* ``im2col``: every other conv (the stem, grouped convs, strided 1x1): per block of output rows, gather
  the receptive fields into a (C/g * kh * kw, rows * OW) matrix (zeros for padding), one GEMM per group.

Geometry (pads, output size) is resolved by the caller with tinyrt's ``_window.geometry``; the kernels
take pads_begin (pt, pl) and the output shape through ``y``.
"""
import numpy as np
from numba import njit, prange

from ._jit import kernel

from . import _blas

# activation codes (FusedConv's activation names -> int)
ACT = {"": 0, "Relu": 1, "Clip": 2, "LeakyRelu": 3, "HardSigmoid": 4, "HardSwish": 5, "Sigmoid": 6}
HAVE_BLAS = _blas.AVAILABLE
_sgemm = _blas.sgemm
_ROW, _NT = _blas.ROW_MAJOR, _blas.NO_TRANS
U = np.uint64  # unsigned indices: numba adds no negative-index wraparound, loops vectorise


@kernel
def tail(y, bias, z, has_z, act, a, b):
    """The tail over a whole (N, M, L) output (used after a GEMM that numpy did)."""
    N, M, L = y.shape
    y1 = y.reshape(-1)
    z1 = z.reshape(-1)
    for t in prange(N * M):
        _tail_flat(y1, t * L, L, z1, has_z, bias[t % M], act, a, b)


@kernel
def pointwise(x, w, bias, z, has_z, y, act, a, b, nb, mb):
    """1x1 conv: x (N, K, L), w (M, K), y (N, M, L); blocks of nb columns by mb rows."""
    N, K, L = x.shape
    M = w.shape[0]
    nblk = (L + nb - 1) // nb
    mblk = (M + mb - 1) // mb
    xp = x.ctypes.data
    wp = w.ctypes.data
    yp = y.ctypes.data
    y1 = y.reshape(-1)
    z1 = z.reshape(-1)
    for t in prange(N * nblk * mblk):
        n = t // (nblk * mblk)
        r = t % (nblk * mblk)
        jb = r // mblk
        ib = r % mblk
        j0 = jb * nb
        j1 = min(L, j0 + nb)
        m0 = ib * mb
        m1 = min(M, m0 + mb)
        _sgemm(_ROW, _NT, _NT, m1 - m0, j1 - j0, K, np.float32(1), wp + m0 * K * 4, K,
               xp + (n * K * L + j0) * 4, L, np.float32(0), yp + ((n * M + m0) * L + j0) * 4, L)
        for m in range(m0, m1):
            _tail_flat(y1, (n * M + m) * L + j0, j1 - j0, z1, has_z, bias[m], act, a, b)


@njit(cache=True)
def _cols(off, s, size, out):
    """[lo, hi): the outputs o whose input column o * s + off lies inside [0, size)."""
    lo = 0 if off >= 0 else (-off + s - 1) // s
    last = size - 1 - off
    hi = 0 if last < 0 else min(out, last // s + 1)
    return lo, max(lo, hi)


@njit(cache=True)
def _edge(x1, xrow, W, w, r0, kw, sw, dw, pl, q):
    """One output column near the border: the taps of one kernel row that fall inside the input row."""
    s = np.float32(0)
    for j in range(kw):
        ix = q * sw - pl + j * dw
        if ix >= 0 and ix < W:
            s += w[r0 + j] * x1[xrow + ix]
    return s


@njit(cache=True)
def _src_off(base, sw, qlo, pl, j, dw, half):
    """Where tap j of output column qlo reads: in the row (stride 1) or in its even/odd halves (stride 2)."""
    off = qlo * sw - pl + j * dw  # >= 0 for the interior columns
    if sw == 1:
        return U(base + off)
    return U(off // 2 + (half if off % 2 else 0))


@njit(cache=True)
def _row_tail(y1, start, n, z1, has_z, act, a, b):
    """y1[start:start + n] = act(y1[...] + z1[...]) (the bias is already in)."""
    _tail_flat(y1, start, n, z1, has_z, np.float32(0), act, a, b)


@njit(cache=True)
def _tail_flat(y1, start, n, z1, has_z, bias, act, a, b):
    """y1[start:start + n] = act(y1[...] + bias + z1[...]) over flat arrays (act codes: ACT) with unsigned indices: no
    views to create and no wraparound checks, so each loop is one vectorised sweep."""
    s = U(start)
    if has_z:
        for q in range(U(n)):
            y1[s + q] += bias + z1[s + q]
    elif bias != 0:
        for q in range(U(n)):
            y1[s + q] += bias
    if act == 1:
        for q in range(U(n)):
            v = y1[s + q]
            y1[s + q] = np.float32(0) if v < 0 else v  # written so that NaN passes, as in numpy
    elif act == 2:
        for q in range(U(n)):
            v = y1[s + q]
            v = a if v < a else v
            y1[s + q] = b if v > b else v
    elif act == 3:
        for q in range(U(n)):
            v = y1[s + q]
            y1[s + q] = v if v >= 0 else v * a
    elif act == 4:
        for q in range(U(n)):
            v = y1[s + q] * a + b
            v = np.float32(0) if v < 0 else v
            y1[s + q] = np.float32(1) if v > 1 else v
    elif act == 5:
        for q in range(U(n)):
            v = y1[s + q]
            g = v * np.float32(1.0 / 6) + np.float32(0.5)
            g = np.float32(0) if g < 0 else g
            g = np.float32(1) if g > 1 else g
            y1[s + q] = v * g
    elif act == 6:
        for q in range(U(n)):
            y1[s + q] = np.float32(1) / (np.float32(1) + np.exp(-y1[s + q]))


@njit(cache=True)
def _dw_plane(x1, y1, wm, bm, n, c, m, C, M, H, W, OH, OW, PH, PW, kh, kw, sh, sw, dh, dw, pt, pl, qlo, qhi, unit):
    """One output channel as whole-plane shifted multiply-adds (when OW equals the phase-plane width).

    Output pixel p = oy * OW + ox, tap (i, j) reads phase plane (ri, rj) at p + qi * PW + qj where
    i * dh - pt = qi * sh + ri and j * dw - pl = qj * sw + rj. Over the rows where that stays inside the
    plane this is one long vectorised loop per tap; its only wrong pixels are the border columns
    (ox < qlo or ox >= qhi), whose reads wrap into the next row: they are recomputed exactly afterwards.
    Stride 1 reads the input plane as it is; other strides first split it into its phase planes.
    """
    yb = (n * M + m) * OH * OW
    xb = (n * C + c) * H * W
    L = OH * OW
    if unit:
        src = x1
        sbase = xb
    else:
        src = np.empty(sh * sw * PH * PW, np.float32)
        sbase = 0
        for ri in range(sh):
            for rj in range(sw):
                pb = (ri * sw + rj) * PH * PW
                nx = (W - rj + sw - 1) // sw  # phase columns inside the input
                for py in range(PH):
                    iy = py * sh + ri
                    drow = U(pb + py * PW)
                    if iy >= H:
                        for px in range(U(PW)):
                            src[drow + px] = 0
                        continue
                    srow = U(xb + iy * W + rj)
                    if sw == 2:
                        for px in range(U(nx)):
                            src[drow + px] = x1[srow + U(2) * px]
                    else:
                        for px in range(U(nx)):
                            src[drow + px] = x1[srow + U(sw) * px]
                    for px in range(nx, PW):
                        src[drow + px] = 0
    yu = U(yb)
    for p in range(U(L)):
        y1[yu + p] = bm
    for i in range(kh):
        di = i * dh - pt
        qi = di // sh
        ri = di - qi * sh
        oy_lo = max(0, -qi)
        oy_hi = min(OH, PH - qi)
        if oy_hi <= oy_lo:
            continue
        for j in range(kw):
            dj = j * dw - pl
            qj = dj // sw
            rj = dj - qj * sw
            shift = qi * PW + qj
            p_lo = max(oy_lo * OW, -shift)
            p_hi = min(oy_hi * OW, PH * PW - shift)
            if p_hi <= p_lo:
                continue
            wv = wm[i * kw + j]
            so = U(sbase + (ri * sw + rj) * PH * PW + shift + p_lo)
            ya = U(yb + p_lo)
            for p in range(U(p_hi - p_lo)):
                y1[ya + p] += wv * src[so + p]
    # the border columns, exactly
    for oy in range(OH):
        yrow = yb + oy * OW
        for ox in range(qlo):
            y1[yrow + ox] = _border(x1, xb, H, W, wm, bm, kh, kw, sh, sw, dh, dw, pt, pl, oy, ox)
        for ox in range(qhi, OW):
            y1[yrow + ox] = _border(x1, xb, H, W, wm, bm, kh, kw, sh, sw, dh, dw, pt, pl, oy, ox)


@njit(cache=True)
def _border(x1, xb, H, W, wm, bm, kh, kw, sh, sw, dh, dw, pt, pl, oy, ox):
    acc = bm
    for i in range(kh):
        iy = oy * sh - pt + i * dh
        if iy >= 0 and iy < H:
            acc += _edge(x1, xb + iy * W, W, wm, i * kw, kw, sw, dw, pl, ox)
    return acc


@kernel
def depthwise(x, w, bias, z, has_z, y, kh, kw, sh, sw, dh, dw, pt, pl, act, a, b):
    """x (N, C, H, W), w (M, kh * kw) with M = C * mult, y (N, M, OH, OW).

    Per output row: start from the bias, add one kernel row at a time. The interior columns (every tap
    of the kernel row inside the input) are one loop with the taps written out for kw 3 and 5, over
    contiguous input (stride 2 reads a de-interleaved copy of the row: its even and odd halves), with
    unsigned flat indices so that the loop vectorises. The few border columns check each tap.
    """
    N, C, H, W = x.shape
    M, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    mult = M // C
    x1 = x.reshape(-1)
    y1 = y.reshape(-1)
    z1 = z.reshape(-1)
    span = (kw - 1) * dw
    qlo = min(OW, (pl + sw - 1) // sw)
    last = W - 1 - span + pl
    qhi = max(qlo, 0 if last < 0 else min(OW, last // sw + 1))
    nq = qhi - qlo
    half = (W + 1) // 2
    PH = (H + sh - 1) // sh  # the input split into sh * sw phase planes of PH x PW pixels
    PW = (W + sw - 1) // sw
    flat = OW == PW
    unit = sh == 1 and sw == 1
    for t in prange(N * M):
        n = t // M
        m = t % M
        c = m // mult
        wm = w[m]
        bm = bias[m]
        if flat:
            _dw_plane(x1, y1, wm, bm, n, c, m, C, M, H, W, OH, OW, PH, PW, kh, kw, sh, sw, dh, dw, pt, pl,
                      qlo, qhi, unit)
            _row_tail(y1, (n * M + m) * OH * OW, OH * OW, z1, has_z, act, a, b)
            continue
        eo = np.empty(2 * half, np.float32)  # stride 2: even pixels of a row, then odd ones
        for oy in range(OH):
            yrow = ((n * M + m) * OH + oy) * OW
            yr = U(yrow)
            for q in range(U(OW)):
                y1[yr + q] = bm
            for i in range(kh):
                iy = oy * sh - pt + i * dh
                if iy < 0 or iy >= H:
                    continue
                xrow = ((n * C + c) * H + iy) * W
                r0 = i * kw
                if nq > 0:
                    ya = U(yrow + qlo)
                    if sw == 2:
                        xr = U(xrow)
                        for q in range(U(W // 2)):
                            eo[q] = x1[xr + U(2) * q]
                            eo[U(half) + q] = x1[xr + U(2) * q + U(1)]
                        if W % 2:
                            eo[half - 1] = x1[xrow + W - 1]
                    src = x1 if sw == 1 else eo
                    base = xrow if sw == 1 else 0
                    o0 = _src_off(base, sw, qlo, pl, 0, dw, half)
                    if sw <= 2 and kw == 3:
                        w0, w1, w2 = wm[r0], wm[r0 + 1], wm[r0 + 2]
                        o1 = _src_off(base, sw, qlo, pl, 1, dw, half)
                        o2 = _src_off(base, sw, qlo, pl, 2, dw, half)
                        for q in range(U(nq)):
                            y1[ya + q] += w0 * src[o0 + q] + w1 * src[o1 + q] + w2 * src[o2 + q]
                    elif sw <= 2 and kw == 5:
                        w0, w1, w2, w3, w4 = wm[r0], wm[r0 + 1], wm[r0 + 2], wm[r0 + 3], wm[r0 + 4]
                        o1 = _src_off(base, sw, qlo, pl, 1, dw, half)
                        o2 = _src_off(base, sw, qlo, pl, 2, dw, half)
                        o3 = _src_off(base, sw, qlo, pl, 3, dw, half)
                        o4 = _src_off(base, sw, qlo, pl, 4, dw, half)
                        for q in range(U(nq)):
                            y1[ya + q] += (w0 * src[o0 + q] + w1 * src[o1 + q] + w2 * src[o2 + q]
                                           + w3 * src[o3 + q] + w4 * src[o4 + q])
                    elif sw <= 2:
                        for j in range(kw):
                            wv = wm[r0 + j]
                            oj = _src_off(base, sw, qlo, pl, j, dw, half)
                            for q in range(U(nq)):
                                y1[ya + q] += wv * src[oj + q]
                    else:
                        for q in range(qlo, qhi):
                            y1[yrow + q] += _edge(x1, xrow, W, wm, r0, kw, sw, dw, pl, q)
                for q in range(qlo):
                    y1[yrow + q] += _edge(x1, xrow, W, wm, r0, kw, sw, dw, pl, q)
                for q in range(qhi, OW):
                    y1[yrow + q] += _edge(x1, xrow, W, wm, r0, kw, sw, dw, pl, q)
            _row_tail(y1, yrow, OW, z1, has_z, act, a, b)


@kernel
def im2col(x, w, bias, z, has_z, y, kh, kw, sh, sw, dh, dw, pt, pl, group, OH, OW, act, a, b, rows):
    """x (N, C, H, W), w (M, C/group * kh * kw), y (N, M, OH * OW); blocks of ``rows`` output rows."""
    N, C, H, W = x.shape
    M, L = y.shape[1], y.shape[2]
    Cg = C // group
    Mg = M // group
    Kc = Cg * kh * kw
    nblk = (OH + rows - 1) // rows
    wp = w.ctypes.data
    yp = y.ctypes.data
    y1 = y.reshape(-1)
    z1 = z.reshape(-1)
    for t in prange(N * group * nblk):
        n = t // (group * nblk)
        r = t % (group * nblk)
        g = r // nblk
        oy0 = (r % nblk) * rows
        oy1 = min(OH, oy0 + rows)
        ncol = (oy1 - oy0) * OW
        col = np.empty((Kc, ncol), np.float32)
        for c in range(Cg):
            for i in range(kh):
                for j in range(kw):
                    k = (c * kh + i) * kw + j
                    off = j * dw - pl
                    lo, hi = _cols(off, sw, W, OW)
                    for oy in range(oy0, oy1):
                        base = (oy - oy0) * OW
                        iy = oy * sh - pt + i * dh
                        if iy < 0 or iy >= H:
                            col[k, base:base + OW] = 0
                            continue
                        cr = col[k, base:base + OW]
                        cr[:lo] = 0
                        if hi > lo:
                            cr[lo:hi] = x[n, g * Cg + c, iy, lo * sw + off:(hi - 1) * sw + off + 1:sw]
                        cr[hi:] = 0
        _sgemm(_ROW, _NT, _NT, Mg, ncol, Kc, np.float32(1), wp + g * Mg * Kc * 4, Kc, col.ctypes.data, ncol,
               np.float32(0), yp + ((n * M + g * Mg) * L + oy0 * OW) * 4, L)
        for m in range(g * Mg, (g + 1) * Mg):
            _tail_flat(y1, (n * M + m) * L + oy0 * OW, ncol, z1, has_z, bias[m], act, a, b)


@kernel
def depthwise_cl(x, wt, bias, z, has_z, y, kh, kw, sh, sw, dh, dw, pt, pl, act, a, b):
    """Depthwise conv for small planes (one output channel per input channel), channels innermost.

    x (N, C, H, W), wt (kh * kw, C) (the weights transposed), y (N, C, OH, OW). The input is transposed
    to (H * W, C), each output pixel adds its in-bounds taps as loops over all channels (long, vectorised,
    no border waste), and the result is transposed back with the tail applied. Small planes (14x14, 7x7)
    would otherwise spend their time in per-channel overheads and loop remainders.
    """
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    L = OH * OW
    y1 = y.reshape(-1)
    z1 = z.reshape(-1)
    for n in range(N):
        xt = np.empty((H * W, C), np.float32)
        x2 = x[n].reshape(C, H * W)
        for p in prange(H * W):
            for c in range(C):
                xt[p, c] = x2[c, p]
        xt1 = xt.reshape(-1)
        wt1 = wt.reshape(-1)
        yt = np.empty((L, C), np.float32)
        yt1 = yt.reshape(-1)
        for oy in prange(OH):
            for ox in range(OW):
                yo = U((oy * OW + ox) * C)
                for c in range(U(C)):
                    yt1[yo + c] = bias[c]
                for i in range(kh):
                    iy = oy * sh - pt + i * dh
                    if iy < 0 or iy >= H:
                        continue
                    for j in range(kw):
                        ix = ox * sw - pl + j * dw
                        if ix < 0 or ix >= W:
                            continue
                        xo = U((iy * W + ix) * C)
                        wo = U((i * kw + j) * C)
                        for c in range(U(C)):
                            yt1[yo + c] += wt1[wo + c] * xt1[xo + c]
        y3 = y[n].reshape(C, L)
        for c in prange(C):
            row = y3[c]
            for p in range(L):
                row[p] = yt1[U(p * C + c)]
            _tail_flat(y1, (n * C + c) * L, L, z1, has_z, np.float32(0), act, a, b)
