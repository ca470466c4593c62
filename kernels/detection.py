"""NonMaxSuppression, compiled: the greedy loop of ``tinyrt/ops/detection.py`` without numpy's per-box overhead.

``nms`` runs the classes ``lo <= t < hi`` of the flattened (batch, class) axis; class t = b * C + c. For each:

1. the candidates: every box, or those with score > score_threshold;
2. best first, ties to the lower box index: the scores mapped to unsigned integers that sort like the
   floats (descending; -0.0 counts as 0.0, NaN goes last), then a stable radix sort of the candidates
   (which come in box order), so the order is that of the numpy op's stable argsort;
3. the corners and areas of the candidates gathered in that order (the caller computes them with the numpy
   op's ``_corners``, so they are the same float32 numbers);
4. greedy: take the first remaining box, mark dead the remaining ones whose IoU with it is > iou_threshold
   (one branch-free loop over them, which vectorises), until max_out are taken; once the dead are the
   majority, the live ones are moved to the front. The IoU is float32 in onnxruntime's order of
   operations; a box of non-positive (or NaN) area never suppresses and is never suppressed.

Work is counted as the numpy op spends it (40 x the boxes remaining, each time a box is taken) in
``work``; a class stops as soon as its count passes ``cap`` (the caller then reports the budget spent).
Outputs: row t - lo of ``out`` holds the kept box indices of class t, best first, ``counts_out[t - lo]``
of them.
"""
import numpy as np
from numba import njit

from ._jit import kernel, start, finished

_LOW = np.uint64(0xFFFFFFFF)    # the low 32 bits
_SIGN = np.uint64(0x80000000)
_ABS = np.uint64(0x7FFFFFFF)
_INF = np.uint64(0x7F800000)
_ZERO = np.uint64(0)
_BYTE = np.uint64(0xFF)
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


@njit(cache=True)
def _radix_sort(key, idx, key2, idx2, counts, n):
    """Sort key[:n] (values below 2**32) ascending and stably, idx[:n] along; key2, idx2: scratch.

    LSD radix, a byte a pass (counts: (4, 256) scratch); a pass is skipped when every key has the same
    byte there. Stable, so equal scores keep the candidates' order: the lower box index first. Returns
    the two arrays that hold the result (the inputs or the scratch ones).
    """
    counts[:] = 0
    for i in range(U(n)):
        k = key[i]
        counts[0, k & _BYTE] += 1
        counts[1, (k >> U(8)) & _BYTE] += 1
        counts[2, (k >> U(16)) & _BYTE] += 1
        counts[3, (k >> U(24)) & _BYTE] += 1
    for p in range(4):
        shift = U(8 * p)
        c = counts[p]
        if n == 0 or c[(key[0] >> shift) & _BYTE] == n:
            continue
        total = 0
        for v in range(256):  # c[v]: where the first key with byte v goes
            count = c[v]
            c[v] = total
            total += count
        for i in range(U(n)):
            k = key[i]
            v = (k >> shift) & _BYTE
            o = c[v]
            key2[o] = k
            idx2[o] = idx[i]
            c[v] = o + 1
        key, idx, key2, idx2 = key2, idx2, key, idx
    return key, idx


@njit(cache=True, error_model="numpy")  # numpy's: x / 0 gives inf or NaN, no check, so loops vectorise
def _nms_class(s, sbits, bx0, by0, bx1, by1, barea, use_thr, score_thr, iou_thr, max_out, cap, out_row,
               key, idx, key2, idx2, counts, x0, y0, x1, y1, area, order, alive):
    """One (batch, class): fills out_row, returns (kept, work). Scratch arrays have the boxes' length."""
    N = s.shape[0]
    n = 0
    for j in range(U(N)):  # no branch: every index is written, the count only moves past the candidates
        idx[n] = j
        n += (s[j] > score_thr) | (not use_thr)
    for i in range(U(n)):
        key[i] = _order_key(sbits[idx[i]])
    key, idx = _radix_sort(key, idx, key2, idx2, counts, n)
    for i in range(U(n)):
        j = idx[i]
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
def nms(x0, y0, x1, y1, area, scores, sbits, use_thr, score_thr, iou_thr, max_out, lo, hi, cap, out, counts_out,
        work, ctr):
    """Classes lo..hi-1 of scores (B * C, N) into row t - lo of out (hi - lo, max_out), counts_out and work.

    sbits: the scores' memory as uint32; x0, y0, x1, y1, area: (B, N) float32. No float arithmetic here:
    it all happens in ``_nms_class``, compiled without fast-math flags (``@kernel`` adds "contract", which
    could fuse the IoU's multiply and subtract into one FMA and change its rounding).
    """
    BC, N = scores.shape
    C = BC // x0.shape[0]
    total = hi - lo  # one block per class
    me, k = start(ctr, total)
    while k < total:
        t = lo + k
        b = t // C
        key = np.empty(N, np.uint64)
        idx = np.empty(N, np.uint64)
        key2 = np.empty(N, np.uint64)
        idx2 = np.empty(N, np.uint64)
        counts = np.empty((4, 256), np.int64)
        cx0 = np.empty(N, np.float32)
        cy0 = np.empty(N, np.float32)
        cx1 = np.empty(N, np.float32)
        cy1 = np.empty(N, np.float32)
        carea = np.empty(N, np.float32)
        order = np.empty(N, np.int64)
        alive = np.empty(N, np.int32)
        kept, w = _nms_class(scores[t], sbits[t], x0[b], y0[b], x1[b], y1[b], area[b], use_thr, score_thr,
                             iou_thr, max_out, cap, out[t - lo], key, idx, key2, idx2, counts,
                             cx0, cy0, cx1, cy1, carea, order, alive)
        counts_out[t - lo] = kept
        work[t - lo] = w
        k = finished(ctr, me, total)
    return total
