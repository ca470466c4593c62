"""The GEMM under every conv but the depthwise ones: Y = act(X @ W + bias + Z), with W packed once.

    X (rows, K)    pixels by input channels, read through two strides (a row step and a k step), so
                   channels-last pixels, channels-first planes and im2col buffers all serve as they are
    W (K, M)       the weights, packed by ``pack`` at session creation into panels of PANEL columns:
                   (panels, K, PANEL), zero-padded, so that each k of a panel is one contiguous run
    Y, Z (rows, M) the result and the optional residual, rows ``ys`` bytes apart

A tile is 8 rows by one panel: 16 running sums of LANES floats (kernels/_simd.py) that stay in
registers while k runs, each step loading two vectors of W and broadcasting one X value per row:

    for k:  w0, w1 = W[k, 0:L], W[k, L:2L]
            for r in 0..7:  x = X[r, k];  c[r][0] += x * w0;  c[r][1] += x * w1

Each sum starts as the bias and gets the residual and the activation before its single store, so the
output is written once, finished. Why not BLAS: OpenBLAS packs both operands again on every call (the
weights never change) and leaves bias and activation to extra passes over the output; measured on
MobileNetV2's 1x1 layers this tile takes 0.75-0.9 of the time of an OpenBLAS sgemm plus those passes.

A panel narrower than PANEL (M not a multiple) stores only its columns (masked stores); a last tile
with fewer than 8 rows reads its last row again for the missing ones and stores only its own (one or
two rows left run as single rows instead); a panel of at most LANES columns runs a one-vector tile
(half the work of the two-vector one). One call of the tile function runs all the tiles of a panel
(``block``): its 17 arguments are passed and its constants loaded once a panel, not once a tile, which
with few k (a 16 -> 64 1x1 conv: 16 steps a tile) is a good part of a tile's time (measured on
MobileNet-sized 1x1 layers: 5-15% faster with a clip or no activation, the same with HardSwish).
"""
import numpy as np
from numba import njit

from . import _round, _simd as v
from ._jit import FASTMATH, helper

LANES = v.LANES
PANEL = 2 * LANES
U = np.uint64
_VB = U(4 * LANES)  # bytes in a vector
_0, _1 = np.float32(0), np.float32(1)


