"""Detection post-processing: TopK and NonMaxSuppression.

TopK(x, k, axis): the k largest (or smallest) elements along axis and their int64 indices, best first.
Equal values keep the lower index first, so the result is deterministic (a stable sort).

NonMaxSuppression(boxes [B, N, 4], scores [B, C, N]): for every batch b and class c, greedily
    1. drop boxes whose score is not > score_threshold (when one is given),
    2. take the highest-scoring remaining box (ties: the lower box index) and output [b, c, box],
    3. drop every remaining box whose IoU with it is > iou_threshold,
    4. repeat until no box is left or max_output_boxes_per_class boxes are taken.
Boxes are [y1, x1, y2, x2] (any two opposite corners) or, with center_point_box=1, [xc, yc, w, h].
The IoU is computed in float32 exactly like onnxruntime, with boxes of zero area never suppressed.
When few pairs of boxes can overlap (spread-out boxes, or the per-class offsets of torchvision's batched
NMS), the IoUs of just those pairs are computed and the greedy choice is made from them in a few
vectorised rounds (``_nms_sparse``); otherwise the IoUs come in blocks (a few boxes against all remaining
ones, ``_nms_blocks``), at a cost of about (kept boxes) x (candidates). Either way the work budget is
spent as 40 x the boxes left, each time one is kept.
kernels/detection.py is the same greedy loop compiled (the numba path); it spends the same budget.
"""
import numpy as np

from .. import limits
from ..errors import InputError, UnsupportedError
from .registry import infers, op
from ._infer_types import INT64, first


# ---------------------------------------------------------------------------------------------- TopK


def _topk(x, k, axis, largest):
    r = x.ndim
    a = int(axis)
    if not -r <= a < r:
        raise InputError("TopK: axis %d is out of range for a tensor of rank %d" % (a, r))
    if a < 0:
        a += r
    n = x.shape[a]
    k = int(np.asarray(k).reshape(-1)[0])
    if not 0 <= k <= n:
        raise InputError("TopK: k=%d is outside [0, %d], the size of axis %d" % (k, n, a))
    if r == 1:  # (a detector's scores of one class: the same, without take_along_axis's index arrays, only
        # the k positions taken mapped back, and argsort the method: np.argsort's dispatch costs more than
        # sorting a class's 9 scores)
        if not k:  # (most classes of a detector keep no box)
            return x[:0].copy(), np.zeros(0, np.int64)
        if largest:
            idx = ((n - 1) - x[::-1].argsort(kind="stable")[::-1][:k]).astype(np.int64, copy=False)
        else:
            idx = x.argsort(kind="stable")[:k].astype(np.int64, copy=False)
        return x[idx], idx
    along = (slice(None),) * a  # the axes before ``a``, whole
    if largest:
        # Descending and stable without negating (which breaks unsigned and minimum integers):
        # sort the reversed axis ascending, read it backwards, and map positions back.
        backwards = along + (slice(None, None, -1),)
        order = (n - 1) - np.argsort(x[backwards], axis=a, kind="stable")[backwards]
    else:
        order = np.argsort(x, axis=a, kind="stable")
    idx = order[along + (slice(0, k),)].astype(np.int64)  # the first k along the axis
    return np.take_along_axis(x, idx, axis=a), idx


@op("TopK", 1)
def topk_1(X, *, k, axis=-1):
    return _topk(X, k, axis, True)


@op("TopK", 10)  # 10: k became an input
def topk_10(X, K, *, axis=-1):
    return _topk(X, K, axis, True)


@op("TopK", 11, 24)  # 11 added largest and sorted; 24: bfloat16
def topk_11(X, K, *, axis=-1, largest=1, sorted=1):
    # sorted=0 leaves the order unspecified, so returning it sorted is correct too
    return _topk(X, K, axis, int(largest))


# --------------------------------------------------------------------------------- NonMaxSuppression


def _check_nms(**attrs):
    if int(attrs.get("center_point_box", 0)) not in (0, 1):
        raise UnsupportedError("NonMaxSuppression: center_point_box must be 0 or 1, got %s"
                               % attrs.get("center_point_box"))


