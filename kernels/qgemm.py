"""Y = (X @ (Q - zp)) * scale + bias with 8-bit weights Q: a Gemm (or MatMul) whose constant B a QDQ model
stores as integers, B = DequantizeLinear(Q) = (Q - zero point) * scale, one scale and zero point per output
column or one for all (a quantized CNN's classifier head).

    X (N, K)        float32 rows, C-contiguous
    Q (K, M)        int8 codes c, packed by ``pack`` into panels of PANEL columns: (panels, K, PANEL),
                    zero-padded like gemm.pack's float panels; the weight is c + off (``codes``: int8 Q
                    as they are, off = -zp; uint8 Q as Q - 128, off = 128 - zp)
    off, scale, bias  (panels * PANEL,) float32, per output column (gemm.pack_bias pads them)
    Y (N, M)        float32

Each output is one float32 sum over k in order of x[n, k] * (q[k, m] - zp[m]) (the difference exact as a
float: c + off, integers), then
sum * scale + bias in one fused multiply-add: the float model's numbers (its weights are the products
q * scale rounded to float32) to float rounding, reading a quarter of its bytes. A fully connected layer
with one row reads each weight once, so its time is the weights' memory traffic: 1280 x 1000 int8 weights
(MobileNetV2's head) are 1.3 MB instead of 5.1 MB.

Tiles: up to 4 rows by one panel (8 sums of LANES floats in registers while k runs, each k loading the
panel's two vectors of int8 once, ``_tile``), or a single row by two panels (4 sums: a one-row tile's 2
chains of fused multiply-adds would wait on each other, ``_row2``). ``reference`` is the same product in
numpy (float64), which tests/test_kernels.py holds the kernel to.
"""
import numpy as np

from . import _simd as v
from ._jit import helper, kernel, start, finished

LANES = v.LANES
PANEL = 2 * LANES
ROWS = 4  # rows of a tile
U = np.uint64
_VB = U(4 * LANES)  # bytes in a float vector
_0 = np.float32(0)


def codes(q, zp):
    """(int8 codes, float32 offsets per column) of 8-bit weights q (K, M) and their zero points zp (M,)."""
    if q.dtype == np.uint8:
        return (q.astype(np.int16) - 128).astype(np.int8), (128 - zp.astype(np.float32)).astype(np.float32)
    return q.astype(np.int8), (-zp.astype(np.float32)).astype(np.float32)


