"""The plain versions: Conv, pooling and NonMaxSuppression as you would write them to learn the math.

The ops tinyrt runs (conv.py, pool.py, detection.py and the numba kernels) are fast versions of these few
lines: channels-last memory, column phases, packed weights, blocked IoUs. These are the definitions they
are held to: tests/test_reference.py runs both kernel paths against them on random shapes. Nothing here
is registered as an op, and nothing here is fast.

Each takes explicit pads (begin..., end...) and no auto_pad or ceil_mode, which only change the pads.
"""
import itertools

import numpy as np


def _windows(xp, kernel, strides, dilations):
    """For each tap j of the kernel, the (N, C, *out) array of the pixels every output position reads
    through it: xp[n, c, o * stride + j * dilation]. Returns the list of taps (row-major) and ``out``."""
    out = [(xp.shape[2 + i] - dilations[i] * (k - 1) - 1) // strides[i] + 1 for i, k in enumerate(kernel)]
    taps = []
    for j in itertools.product(*[range(k) for k in kernel]):
        window = tuple(slice(j[i] * dilations[i], j[i] * dilations[i] + strides[i] * (out[i] - 1) + 1, strides[i])
                       for i in range(len(kernel)))
        taps.append(xp[(slice(None), slice(None)) + window])
    return taps, out


def _pad(x, pads, value):
    d = x.ndim - 2
    return np.pad(x, [(0, 0), (0, 0)] + list(zip(pads[:d], pads[d:])), mode="constant", constant_values=value)


def conv(x, w, b=None, strides=None, pads=None, dilations=None, group=1):
    """Conv: pad the input, cut out every window, multiply the windows by the filters (one matmul per group).

    x (N, C, *in), w (M, C/group, *kernel), b (M,) -> (N, M, *out)."""
    n, m, d = x.shape[0], w.shape[0], w.ndim - 2
    ones = [1] * d
    taps, out = _windows(_pad(x, pads or [0] * 2 * d, 0), w.shape[2:], strides or ones, dilations or ones)
    # columns: for each image and group, one row per (input channel, tap), one column per output pixel
    cols = np.stack(taps, axis=2).reshape(n, group, -1, int(np.prod(out)))
    y = np.matmul(w.reshape(group, m // group, -1), cols)      # (N, group, M/group, pixels)
    y = y.reshape((n, m) + tuple(out))
    return y if b is None else y + b.reshape((1, m) + (1,) * d)


def max_pool(x, kernel_shape, strides=None, pads=None, dilations=None):
    """MaxPool: the largest value of each window, taken tap by tap (padding is -inf, so it never wins).

    The running max ``m = m if t < m else t`` is what onnxruntime's vectorised loop computes, and it sets
    the NaN rule: a NaN tap replaces the maximum so far, and a later tap replaces a NaN."""
    d = len(kernel_shape)
    taps, _ = _windows(_pad(x, pads or [0] * 2 * d, -np.inf), kernel_shape, strides or [1] * d, dilations or [1] * d)
    y = taps[0]
    for t in taps[1:]:
        y = np.where(t < y, y, t)
    return y


def average_pool(x, kernel_shape, strides=None, pads=None, count_include_pad=0):
    """AveragePool: the sum of each window over the number of taps it counts: all of them with
    count_include_pad, else only those inside the input."""
    d = len(kernel_shape)
    pads, strides, ones = pads or [0] * 2 * d, strides or [1] * d, [1] * d
    sums, _ = _windows(_pad(x, pads, 0), kernel_shape, strides, ones)
    inside, _ = _windows(_pad(np.ones((1, 1) + x.shape[2:]), pads, int(count_include_pad)), kernel_shape, strides, ones)
    return (sum(sums) / sum(inside)).astype(x.dtype)


def non_max_suppression(boxes, scores, max_output_boxes_per_class=0, iou_threshold=0.0, score_threshold=None,
                        center_point_box=0):
    """NonMaxSuppression, greedily: per batch and class, keep the best box, drop the boxes that overlap it by
    more than iou_threshold, repeat. boxes [B, N, 4], scores [B, C, N] -> rows [batch, class, box] (int64)."""
    selected = []
    for b, c in itertools.product(range(scores.shape[0]), range(scores.shape[1])):
        s = scores[b, c]
        order = [i for i in np.argsort(-s, kind="stable") if score_threshold is None or s[i] > score_threshold]
        kept = []
        for i in order:
            if len(kept) == max_output_boxes_per_class:
                break
            if all(iou(boxes[b, i], boxes[b, j], center_point_box) <= iou_threshold for j in kept):
                kept.append(i)
        selected += [[b, c, i] for i in kept]
    return np.array(selected, dtype=np.int64).reshape(-1, 3)


def iou(p, q, center_point_box=0):
    """Intersection over union of two boxes, [y1, x1, y2, x2] (any two opposite corners) or, with
    center_point_box, [x_centre, y_centre, width, height]. 0 when either box has no area."""
    def corners(box):
        if center_point_box:
            return box[0] - box[2] / 2, box[1] - box[3] / 2, box[0] + box[2] / 2, box[1] + box[3] / 2
        return min(box[1], box[3]), min(box[0], box[2]), max(box[1], box[3]), max(box[0], box[2])
    (px0, py0, px1, py1), (qx0, qy0, qx1, qy1) = corners(p), corners(q)
    area_p, area_q = (px1 - px0) * (py1 - py0), (qx1 - qx0) * (qy1 - qy0)
    inter = max(0, min(px1, qx1) - max(px0, qx0)) * max(0, min(py1, qy1) - max(py0, qy0))
    return 0.0 if area_p <= 0 or area_q <= 0 else inter / (area_p + area_q - inter)