def _corners(boxes, center_point_box):
    """(x_min, y_min, x_max, y_max, area), float32 arrays of shape [B, N]."""
    b = boxes.astype(np.float32)
    if center_point_box:
        half_w, half_h = b[..., 2] / np.float32(2), b[..., 3] / np.float32(2)
        x0, x1 = b[..., 0] - half_w, b[..., 0] + half_w
        y0, y1 = b[..., 1] - half_h, b[..., 1] + half_h
    else:  # [y1, x1, y2, x2] with the corners in either order
        x0, x1 = np.minimum(b[..., 1], b[..., 3]), np.maximum(b[..., 1], b[..., 3])
        y0, y1 = np.minimum(b[..., 0], b[..., 2]), np.maximum(b[..., 0], b[..., 2])
    return x0, y0, x1, y1, (x1 - x0) * (y1 - y0)


_ROWS = 32           # boxes per block at most (see _nms_class)
_PAIRS = 1 << 18     # IoUs per block at most: 1 MiB per float32 temporary
_SPARSE_PAIRS = 1 << 20  # pairs that may overlap, at most, for _nms_sparse (it keeps the ones that do)
_FEW = 64            # boxes of a class at most for _nms_few (one matrix of all their IoUs)
_SAMPLE = 512        # pairs _blocks_cost tries, to judge how many overlap
_ROUNDS = 16         # rounds of _nms_sparse before the greedy blocks take the rest


def _suppresses(rows, cols, iou_threshold):
    """hit[r, c]: box r of ``rows`` suppresses box c of ``cols`` (its IoU with it is > iou_threshold).

    rows, cols: (5, R) and (5, M) arrays of x0, y0, x1, y1, area. float32 throughout, in onnxruntime's order
    of operations; NaN coordinates make every comparison false. The result is the same with rows and cols
    swapped (min, max, + and * commute), as ``_suppressions`` relies on.
    """
    a, b = rows[:, :, None], cols[:, None, :]
    iw = np.minimum(b[2], a[2]) - np.maximum(b[0], a[0])
    ih = np.minimum(b[3], a[3]) - np.maximum(b[1], a[1])
    inter = iw * ih
    union = b[4] + a[4] - inter
    return (iw > 0) & (ih > 0) & (union > 0) & (inter / union > iou_threshold)


def _nms_class(scores, corners, max_out, iou_threshold, score_threshold):
    """Greedy NMS of one (batch, class): the kept box indices, best first.

    The candidates in order (best first, ties to the lower box index), then the greedy choice made either
    from the sparse list of overlapping pairs (``_nms_sparse``, when the boxes are spread out: few pairs
    overlap) or by blocks of IoUs against all remaining boxes (``_nms_blocks``). Both give the greedy
    result and spend the same work: 40 x the boxes left each time a box is kept.
    """
    cand = np.arange(scores.size) if score_threshold is None else np.nonzero(scores > score_threshold)[0]
    # best first; the stable sort keeps the lower index first among equal scores
    order = cand[np.argsort(-scores[cand], kind="stable")]
    if max_out <= 0 or order.size == 0:
        return []
    # rows x0, y0, x1, y1, area of the candidates in that order
    box = np.stack([c[order] for c in corners])
    # A box of zero area never suppresses and is never suppressed (onnxruntime's rule): NaN coordinates make
    # every comparison with it false. For the sparse way, nor does a box whose sides are not both positive
    # (its IoU's width or height is never > 0) or whose area is infinite (its IoU is 0 or NaN).
    few = order.size <= _FEW
    with np.errstate(divide="ignore", invalid="ignore"):  # NaN, and x / 0, compare false: no warnings
        part = box[4] > 0
        if not few:
            part &= (box[4] < np.inf) & (box[2] > box[0]) & (box[3] > box[1])
        box[:, ~part] = np.nan
        positions = _nms_few(box, max_out, iou_threshold) if few else _nms_sparse(box, max_out, iou_threshold)
        if positions is None:
            positions = _nms_blocks(box, np.arange(order.size), max_out, iou_threshold)[0]
    return order[positions].tolist()


def _nms_few(box, max_out, iou_threshold):
    """The greedy choice among a few boxes (at most ``_FEW``): the kept positions.

    One matrix of every pair's IoU, its rows made Python integers (bit j: drops box j), then the greedy
    loop on those bits, with no numpy call per box.
    """
    n = box.shape[1]
    hit = np.packbits(_suppresses(box, box, iou_threshold), axis=1, bitorder="little")
    rows = [int.from_bytes(row, "little") for row in hit.tolist()] if n else []
    alive = (1 << n) - 1
    kept = []
    work = 0
    for i in range(n):
        if alive >> i & 1:
            if len(kept) == max_out:
                break
            work += bin(alive).count("1")  # the boxes left when box i is taken
            kept.append(i)
            alive &= ~rows[i] & ~(1 << i)
    limits.spend(40 * work, "NonMaxSuppression")
    return kept


