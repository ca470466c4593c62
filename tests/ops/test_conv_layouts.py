"""Conv and FusedConv on the numpy path, fed NCHW memory and channels-last memory, against onnxruntime.

tinyrt's 2-D convs compute in channels-last memory and return an (N, M, OH, OW) view of it (see
tinyrt/ops/conv.py), so the input of a conv is often such a view. Each case runs the op function from the
registry on the same values twice, once as an NCHW-contiguous array and once as a channels-last view
(``np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)``), and holds both results to
onnxruntime with the house tolerance ``|a - b| <= 1e-4 * max(1, max|b|)``. Shapes are the awkward ones:
stride 2, asymmetric pads, 1x1 spatial, channel counts that are not a multiple of 8, batch above 1,
dilations, groups, depthwise with a channel multiplier, 5x5 depthwise.
"""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import helper  # noqa: E402

import tinyrt  # noqa: E402
from oracle import assert_close, make_model, ort_run  # noqa: E402
from tinyrt.ops import resolve  # noqa: E402

TINYRT = "ai.tinyrt"
LAYOUTS = ["nchw", "channels_last"]


def rand(*shape, seed=0):
    return np.random.RandomState(seed).standard_normal(shape).astype(np.float32)


def as_layout(x, layout):
    """The same values in NCHW memory or in channels-last memory behind the NCHW shape."""
    if layout == "nchw" or x.ndim != 4:
        return np.ascontiguousarray(x)
    y = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    assert not y.flags.c_contiguous or min(x.shape[1], x.shape[2] * x.shape[3]) == 1
    return y


close = assert_close


def ort_y(nodes, feeds, inits, opset=14):
    return ort_run(make_model(nodes, feeds, ["y"], inits, opset), feeds)[0]


def tinyrt_op(op_type, inputs, attrs, domain="", opset=11):
    impl = resolve(op_type, domain, opset)
    if impl.check is not None:
        impl.check(**attrs)
    return impl.fn(*inputs, **attrs)


