"""NonMaxSuppression, compiled: the greedy loop of ``tinyrt/ops/detection.py`` without numpy's per-box overhead.

``nms`` runs the classes ``lo <= t < hi`` of the flattened (batch, class) axis; class t = b * C + c. For each:

1. the candidates: every box, or those with score > score_threshold;
2. best first, ties to the lower box index: one sort of 64-bit keys (the score mapped to an unsigned
   integer that orders like the float, descending, in the high half; the box index in the low half), so
   the order is that of the numpy op's stable argsort. -0.0 counts as 0.0, NaN scores go last;
3. the corners and areas of the candidates gathered in that order (the caller computes them with the numpy
   op's ``_corners``, so they are the same float32 numbers);
4. greedy: take the first remaining box, drop the remaining ones whose IoU with it is > iou_threshold, and
   compact the survivors in place (as the numpy op does with ``take``), until max_out are taken. The IoU is
   float32 in onnxruntime's order of operations; a box of non-positive (or NaN) area never suppresses and
   is never suppressed.

Work is counted as the numpy op spends it (40 x the boxes remaining, each time a box is taken) in
``work[t]``; a class stops as soon as its count passes ``cap`` (the caller then reports the budget spent).
Outputs: ``out[t, :counts[t]]``, the kept box indices of class t, best first.
"""
import numpy as np
from numba import njit, prange

from ._jit import kernel

_LOW = np.uint64(0xFFFFFFFF)    # the low 32 bits
_SIGN = np.uint64(0x80000000)
_ABS = np.uint64(0x7FFFFFFF)
_INF = np.uint64(0x7F800000)
_ZERO = np.uint64(0)
_SHIFT = np.uint64(32)
_DEAD = np.int32(0)
U = np.uint64  # unsigned indices: numba adds no negative-index wraparound, loops vectorise


@njit(cache=True)
def _order_key(bits):
    """A float32's bits (uint32) -> a uint64 below 2**32 that sorts best score first (NaN last, -0.0 as 0.0).

    Selects, no branches: the candidate loop runs without mispredictions.
    """
    u = np.uint64(bits)
    u = _ZERO if u == _SIGN else u
    asc = (_LOW - u) if (u & _SIGN) != _ZERO else (u | _SIGN)  # negative: the larger |s|, the lower
    return _LOW if (u & _ABS) > _INF else _LOW - asc


@njit(cache=True, error_model="numpy")  # numpy's: x / 0 gives inf or NaN, no check, so loops vectorise
def _nms_class(s, sbits, bx0, by0, bx1, by1, barea, use_thr, score_thr, iou_thr, max_out, cap, out_row,
               keys, x0, y0, x1, y1, area, order, alive):
    """One (batch, class): fills out_row, returns (kept, work). Scratch arrays have the boxes' length."""
    N = s.shape[0]
    n = 0
    for j in range(U(N)):  # no branch: every index is written, the count only moves past the candidates
        keys[n] = j
        n += (s[j] > score_thr) | (not use_thr)
    k = keys[:n]
    for i in range(U(n)):
        k[i] |= _order_key(sbits[k[i]]) << _SHIFT
    k.sort()
    for i in range(U(n)):
        j = k[i] & _LOW
        order[i] = j
        x0[i] = bx0[j]
        y0[i] = by0[j]
        x1[i] = bx1[j]
        y1[i] = by1[j]
        area[i] = barea[j]
        alive[i] = 1
    # [i, m): the boxes not taken yet, alive[] marking those not suppressed; live: how many are alive
    m = n
    live = n
    i = 0
    kept = 0
    work = 0
    while live > 0 and kept < max_out:
        work += 40 * live  # what the numpy op spends: 40 x the boxes it still has
        if work > cap:
            break
        out_row[kept] = order[i]
        kept += 1
        live -= 1
        ai = area[i]
        if ai > 0:  # else it suppresses nothing (NaN is not > 0 either)
            ax0, ay0, ax1, ay1 = x0[i], y0[i], x1[i], y1[i]
            # Unsigned indices (no negative-index wraparound), no branch, no reduction: this loop vectorises.
            for j in range(U(i + 1), U(m)):
                aj = area[j]
                iw = min(x1[j], ax1) - max(x0[j], ax0)
                ih = min(y1[j], ay1) - max(y0[j], ay0)
                inter = iw * ih
                union = aj + ai
                union -= inter
                hit = (aj > 0) & (iw > 0) & (ih > 0) & (union > 0) & (inter / union > iou_thr)
                alive[j] = _DEAD if hit else alive[j]
            live = 0
            for j in range(U(i + 1), U(m)):
                live += alive[j]
        i += 1
        while i < m and alive[i] == 0:
            i += 1
        if m - i >= 2 * live + 32:  # mostly dead: move the alive ones to the front
            w = 0
            for j in range(U(i), U(m)):
                if alive[j]:
                    order[w] = order[j]
                    x0[w] = x0[j]
                    y0[w] = y0[j]
                    x1[w] = x1[j]
                    y1[w] = y1[j]
                    area[w] = area[j]
                    alive[w] = 1
                    w += 1
            i = 0
            m = w
    return kept, work


@kernel
def nms(x0, y0, x1, y1, area, scores, sbits, use_thr, score_thr, iou_thr, max_out, lo, hi, cap, out, counts, work):
    """Classes lo..hi-1 of scores (B * C, N) into row t - lo of out (hi - lo, max_out), counts and work.

    sbits: the scores' memory as uint32; x0, y0, x1, y1, area: (B, N) float32. No float arithmetic here:
    it all happens in ``_nms_class``, compiled without fast-math flags (``@kernel`` may add "contract",
    which would fuse the IoU's multiply and subtract into an FMA and change its rounding).
    """
    BC, N = scores.shape
    C = BC // x0.shape[0]
    for t in prange(lo, hi):
        b = t // C
        keys = np.empty(N, np.uint64)
        cx0 = np.empty(N, np.float32)
        cy0 = np.empty(N, np.float32)
        cx1 = np.empty(N, np.float32)
        cy1 = np.empty(N, np.float32)
        carea = np.empty(N, np.float32)
        order = np.empty(N, np.int64)
        alive = np.empty(N, np.int32)
        kept, w = _nms_class(scores[t], sbits[t], x0[b], y0[b], x1[b], y1[b], area[b], use_thr, score_thr,
                             iou_thr, max_out, cap, out[t - lo], keys, cx0, cy0, cx1, cy1, carea, order, alive)
        counts[t - lo] = kept
        work[t - lo] = w