def _iou_hits(x, a, b, iou_threshold):
    """_suppresses for the pairs (a[i], b[i]) of columns of x (rows x0, y0, x1, y1, area)."""
    x0, y0, x1, y1, area = x
    iw = np.minimum(x1[b], x1[a]) - np.maximum(x0[b], x0[a])
    ih = np.minimum(y1[b], y1[a]) - np.maximum(y0[b], y0[a])
    inter = iw * ih
    union = area[b] + area[a] - inter
    return (iw > 0) & (ih > 0) & (union > 0) & (inter / union > iou_threshold)


def _blocks_cost(box, iou_threshold):
    """(about how long the greedy blocks take, in ns; about how many pairs of boxes overlap).

    The overlaps are counted on a spread sample of the pairs. Boxes that overlap many others make clusters
    where each kept box drops many, so few are kept (about n / (1 + overlaps / n)) and the blocks finish
    early; each kept box costs them about 5 us + 2.5 ns x n (measured). The sparse pairs cost about 60 us
    and 25 ns a pair that may overlap: the pairs that do, and usually several times more.
    """
    n = box.shape[1]
    k = np.arange(_SAMPLE, dtype=np.int64)
    # spread over the pairs, no random state; computed in int64, indices as intp (a 32-bit board's)
    a, b = (k * 2654435761 % n).astype(np.intp), ((k * 40503 + 12345) % n).astype(np.intp)
    distinct = a != b
    a, b = a[distinct], b[distinct]
    overlaps = n * (n - 1) / 2 * np.count_nonzero(_iou_hits(box, a, b, iou_threshold)) / max(a.size, 1)
    kept = n / (1 + overlaps / n)
    return kept * (5000 + 2.5 * n), overlaps


def _suppressions(box, iou_threshold):
    """(src, dst) positions of the overlapping pairs, src < dst (src, better, suppresses dst), or None.

    The pairs that may overlap come from a sweep along x or y (whichever gives fewer): sorted by their
    low side, box a may drop only the boxes b after it whose low side is below its high side. Tighter:
    IoU <= (overlap along an axis) / (either box's side along it), as the overlap across is at most that
    box's other side and the union at least its area; so an IoU > t needs, along each axis, each box's
    low side below the other's high side less t x its own side. These bounds are taken 1% and a few
    float32 steps short of that (a float32 rounding never loses a pair), and not at all for boxes of tiny
    area (whose float32 IoU may be far off) or a tiny t. The sweep's pairs are then tested on the low
    sides' bounds across it; the bound on the high sides (each box's low side moved in by t x its side,
    below the other's high side) is left to the IoU: it would drop few more pairs (under 1% on an SSD's
    batched NMS) for two more gathers of every pair. The IoU itself is ``_suppresses``'s (symmetric in
    its two boxes).

    None when the greedy blocks should cost less (``_blocks_cost``), or for more than ``_SPARSE_PAIRS``
    pairs.
    """
    n = box.shape[1]
    blocks, overlaps = _blocks_cost(box, iou_threshold)
    if blocks < 2 * (100 * overlaps + 60000):  # the blocks cost little, or less than 4 pairs an overlap
        return None
    valid = np.flatnonzero(box[4] == box[4])  # not NaN: the boxes that take part (finite)
    m = valid.size
    best = None
    for u0, u1 in ((0, 2), (1, 3)):
        by_lo = valid[np.argsort(box[u0, valid])]
        ends = np.searchsorted(box[u0, by_lo], box[u1, by_lo], side="left")  # [i + 1, ends[i]) may overlap i
        total = int(np.maximum(ends - np.arange(1, m + 1), 0).sum())
        if best is None or total < best[0]:
            best = (total, by_lo, u0)
        if total <= 4 * m:
            break
    by_lo, u0 = best[1:3]
    v0 = 1 - u0  # the other axis
    x = box[:, by_lo]  # the boxes in sweep order: rows x0, y0, x1, y1, area
    shrink = 0.99 * float(iou_threshold) if iou_threshold >= 2.0 ** -20 else 0.0
    shrink = np.where(x[4] >= 2.0 ** -60, shrink, 0.0)
    margin = 2.0 ** -20
    # along x and y (rows 0, 1) at once, in float64: each box's high side less shrink x its side, moved out
    # by margin x its coordinates
    lo, hi = x[0:2].astype(np.float64), x[2:4].astype(np.float64)
    reach = hi - shrink * (hi - lo) + margin * (np.abs(hi) + np.abs(lo))
    ends = np.searchsorted(x[u0], reach[u0], side="left")
    partners = np.maximum(ends - np.arange(1, m + 1), 0)
    last = np.cumsum(partners)  # box i's pairs are [last[i] - partners[i], last[i]) of all pairs
    total = int(last[-1]) if m else 0
    if total > _SPARSE_PAIRS or 25 * total + 60000 > blocks:
        return None
    # a box b must start below a's reach along the other axis and a below b's (float32, rounded outwards:
    # these gathers cost less than in float64)
    v_reach = np.nextafter(reach[v0].astype(np.float32), np.float32(np.inf))
    lo_v = x[v0]
    src, dst = [], []
    i = 0
    while i < m:  # boxes [i, j) at a time: at most _PAIRS pairs (or one box's pairs)
        first = last[i] - partners[i]
        j = min(m, max(i + 1, int(np.searchsorted(last, first + _PAIRS, side="right"))))
        counts = partners[i:j]
        boxes = np.arange(i, j)
        a = np.repeat(boxes, counts)
        if a.size:  # pair k of box i (k from 0) is box i + 1 + k
            b = np.arange(a.size) + np.repeat(boxes + 1 - (last[i:j] - counts - first), counts)
            near = np.flatnonzero((lo_v[b] < v_reach[a]) & (lo_v[a] < v_reach[b]))
            a, b = a[near], b[near]
            hit = _iou_hits(x, a, b, iou_threshold)
            a, b = by_lo[a[hit]], by_lo[b[hit]]
            src.append(np.minimum(a, b))
            dst.append(np.maximum(a, b))
        i = j
    if not src:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    return np.concatenate(src), np.concatenate(dst)


