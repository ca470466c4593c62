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
The IoUs come in blocks (a few boxes against all remaining ones, see ``_nms_class``), so the cost is
about (kept boxes) x (candidates); the work budget is spent as 40 x the boxes left, each time one is kept.
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
    if r == 1:  # (a detector's scores of one class: the same, without take_along_axis's index arrays)
        order = (n - 1) - np.argsort(x[::-1], kind="stable")[::-1] if largest else np.argsort(x, kind="stable")
        idx = order[:k].astype(np.int64)
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


def _suppresses(rows, cols, iou_threshold):
    """hit[r, c]: box r of ``rows`` suppresses box c of ``cols`` (its IoU with it is > iou_threshold).

    rows, cols: (5, R) and (5, M) arrays of x0, y0, x1, y1, area. float32 throughout, in onnxruntime's order
    of operations; NaN coordinates make every comparison false.
    """
    a, b = rows[:, :, None], cols[:, None, :]
    iw = np.minimum(b[2], a[2]) - np.maximum(b[0], a[0])
    ih = np.minimum(b[3], a[3]) - np.maximum(b[1], a[1])
    inter = iw * ih
    union = b[4] + a[4] - inter
    return (iw > 0) & (ih > 0) & (union > 0) & (inter / union > iou_threshold)


def _nms_class(scores, corners, max_out, iou_threshold, score_threshold):
    """Greedy NMS of one (batch, class): the kept box indices, best first.

    A block of boxes at a time: one matrix holds the IoUs of the next few remaining boxes (best first) with
    all the remaining ones; then, in order, each of those few that is still there is kept and drops the
    boxes it overlaps. The block grows while its boxes are kept and shrinks when they drop each other, so
    few IoUs are computed for boxes that are dropped anyway.
    """
    cand = np.arange(scores.size) if score_threshold is None else np.nonzero(scores > score_threshold)[0]
    # best first; the stable sort keeps the lower index first among equal scores
    order = cand[np.argsort(-scores[cand], kind="stable")]
    # rows x0, y0, x1, y1, area of the candidates in that order
    box = np.stack([c[order] for c in corners])
    # A box of zero area never suppresses and is never suppressed (onnxruntime's rule): NaN coordinates
    # make every comparison with it false.
    box[:, ~(box[4] > 0)] = np.nan
    alive = np.ones(order.size, dtype=bool)  # not kept and not dropped yet
    live = order.size                         # how many are alive
    kept = []
    start, rows = 0, 1  # the block size: 1 at first, doubling while all its boxes are kept
    with np.errstate(divide="ignore", invalid="ignore"):  # NaN, and x / 0, compare false: no warnings
        while live and len(kept) < max_out:
            cols = start + np.flatnonzero(alive[start:])  # the boxes alive, best first
            n = max(1, min(rows, cols.size, _PAIRS // cols.size))  # the block: the first n of them
            hit = _suppresses(box[:, cols[:n]], box[:, cols], iou_threshold)
            left = np.ones(cols.size, dtype=bool)          # which of cols are still alive
            n_kept = 0
            for r in range(n):                             # box r of the block is box cols[r]
                if not left[r]:
                    continue                               # dropped by a box kept before it in this block
                if len(kept) == max_out:
                    break
                limits.spend(40 * live, "NonMaxSuppression")  # quadratic in the boxes: bounded by the budget
                kept.append(int(order[cols[r]]))
                left[r] = False
                dropped = hit[r] & left
                left ^= dropped
                live -= 1 + np.count_nonzero(dropped)
                n_kept += 1
            alive[cols] = left
            start, rows = cols[n - 1] + 1, min(_ROWS, 2 * n_kept)
    return kept


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
