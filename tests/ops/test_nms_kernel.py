"""NonMaxSuppression on both paths: the numba kernel (kernels/detection.py) and the numpy op, against onnxruntime.

Outputs must be identical, not close: they are box indices. The random cases are built to hit every rule
that could tell two implementations apart: score ties (few distinct scores, -0.0 next to 0.0), duplicate
boxes, zero-area boxes, corners given in either order, center_point_box=1 with zero or negative sizes,
boxes on an integer grid (so IoUs land exactly on thresholds like 1/2 and 1/3), scores equal to the
score threshold, iou_threshold 0 and 1, max_output_boxes_per_class 0, 1 and huge, batches of two with
several classes, and 2000 boxes with hundreds kept per class. Then the cases that tell the numpy op's two
ways apart (a few boxes, sparse pairs, greedy blocks): torchvision's batched NMS (per-class offsets), chains of boxes
each dropping the next, nested boxes at the threshold (where its bound on the pairs is tight), tiny boxes
and thresholds, clusters, and each way forced.

Each case runs through onnxruntime, tinyrt on the numba path, tinyrt on the numpy path, and tinyrt as the
environment chooses (TINYRT_KERNELS: CI runs the suite once with it set to numpy). The numba path is
skipped only when numba is not installed. Also checked: the numba wrapper spends exactly the work budget
the numpy op spends, and both refuse the same hostile input (quadratic work past the budget).
"""
import importlib.util

import numpy as np
import pytest

import tinyrt
from oracle import make_model, ort_run, ort_session
from tinyrt import kernel_wrappers, limits
from tinyrt.ops.detection import nonmaxsuppression_10

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

HAVE_NUMBA = importlib.util.find_spec("numba") is not None
needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed: no compiled NMS kernel to test")
PATHS = [pytest.param("numba", marks=needs_numba), "numpy", None]  # None: as TINYRT_KERNELS says


# ------------------------------------------------------------------------------------------- helpers


def _model(center_point_box, n_inputs):
    names = ["boxes", "scores", "max_out", "iou", "score"][:n_inputs]
    types = [TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.INT64, TensorProto.FLOAT, TensorProto.FLOAT]
    node = helper.make_node("NonMaxSuppression", names, ["selected"], center_point_box=center_point_box)
    return make_model([node], {n: (t, None) for n, t in zip(names, types)}, {"selected": TensorProto.INT64},
                      opset=11)


def _feeds(boxes, scores, max_out, iou, score):
    values = [boxes, scores,
              None if max_out is None else np.array([max_out], np.int64),
              None if iou is None else np.array([iou], np.float32),
              None if score is None else np.array([score], np.float32)]
    while values[-1] is None:
        values.pop()
    assert all(v is not None for v in values), "give the inputs before the last one given"
    return dict(zip(["boxes", "scores", "max_out", "iou", "score"], values))


def _tinyrt(data, kernels, threads=1):
    options = tinyrt.SessionOptions()
    options.kernels = kernels
    options.intra_op_num_threads = threads
    sess = tinyrt.InferenceSession(data, options)
    if kernels is not None:
        assert sess.kernels.name == kernels
    if sess.kernels.name == "numba":  # the kernel, not the numpy op behind a wrapper that fell back
        assert isinstance(sess.plan.steps[0].fn, kernel_wrappers.detection._NMSKernel)
    return sess


def _onnxruntime(data, feeds):
    return ort_run(data, feeds)[0]


def check(boxes, scores, max_out=None, iou=None, score=None, center_point_box=0, kernels="numba", threads=(1,)):
    """tinyrt on ``kernels`` == onnxruntime, exactly; returns the selected rows."""
    feeds = _feeds(boxes, scores, max_out, iou, score)
    data = _model(center_point_box, len(feeds))
    expected = _onnxruntime(data, feeds)
    assert expected.dtype == np.int64 and expected.ndim == 2 and expected.shape[1] == 3
    for t in threads:
        got = _tinyrt(data, kernels, t).run(None, feeds)[0]
        assert got.dtype == expected.dtype and got.shape == expected.shape, (got.shape, expected.shape)
        if not np.array_equal(got, expected):
            bad = np.flatnonzero((got != expected).any(axis=1))[0]
            raise AssertionError("row %d of %d: tinyrt (%s, %d threads) %s, onnxruntime %s"
                                 % (bad, len(expected), kernels, t, got[bad].tolist(), expected[bad].tolist()))
    return expected