def _nms_sparse(box, max_out, iou_threshold):
    """The greedy choice from the list of overlapping pairs: positions kept, or None (too many pairs).

    Rounds: a box that no undecided box before it overlaps is kept when none kept before it overlaps it;
    a box that a kept box overlaps is dropped. The first undecided box is always decided, so each round
    decides at least one box; usually a few rounds decide them all. After ``_ROUNDS`` rounds the boxes
    still undecided (long chains of boxes each dropping the next) go to the greedy blocks.
    """
    n = box.shape[1]
    pairs = _suppressions(box, iou_threshold)
    if pairs is None:
        return None
    src, dst = pairs
    state = np.zeros(n, np.int8)  # 0 undecided, 1 kept, 2 dropped
    s, d = src, dst
    for _ in range(_ROUNDS):
        blocked = np.zeros(n, bool)
        blocked[d] = True
        state[(state == 0) & ~blocked] = 1
        by_kept = state[s] == 1
        state[d[by_kept]] = 2
        live = (state[s] == 0) & (state[d] == 0)
        s, d = s[live], d[live]
        if not s.size:
            state[state == 0] = 1
            break
    undecided = np.flatnonzero(state == 0)
    spent = 0
    if undecided.size:  # the rest, greedily: they depend only on each other
        fewer = max_out - int(np.count_nonzero(state[:undecided[0]] == 1))  # kept after the first of them
        state[undecided] = 2
        if fewer > 0:  # else they all come after the max_out-th kept box
            rest, spent = _nms_blocks(box, undecided, fewer, iou_threshold)
            state[rest] = 1
    kept = np.flatnonzero(state == 1)[:max_out]
    # the work the greedy loop spends: 40 x the boxes left each time one is kept; box k of the kept is
    # taken with n - k boxes not taken, less those dropped by kept boxes before it
    k = kept.size
    rank = np.cumsum(state == 1) - 1  # a kept box's place among the kept
    by = state[src] == 1
    by &= rank[src] < k
    first = np.full(n, k, np.int64)  # the first kept box to drop each box
    np.minimum.at(first, dst[by], rank[src[by]])
    first = first[first < k]
    work = k * n - k * (k - 1) // 2 - int((k - 1 - first).sum())
    limits.spend(40 * work - spent, "NonMaxSuppression")
    return kept


