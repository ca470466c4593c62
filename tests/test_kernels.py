"""The numba kernels (kernels/) against tinyrt's numpy ops, on awkward shapes, through real sessions.

Each case builds a one-node model and runs it three ways: tinyrt on the numba path, tinyrt on the numpy
path (the reference implementation) and, for standard ops, onnxruntime. Shapes cover stride 2,
asymmetric padding, 1x1 spatial size, channel counts that are not a multiple of 8 (nor of the SIMD
width: partial vectors and panels), batch above 1, dilations, channel multipliers, the GEMM's one- and
two-vector tiles and single rows, depthwise runs of 4 pixels (stride 1 and 2) and the pixels left
over, and im2col.
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from onnx import TensorProto, helper

import tinyrt
from oracle import TINYRT_DOMAIN as TINYRT, assert_close, make_model, ort_run, tinyrt_session
from tinyrt import kernel_wrappers, kernels_select

numba = pytest.importorskip("numba")
_EMPTY4 = np.empty((1, 1, 1, 1), np.float32)

def _model(node, x_shape, inits, opset=13, extra_inputs=()):
    inputs = {"x": (TensorProto.FLOAT, x_shape)}
    inputs.update((n, (TensorProto.FLOAT, s)) for n, s in extra_inputs)
    return make_model([node], inputs, ["y"], inits, opset, tinyrt_domain=True)


def _session(data, kernels, threads=1):
    return tinyrt_session(data, kernels, threads)


_close = assert_close


def _check(data, feeds, with_ort=True, threads=(1, 2)):
    ref = _session(data, "numpy").run(None, feeds)[0]
    for t in threads:
        got = _session(data, "numba", t).run(None, feeds)[0]
        _close(got, ref)
        if t > 1:  # small convs run serially even at 2 threads: force the threaded kernels too
            saved = kernel_wrappers.conv.PARALLEL_MIN_MACS
            kernel_wrappers.conv.PARALLEL_MIN_MACS = 0
            try:
                _close(_session(data, "numba", t).run(None, feeds)[0], ref)
            finally:
                kernel_wrappers.conv.PARALLEL_MIN_MACS = saved
    if with_ort:
        _close(ort_run(data, feeds)[0], ref)


def _rand(*shape, seed=0):
    return np.random.RandomState(seed).standard_normal(shape).astype(np.float32)


# (N, C, H, W), M, kernel, group, strides, pads, dilations
CONVS = [
    ((1, 13, 9, 9), 21, (1, 1), 1, (1, 1), (0, 0, 0, 0), (1, 1)),        # pointwise, odd channels
    ((3, 24, 1, 1), 40, (1, 1), 1, (1, 1), (0, 0, 0, 0), (1, 1)),        # 1x1 spatial, batch 3
    ((2, 16, 30, 30), 300, (1, 1), 1, (1, 1), (0, 0, 0, 0), (1, 1)),     # several column blocks
    ((1, 12, 9, 11), 20, (1, 1), 1, (2, 2), (0, 0, 0, 0), (1, 1)),       # strided 1x1 -> im2col
    ((1, 3, 33, 31), 16, (3, 3), 1, (2, 2), (0, 1, 1, 0), (1, 1)),       # stem, asymmetric pads
    ((2, 6, 10, 10), 10, (3, 3), 2, (1, 1), (1, 1, 1, 1), (1, 1)),       # grouped
    ((1, 5, 7, 7), 7, (3, 3), 1, (1, 1), (2, 2, 2, 2), (2, 2)),          # dilated
    ((1, 13, 57, 57), 13, (3, 3), 13, (1, 1), (1, 1, 1, 1), (1, 1)),     # depthwise, big plane
    ((2, 13, 57, 57), 13, (3, 3), 13, (2, 2), (1, 1, 1, 1), (1, 1)),     # depthwise s2, odd size
    ((1, 10, 56, 56), 10, (3, 3), 10, (2, 2), (0, 0, 1, 1), (1, 1)),     # TF-style SAME pads
    ((1, 11, 14, 14), 11, (5, 5), 11, (2, 2), (2, 2, 2, 2), (1, 1)),     # 5x5 s2, small plane
    ((1, 9, 40, 40), 9, (5, 5), 9, (1, 1), (2, 2, 2, 2), (1, 1)),        # 5x5, big plane
    ((1, 7, 1, 1), 7, (3, 3), 7, (1, 1), (1, 1, 1, 1), (1, 1)),          # depthwise, 1x1 spatial
    ((3, 19, 7, 7), 19, (3, 3), 19, (1, 1), (1, 1, 1, 1), (1, 1)),       # depthwise, batch 3
    ((1, 6, 30, 30), 12, (3, 3), 6, (1, 1), (1, 1, 1, 1), (1, 1)),       # channel multiplier 2
    ((1, 8, 31, 31), 8, (3, 3), 8, (1, 1), (2, 2, 2, 2), (2, 2)),        # dilated depthwise
    ((1, 8, 40, 40), 8, (3, 3), 8, (3, 3), (1, 0, 1, 0), (1, 1)),        # stride 3
    ((1, 4, 9, 40), 4, (3, 3), 4, (2, 1), (1, 1, 1, 1), (1, 1)),         # unequal strides
    ((1, 40, 20, 23), 40, (3, 3), 40, (1, 1), (1, 1, 1, 1), (1, 1)),     # depthwise: whole vectors + a part
    ((2, 48, 15, 17), 48, (3, 3), 48, (2, 2), (0, 1, 1, 0), (1, 1)),     # the same at stride 2, odd sizes
    ((1, 20, 5, 5), 16, (1, 1), 1, (1, 1), (0, 0, 0, 0), (1, 1)),        # pointwise, one vector of outputs
    ((2, 33, 3, 7), 48, (1, 1), 1, (1, 1), (0, 0, 0, 0), (1, 1)),        # a full panel + a one-vector one
    ((1, 40, 12, 17), 40, (5, 5), 40, (1, 1), (2, 1, 2, 3), (1, 1)),     # 5x5 depthwise, whole vectors + a part
    ((2, 32, 11, 13), 32, (5, 5), 32, (2, 2), (2, 2, 2, 2), (1, 1)),     # 5x5 depthwise at stride 2
]


@pytest.mark.parametrize("case", CONVS, ids=[str(i) for i in range(len(CONVS))])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_matches_numpy_and_onnxruntime(case, bias):
    x_shape, M, k, group, strides, pads, dil = case
    w = _rand(M, x_shape[1] // group, *k, seed=1)
    inits = {"w": w}
    inputs = ["x", "w"]
    if bias:
        inits["b"] = _rand(M, seed=2)
        inputs.append("b")
    node = helper.make_node("Conv", inputs, ["y"], group=group, strides=list(strides), pads=list(pads),
                            dilations=list(dil))
    _check(_model(node, x_shape, inits), {"x": _rand(*x_shape)})


ACTS = [("", []), ("Relu", []), ("Clip", [0.0, 6.0]), ("Clip", [-0.5, 0.25]), ("LeakyRelu", [0.1]),
        ("HardSigmoid", [0.2, 0.5]), ("HardSwish", []), ("Sigmoid", [])]


@pytest.mark.parametrize("act", ACTS, ids=[a[0] or "none" for a in ACTS])
@pytest.mark.parametrize("case", [CONVS[0], CONVS[2], CONVS[4], CONVS[8], CONVS[10], CONVS[18], CONVS[21]],
                         ids=["pointwise", "blocks", "im2col", "dw-plane", "dw-small", "dw-vectors", "panels"])
@pytest.mark.parametrize("residual", [False, True])
def test_fused_conv_tail(act, case, residual):
    x_shape, M, k, group, strides, pads, dil = case
    inits = {"w": _rand(M, x_shape[1] // group, *k, seed=1), "b": _rand(M, seed=2)}
    feeds = {"x": _rand(*x_shape)}
    ref_out = tinyrt.ops.registry.resolve("Conv", "", 13).fn(
        feeds["x"], inits["w"], inits["b"], group=group, strides=list(strides), pads=list(pads),
        dilations=list(dil))
    inputs, extra = ["x", "w", "b"], []
    if residual:
        feeds["z"] = _rand(*ref_out.shape, seed=3)
        inputs.append("z")
        extra = [("z", ref_out.shape)]
    extra_attrs = {"activation_params": act[1]} if act[1] else {}
    node = helper.make_node("FusedConv", inputs, ["y"], domain=TINYRT, group=group, strides=list(strides),
                            pads=list(pads), dilations=list(dil), activation=act[0], **extra_attrs)
    _check(_model(node, x_shape, inits, extra_inputs=extra), feeds, with_ort=False)


# the stem kernel (kernels/stem.py): a group-1 conv of few taps reading NCHW memory (the model's input)
# (N, C, H, W), M, kernel, strides, pads, dilations
STEMS = [
    ((1, 3, 33, 31), 16, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),     # the stem, odd sizes: a run of 14 = 8 + 6
    ((2, 3, 20, 17), 24, (3, 3), (2, 2), (0, 1, 1, 0), (1, 1)),     # batch 2, asymmetric pads, 24 outputs
    ((1, 1, 15, 36), 5, (3, 3), (1, 1), (1, 2, 0, 1), (1, 1)),      # 1 channel, stride 1, run 8 * 4 + 2
    ((1, 2, 12, 13), 40, (5, 5), (1, 2), (2, 0, 1, 2), (1, 1)),     # 5x5 (50 taps), unequal strides, 40 outputs
    ((1, 4, 11, 9), 33, (3, 3), (1, 1), (2, 2, 2, 2), (2, 2)),      # 4 channels, dilated, wide padding
    ((1, 3, 4, 3), 16, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),       # every pixel a border one
    ((1, 3, 9, 35), 8, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),       # a run of 8 * 4 + 1, 8 outputs
    ((3, 12, 9, 11), 20, (1, 1), (2, 2), (0, 0, 0, 0), (1, 1)),     # strided 1x1 of 12 channels, batch 3
]


def _stem_ran(data, feeds):
    """Whether the numba session ran the stem kernel (profile's kernel name)."""
    sess = _session(data, "numba")
    sess.run(None, feeds)
    return any("stem" in str(getattr(step.fn, "kernel_name", "")) for step in sess.plan.steps)


@pytest.mark.parametrize("act", ACTS, ids=[a[0] or "none" for a in ACTS])
@pytest.mark.parametrize("case", STEMS, ids=[str(i) for i in range(len(STEMS))])
@pytest.mark.parametrize("residual", [False, True])
def test_stem_kernel(act, case, residual):
    """kernels/stem.py against the numpy op: every activation, a residual, borders, runs' ends, 1-4 input
    channels, output channels not a multiple of the SIMD width, batch above 1, 1 and 2 threads."""
    x_shape, M, k, strides, pads, dil = case
    inits = {"w": _rand(M, x_shape[1], *k, seed=1), "b": _rand(M, seed=2)}
    feeds = {"x": _rand(*x_shape)}
    ref_out = tinyrt.ops.registry.resolve("Conv", "", 13).fn(
        feeds["x"], inits["w"], inits["b"], strides=list(strides), pads=list(pads), dilations=list(dil))
    inputs, extra = ["x", "w", "b"], []
    if residual:
        feeds["z"] = _rand(*ref_out.shape, seed=3)
        inputs.append("z")
        extra = [("z", ref_out.shape)]
    extra_attrs = {"activation_params": act[1]} if act[1] else {}
    node = helper.make_node("FusedConv", inputs, ["y"], domain=TINYRT, strides=list(strides), pads=list(pads),
                            dilations=list(dil), activation=act[0], **extra_attrs)
    data = _model(node, x_shape, inits, extra_inputs=extra)
    _check(data, feeds, with_ort=False)
    assert _stem_ran(data, feeds)


def test_stem_kernel_same_numbers_as_im2col_nchw():
    """The stem kernel sums as im2col_nchw and its GEMM do (bias, then the taps (c, i, j) in order, fused
    multiply-adds): the same floats, but for the sign of a zero (im2col_nchw adds 0 * w for padding)."""
    k = kernels_select._import_kernels()
    from kernels import _sync
    rs = np.random.RandomState(5)
    for (N, C, H, W), M, (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw) in STEMS:
        x = rs.standard_normal((N, C, H, W)).astype(np.float32)
        wk = rs.standard_normal((M, C * kh * kw)).astype(np.float32)
        wt = np.stack([k.gemm.pack(wk.T)])
        b = np.stack([k.gemm.pack_bias(rs.standard_normal(M).astype(np.float32))])
        OH = (H + pt + pb - (kh - 1) * dh - 1) // sh + 1
        OW = (W + pl + pr - (kw - 1) * dw - 1) // sw + 1
        z = rs.standard_normal((N, OH, OW, M)).astype(np.float32)
        out = []
        for fn in (k.conv.im2col_nchw, k.stem.stem):
            y = np.full((N, OH, OW, M), np.nan, np.float32)
            rounding = (np.float32(0),) * 3 if fn is k.stem.stem else ()  # (no input rounding)
            fn(x, wt, b, z, True, y, kh, kw, sh, sw, dh, dw, pt, pl, 5, np.float32(0), np.float32(0),
               np.float32(0), 3, *rounding, _sync.counters(1))
            out.append(y)
        assert np.array_equal(out[0], out[1])


@pytest.mark.parametrize("rows", [1, 3, 64])
def test_stem_kernel_rounds_its_input(rows):
    """kernels/stem.py with an input rounding (FusedConv's input_rounding: each block rounds the input rows
    its windows read into a band of its own): bit for bit the stem of the input rounded first by the
    QuantizeDequantize op, for blocks of one row, a few and all of them (the band clipped at the borders,
    dilated windows, batches)."""
    from tinyrt.ops.quantize import quantize_dequantize
    k = kernels_select._import_kernels()
    from kernels import _sync
    rs = np.random.RandomState(6)
    s, lo, hi = np.float32(0.037), np.float32(-128), np.float32(127)
    for (N, C, H, W), M, (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw) in STEMS:
        x = (rs.standard_normal((N, C, H, W)) * 3).astype(np.float32)
        wk = rs.standard_normal((M, C * kh * kw)).astype(np.float32)
        wt = np.stack([k.gemm.pack(wk.T)])
        b = np.stack([k.gemm.pack_bias(rs.standard_normal(M).astype(np.float32))])
        OH = (H + pt + pb - (kh - 1) * dh - 1) // sh + 1
        OW = (W + pl + pr - (kw - 1) * dw - 1) // sw + 1
        out = []
        for xin, rounding in ((x, (s, lo, hi)), (quantize_dequantize(x, s, low=float(lo), high=float(hi)),
                                                 (np.float32(0),) * 3)):
            y = np.full((N, OH, OW, M), np.nan, np.float32)
            k.stem.stem(xin, wt, b, _EMPTY4, False, y, kh, kw, sh, sw, dh, dw, pt, pl, 2, np.float32(0),
                        np.float32(6), np.float32(0), rows, *rounding, _sync.counters(1))
            out.append(y)
        np.testing.assert_array_equal(out[0], out[1])


POOLS = [
    ("MaxPool", (2, 5, 13, 13), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ("MaxPool", (1, 3, 12, 11), dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    ("MaxPool", (1, 3, 9, 9), dict(kernel_shape=[2, 3], strides=[1, 2], pads=[0, 1, 1, 0], dilations=[2, 1])),
    ("MaxPool", (1, 2, 1, 1), dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),
    ("AveragePool", (2, 5, 13, 13), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ("AveragePool", (1, 5, 13, 13), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 1, 0],
                                          count_include_pad=1)),
    ("AveragePool", (1, 3, 12, 11), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1,
                                          count_include_pad=1)),
    ("AveragePool", (1, 3, 10, 10), dict(kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_UPPER")),
]


@pytest.mark.parametrize("case", POOLS, ids=[str(i) for i in range(len(POOLS))])
def test_pools(case):
    op_type, shape, attrs = case
    node = helper.make_node(op_type, ["x"], ["y"], **attrs)
    _check(_model(node, shape, {}, opset=19), {"x": _rand(*shape)})


@pytest.mark.parametrize("case", POOLS, ids=[str(i) for i in range(len(POOLS))])
def test_pools_give_the_same_nans_on_both_paths(case):
    """NaN rules never depend on the path: MaxPool's running max (and its -inf padding) tap by tap."""
    op_type, shape, attrs = case
    node = helper.make_node(op_type, ["x"], ["y"], **attrs)
    data = _model(node, shape, {}, opset=19)
    x = _rand(*shape)
    x[np.random.RandomState(9).random_sample(shape) < 0.3] = np.nan
    ref = _session(data, "numpy").run(None, {"x": x})[0]
    for threads in (1, 2):
        got = _session(data, "numba", threads).run(None, {"x": x})[0]
        np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("gate_first", [False, True])
@pytest.mark.parametrize("shape", [(1, 13, 9, 9), (2, 40, 7, 5)])
def test_squeeze_excite_mul(shape, gate_first):
    gate = (shape[0], shape[1], 1, 1)
    inputs = ["s", "x"] if gate_first else ["x", "s"]
    node = helper.make_node("Mul", inputs, ["y"])
    data = _model(node, shape, {}, extra_inputs=[("s", gate)])
    _check(data, {"x": _rand(*shape), "s": _rand(*gate, seed=4)})


@pytest.mark.parametrize("shape", [(1, 24, 56, 56), (3, 5)])
def test_add(shape):
    node = helper.make_node("Add", ["x", "z"], ["y"])
    _check(_model(node, shape, {}, extra_inputs=[("z", shape)]), {"x": _rand(*shape), "z": _rand(*shape, seed=5)})


# (N, K, M, transB, C shape or None, alpha, beta); the last two fall back to the numpy op
GEMMS = [
    (1, 37, 1000, 1, (1000,), 1.0, 1.0),    # a classifier head: one row, M not a multiple of a panel
    (3, 20, 48, 0, (1, 48), 1.0, 1.0),      # a few rows (single-row tiles), C as a row
    (9, 33, 21, 1, (), 1.0, 1.0),           # one 8-row tile and a row, scalar C
    (2, 16, 40, 1, None, 1.0, 1.0),         # no C
    (4, 8, 10, 1, (4, 10), 1.0, 1.0),       # C per row: numpy
    (2, 8, 10, 0, (10,), 0.5, 2.0),         # alpha, beta: numpy
]


@pytest.mark.parametrize("case", GEMMS, ids=[str(i) for i in range(len(GEMMS))])
def test_gemm_with_constant_weights(case):
    N, K, M, trans_b, c_shape, alpha, beta = case
    inits = {"b": _rand(*((M, K) if trans_b else (K, M)), seed=6)}
    inputs = ["x", "b"]
    if c_shape is not None:
        inits["c"] = _rand(*c_shape, seed=7) if c_shape else np.float32(0.25).reshape(())
        inputs.append("c")
    node = helper.make_node("Gemm", inputs, ["y"], transB=trans_b, alpha=alpha, beta=beta)
    data = _model(node, (N, K), inits)
    _check(data, {"x": _rand(N, K)})
    bound = [type(s.fn).__name__ for s in _session(data, "numba").plan.steps]
    assert bound == ["_GemmKernel" if (alpha, beta) == (1.0, 1.0) and c_shape != (N, M) else "function"]


# N, K, M: kernels/qgemm.py's 4-row tiles (a last one of 1-3 rows), single rows over two panels (a partial
# second one, or a last panel alone), columns not a multiple of the SIMD width, one column
QGEMMS = [(1, 1280, 1000), (1, 7, 5), (1, 70, 100), (3, 33, 65), (5, 20, 31), (9, 64, 100), (2, 10, 96), (4, 3, 1)]


@pytest.mark.parametrize("case", QGEMMS, ids=[str(i) for i in range(len(QGEMMS))])
@pytest.mark.parametrize("blocks", ["one", "per panel"])
def test_int8_weight_gemm_is_its_reference(case, blocks):
    """kernels/qgemm.py's gemm (int8 or uint8 weights, a zero point, scale and bias per column) against its
    numpy reference, in one block or in blocks of one panel (the threaded split): the same numbers both
    ways."""
    N, K, M = case
    k = kernels_select._import_kernels()
    rs = np.random.RandomState(N * K + M)
    x = _rand(N, K, seed=M)
    dtype = np.uint8 if N % 2 else np.int8  # uint8 weights: codes q - 128, offsets 128 - zp
    info = np.iinfo(dtype)
    q = rs.randint(info.min, info.max + 1, (K, M)).astype(dtype)
    zp = rs.randint(info.min, info.max + 1, M).astype(dtype)
    scale = (rs.rand(M) * 0.02 + 1e-3).astype(np.float32)
    bias = _rand(M, seed=K)
    codes, off = k.qgemm.codes(q, zp)
    packed = (k.qgemm.pack(codes), k.gemm.pack_bias(off), bool(off.any()), k.gemm.pack_bias(scale),
              k.gemm.pack_bias(bias))
    PANEL = k.qgemm.PANEL
    cols = PANEL if blocks == "per panel" else -(-M // PANEL) * PANEL
    y = np.full((N, M), np.nan, np.float32)
    k.qgemm.gemm(x, *packed, y, cols, k._sync.counters(1))
    _close(y, k.qgemm.reference(x, q, zp, scale, bias))
    if blocks == "per panel":
        y1 = np.empty_like(y)
        k.qgemm.gemm(x, *packed, y1, -(-M // PANEL) * PANEL, k._sync.counters(1))
        np.testing.assert_array_equal(y, y1)


@pytest.mark.parametrize("after_conv", [True, False], ids=["channels-last", "nchw"])
@pytest.mark.parametrize("shape", [(1, 37, 7, 7), (3, 20, 1, 5)])
def test_global_average_pool(shape, after_conv):
    nodes, inits = [helper.make_node("GlobalAveragePool", ["t" if after_conv else "x"], ["y"])], {}
    if after_conv:  # the conv writes channels-last memory, which the kernel reads
        nodes.insert(0, helper.make_node("Conv", ["x", "w"], ["t"]))
        inits["w"] = _rand(shape[1], shape[1], 1, 1, seed=8)
    _check(make_model(nodes, {"x": (TensorProto.FLOAT, shape)}, ["y"], inits), {"x": _rand(*shape)})


# (shape, opset, axis or None for the default); the last one falls back to the numpy op
SOFTMAXES = [((1, 1000), 13, None), ((2, 3, 7), 13, -1), ((2, 3, 7), 11, 1), ((4, 5), 11, None),
             ((2, 3, 7), 13, 1)]


@pytest.mark.parametrize("case", SOFTMAXES, ids=[str(i) for i in range(len(SOFTMAXES))])
def test_softmax(case):
    shape, opset, axis = case
    node = helper.make_node("Softmax", ["x"], ["y"], **({} if axis is None else {"axis": axis}))
    data = _model(node, shape, {}, opset=opset)
    x = _rand(*shape) * 4
    _check(data, {"x": x})
    x.reshape(-1)[3] = np.nan  # a NaN spoils its row, as in the numpy op
    ref = _session(data, "numpy").run(None, {"x": x})[0]
    got = _session(data, "numba").run(None, {"x": x})[0]
    assert np.array_equal(np.isnan(got), np.isnan(ref)) and np.isnan(ref).any()
    _close(np.nan_to_num(got), np.nan_to_num(ref))
    bound = type(_session(data, "numba").plan.steps[0].fn).__name__
    assert bound == "_SoftmaxKernel"


def test_other_dtypes_fall_back_to_numpy():
    w = np.ones((4, 3, 3, 3), np.float64)
    data = make_model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
                      {"x": (TensorProto.DOUBLE, [1, 3, 5, 5])}, {"y": TensorProto.DOUBLE}, {"w": w})
    x = np.ones((1, 3, 5, 5))
    assert _session(data, "numba").run(None, {"x": x})[0].dtype == np.float64


def test_choice_of_path(monkeypatch):
    monkeypatch.setenv("TINYRT_KERNELS", "numpy")
    assert kernels_select.choose(tinyrt.SessionOptions()).name == "numpy"
    monkeypatch.setenv("TINYRT_KERNELS", "numba")
    assert kernels_select.choose(tinyrt.SessionOptions()).name == "numba"
    options = tinyrt.SessionOptions()
    options.kernels = "numpy"  # the option wins over the environment
    assert kernels_select.choose(options).name == "numpy"
    monkeypatch.setenv("TINYRT_KERNELS", "fast")
    with pytest.raises(ValueError):
        kernels_select.choose(tinyrt.SessionOptions())


_CORES = len(os.sched_getaffinity(0))


@pytest.mark.parametrize("asked, width", [(1, 1), (2, min(2, _CORES)), (0, _CORES)])
def test_numba_threads_per_run_and_blas_single_threaded(asked, width):
    from tinyrt import threads
    import kernels
    data = _model(helper.make_node("Relu", ["x"], ["y"]), (1, 3), {})
    sess = _session(data, "numba", threads=asked)
    pool = kernels.POOL
    seen = []
    original = sess.plan.run

    def spy(*args, **kwargs):
        seen.append((sess.kernels.threads, pool.width, threads.get_blas_threads()))
        return original(*args, **kwargs)

    sess.plan.run = spy
    sess.run(None, {"x": np.ones((1, 3), np.float32)})
    want_blas = 1 if threads.blas_threads_controllable() else None
    assert seen == [(width, width, want_blas)]
    assert (pool.width, pool.depth, sess.kernels.threads) == (1, 0, 1)  # the run is over: workers asleep


def _run_script(code, **env):
    full = dict(os.environ, **env)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return subprocess.run([sys.executable, "-c", code], cwd=root, env=full, capture_output=True, text=True,
                          timeout=300)


def test_import_does_not_import_numba_and_missing_numba_falls_back():
    code = ("import sys, tinyrt; assert 'numba' not in sys.modules\n"
            "sys.modules['numba'] = None  # as if numba were not installed\n"
            "import numpy as np\n"
            "from onnx import helper, TensorProto\n"
            "g = helper.make_graph([helper.make_node('Relu', ['x'], ['y'])], 'g',"
            " [helper.make_tensor_value_info('x', TensorProto.FLOAT, [2])],"
            " [helper.make_tensor_value_info('y', TensorProto.FLOAT, [2])])\n"
            "m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]).SerializeToString()\n"
            "s = tinyrt.InferenceSession(m)\n"
            "assert s.kernels.name == 'numpy', s.kernels.name\n"
            "print(s.run(None, {'x': np.array([-1, 1], np.float32)})[0].tolist())\n")
    out = _run_script(code, TINYRT_KERNELS="")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[0.0, 1.0]"


def test_cache_dir_follows_environment(tmp_path):
    code = ("import kernels; print(kernels.cache_dir())")
    out = _run_script(code, TINYRT_CACHE_DIR=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(tmp_path)


_SAME_KERNELS = """
import importlib, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
k = importlib.import_module(sys.argv[2]).load()
ctr = k._sync.counters(1)
k._sync.swap_running(ctr, 3)  # a kernel that reads a global of its module
print(k.cache_folder(), int(ctr[k._sync.RUNNING]))
"""


def test_the_kernels_cache_keeps_a_checkout_and_an_install_apart(tmp_path):
    """kernels/ in a checkout (or copied beside tinyrt/) and the installed tinyrt_kernels have the same
    sources, but numba's cache names the module a kernel belongs to: one must not load the other's
    entries ("No module named 'kernels'" on a machine with both)."""
    pytest.importorskip("numba")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    folders = []
    for name in ("kernels", "tinyrt_kernels", "kernels"):
        where = tmp_path / ("copy%d" % len(folders))  # copy2 keeps the files' times, as pip and boards do
        shutil.copytree(os.path.join(root, "kernels"), str(where / name), ignore=shutil.ignore_patterns("__pycache__"))
        # run outside the checkout, where no other kernels/ is importable
        env = dict(os.environ, TINYRT_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH="")
        out = subprocess.run([sys.executable, "-c", _SAME_KERNELS, str(where), name], cwd=str(tmp_path), env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        folder, value = out.stdout.split()
        assert value == "3"
        folders.append(folder)
    assert folders[0] != folders[1] and folders[2] == folders[0], folders


_NARROW = """
import numpy as np, tinyrt, kernels, sys
from onnx import helper
sys.path.insert(0, "tests")
from test_kernels import CONVS, GEMMS, QGEMMS, STEMS, _model, _rand, _session, _close
assert kernels.load().gemm.LANES == %d
for x_shape, M, k, group, strides, pads, dil in [CONVS[i] for i in (0, 2, 4, 7, 9, 18, 19, 20, 21, 22, 23)]:
    inits = {"w": _rand(M, x_shape[1] // group, *k, seed=1), "b": _rand(M, seed=2)}
    node = helper.make_node("FusedConv", ["x", "w", "b"], ["y"], domain="ai.tinyrt", group=group,
                            strides=list(strides), pads=list(pads), dilations=list(dil), activation="HardSwish")
    data = _model(node, x_shape, inits)
    feeds = {"x": _rand(*x_shape)}
    _close(_session(data, "numba", 2).run(None, feeds)[0], _session(data, "numpy").run(None, feeds)[0])
for x_shape, M, k, strides, pads, dil in STEMS:
    inits = {"w": _rand(M, x_shape[1], *k, seed=1), "b": _rand(M, seed=2)}
    node = helper.make_node("FusedConv", ["x", "w", "b"], ["y"], domain="ai.tinyrt", strides=list(strides),
                            pads=list(pads), dilations=list(dil), activation="HardSwish")
    data = _model(node, x_shape, inits)
    feeds = {"x": _rand(*x_shape)}
    _close(_session(data, "numba", 2).run(None, feeds)[0], _session(data, "numpy").run(None, feeds)[0])
N, K, M = GEMMS[0][:3]
data = _model(helper.make_node("Gemm", ["x", "b", "c"], ["y"], transB=1), (N, K),
              {"b": _rand(M, K, seed=6), "c": _rand(M, seed=7)})
feeds = {"x": _rand(N, K)}
_close(_session(data, "numba").run(None, feeds)[0], _session(data, "numpy").run(None, feeds)[0])
k = kernels.load()
for N, K, M in QGEMMS:
    rs = np.random.RandomState(K)
    x, q, zp = _rand(N, K), rs.randint(0, 256, (K, M)).astype(np.uint8), rs.randint(0, 256, M).astype(np.uint8)
    scale, bias = (rs.rand(M) * 0.02).astype(np.float32), _rand(M, seed=3)
    y = np.empty((N, M), np.float32)
    codes, off = k.qgemm.codes(q, zp)
    k.qgemm.gemm(x, k.qgemm.pack(codes), k.gemm.pack_bias(off), True, k.gemm.pack_bias(scale),
                 k.gemm.pack_bias(bias), y, k.qgemm.PANEL, k._sync.counters(1))
    _close(y, k.qgemm.reference(x, q, zp, scale, bias))
print("ok")
"""


@pytest.mark.slow  # compiles every kernel twice more (about a minute)
@pytest.mark.parametrize("lanes", [4, 8])
def test_narrower_simd_widths(lanes):
    """Other machines' vector widths (SSE / NEON: 4 floats, AVX2: 8), compiled and run here: the GEMM
    panels, partial vectors and depthwise runs all change with the width."""
    out = _run_script(_NARROW % lanes, TINYRT_SIMD_LANES=str(lanes))
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")


def test_simd_exp_is_within_2_ulp_of_exp():
    """kernels/_simd.exp (Cephes' polynomial on vectors, under the numba softmax): within 2 ulp of e ** x
    over the whole float32 range; inf above ~88.72, 0 below ~-87.34 (where libm makes denormals, under
    1.2e-38), NaN for NaN; the lanes of a vector independent of each other."""
    k = kernels_select._import_kernels()
    simd = k._simd

    @numba.njit
    def vector_exp(x, y):
        for i in range(0, x.size, simd.LANES):
            simd.store(y.ctypes.data + i * 4, simd.exp(simd.load(x.ctypes.data + i * 4)))

    rs = np.random.RandomState(3)
    special = [0.0, -0.0, 1e-30, -1e-30, 1.0, -1.0, 0.5 * np.log(2), 88.0, 88.72, 88.7228, 88.72283, 88.7229,
               89.0, 1e30, np.inf, -87.33, -87.3365, -87.34, -100.0, -1e30, -np.inf, np.nan]
    x = np.concatenate([rs.uniform(-87.3, 88.7, 200000), rs.uniform(-2, 2, 50000), special]).astype(np.float32)
    x = np.concatenate([x, np.zeros(-x.size % simd.LANES, np.float32)])
    got = np.empty_like(x)
    vector_exp(x, got)
    with np.errstate(over="ignore"):
        want = np.exp(x.astype(np.float64))
    normal = (want >= np.finfo(np.float32).tiny) & (want <= np.finfo(np.float32).max)
    ulp = np.spacing(want[normal].astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(got[normal] - want[normal]) / ulp) <= 2
    assert np.all(got[x > 88.7229] == np.inf) and np.all(got[x < -87.3366] == 0)
    assert np.isnan(got[np.isnan(x)]).all() and not np.isnan(got[~np.isnan(x)]).any()