# name: (X shape, W shape, attrs)
CASES = {
    "pointwise": ((1, 13, 9, 7), (21, 13, 1, 1), {}),
    "pointwise_batch3_1x1_spatial": ((3, 24, 1, 1), (10, 24, 1, 1), {}),
    "pointwise_batch2": ((2, 5, 6, 7), (9, 5, 1, 1), {}),
    "pointwise_stride2": ((2, 12, 9, 11), (7, 12, 1, 1), dict(strides=[2, 2])),
    "pointwise_pads": ((1, 6, 4, 5), (5, 6, 1, 1), dict(pads=[1, 0, 0, 2])),
    "pointwise_group3": ((2, 9, 5, 6), (6, 3, 1, 1), dict(group=3)),
    "stem_s2_asym": ((1, 3, 33, 31), (16, 3, 3, 3), dict(strides=[2, 2], pads=[0, 1, 1, 0])),
    "stem_same_upper": ((2, 3, 17, 16), (8, 3, 3, 3), dict(strides=[2, 2], auto_pad="SAME_UPPER")),
    "dense_dilated": ((2, 5, 11, 10), (7, 5, 3, 3), dict(dilations=[2, 3], pads=[2, 1, 2, 3])),
    "dense_rect_s21": ((1, 6, 9, 8), (4, 6, 3, 2), dict(strides=[2, 1], pads=[1, 0, 1, 1])),
    "dense_1x1_spatial": ((3, 5, 1, 1), (7, 5, 3, 3), dict(pads=[1, 1, 1, 1])),
    "dense_valid": ((1, 7, 6, 9), (3, 7, 4, 4), dict(auto_pad="VALID")),
    "grouped2": ((2, 6, 10, 10), (10, 3, 3, 3), dict(group=2, pads=[1, 1, 1, 1])),
    "grouped8_s2": ((1, 16, 9, 7), (24, 2, 3, 3), dict(group=8, strides=[2, 2], pads=[1, 0, 1, 1])),
    "single_channel": ((2, 1, 8, 7), (5, 1, 3, 3), dict(pads=[1, 1, 0, 0])),
    "dw_s1": ((2, 13, 9, 7), (13, 1, 3, 3), dict(group=13, pads=[1, 1, 1, 1])),
    "dw_s2_odd": ((2, 13, 15, 15), (13, 1, 3, 3), dict(group=13, strides=[2, 2], pads=[1, 1, 1, 1])),
    "dw_s2_same_tf": ((1, 10, 12, 12), (10, 1, 3, 3), dict(group=10, strides=[2, 2], pads=[0, 0, 1, 1])),
    "dw_s2_asym": ((1, 11, 9, 8), (11, 1, 3, 3), dict(group=11, strides=[2, 2], pads=[0, 2, 1, 0])),
    "dw_s3": ((1, 8, 17, 16), (8, 1, 3, 3), dict(group=8, strides=[3, 3], pads=[1, 0, 1, 0])),
    "dw_s21": ((1, 4, 9, 14), (4, 1, 3, 3), dict(group=4, strides=[2, 1], pads=[1, 1, 1, 1])),
    "dw_s12": ((2, 7, 10, 9), (7, 1, 3, 3), dict(group=7, strides=[1, 2], pads=[1, 1, 1, 1])),
    "dw_dilated": ((1, 7, 8, 9), (7, 1, 3, 3), dict(group=7, dilations=[2, 2], pads=[2, 1, 2, 3])),
    "dw_dilated_s2": ((1, 9, 15, 14), (9, 1, 3, 3), dict(group=9, dilations=[2, 3], strides=[2, 2],
                                                          pads=[2, 3, 2, 3])),
    "dw_dilated2_s2": ((1, 6, 11, 13), (6, 1, 3, 3), dict(group=6, dilations=[2, 2], strides=[2, 2],
                                                          pads=[2, 2, 2, 2])),
    "dw_dilated2_s3": ((1, 5, 10, 16), (5, 1, 3, 3), dict(group=5, dilations=[1, 2], strides=[3, 3],
                                                          pads=[1, 2, 0, 1])),
    "dw_5x5": ((1, 10, 12, 12), (10, 1, 5, 5), dict(group=10, pads=[2, 2, 2, 2])),
    "dw_5x5_s2": ((2, 11, 14, 13), (11, 1, 5, 5), dict(group=11, strides=[2, 2], pads=[2, 2, 2, 2])),
    "dw_mult2": ((1, 5, 7, 7), (10, 1, 3, 3), dict(group=5, pads=[1, 1, 1, 1])),
    "dw_mult3_s2": ((2, 3, 9, 8), (9, 1, 3, 3), dict(group=3, strides=[2, 2], pads=[1, 1, 0, 0])),
    "dw_1x1_spatial": ((1, 7, 1, 1), (7, 1, 3, 3), dict(group=7, pads=[1, 1, 1, 1])),
    "dw_1x1_kernel_s2": ((2, 6, 5, 5), (6, 1, 1, 1), dict(group=6, strides=[2, 2])),
    "dw_no_pads": ((3, 19, 7, 7), (19, 1, 3, 3), dict(group=19)),
    "dw_big_plane": ((1, 12, 40, 41), (12, 1, 3, 3), dict(group=12, pads=[1, 1, 1, 1])),
    "dw_big_plane_s2": ((1, 24, 41, 40), (24, 1, 3, 3), dict(group=24, strides=[2, 2], pads=[1, 1, 1, 1])),
}


def conv_node(attrs, inputs=("x", "w", "b"), out="y"):
    return helper.make_node("Conv", list(inputs), [out], **attrs)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("name", sorted(CASES))
def test_conv(name, bias, layout):
    xs, ws, attrs = CASES[name]
    x, w = rand(*xs), rand(*ws, seed=1)
    inits = {"w": w}
    if bias:
        inits["b"] = rand(ws[0], seed=2)
    want = ort_y([conv_node(attrs, ["x", "w"] + (["b"] if bias else []))], {"x": x}, inits)
    got = tinyrt_op("Conv", [as_layout(x, layout), w] + ([inits["b"]] if bias else []), attrs)
    close(got, want)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("group", [1, 6])