def pack(wt):
    """(K, M) weights -> (panels, K, PANEL) float32, the columns past M zero."""
    K, M = wt.shape
    panels = -(-M // PANEL)
    w = np.zeros((K, panels * PANEL), np.float32)
    w[:, :M] = wt
    return np.ascontiguousarray(w.reshape(K, panels, PANEL).transpose(1, 0, 2))


def pack_bias(bias):
    """(M,) -> (panels * PANEL,) float32, zero-padded like the packed weights' columns."""
    b = np.zeros(-(-bias.size // PANEL) * PANEL, np.float32)
    b[:bias.size] = bias
    return b


def _inline(fn):
    return njit(nogil=True, cache=True, fastmath=FASTMATH, inline="always")(fn)


@helper
def tail(act, a, b):
    """kernels/conv.py's activation ``act`` (parameters a, b) as the tiles apply it, in registers:

        mode 0:  y = min(max(x, lo), hi)                  Clip, ReLU (Clip(0, inf)), none (infinite bounds)
        mode 1:  y = min(max(x * p + q, lo), hi)          HardSigmoid
        mode 2:  y = x * min(max(x * p + q, lo), hi)      HardSwish

    Returns (mode, p, q, lo, hi, rest): ``rest`` is the activation left for a pass after the tile
    (LeakyRelu, Sigmoid), with the tile's own tail then the identity."""
    inf = np.float32(np.inf)
    if act == 2:
        return 0, _1, _0, a, b, 0
    if act == 1:
        return 0, _1, _0, _0, inf, 0
    if act == 4:
        return 1, a, b, _0, _1, 0
    if act == 5:
        return 2, np.float32(1.0 / 6), np.float32(0.5), _0, _1, 0
    return 0, _1, _0, -inf, inf, act


@helper
def rounding_tail(act, a, b, qs):
    """``tail``, then with qs != 0 a QDQ model's rounding (kernels/conv.py), as one more mode where the
    activation is a clip:

        mode 3:  y = rint(min(max(x, lo), hi) / qs) * qs  p = 1 / qs, q = qs (the quotient exact: _round.py)
        mode 4:  y = rint(min(max(x, lo), hi))            qs = 1: mode 3's numbers without its arithmetic
                                                          (a rounding that hands on whole steps)

    else (and for a scale _round.exact_range refuses) the tail alone: the caller then rounds in a pass
    of its own."""
    mode, p, q, lo, hi, rest = tail(act, a, b)
    if qs == _1 and mode == 0 and rest == 0:
        return 4, _1, _1, lo, hi, 0
    if qs != _0 and mode == 0 and rest == 0 and _round.exact_range(qs, lo, hi):
        return 3, _1 / qs, qs, lo, hi, 0
    return mode, p, q, lo, hi, rest


@helper
def store(y, z, has_z, n, c, mode, vp, vq, vlo, vhi):
    """One vector of sums (the bias included) to its first n floats at y: + the residual at z, the tail
    (see ``tail`` and ``rounding_tail``)."""
    if has_z:
        c = v.add(c, v.load_first(z, n))
    if mode == 3:
        g = _round.rounded(v.at_most(v.at_least(c, vlo), vhi), vq, vp, v.neg(vq), True)
    elif mode == 4:
        g = v.rint(v.at_most(v.at_least(c, vlo), vhi))
    else:
        g = v.at_most(v.at_least(c if mode == 0 else v.fma(c, vp, vq), vlo), vhi)
        if mode == 2:
            g = v.mul(c, g)
    v.store_first(y, g, n)


@_inline
def _put8(y, z, ys, rows, has_z, n, c0, c1, c2, c3, c4, c5, c6, c7, mode, vp, vq, vlo, vhi):
    """One column of vectors of a tile, one per row, rows ys bytes apart; rows past ``rows`` are not stored."""
    store(y, z, has_z, n, c0, mode, vp, vq, vlo, vhi)
    if rows > 1:
        store(y + ys, z + ys, has_z, n, c1, mode, vp, vq, vlo, vhi)
    if rows > 2:
        store(y + U(2) * ys, z + U(2) * ys, has_z, n, c2, mode, vp, vq, vlo, vhi)
    if rows > 3:
        store(y + U(3) * ys, z + U(3) * ys, has_z, n, c3, mode, vp, vq, vlo, vhi)
    if rows > 4:
        store(y + U(4) * ys, z + U(4) * ys, has_z, n, c4, mode, vp, vq, vlo, vhi)
    if rows > 5:
        store(y + U(5) * ys, z + U(5) * ys, has_z, n, c5, mode, vp, vq, vlo, vhi)
    if rows > 6:
        store(y + U(6) * ys, z + U(6) * ys, has_z, n, c6, mode, vp, vq, vlo, vhi)
    if rows > 7:
        store(y + U(7) * ys, z + U(7) * ys, has_z, n, c7, mode, vp, vq, vlo, vhi)


@_inline
def _rows(xp, rs, rows):
    """The addresses of a tile's 8 rows of X; past ``rows`` the last row again (read, never stored)."""
    last = U(rows - 1)
    x0 = U(xp)
    return (x0, x0 + rs * min(U(1), last), x0 + rs * min(U(2), last), x0 + rs * min(U(3), last),
            x0 + rs * min(U(4), last), x0 + rs * min(U(5), last), x0 + rs * min(U(6), last),
            x0 + rs * min(U(7), last))


@helper
def _tile2(xp, rs, ks, rows, wp, K, bp, zp, has_z, yp, ys, mc, mode, vp, vq, vlo, vhi):
    """rows x one panel (LANES < mc <= PANEL columns), a tile of 8 rows at a time (the last may have
    fewer): Y = act(X @ W + bias + Z)."""
    for r in range(0, rows, 8):
        x8, y8, z8, n8 = U(xp) + U(r) * U(rs), U(yp) + U(r) * U(ys), U(zp) + U(r) * U(ys), min(8, rows - r)
        x0, x1, x2, x3, x4, x5, x6, x7 = _rows(x8, rs, n8)
        b0, b1 = v.load(bp), v.load(bp + _VB)
        c00, c01, c10, c11, c20, c21, c30, c31 = b0, b1, b0, b1, b0, b1, b0, b1
        c40, c41, c50, c51, c60, c61, c70, c71 = b0, b1, b0, b1, b0, b1, b0, b1
        w = U(wp)
        o = U(0)
        for k in range(U(K)):
            w0, w1 = v.load(w), v.load(w + _VB)
            w += U(2) * _VB
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
            o += ks
        _put8(y8, z8, ys, n8, has_z, min(mc, LANES), c00, c10, c20, c30, c40, c50, c60, c70, mode, vp, vq, vlo, vhi)
        _put8(y8 + _VB, z8 + _VB, ys, n8, has_z, mc - LANES, c01, c11, c21, c31, c41, c51, c61, c71,
              mode, vp, vq, vlo, vhi)


@helper
def _tile1(xp, rs, ks, rows, wp, K, bp, zp, has_z, yp, ys, mc, mode, vp, vq, vlo, vhi):
    """rows x the first LANES columns of a panel (mc <= LANES): ``_tile2`` with one vector."""
    for r in range(0, rows, 8):
        x8, y8, z8, n8 = U(xp) + U(r) * U(rs), U(yp) + U(r) * U(ys), U(zp) + U(r) * U(ys), min(8, rows - r)
        x0, x1, x2, x3, x4, x5, x6, x7 = _rows(x8, rs, n8)
        b0 = v.load(bp)
        c0, c1, c2, c3, c4, c5, c6, c7 = b0, b0, b0, b0, b0, b0, b0, b0
        w = U(wp)
        o = U(0)
        for k in range(U(K)):
            w0 = v.load(w)
            w += U(2) * _VB
            c0 = v.fma(v.splat_load(x0 + o), w0, c0)
            c1 = v.fma(v.splat_load(x1 + o), w0, c1)
            c2 = v.fma(v.splat_load(x2 + o), w0, c2)
            c3 = v.fma(v.splat_load(x3 + o), w0, c3)
            c4 = v.fma(v.splat_load(x4 + o), w0, c4)
            c5 = v.fma(v.splat_load(x5 + o), w0, c5)
            c6 = v.fma(v.splat_load(x6 + o), w0, c6)
            c7 = v.fma(v.splat_load(x7 + o), w0, c7)
            o += ks
        _put8(y8, z8, ys, n8, has_z, mc, c0, c1, c2, c3, c4, c5, c6, c7, mode, vp, vq, vlo, vhi)


@helper
def _tile_row(xp, ks, wp, K, bp, zp, has_z, yp, mc, mode, vp, vq, vlo, vhi):
    """1 row x one panel: for the last rows of a block, and a fully connected layer's single row."""
    c0, c1 = v.load(bp), v.load(bp + _VB)
    w = U(wp)
    o = U(xp)
    for k in range(U(K)):
        a = v.splat_load(o)
        c0, c1 = v.fma(a, v.load(w), c0), v.fma(a, v.load(w + _VB), c1)
        w += U(2) * _VB
        o += ks
    store(yp, zp, has_z, min(mc, LANES), c0, mode, vp, vq, vlo, vhi)
    if mc > LANES:
        store(yp + _VB, zp + _VB, has_z, mc - LANES, c1, mode, vp, vq, vlo, vhi)


@helper
def block(xp, rs, ks, rows, wp, K, bp, zp, has_z, yp, ys, m0, m1, mode, p, q, lo, hi):
    """Y[0:rows, m0:m1] = tail(X @ W + bias + Z)[0:rows, m0:m1], m0 a multiple of PANEL; the tail
    (mode, p, q, lo, hi) as ``tail`` returns it.

    Addresses: xp of X[0, 0], wp of the packed weights, bp of the packed bias, yp and zp of Y[0, 0] and
    Z[0, 0]; strides in bytes: rs and ks between X's rows and k's, ys between Y's (and Z's) rows."""
    vp, vq, vlo, vhi = v.splat(p), v.splat(q), v.splat(lo), v.splat(hi)
    rs, ks, ys = U(rs), U(ks), U(ys)
    for j in range(m0 // PANEL, (m1 + PANEL - 1) // PANEL):
        mc = min(PANEL, m1 - j * PANEL)
        wj = U(wp) + U(j * K * PANEL * 4)
        bj = U(bp) + U(j * PANEL * 4)
        col = U(j * PANEL * 4)
        left = rows % 8
        tiled = rows - left if left <= 2 else rows  # 1 or 2 rows left: single rows (a tile of 8 would compute
        #                                              6 rows for nothing)
        if tiled > 0:  # one call for all the panel's tiles
            if mc > LANES:
                _tile2(xp, rs, ks, tiled, wj, K, bj, U(zp) + col, has_z, U(yp) + col, ys, mc, mode, vp, vq, vlo, vhi)
            else:
                _tile1(xp, rs, ks, tiled, wj, K, bj, U(zp) + col, has_z, U(yp) + col, ys, mc, mode, vp, vq, vlo, vhi)
        for i in range(tiled, rows):
            _tile_row(U(xp) + U(i) * rs, ks, wj, K, bj, U(zp) + U(i) * ys + col, has_z, U(yp) + U(i) * ys + col, mc,
                      mode, vp, vq, vlo, vhi)
