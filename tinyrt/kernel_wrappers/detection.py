"""NonMaxSuppression on the numba kernel (kernels/detection.py)."""
import numpy as np

from .. import limits


class _NMSKernel:
    """NonMaxSuppression on the compiled greedy loop (kernels/detection.py), for float32 boxes and scores.

    The thresholds are read and checked by the numpy op's ``nms_arguments`` and the corners computed by its
    ``_corners``, so both paths refuse the same inputs and compare the same float32 numbers. Work is spent
    as the numpy op spends it (a fixed cost per (batch, class), then 40 x the boxes left each time a box is
    kept), the kernel counting the second part. A hostile input stays bounded: the classes run in chunks
    whose worst case (40 x boxes x kept per class) fits in what is left of the budget, and a chunk of one
    class stops as soon as it passes it.
    """

    kernel_name = 'numba detection.nms'  # what tinyrt profile / trace / code show
    step_attrs = {}  # the node's attributes (set by bind)

    CHUNK_OUT = 1 << 22  # at most this many int64 slots of kept indices per chunk (32 MiB)

    def __init__(self, backend, step):
        from ..ops import detection
        self.det = detection
        self.backend = backend
        self.k = backend.k
        self.ref = step.fn

    def __call__(self, boxes, scores, max_output_boxes_per_class=None, iou_threshold=None, score_threshold=None,
                 **attrs):
        attrs = attrs or self.step_attrs  # the program calls a wrapper without them (bound here)
        args = (boxes, scores, max_output_boxes_per_class, iou_threshold, score_threshold)
        if boxes.dtype != np.float32 or scores.dtype != np.float32 or boxes.ndim != 3 or scores.ndim != 3 \
                or boxes.shape[1] >= 1 << 32:  # the kernel keeps a box index in 32 bits
            return self.ref(*args, **attrs)
        max_out, iou_thr, score_thr = self.det.nms_arguments(*args)
        B, C, N = scores.shape
        if max_out == 0 or B * C == 0:
            return np.zeros((0, 3), dtype=np.int64)
        limits.spend(B * C * limits.ITERATION_COST, "NonMaxSuppression")  # the numpy op's cost per class
        K = min(max_out, N)
        x0, y0, x1, y1, area = [np.ascontiguousarray(a) for a in
                                self.det._corners(boxes, int(attrs.get("center_point_box", 0)))]
        s = np.ascontiguousarray(scores).reshape(B * C, N)
        use_thr = score_thr is not None
        thr = score_thr if use_thr else np.float32(0)
        per_class = 40 * (N * K - K * (K - 1) // 2)  # the most one class can spend: K boxes kept of N
        rows = []
        lo = 0
        while lo < B * C:
            left = limits.current().work
            chunk = min(B * C - lo, max(1, self.CHUNK_OUT // max(K, 1)))
            if left is not None:
                chunk = min(chunk, max(1, left // max(per_class, 1)))
            hi = lo + chunk
            out = np.empty((chunk, K), np.int64)
            counts = np.zeros(chunk, np.int64)
            work = np.zeros(chunk, np.int64)
            self.backend.pool.run(self.k.detection.nms, (
                x0, y0, x1, y1, area, s, s.view(np.uint32), use_thr, thr, iou_thr, K, lo, hi,
                (1 << 62) if left is None else max(int(left), 0), out, counts, work))
            limits.spend(int(work.sum()), "NonMaxSuppression")  # raises once past the budget
            if counts.any():
                # repeats as intp: numpy 1.19 on a 32-bit board refuses int64 counts (no 'safe' cast)
                t = np.repeat(np.arange(lo, hi, dtype=np.int64), counts.astype(np.intp))
                sel = np.empty((t.size, 3), dtype=np.int64)
                sel[:, 0], sel[:, 1] = t // C, t % C
                sel[:, 2] = out[np.arange(K) < counts[:, None]]
                rows.append(sel)
            lo = hi
        if not rows:
            return np.zeros((0, 3), dtype=np.int64)
        return rows[0] if len(rows) == 1 else np.concatenate(rows, axis=0)


def _nms(backend, step, constants):
    return _NMSKernel(backend, step)