def test_conv_negative_pads(group, layout):
    # ONNX allows negative pads (crop); onnxruntime refuses them, so its oracle gets the cropped input
    x, w = rand(2, 6, 9, 9), rand(6 if group == 6 else 4, 6 // group, 3, 3, seed=1)
    got = tinyrt_op("Conv", [as_layout(x, layout), w], dict(group=group, pads=[-1, 1, 0, -2], strides=[1, 2]))
    want = ort_y([conv_node(dict(group=group, pads=[0, 1, 0, 0], strides=[1, 2]), ["x", "w"])],
                   {"x": np.ascontiguousarray(x[:, :, 1:, :-2])}, {"w": w})
    close(got, want)


def test_conv2d_result_is_channels_last_memory():
    # the contract the next conv relies on: an (N, M, OH, OW) array whose memory is (N, OH, OW, M)
    x = rand(2, 6, 9, 9)
    for w, attrs in [(rand(10, 6, 3, 3, seed=1), dict(pads=[1, 1, 1, 1])),     # im2col
                     (rand(6, 1, 3, 3, seed=1), dict(group=6, strides=[2, 2])),  # depthwise
                     (rand(10, 6, 1, 1, seed=1), {})]:                            # 1x1
        for layout in LAYOUTS:
            y = tinyrt_op("Conv", [as_layout(x, layout), w], attrs)
            assert y.shape[:2] == (2, w.shape[0])
            assert y.transpose(0, 2, 3, 1).flags.c_contiguous


# activation name, params, the ONNX nodes that compute it from "s" into "y"
ACTS = [
    ("", [], lambda: [helper.make_node("Identity", ["s"], ["y"])]),
    ("Relu", [], lambda: [helper.make_node("Relu", ["s"], ["y"])]),
    ("Clip", [0.0, 6.0], lambda: [helper.make_node("Clip", ["s", "lo", "hi"], ["y"])]),
    ("LeakyRelu", [0.1], lambda: [helper.make_node("LeakyRelu", ["s"], ["y"], alpha=0.1)]),
    ("HardSigmoid", [0.2, 0.5], lambda: [helper.make_node("HardSigmoid", ["s"], ["y"], alpha=0.2, beta=0.5)]),
    ("HardSwish", [], lambda: [helper.make_node("HardSwish", ["s"], ["y"])]),
    ("Sigmoid", [], lambda: [helper.make_node("Sigmoid", ["s"], ["y"])]),
]
FUSED_CASES = ["pointwise_batch2", "stem_s2_asym", "grouped8_s2", "dw_s1", "dw_s2_odd", "dw_mult3_s2",
               "dw_5x5_s2", "dw_1x1_spatial", "dense_dilated"]


@pytest.mark.parametrize("z_layout", [None] + LAYOUTS)
@pytest.mark.parametrize("x_layout", LAYOUTS)
@pytest.mark.parametrize("act", ACTS, ids=[a[0] or "none" for a in ACTS])
@pytest.mark.parametrize("name", FUSED_CASES)
def test_fused_conv(name, act, x_layout, z_layout):
    xs, ws, attrs = CASES[name]
    activation, params, tail = act
    x, w, b = rand(*xs), rand(*ws, seed=1), rand(ws[0], seed=2)
    inits = {"w": w, "b": b, "lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32)}
    nodes = [conv_node(attrs, out="c")]
    feeds = {"x": x}
    if z_layout is None:
        nodes.append(helper.make_node("Identity", ["c"], ["s"]))
    else:
        conv_shape = ort_y([conv_node(attrs)], {"x": x}, {"w": w, "b": b}).shape
        feeds["z"] = rand(*conv_shape, seed=3)
        nodes.append(helper.make_node("Add", ["c", "z"], ["s"]))
    want = ort_y(nodes + tail(), feeds, inits)

    fattrs = dict(attrs, activation=activation)
    if params:
        fattrs["activation_params"] = params
    inputs = [as_layout(x, x_layout), w, b]
    if z_layout is not None:
        inputs.append(as_layout(feeds["z"], z_layout))
    got = tinyrt_op("FusedConv", inputs, fattrs, domain=TINYRT, opset=1)
    close(got, want)


@pytest.mark.parametrize("act", ACTS, ids=[a[0] or "none" for a in ACTS])
def test_fused_conv_activation_of_nan_and_inf(act):
    # a bias of NaN, +inf and -inf makes whole output channels NaN or infinite: each activation must map
    # them as onnxruntime's activation ops do (NaN stays NaN, Relu(-inf) = 0, LeakyRelu(-inf) = -inf)
    activation, params, tail = act
    x, w = rand(1, 4, 5, 5), rand(4, 1, 3, 3, seed=1)
    b = np.array([np.nan, np.inf, -np.inf, 0.5], np.float32)
    attrs = dict(group=4, pads=[1, 1, 1, 1])
    inits = {"w": w, "b": b, "lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32)}
    want = ort_y([conv_node(attrs, out="s")] + tail(), {"x": x}, inits)
    fattrs = dict(attrs, activation=activation)
    if params:
        fattrs["activation_params"] = params
    for layout in LAYOUTS:
        got = tinyrt_op("FusedConv", [as_layout(x, layout), w, b], fattrs, domain=TINYRT, opset=1)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        finite = np.isfinite(want)
        np.testing.assert_array_equal(got[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)])
        close(np.where(finite, got, 0), np.where(finite, want, 0))


def test_fused_conv_residual_broadcasts():
    # a residual that broadcasts (as Add would) takes the slow way and still matches
    x, w, b = rand(2, 6, 8, 8), rand(6, 1, 3, 3, seed=1), rand(6, seed=2)
    z = rand(1, 6, 1, 8, seed=3)
    attrs = dict(group=6, pads=[1, 1, 1, 1])
    want = ort_y([conv_node(attrs, out="c"), helper.make_node("Add", ["c", "z"], ["s"]),
                    helper.make_node("Relu", ["s"], ["y"])], {"x": x, "z": z}, {"w": w, "b": b})
    for layout in LAYOUTS:
        got = tinyrt_op("FusedConv", [as_layout(x, layout), w, b, z], dict(attrs, activation="Relu"),
                        domain=TINYRT, opset=1)
        close(got, want)


def test_chain_through_a_numpy_session():
    # stem -> depthwise s2 -> 1x1 -> depthwise + residual -> pool -> flatten: every conv after the first
    # reads the previous conv's channels-last result; the session's output must be contiguous and right
    C = 11
    inits = {"w0": rand(C, 3, 3, 3, seed=1), "b0": rand(C, seed=2),
             "w1": rand(C, 1, 3, 3, seed=3), "b1": rand(C, seed=4),
             "w2": rand(2 * C, C, 1, 1, seed=5),
             "w3": rand(2 * C, 1, 3, 3, seed=6), "b3": rand(2 * C, seed=7),
             "w4": rand(2 * C, 2 * C, 1, 1, seed=8), "b4": rand(2 * C, seed=9),
             "lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32)}
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["c0", "lo", "hi"], ["a0"]),
        helper.make_node("Conv", ["a0", "w1", "b1"], ["c1"], group=C, strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["a1"]),
        helper.make_node("Conv", ["a1", "w2"], ["c2"]),
        helper.make_node("Conv", ["c2", "w3", "b3"], ["c3"], group=2 * C, pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c3", "c2"], ["r"]),
        helper.make_node("Conv", ["r", "w4", "b4"], ["c4"]),
        helper.make_node("Sigmoid", ["c4"], ["y"]),
    ]
    x = rand(2, 3, 29, 30, seed=10)
    data = make_model(nodes, {"x": x}, ["y"], inits, opset=14)
    want = ort_run(data, {"x": x})[0]
    for level in (tinyrt.GraphOptimizationLevel.ORT_DISABLE_ALL, tinyrt.GraphOptimizationLevel.ORT_ENABLE_ALL):
        options = tinyrt.SessionOptions()
        options.kernels = "numpy"
        options.graph_optimization_level = level
        sess = tinyrt.InferenceSession(data, options)
        got = sess.run(None, {"x": x})[0]
        assert got.flags.c_contiguous
        close(got, want)
        got = sess.run(None, {"x": as_layout(x, "channels_last")})[0]
        close(got, want)