def _nms_blocks(box, cols, max_out, iou_threshold):
    """Greedy NMS over the boxes ``cols`` (positions, best first): the kept positions.

    A block of boxes at a time: one matrix holds the IoUs of the next few remaining boxes (best first) with
    all the remaining ones; then, in order, each of those few that is still there is kept and drops the
    boxes it overlaps. The block grows while its boxes are kept and shrinks when they drop each other, so
    few IoUs are computed for boxes that are dropped anyway. Spends 40 x the boxes left each time a box
    is kept. Returns the kept positions and the work spent.
    """
    alive = np.ones(cols.size, dtype=bool)  # not kept and not dropped yet
    live = cols.size                         # how many are alive
    kept = []
    spent = 0
    start, rows = 0, 1  # the block size: 1 at first, doubling while all its boxes are kept
    while live and len(kept) < max_out:
        at = start + np.flatnonzero(alive[start:])  # the boxes alive, best first
        here = cols[at]
        n = max(1, min(rows, at.size, _PAIRS // at.size))  # the block: the first n of them
        hit = _suppresses(box[:, here[:n]], box[:, here], iou_threshold)
        left = np.ones(at.size, dtype=bool)            # which of them are still alive
        n_kept = 0
        for r in range(n):                             # box r of the block is box here[r]
            if not left[r]:
                continue                               # dropped by a box kept before it in this block
            if len(kept) == max_out:
                break
            limits.spend(40 * live, "NonMaxSuppression")  # quadratic in the boxes: bounded by the budget
            spent += 40 * live
            kept.append(int(here[r]))
            left[r] = False
            dropped = hit[r] & left
            left ^= dropped
            live -= 1 + np.count_nonzero(dropped)
            n_kept += 1
        alive[at] = left
        start, rows = at[n - 1] + 1, min(_ROWS, 2 * n_kept)
    return np.array(kept, np.intp), spent


def _scalar(v, dtype, default):
    if v is None:
        return default
    v = np.asarray(v).reshape(-1)
    return default if v.size == 0 else dtype(v[0])


def nms_arguments(boxes, scores, max_output_boxes_per_class, iou_threshold, score_threshold):
    """(max_out, iou_threshold, score_threshold or None), checked; the shapes checked too.

    Shared with the numba kernel's wrapper (tinyrt/kernel_wrappers/detection.py), so both paths refuse the same inputs.
    """
    if boxes.ndim != 3 or scores.ndim != 3 or boxes.shape[2] != 4 or \
            boxes.shape[0] != scores.shape[0] or boxes.shape[1] != scores.shape[2]:
        raise InputError("NonMaxSuppression: boxes must be [B, N, 4] and scores [B, C, N], got %s and %s"
                         % (boxes.shape, scores.shape))
    max_out = max(_scalar(max_output_boxes_per_class, int, 0), 0)
    iou_thr = _scalar(iou_threshold, np.float32, np.float32(0))
    if not 0 <= iou_thr <= 1:
        raise InputError("NonMaxSuppression: iou_threshold must be in [0, 1], got %s" % iou_thr)
    return max_out, iou_thr, _scalar(score_threshold, np.float32, None)


@op("NonMaxSuppression", 10, 11, check=_check_nms)  # 11: no change beyond the spec text
def nonmaxsuppression_10(boxes, scores, max_output_boxes_per_class=None, iou_threshold=None,
                         score_threshold=None, *, center_point_box=0):
    max_out, iou_thr, score_thr = nms_arguments(boxes, scores, max_output_boxes_per_class, iou_threshold,
                                                score_threshold)
    if max_out == 0:  # absent or 0: no boxes at all
        return np.zeros((0, 3), dtype=np.int64)

    x0, y0, x1, y1, area = _corners(boxes, int(center_point_box))
    scores = scores.astype(np.float32)
    rows = []
    for b in range(boxes.shape[0]):
        corners = (x0[b], y0[b], x1[b], y1[b], area[b])
        for c in range(scores.shape[1]):
            limits.spend(limits.ITERATION_COST, "NonMaxSuppression")  # classes x batches come from the data
            kept = _nms_class(scores[b, c], corners, max_out, iou_thr, score_thr)
            if kept:
                sel = np.empty((len(kept), 3), dtype=np.int64)
                sel[:, 0], sel[:, 1], sel[:, 2] = b, c, kept
                rows.append(sel)
    if not rows:
        return np.zeros((0, 3), dtype=np.int64)
    return np.concatenate(rows, axis=0)


@infers(topk_1, topk_10, topk_11)
def _topk_types(node, ins, constants):
    elem, x = first(ins)
    rank = None if x is None else [None] * len(x)
    return [(elem, rank), (INT64, rank)]


@infers(nonmaxsuppression_10)
def _nms_types(node, ins, constants):
    return [(INT64, [None, 3])]