def _boxes(rng, B, N, center_point_box=0, grid=False):
    """[B, N, 4] float32 with duplicates, zero-area boxes and (corners) swapped corners."""
    if grid:  # small integers: IoUs like 1/2, 1/3, 2/7 exactly, and many exact ties
        lo = rng.integers(0, 6, (B, N, 2))
        size = rng.integers(0, 4, (B, N, 2))
    else:
        lo = rng.uniform(0, 100, (B, N, 2))
        size = rng.uniform(0, 25, (B, N, 2))
    lo, size = lo.astype(np.float32), size.astype(np.float32)
    size[rng.random((B, N, 2)) < 0.05] = 0  # zero width or height
    if center_point_box:
        size[rng.random((B, N, 2)) < 0.03] *= -1  # negative sizes: such boxes suppress nothing
        boxes = np.concatenate([lo[..., ::-1] + size[..., ::-1] / 2, size[..., ::-1]], axis=2)  # [xc, yc, w, h]
    else:
        boxes = np.concatenate([lo, lo + size], axis=2)  # [y1, x1, y2, x2]
        for axis in (0, 1):  # either diagonal: swap y1/y2, x1/x2 on some boxes
            flip = rng.random((B, N)) < 0.3
            a, b = boxes[..., axis].copy(), boxes[..., axis + 2].copy()
            boxes[..., axis] = np.where(flip, b, a)
            boxes[..., axis + 2] = np.where(flip, a, b)
    dup = rng.integers(0, N, (B, N // 10))  # identical boxes
    for b in range(B):
        boxes[b, dup[b]] = boxes[b, rng.integers(0, N, dup.shape[1])]
    return np.ascontiguousarray(boxes, dtype=np.float32)


def _scores(rng, B, C, N, levels=None):
    """[B, C, N] float32; with ``levels``, only that many distinct values (ties everywhere)."""
    if levels:
        s = rng.integers(0, levels, (B, C, N)) / np.float32(levels)
    else:
        s = rng.random((B, C, N))
    s = s.astype(np.float32)
    s[rng.random((B, C, N)) < 0.02] = -0.0  # -0.0 ties with 0.0 (onnxruntime compares the floats)
    s[rng.random((B, C, N)) < 0.02] = 0.0
    s[rng.random((B, C, N)) < 0.02] *= -1   # negative scores, below any usual threshold
    return s


def _case(seed):
    """One random case: (boxes, scores, max_out, iou, score, center_point_box)."""
    rng = np.random.default_rng(seed)
    B = int(rng.integers(1, 3))
    C = int(rng.integers(1, 5))
    N = int(rng.choice([1, 2, 7, 40, 150]))
    center = int(rng.random() < 0.3)
    grid = rng.random() < 0.4
    boxes = _boxes(rng, B, N, center, grid)
    scores = _scores(rng, B, C, N, levels=int(rng.choice([2, 5, 0])))
    max_out = int(rng.choice([0, 1, 3, N, 10 ** 9, -5]))
    iou = float(rng.choice([0.0, 1.0, 0.5, 1 / 3, 0.25, rng.random()]))
    # absent, negative, 0 (every -0.0 and 0.0 is cut), a score level (equal scores are cut), random
    score = rng.choice([None, -1.0, 0.0, 0.4, rng.random()])
    n_inputs = int(rng.integers(3, 6)) if score is None else 5
    if n_inputs == 3:
        iou = None
    return boxes, scores, max_out, iou, None if score is None else float(score), center


# --------------------------------------------------------------------------------------------- cases


@pytest.mark.parametrize("kernels", PATHS)
@pytest.mark.parametrize("seed", range(40))
def test_random_cases_match_onnxruntime(seed, kernels):
    boxes, scores, max_out, iou, score, center = _case(seed)
    check(boxes, scores, max_out, iou, score, center_point_box=center, kernels=kernels)


@pytest.mark.parametrize("kernels", PATHS)
@pytest.mark.parametrize("center", [0, 1])
@pytest.mark.parametrize("score", [None, 0.3])
def test_many_boxes_hundreds_kept(center, score, kernels):
    rng = np.random.default_rng(10 + center)
    N = 2000
    boxes = _boxes(rng, 2, N, center)
    scores = _scores(rng, 2, 3, N, levels=50)  # 50 levels over 2000 boxes: long runs of equal scores
    out = check(boxes, scores, max_out=1500, iou=0.45, score=score, center_point_box=center, kernels=kernels)
    kept = np.bincount(out[:, 0] * 3 + out[:, 1], minlength=6)
    assert kept.min() >= 100, kept  # hundreds kept per (batch, class)


@needs_numba
@pytest.mark.parametrize("seed", range(6))
def test_threads_give_the_same_rows(seed):
    rng = np.random.default_rng(100 + seed)
    boxes = _boxes(rng, 2, 300)
    scores = _scores(rng, 2, 7, 300, levels=10)
    check(boxes, scores, max_out=120, iou=0.3, score=0.05, kernels="numba", threads=(1, 2, 3))


@pytest.mark.parametrize("kernels", PATHS)
def test_iou_threshold_edges(kernels):
    rng = np.random.default_rng(7)
    boxes = _boxes(rng, 1, 200, grid=True)
    scores = _scores(rng, 1, 2, 200, levels=4)
    for iou in (0.0, 1.0, 0.5, 1 / 3):
        check(boxes, scores, max_out=500, iou=iou, kernels=kernels)
    # iou=0: any overlap suppresses; iou=1: nothing does (an IoU is never > 1), zero-area boxes included
    out = check(boxes, scores, max_out=500, iou=1.0, kernels=kernels)
    assert len(out) == 2 * 200


@pytest.mark.parametrize("kernels", PATHS)
def test_identical_boxes_and_scores_keep_the_lowest_index(kernels):
    boxes = np.tile(np.array([[[0, 0, 2, 2]]], np.float32), (1, 9, 1))
    boxes[0, 4] = [5, 5, 5, 9]  # zero area: never suppressed, never suppresses
    scores = np.full((1, 2, 9), 0.5, np.float32)
    scores[0, 1, 0] = -0.0
    scores[0, 1, 1:] = 0.0
    out = check(boxes, scores, max_out=9, iou=0.5, kernels=kernels)
    assert out.tolist() == [[0, 0, 0], [0, 0, 4], [0, 1, 0], [0, 1, 4]]


@pytest.mark.parametrize("kernels", PATHS)
def test_max_output_boxes_per_class(kernels):
    rng = np.random.default_rng(3)
    boxes, scores = _boxes(rng, 2, 60), _scores(rng, 2, 3, 60)
    assert len(check(boxes, scores, max_out=0, iou=0.5, kernels=kernels)) == 0
    assert len(check(boxes, scores, max_out=-3, iou=0.5, kernels=kernels)) == 0
    assert len(check(boxes, scores, kernels=kernels)) == 0  # absent: no boxes
    assert len(check(boxes, scores, max_out=1, iou=0.5, kernels=kernels)) == 6
    check(boxes, scores, max_out=2 ** 62, iou=0.5, score=0.5, kernels=kernels)


@pytest.mark.parametrize("kernels", PATHS)
def test_empty_inputs(kernels):
    check(np.zeros((1, 0, 4), np.float32), np.zeros((1, 3, 0), np.float32), max_out=5, iou=0.5, kernels=kernels)
    check(np.zeros((2, 5, 4), np.float32), np.zeros((2, 0, 5), np.float32), max_out=5, iou=0.5, kernels=kernels)


# ---------------------------------------------------------------- the kernel against the numpy op alone


def _both_paths(boxes, scores, max_out, iou, score, center=0, threads=1):
    """(numba rows, numpy rows) for a one-node model, run as sessions (no onnxruntime)."""
    feeds = _feeds(boxes, scores, max_out, iou, score)
    data = _model(center, len(feeds))
    return (_tinyrt(data, "numba", threads).run(None, feeds)[0], _tinyrt(data, "numpy").run(None, feeds)[0])


@needs_numba
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf - inf in the numpy op
@pytest.mark.parametrize("seed", range(8))
def test_kernel_matches_numpy_op_with_nan_and_inf(seed):
    # onnxruntime's order for NaN scores is whatever its heap does; tinyrt's is defined (NaN last, by
    # index), and both of tinyrt's paths must agree on it, and on boxes with NaN or infinite corners
    rng = np.random.default_rng(200 + seed)
    N = 120
    boxes = _boxes(rng, 2, N, center_point_box=seed % 2)
    scores = _scores(rng, 2, 3, N, levels=6)
    scores[rng.random(scores.shape) < 0.05] = np.nan
    scores[rng.random(scores.shape) < 0.03] = np.inf
    scores[rng.random(scores.shape) < 0.03] = -np.inf
    boxes[rng.random(boxes.shape) < 0.02] = np.nan
    boxes[rng.random(boxes.shape) < 0.02] = np.inf
    boxes[rng.random(boxes.shape) < 0.02] = -np.inf
    for score in (None, 0.2):
        got, ref = _both_paths(boxes, scores, 50, 0.4, score, center=seed % 2)
        np.testing.assert_array_equal(got, ref)


@needs_numba
def test_kernel_chunks_give_the_same_rows(monkeypatch):
    # the wrapper runs the classes in chunks (bounded output buffer, bounded work per chunk)
    rng = np.random.default_rng(5)
    boxes, scores = _boxes(rng, 2, 200), _scores(rng, 2, 5, 200)
    whole = check(boxes, scores, max_out=150, iou=0.5, score=0.1)
    monkeypatch.setattr(kernel_wrappers.detection._NMSKernel, "CHUNK_OUT", 300)  # 2 classes per chunk
    for threads in (1, 2):
        got, ref = _both_paths(boxes, scores, 150, 0.5, 0.1, threads=threads)
        np.testing.assert_array_equal(got, whole)
        np.testing.assert_array_equal(ref, whole)


def _work_spent(data, feeds, kernels):
    spent = []

    def hook(step, inputs, compute):
        before = limits.current().work
        out = compute()
        spent.append(before - limits.current().work)
        return out

    sess = _tinyrt(data, kernels)
    out = sess.run_with_hook(None, feeds, hook)[0]
    return out, spent


@needs_numba
def test_kernel_spends_the_budget_the_numpy_op_spends():
    rng = np.random.default_rng(9)
    boxes, scores = _boxes(rng, 2, 500), _scores(rng, 2, 4, 500, levels=20)
    feeds = _feeds(boxes, scores, 300, 0.5, 0.2)
    data = _model(0, len(feeds))
    got, spent_numba = _work_spent(data, feeds, "numba")
    ref, spent_numpy = _work_spent(data, feeds, "numpy")
    np.testing.assert_array_equal(got, ref)
    assert spent_numba == spent_numpy and spent_numpy[0] > 2 * 4 * limits.ITERATION_COST


@pytest.mark.parametrize("kernels", PATHS)
def test_quadratic_work_past_the_budget_is_refused(kernels):
    # 8000 boxes that do not overlap, all kept: the numpy op spends 40 x 8000^2 / 2 = 1.28e9 bytes of work,
    # over the 1 GiB budget of a small model; 5000 such boxes (5.0e8) are under it. Both paths agree.
    n = 8000
    x = np.arange(n, dtype=np.float32) * 2
    boxes = np.stack([np.zeros(n, np.float32), x, np.ones(n, np.float32), x + 1], axis=1)[None]
    scores = np.linspace(1, 0, n, dtype=np.float32)[None, None]
    feeds = _feeds(boxes, scores, n, 0.5, None)
    data = _model(0, len(feeds))
    with pytest.raises(limits.LimitError, match="NonMaxSuppression"):
        _tinyrt(data, kernels).run(None, feeds)
    small = _feeds(boxes[:, :5000], scores[:, :, :5000], n, 0.5, None)
    assert len(_tinyrt(data, kernels).run(None, small)[0]) == 5000


def test_numpy_op_exact_half_iou_is_not_suppressed():
    # the numpy op itself (no session), the reference the kernel is held to: the IoU must be > the threshold
    boxes = np.array([[[0, 0, 1, 1], [0, 0, 1, 2], [0, 0, 1, 3], [2, 2, 3, 3]]], np.float32)
    scores = np.array([[[0.9, 0.8, 0.7, 0.6]]], np.float32)
    # IoU(0, 1) = 1/2 exactly: not > 0.5, kept; IoU(1, 2) = 2/3 > 0.5: box 2 suppressed by box 1
    out = nonmaxsuppression_10(boxes, scores, np.array([10]), np.array([0.5], np.float32))
    assert out.tolist() == [[0, 0, 0], [0, 0, 1], [0, 0, 3]]


def _iou_float32(a, b, center_point_box):
    """onnxruntime's IoU of two boxes, float32 step by step (to put thresholds right on it)."""
    f = np.float32

    def corners(box):
        if center_point_box:
            hw, hh = box[2] / f(2), box[3] / f(2)
            return box[0] - hw, box[1] - hh, box[0] + hw, box[1] + hh
        return min(box[1], box[3]), min(box[0], box[2]), max(box[1], box[3]), max(box[0], box[2])

    ax0, ay0, ax1, ay1 = corners(a)
    bx0, by0, bx1, by1 = corners(b)
    inter = f(min(ax1, bx1) - max(ax0, bx0)) * f(min(ay1, by1) - max(ay0, by0))
    union = f((ax1 - ax0) * (ay1 - ay0)) + f((bx1 - bx0) * (by1 - by0))
    return f(inter / f(union - inter))


@pytest.mark.parametrize("kernels", PATHS)
@pytest.mark.parametrize("center", [0, 1])
def test_thresholds_on_the_exact_float32_iou(center, kernels):
    # iou_threshold set to a pair's float32 IoU and to the floats just around it: one rounding step
    # different anywhere in the IoU (the areas, the union, the division) changes what is kept
    rng = np.random.default_rng(40 + center)
    feeds_list = []
    for _ in range(60):
        boxes = _boxes(rng, 1, 2, center)
        boxes[0, 1, :2] = boxes[0, 0, :2] + rng.uniform(0, 4, 2).astype(np.float32)  # overlapping, mostly
        iou = _iou_float32(boxes[0, 0], boxes[0, 1], center)
        if not 0 < iou < 1:
            continue
        scores = np.array([[[0.9, 0.8]]], np.float32)
        for t in (iou, np.nextafter(iou, np.float32(0)), np.nextafter(iou, np.float32(1))):
            feeds_list.append(_feeds(boxes, scores, 2, t, None))
    data = _model(center, 4)
    sess = _tinyrt(data, kernels)
    oracle = ort_session(data)
    kept = []
    for feeds in feeds_list:
        expected = oracle.run(None, feeds)[0]
        np.testing.assert_array_equal(sess.run(None, feeds)[0], expected)
        kept.append(len(expected))
    assert len(feeds_list) > 100 and 1 in kept and 2 in kept  # both outcomes happen


# ------------------------------------------------- the numpy op's two ways: sparse pairs, greedy blocks
# The numpy op chooses the greedy choice from the sparse list of overlapping pairs (spread-out boxes, the
# per-class offsets of torchvision's batched NMS) or by blocks of IoUs (clusters), and the sparse pairs
# leave out pairs that cannot reach the threshold. These cases aim at that: each against onnxruntime.


def _batched(rng, n, classes=91, size=320):
    """torchvision's batched NMS as its SSD exports it: boxes offset by class x (max coordinate + 1)."""
    lo = rng.uniform(-20, size, (n, 2)).astype(np.float32)
    wh = rng.uniform(10, size * 0.9, (n, 2)).astype(np.float32)
    boxes = np.clip(np.concatenate([lo, lo + wh], axis=1), 0, size).astype(np.float32)
    cls = rng.integers(0, classes, n)
    offset = (cls * np.float32(size + 1)).astype(np.float32)[:, None]
    return (boxes + offset).astype(np.float32)[None]


@pytest.mark.parametrize("kernels", PATHS)
@pytest.mark.parametrize("seed", range(3))
def test_batched_nms_with_class_offsets(seed, kernels):
    rng = np.random.default_rng(300 + seed)
    boxes = _batched(rng, 1500)
    scores = _scores(rng, 1, 1, 1500, levels=[0, 40, 7][seed])
    out = check(boxes, scores, max_out=10 ** 6, iou=0.55, kernels=kernels)
    assert 300 < len(out) < 1500


@pytest.mark.parametrize("kernels", PATHS)
@pytest.mark.parametrize("levels", [0, 3])
def test_chains_of_boxes_each_dropping_the_next(levels, kernels):
    # box i overlaps box i + 1 above the threshold and box i + 2 below it: kept, dropped, kept, ... a
    # chain that takes the numpy op's sparse rounds one pair of boxes at a time (past their count)
    rng = np.random.default_rng(11 + levels)
    n = 300
    x = np.arange(n, dtype=np.float32) * np.float32(3)
    boxes = np.stack([np.zeros(n, np.float32), x, np.full(n, 10, np.float32), x + 10], axis=1)[None]
    boxes = np.concatenate([boxes, boxes + np.float32(50)], axis=1)  # and a second chain, two by two
    scores = np.linspace(1, 0.1, 2 * n, dtype=np.float32)[None, None]
    if levels:
        scores = np.round(scores * levels) / levels
    scores = scores.astype(np.float32)
    out = check(boxes, scores, max_out=10 ** 6, iou=0.5, kernels=kernels)
    assert len(out) >= n
    check(boxes, scores[:, :, ::-1].copy(), max_out=200, iou=0.5, kernels=kernels)  # chains the other way
    check(boxes[:, rng.permutation(2 * n)], scores, max_out=10 ** 6, iou=0.5, kernels=kernels)


@pytest.mark.parametrize("kernels", PATHS)
@pytest.mark.parametrize("offset", [0.0, 3.0e4, 2.0e6])
def test_nested_boxes_flush_at_the_threshold(offset, kernels):
    # box 1 inside box 0, flush with one of its sides and as tall: IoU = w1 / w0, the most an overlap of w1
    # allows, so the numpy op's bound on the pairs is tight here; thresholds on the float32 IoU and one
    # step either side, far from the origin too (large coordinates, small boxes: the bound's margin)
    rng = np.random.default_rng(int(offset) % 1000 + 1)
    feeds_list = []
    for _ in range(40):
        w0, w1 = sorted(rng.uniform(0.5, 20, 2).astype(np.float32))[::-1]
        h = np.float32(rng.uniform(0.5, 20))
        y, x = np.float32(offset + rng.uniform(0, 50)), np.float32(offset + rng.uniform(0, 50))
        left = rng.random() < 0.5
        x1 = x if left else np.float32(x + w0 - w1)
        b0, b1 = [y, x, y + h, x + w0], [y, x1, y + h, x1 + w1]
        if rng.random() < 0.5:  # along y instead
            b0, b1 = [b0[1], b0[0], b0[3], b0[2]], [b1[1], b1[0], b1[3], b1[2]]
        boxes = np.array([[b0, b1, [y - 100, x - 100, y - 90, x - 90]]], np.float32)
        iou = _iou_float32(boxes[0, 0], boxes[0, 1], 0)
        if not 0 < iou < 1:
            continue
        for t in (iou, np.nextafter(iou, np.float32(0)), np.nextafter(iou, np.float32(1))):
            feeds_list.append(_feeds(boxes, np.array([[[0.9, 0.8, 0.7]]], np.float32), 3, t, None))
    data = _model(0, 4)
    sess = _tinyrt(data, kernels)
    oracle = ort_session(data)
    kept = []
    for feeds in feeds_list:
        expected = oracle.run(None, feeds)[0]
        np.testing.assert_array_equal(sess.run(None, feeds)[0], expected)
        kept.append(len(expected))
    assert len(feeds_list) > 90 and 2 in kept and 3 in kept


@pytest.mark.parametrize("kernels", PATHS)
def test_tiny_boxes_and_tiny_thresholds(kernels):
    # areas that underflow float32 (0: never suppressed) or nearly (their IoU is far from exact), tiny
    # thresholds: the numpy op takes no shortcut on such pairs
    rng = np.random.default_rng(17)
    for scale in (1e-19, 1e-21, 1e-22, 3e-23, 1e-3):
        boxes = _boxes(rng, 1, 120, grid=True) * np.float32(scale)
        boxes[:, ::2] *= np.float32(1e12)  # some big, some tiny: their IoUs are tiny
        scores = _scores(rng, 1, 2, 120, levels=5)
        for iou in (0.0, 1e-38, 1e-30, 1e-12, 1e-7, 1e-5, 0.3, 0.6):
            check(boxes, scores, max_out=500, iou=iou, kernels=kernels)


@pytest.mark.parametrize("kernels", PATHS)
@pytest.mark.parametrize("spread", [2.0, 30.0, 400.0])
def test_clusters_of_boxes(spread, kernels):
    # many boxes around a few places (a one-class detector before NMS): the numpy op's blocks; spread out,
    # its sparse pairs; in between, either
    rng = np.random.default_rng(int(spread))
    n = 2500
    centers = rng.uniform(0, 1000, (12, 2))
    lo = centers[rng.integers(0, 12, n)] + rng.normal(0, spread, (n, 2))
    boxes = np.concatenate([lo, lo + rng.uniform(20, 80, (n, 2))], axis=1).astype(np.float32)[None]
    scores = _scores(rng, 1, 2, n, levels=30)
    for iou in (0.0, 0.3, 0.7, 0.95):
        check(boxes, scores, max_out=3000, iou=iou, score=0.1, kernels=kernels)


@pytest.mark.parametrize("way", ["few", "sparse", "blocks", "rounds"])
def test_numpy_op_ways_agree(way, monkeypatch):
    # the numpy op forced one way for every class: one matrix of all IoUs (its way for a few boxes), sparse
    # pairs, blocks, or sparse with one round (the rest by blocks), on random cases, clusters and chains;
    # rows and work as onnxruntime and the numba path
    from tinyrt.ops import detection
    monkeypatch.setattr(detection, "_FEW", 1000 if way == "few" else 0)
    if way == "sparse":
        monkeypatch.setattr(detection, "_blocks_cost", lambda *a: (float("inf"), 0))
    elif way == "blocks":
        monkeypatch.setattr(detection, "_SPARSE_PAIRS", -1)
    else:
        monkeypatch.setattr(detection, "_ROUNDS", 1)
        monkeypatch.setattr(detection, "_blocks_cost", lambda *a: (float("inf"), 0))
    for seed in range(12):
        boxes, scores, max_out, iou, score, center = _case(500 + seed)
        check(boxes, scores, max_out, iou, score, center_point_box=center, kernels="numpy")
    rng = np.random.default_rng(1)
    check(_batched(rng, 600), _scores(rng, 1, 2, 600, levels=9), 10 ** 6, 0.5, None, kernels="numpy")
    lo = rng.normal(100, 5, (400, 2))
    boxes = np.concatenate([lo, lo + 40], axis=1).astype(np.float32)[None]
    check(boxes, _scores(rng, 1, 1, 400, levels=4), 50, 0.6, 0.2, kernels="numpy")
    if HAVE_NUMBA:
        feeds = _feeds(boxes, _scores(rng, 1, 3, 400, levels=9), 300, 0.3, None)
        data = _model(0, len(feeds))
        got, spent_numba = _work_spent(data, feeds, "numba")
        ref, spent_numpy = _work_spent(data, feeds, "numpy")
        np.testing.assert_array_equal(got, ref)
        assert spent_numba == spent_numpy


@needs_numba
@pytest.mark.parametrize("case", ["chains", "batched", "clusters"])
def test_kernel_spends_the_budget_the_numpy_op_spends_either_way(case):
    rng = np.random.default_rng(23)
    if case == "chains":
        x = np.arange(200, dtype=np.float32) * np.float32(3)
        boxes = np.stack([np.zeros(200, np.float32), x, np.full(200, 10, np.float32), x + 10], axis=1)[None]
        scores = np.linspace(1, 0.1, 200, dtype=np.float32)[None, None]
    elif case == "batched":
        boxes, scores = _batched(rng, 1000), _scores(rng, 1, 2, 1000, levels=20)
    else:
        lo = rng.normal(100, 8, (1000, 2))
        boxes = np.concatenate([lo, lo + 40], axis=1).astype(np.float32)[None]
        scores = _scores(rng, 1, 2, 1000, levels=20)
    feeds = _feeds(boxes, scores, 700, 0.45, None)
    data = _model(0, len(feeds))
    got, spent_numba = _work_spent(data, feeds, "numba")
    ref, spent_numpy = _work_spent(data, feeds, "numpy")
    np.testing.assert_array_equal(got, ref)
    assert spent_numba == spent_numpy


def _anchors(rng, n, classes, size=320, jitter=3.0):
    """An SSD's boxes before NMS, as torchvision's batched NMS sees them: a few anchor shapes on a grid,
    moved a little (many exact duplicates when jitter is 0), clipped to the picture, then offset by
    class x (max coordinate + 1): hundreds of boxes of a class overlap along either axis."""
    shapes = np.array([[37, 110], [64, 64], [110, 37], [26, 110], [211, 113], [317, 113], [64, 40]], np.float32)
    wh = shapes[rng.integers(0, len(shapes), n)]
    center = rng.integers(0, 20, (n, 2)) * np.float32(size / 19) + rng.normal(0, jitter, (n, 2)) * (jitter > 0)
    boxes = np.clip(np.concatenate([center - wh / 2, center + wh / 2], axis=1), 0, size).astype(np.float32)
    cls = rng.integers(0, classes, n)
    offset = (cls * np.float32(size + 1)).astype(np.float32)[:, None]
    return (boxes + offset).astype(np.float32)[None]


def _pairs_case(rng, kind, n):
    if kind == "anchors":
        return _anchors(rng, n, int(rng.choice([1, 3, 18])), jitter=float(rng.choice([0.0, 3.0, 30.0])))
    if kind == "batched":
        return _batched(rng, n, classes=int(rng.choice([2, 10, 91])))
    boxes = _boxes(rng, 1, n, grid=kind == "grid")
    if kind == "wide":  # long thin boxes along one axis, many sizes
        boxes = boxes * np.float32(rng.uniform(0.1, 10)) + np.float32(rng.uniform(-1e4, 1e4))
        boxes[0, :, 3] += rng.uniform(0, 3000, n).astype(np.float32)
    return boxes


@pytest.mark.parametrize("kind", ["anchors", "batched", "random", "grid", "wide"])
def test_numpy_sparse_pairs_are_exactly_the_overlaps(kind, monkeypatch):
    # the numpy op's list of overlapping pairs (its sweep and the bounds it tests across it), forced for
    # every class, against every pair's IoU (_suppresses on all pairs: the exhaustive answer); with
    # NaN and zero-area boxes, duplicates, and thresholds 0, 1, tiny and exact; then the op's rows against
    # onnxruntime on the same boxes
    from tinyrt.ops import detection
    monkeypatch.setattr(detection, "_blocks_cost", lambda *a: (float("inf"), 0))
    seen = []
    found = detection._suppressions

    def spy(box, iou_threshold):
        pairs = found(box, iou_threshold)
        seen.append((box.copy(), iou_threshold, pairs))
        return pairs
    monkeypatch.setattr(detection, "_suppressions", spy)
    rng = np.random.default_rng(["anchors", "batched", "random", "grid", "wide"].index(kind))
    for case in range(10):
        n = int(rng.choice([70, 300, 1100]))
        boxes = _pairs_case(rng, kind, n)
        if case % 3 == 1:
            boxes[0, rng.random(n) < 0.05] = np.nan
            flat = rng.random(n) < 0.05
            boxes[0, flat, 2] = boxes[0, flat, 0]  # zero height
        if case % 4 == 2:  # duplicates of other boxes
            boxes[0, rng.integers(0, n, n // 5)] = boxes[0, rng.integers(0, n, n // 5)]
        scores = _scores(rng, 1, 2, n, levels=int(rng.choice([0, 7])))
        iou = float(rng.choice([0.0, 1.0, 2.0 ** -30, 0.5, 0.55, 1 / 3, rng.random()]))
        seen.clear()
        check(boxes, scores, max_out=10 ** 6, iou=iou, kernels="numpy")
        assert len(seen) >= 2  # each class took the sparse pairs
        for box, t, (src, dst) in seen:
            with np.errstate(divide="ignore", invalid="ignore"):
                hit = np.triu(detection._suppresses(box, box, t), 1)
            expected = sorted(zip(*np.nonzero(hit)))
            assert sorted(zip(src.tolist(), dst.tolist())) == [tuple(map(int, p)) for p in expected]