def pack(q):
    """(K, M) int8 -> (panels, K, PANEL) int8, the columns past M zero."""
    K, M = q.shape
    panels = -(-M // PANEL)
    w = np.zeros((K, panels * PANEL), np.int8)
    w[:, :M] = q
    return np.ascontiguousarray(w.reshape(K, panels, PANEL).transpose(1, 0, 2))


def reference(x, q, zp, scale, bias):
    """The kernel's product in plain numpy: (x @ (q - zp)) * scale + bias, x (N, K), q (K, M) integers, zp,
    scale and bias (M,), computed in float64 and rounded once to float32."""
    d = q.astype(np.float64) - zp.astype(np.float64)
    return (x.astype(np.float64) @ d * scale.astype(np.float64)
            + bias.astype(np.float64)).astype(np.float32)


@helper
def _store2(y, c0, c1, sp, bp, mc):
    """A row's two vectors of sums of one panel, times the scale plus the bias, to its first mc columns at y."""
    v.store_first(y, v.fma(c0, v.load(sp), v.load(bp)), min(mc, LANES))
    if mc > LANES:
        v.store_first(y + _VB, v.fma(c1, v.load(sp + _VB), v.load(bp + _VB)), mc - LANES)


@helper
def _tile(xp, xs, rows, wp, K, op, has_off, sp, bp, yp, ys, mc):
    """rows (1 .. ROWS) rows x one panel (mc of its columns stored): x rows xs bytes apart, y rows ys apart;
    past ``rows`` the last row is read again (never stored)."""
    last = U(rows - 1)
    x0 = U(xp)
    x1, x2, x3 = x0 + xs * min(U(1), last), x0 + xs * min(U(2), last), x0 + xs * min(U(3), last)
    z = v.splat(_0)
    c00, c01, c10, c11, c20, c21, c30, c31 = z, z, z, z, z, z, z, z
    o0, o1 = v.load(op), v.load(op + _VB)
    w = U(wp)
    o = U(0)
    for k in range(U(K)):
        w0, w1 = v.load_i8(w), v.load_i8(w + U(LANES))
        if has_off:  # (loop-invariant: LLVM makes two loops)
            w0, w1 = v.add(w0, o0), v.add(w1, o1)
        w += U(PANEL)
        a = v.splat_load(x0 + o)
        c00, c01 = v.fma(a, w0, c00), v.fma(a, w1, c01)
        a = v.splat_load(x1 + o)
        c10, c11 = v.fma(a, w0, c10), v.fma(a, w1, c11)
        a = v.splat_load(x2 + o)
        c20, c21 = v.fma(a, w0, c20), v.fma(a, w1, c21)
        a = v.splat_load(x3 + o)
        c30, c31 = v.fma(a, w0, c30), v.fma(a, w1, c31)
        o += U(4)
    y = U(yp)
    _store2(y, c00, c01, sp, bp, mc)
    if rows > 1:
        _store2(y + U(ys), c10, c11, sp, bp, mc)
    if rows > 2:
        _store2(y + U(2) * U(ys), c20, c21, sp, bp, mc)
    if rows > 3:
        _store2(y + U(3) * U(ys), c30, c31, sp, bp, mc)


@helper
def _row2(xp, wp, K, op, has_off, sp, bp, yp, mc):
    """One row x two neighbouring panels (the second with mc - PANEL columns stored)."""
    z = v.splat(_0)
    c0, c1, c2, c3 = z, z, z, z
    o0, o1 = v.load(op), v.load(op + _VB)
    o2, o3 = v.load(op + U(PANEL * 4)), v.load(op + U(PANEL * 4) + _VB)
    wa = U(wp)
    wb = wa + U(K * PANEL)
    o = U(xp)
    for k in range(U(K)):
        a = v.splat_load(o)
        w0, w1, w2, w3 = v.load_i8(wa), v.load_i8(wa + U(LANES)), v.load_i8(wb), v.load_i8(wb + U(LANES))
        if has_off:
            w0, w1, w2, w3 = v.add(w0, o0), v.add(w1, o1), v.add(w2, o2), v.add(w3, o3)
        c0, c1, c2, c3 = v.fma(a, w0, c0), v.fma(a, w1, c1), v.fma(a, w2, c2), v.fma(a, w3, c3)
        wa += U(PANEL)
        wb += U(PANEL)
        o += U(4)
    _store2(U(yp), c0, c1, sp, bp, PANEL)
    _store2(U(yp) + U(PANEL * 4), c2, c3, U(sp) + U(PANEL * 4), U(bp) + U(PANEL * 4), mc - PANEL)


@kernel
def gemm(x, wq, off, has_off, scale, bias, y, cols, ctr):
    """y (N, M) = (x (N, K) @ (Q - zp)) * scale + bias, Q's codes packed by ``pack`` in wq, off, scale and
    bias padded to whole panels (off read only when has_off). Blocks of ROWS rows by ``cols`` columns (a
    multiple of PANEL)."""
    N, K = x.shape
    M = y.shape[1]
    xp, wp, sp, bp, yp = x.ctypes.data, wq.ctypes.data, scale.ctypes.data, bias.ctypes.data, y.ctypes.data
    opp = off.ctypes.data
    nr = (N + ROWS - 1) // ROWS
    nc = (M + cols - 1) // cols
    total = nr * nc
    me, t = start(ctr, total)
    while t < total:
        r0 = t // nc * ROWS
        rows = min(ROWS, N - r0)
        m0 = t % nc * cols
        m1 = min(M, m0 + cols)
        j = m0 // PANEL
        while j * PANEL < m1:
            mc = m1 - j * PANEL  # the columns left from this panel on
            xr, yr = U(xp) + U(r0 * K * 4), U(yp) + U((r0 * M + j * PANEL) * 4)
            wj, sj, bj = U(wp) + U(j * K * PANEL), U(sp) + U(j * PANEL * 4), U(bp) + U(j * PANEL * 4)
            oj = U(opp) + U(j * PANEL * 4)
            if rows == 1 and mc > PANEL:
                _row2(xr, wj, K, oj, has_off, sj, bj, yr, min(mc, 2 * PANEL))
                j += 2
            else:
                _tile(xr, U(K * 4), rows, wj, K, oj, has_off, sj, bj, yr, U(M * 4), min(mc, PANEL))
                j += 1
        t = finished(ctr, me, total)
    return total
