"""Conv, ConvTranspose, the pools and the normalisations against onnxruntime, on awkward shapes.

Each case is a single-node model built with onnx.helper. tinyrt's op function is resolved from the registry
for the model's opset and called directly (its load-time ``check`` runs first), so these tests pin the ops
themselves; the node suite covers the same ops through the session.
"""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

from oracle import assert_close, ort_run  # noqa: E402
from tinyrt.errors import UnsupportedError  # noqa: E402
from tinyrt.ops import resolve  # noqa: E402

RNG = np.random.default_rng(1234)
TYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE,
         np.dtype(np.float16): TensorProto.FLOAT16, np.dtype(np.int64): TensorProto.INT64,
         np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.int8): TensorProto.INT8}


def rand(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def run_ort(op_type, inputs, attrs, opset, n_outputs=1):
    names = ["in%d" % i if a is not None else "" for i, a in enumerate(inputs)]
    outs = ["out%d" % i for i in range(n_outputs)]
    node = helper.make_node(op_type, names, outs, **attrs)
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info(n, TYPES[a.dtype], a.shape) for n, a in zip(names, inputs) if n],
        [helper.make_empty_tensor_value_info(o) for o in outs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset < 21 else 10
    return ort_run(model, {n: a for n, a in zip(names, inputs) if n})


def run_tinyrt(op_type, inputs, attrs, opset, n_outputs=1):
    impl = resolve(op_type, "", opset)
    assert impl is not None, "%s not registered at opset %d" % (op_type, opset)
    if impl.check is not None:
        impl.check(**attrs)
    kw = dict(attrs)
    if "_num_outputs" in impl.wants:
        kw["_num_outputs"] = n_outputs
    if "_opset" in impl.wants:
        kw["_opset"] = opset
    out = impl.fn(*inputs, **kw)
    return list(out) if isinstance(out, tuple) else [out]


def check(op_type, inputs, attrs, opset, n_outputs=1, rtol=1e-4):
    got = run_tinyrt(op_type, inputs, attrs, opset, n_outputs)
    want = run_ort(op_type, inputs, attrs, opset, n_outputs)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert_close(g, w, rtol)


# ---------------------------------------------------------------------------------------------- Conv

CONV_CASES = {
    # name: (X shape, W shape, attrs, bias?)
    "basic_pad1": ((2, 3, 7, 9), (5, 3, 3, 3), dict(pads=[1, 1, 1, 1]), True),
    "stride2_asym_pads": ((1, 5, 10, 7), (6, 5, 3, 3), dict(strides=[2, 2], pads=[0, 1, 2, 0]), True),
    "same_upper_s2": ((2, 3, 9, 8), (4, 3, 3, 3), dict(auto_pad="SAME_UPPER", strides=[2, 2]), True),
    "same_lower_s2": ((2, 3, 9, 8), (4, 3, 4, 3), dict(auto_pad="SAME_LOWER", strides=[2, 2]), False),
    "same_upper_k4": ((1, 2, 6, 5), (3, 2, 4, 4), dict(auto_pad="SAME_UPPER"), True),
    "valid": ((1, 3, 8, 6), (2, 3, 3, 2), dict(auto_pad="VALID", strides=[2, 1]), True),
    "dilations": ((2, 3, 11, 10), (4, 3, 3, 3), dict(dilations=[2, 3], pads=[2, 1, 2, 3]), True),
    "group2": ((2, 6, 8, 8), (4, 3, 3, 3), dict(group=2, pads=[1, 1, 1, 1]), True),
    "group3_stride2": ((1, 9, 9, 9), (6, 3, 3, 3), dict(group=3, strides=[2, 2], pads=[1, 0, 1, 0]), True),
    "depthwise_s1": ((2, 13, 9, 7), (13, 1, 3, 3), dict(group=13, pads=[1, 1, 1, 1]), True),
    "depthwise_s2": ((1, 13, 10, 10), (13, 1, 3, 3), dict(group=13, strides=[2, 2], pads=[1, 1, 1, 1]), True),
    "depthwise_s2_asym": ((1, 11, 9, 8), (11, 1, 3, 3), dict(group=11, strides=[2, 2], pads=[0, 0, 1, 1]), False),
    "depthwise_dil": ((1, 7, 8, 9), (7, 1, 3, 3), dict(group=7, dilations=[2, 2], pads=[2, 1, 2, 3]), True),
    "depthwise_5x5": ((1, 10, 12, 12), (10, 1, 5, 5), dict(group=10, pads=[2, 2, 2, 2], strides=[2, 2]), True),
    "depthwise_mult2": ((1, 5, 7, 7), (10, 1, 3, 3), dict(group=5, pads=[1, 1, 1, 1]), True),
    "depthwise_1x1_s2": ((2, 6, 5, 5), (6, 1, 1, 1), dict(group=6, strides=[2, 2]), True),
    "single_channel": ((2, 1, 8, 7), (5, 1, 3, 3), dict(pads=[1, 1, 0, 0]), True),
    "grouped_many": ((1, 16, 6, 6), (16, 2, 3, 3), dict(group=8, strides=[2, 1], pads=[1, 1, 1, 1]), True),
    "pointwise": ((2, 13, 6, 5), (7, 13, 1, 1), dict(), True),
    "pointwise_s2": ((1, 12, 7, 7), (5, 12, 1, 1), dict(strides=[2, 2]), True),
    "pointwise_pad": ((1, 4, 3, 3), (5, 4, 1, 1), dict(pads=[1, 0, 0, 1]), True),
    "pointwise_group": ((1, 8, 5, 5), (6, 4, 1, 1), dict(group=2), True),
    "spatial_1x1": ((3, 5, 1, 1), (7, 5, 3, 3), dict(pads=[1, 1, 1, 1]), True),
    "spatial_1x1_pointwise": ((3, 5, 1, 1), (7, 5, 1, 1), dict(), True),
    "rect_kernel": ((1, 3, 7, 9), (4, 3, 3, 1), dict(pads=[1, 0, 1, 0]), True),
    "kernel_shape_given": ((1, 3, 6, 6), (4, 3, 3, 3), dict(kernel_shape=[3, 3], strides=[2, 2]), True),
    "conv1d": ((2, 5, 17), (6, 5, 3), dict(strides=[2], pads=[1, 0], dilations=[2]), True),
    "conv1d_depthwise": ((2, 6, 11), (6, 1, 5), dict(group=6, pads=[2, 2]), True),
    "conv1d_same_lower": ((1, 3, 10), (2, 3, 4), dict(auto_pad="SAME_LOWER", strides=[3]), True),
    "conv3d": ((1, 4, 5, 6, 7), (3, 4, 3, 3, 3), dict(pads=[1, 0, 1, 1, 0, 1], strides=[1, 2, 2]), True),
    "conv3d_group": ((2, 4, 4, 5, 5), (6, 2, 2, 3, 1), dict(group=2, dilations=[1, 2, 1]), True),
    "conv3d_depthwise": ((1, 5, 4, 6, 6), (5, 1, 3, 3, 3), dict(group=5, auto_pad="SAME_UPPER",
                                                                strides=[2, 2, 2]), True),
}


VERSION_SWEEP = [(n, v) for n in ("basic_pad1", "depthwise_s2", "pointwise", "group2") for v in (7, 22)]


@pytest.mark.parametrize("name,opset", [(n, 11) for n in sorted(CONV_CASES)] + VERSION_SWEEP)
def test_conv(name, opset):
    xs, ws, attrs, bias = CONV_CASES[name]
    inputs = [rand(*xs), rand(*ws)] + ([rand(ws[0])] if bias else [])
    check("Conv", inputs, attrs, opset)


def test_conv_same_with_dilations():
    # onnxruntime refuses dilations with SAME_*; the spec's rule (total pad from the dilated kernel extent
    # (k - 1) * d + 1, odd pixel at the end for SAME_UPPER) must equal these explicit pads.
    x, w = rand(1, 7, 8, 9), rand(7, 1, 3, 3)
    got = run_tinyrt("Conv", [x, w], dict(group=7, dilations=[2, 2], auto_pad="SAME_UPPER"), 11)[0]
    want = run_ort("Conv", [x, w], dict(group=7, dilations=[2, 2], pads=[2, 2, 2, 2]), 11)[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    x, w = rand(1, 3, 8, 9), rand(4, 3, 2, 2)
    got = run_tinyrt("Conv", [x, w], dict(dilations=[3, 2], strides=[2, 2], auto_pad="SAME_LOWER"), 11)[0]
    # rows: out 4, total (4-1)*2 + 4 - 8 = 2 -> 1/1; cols: out 5, total (5-1)*2 + 3 - 9 = 2 -> 1/1
    want = run_ort("Conv", [x, w], dict(dilations=[3, 2], strides=[2, 2], pads=[1, 1, 1, 1]), 11)[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_conv_float64():
    # onnxruntime has no float64 Conv on CPU: the float32 oracle with a float32 tolerance.
    x, w = rand(1, 3, 6, 6, dtype=np.float64), rand(4, 3, 3, 3, dtype=np.float64)
    attrs = dict(pads=[1, 1, 1, 1], strides=[2, 2])
    got = run_tinyrt("Conv", [x, w], attrs, 11)[0]
    assert got.dtype == np.float64
    want = run_ort("Conv", [x.astype(np.float32), w.astype(np.float32)], attrs, 11)[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_conv_refuses_bad_auto_pad():
    with pytest.raises(UnsupportedError):
        run_tinyrt("Conv", [rand(1, 1, 3, 3), rand(1, 1, 1, 1)], dict(auto_pad="SAME"), 11)


# ------------------------------------------------------------------------------------- ConvTranspose

CONVT_CASES = {
    "basic": ((1, 3, 4, 5), (3, 2, 3, 3), dict()),
    "stride2_pads": ((2, 4, 5, 4), (4, 3, 3, 3), dict(strides=[2, 2], pads=[1, 1, 1, 1])),
    "asym_pads": ((1, 2, 4, 4), (2, 3, 3, 2), dict(strides=[2, 3], pads=[0, 1, 2, 0])),
    "output_padding": ((1, 3, 4, 5), (3, 2, 3, 3), dict(strides=[2, 2], pads=[1, 1, 1, 1],
                                                        output_padding=[1, 0])),
    "output_shape": ((1, 3, 4, 5), (3, 2, 3, 3), dict(strides=[3, 2], output_shape=[12, 10])),
    "output_shape_odd": ((1, 3, 4, 5), (3, 2, 3, 3), dict(strides=[2, 2], output_shape=[8, 9])),
    "same_upper": ((1, 2, 5, 4), (2, 3, 3, 3), dict(strides=[2, 2], auto_pad="SAME_UPPER")),
    "same_lower": ((1, 2, 5, 4), (2, 3, 4, 3), dict(strides=[2, 2], auto_pad="SAME_LOWER")),
    "dilations": ((1, 2, 4, 4), (2, 2, 3, 3), dict(dilations=[2, 2], pads=[1, 0, 0, 1])),
    "group2": ((2, 4, 3, 3), (4, 3, 3, 3), dict(group=2, strides=[2, 2])),
    "depthwise": ((1, 5, 4, 4), (5, 1, 4, 4), dict(group=5, strides=[2, 2], pads=[1, 1, 1, 1])),
    "spatial_1x1": ((2, 3, 1, 1), (3, 5, 3, 3), dict()),
    "convt1d": ((2, 3, 6), (3, 4, 3), dict(strides=[2], pads=[1, 0], output_padding=[1])),
    "convt3d": ((1, 2, 3, 4, 3), (2, 3, 2, 3, 3), dict(strides=[2, 1, 2], pads=[0, 1, 1, 1, 0, 0])),
}


@pytest.mark.parametrize("name", sorted(CONVT_CASES))
def test_conv_transpose(name):
    xs, ws, attrs = CONVT_CASES[name]
    M = ws[1] * attrs.get("group", 1)
    check("ConvTranspose", [rand(*xs), rand(*ws), rand(M)], attrs, 11)
    if name in ("basic", "stride2_pads"):
        check("ConvTranspose", [rand(*xs), rand(*ws)], attrs, 7)
        check("ConvTranspose", [rand(*xs), rand(*ws)], attrs, 22)


# ---------------------------------------------------------------------------------------------- pools

POOL_CASES = {
    "k3s2p1": ((2, 5, 9, 8), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    "k2s2": ((1, 3, 7, 6), dict(kernel_shape=[2, 2], strides=[2, 2])),
    "asym_pads": ((1, 3, 6, 7), dict(kernel_shape=[3, 2], strides=[2, 1], pads=[0, 1, 2, 0])),
    "same_upper": ((2, 3, 7, 8), dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")),
    "same_lower": ((2, 3, 7, 8), dict(kernel_shape=[2, 3], strides=[2, 2], auto_pad="SAME_LOWER")),
    "valid": ((1, 2, 7, 8), dict(kernel_shape=[3, 3], strides=[2, 3], auto_pad="VALID")),
    "ceil": ((1, 3, 8, 7), dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    "ceil_pads": ((1, 3, 6, 6), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)),
    "ceil_drop_last": ((1, 2, 4, 6), dict(kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1], ceil_mode=1)),
    "dilations": ((1, 3, 9, 10), dict(kernel_shape=[3, 2], dilations=[2, 3], pads=[1, 1, 1, 1])),
    "dilations_ceil": ((1, 2, 10, 9), dict(kernel_shape=[2, 2], dilations=[2, 2], strides=[2, 2], ceil_mode=1)),
    "spatial_1x1": ((3, 4, 1, 1), dict(kernel_shape=[1, 1])),
    "spatial_1x1_pad": ((2, 3, 1, 1), dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),
    "pool1d": ((2, 3, 11), dict(kernel_shape=[3], strides=[2], pads=[1, 0])),
    "pool1d_ceil": ((2, 3, 10), dict(kernel_shape=[3], strides=[2], ceil_mode=1)),
    "pool3d": ((1, 2, 5, 6, 7), dict(kernel_shape=[2, 3, 3], strides=[2, 2, 1], pads=[0, 1, 1, 1, 0, 1])),
    "pool3d_same": ((2, 2, 4, 5, 5), dict(kernel_shape=[3, 3, 3], strides=[2, 2, 2], auto_pad="SAME_UPPER")),
}
NEW_ATTRS = ("ceil_mode", "dilations")  # not in MaxPool-8/AveragePool-7/LpPool-11


@pytest.mark.parametrize("name,opset", [(n, 12) for n in sorted(POOL_CASES)] + [
    (n, 8) for n in sorted(POOL_CASES) if not any(a in POOL_CASES[n][1] for a in NEW_ATTRS)])
def test_max_pool(name, opset):
    xs, attrs = POOL_CASES[name]
    check("MaxPool", [rand(*xs)], attrs, opset)


@pytest.mark.parametrize("name", sorted(POOL_CASES))
@pytest.mark.parametrize("storage_order", [0, 1])
def test_max_pool_indices(name, storage_order):
    xs, attrs = POOL_CASES[name]
    check("MaxPool", [rand(*xs)], dict(attrs, storage_order=storage_order), 12, n_outputs=2)


@pytest.mark.parametrize("name", sorted(n for n in POOL_CASES if len(POOL_CASES[n][0]) == 4))
def test_max_pool_of_channels_last_memory(name):
    """A conv's result is an (N, C, H, W) view of channels-last memory, which MaxPool pools in that layout:
    onnxruntime's answer on the same values; with NaNs in some windows (pooled tap by tap there), the
    answer of the same values in NCHW memory, bit for bit."""
    xs, attrs = POOL_CASES[name]
    x = rand(*xs)
    view = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    assert_close(run_tinyrt("MaxPool", [view], attrs, 12)[0], run_ort("MaxPool", [x], attrs, 12)[0])
    x.reshape(-1)[::7] = np.nan
    view = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    got, want = run_tinyrt("MaxPool", [view], attrs, 12)[0], run_tinyrt("MaxPool", [x], attrs, 12)[0]
    assert got.shape == want.shape and got.tobytes() == want.tobytes()


def test_max_pool_old_versions_and_ints():
    x = rand(2, 3, 7, 7)
    check("MaxPool", [x], dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), 7)
    check("MaxPool", [x], dict(kernel_shape=[3, 3], strides=[2, 2]), 8, n_outputs=2)
    check("MaxPool", [x], dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1), 22)
    for dt in (np.uint8, np.int8):
        xi = RNG.integers(-128 if dt == np.int8 else 0, 127, size=(1, 3, 6, 7)).astype(dt)
        check("MaxPool", [xi], dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), 12)


def test_max_pool_indices_ties_with_pads():
    # integer pads equal to iinfo.min must not win ties against real elements of that value
    attrs = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2])
    x = np.zeros((1, 2, 5, 5), np.uint8)
    x[0, 0, 2, 2] = 3
    check("MaxPool", [x], attrs, 12, n_outputs=2)
    check("MaxPool", [np.full((2, 1, 5, 4), -128, np.int8)], attrs, 12, n_outputs=2)
    check("MaxPool", [np.zeros((1, 3, 4, 5), np.float32)], attrs, 12, n_outputs=2)


@pytest.mark.parametrize("name", sorted(POOL_CASES))
@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_average_pool(name, count_include_pad):
    xs, attrs = POOL_CASES[name]
    attrs = dict(attrs, count_include_pad=count_include_pad)
    opset = 19 if "dilations" in attrs else 11
    check("AveragePool", [rand(*xs)], attrs, opset)
    if not any(a in attrs for a in NEW_ATTRS):
        check("AveragePool", [rand(*xs)], attrs, 7)


@pytest.mark.parametrize("name", sorted(POOL_CASES))
@pytest.mark.parametrize("p", [1, 2, 3])
def test_lp_pool(name, p):
    xs, attrs = POOL_CASES[name]
    attrs = dict(attrs, p=p)
    if any(a in attrs for a in NEW_ATTRS):
        check("LpPool", [rand(*xs)], attrs, 18)
    else:
        check("LpPool", [rand(*xs)], attrs, 11)


@pytest.mark.parametrize("shape", [(2, 5, 7, 6), (1, 3, 1, 1), (2, 3, 9), (1, 2, 3, 4, 5)])
@pytest.mark.parametrize("op_type", ["GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"])
def test_global_pools(op_type, shape):
    check(op_type, [rand(*shape)], {}, 11)
    if op_type == "GlobalLpPool":
        check(op_type, [rand(*shape)], dict(p=3), 11)


@pytest.mark.parametrize("shape", [(1, 672, 20, 20), (2, 5, 7, 6), (1, 3, 1, 1)])
def test_global_average_pool_of_channels_last_memory(shape):
    """The convs write channels-last memory under an (N, C, H, W) view: GlobalAveragePool sums it with a
    matmul (ops/pool.py); the same means as of the same values in NCHW memory, and as onnxruntime's."""
    fn = resolve("GlobalAveragePool", "", 11).fn
    x = rand(*shape)
    last = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    got = fn(last)
    assert got.shape == shape[:2] + (1, 1) and got.dtype == np.float32
    assert_close(got, fn(x))
    assert_close(got, run_ort("GlobalAveragePool", [x], {}, 11)[0])
    for keepdims in (0, 1):  # ShuffleNet's head writes it as ReduceMean over the pixels
        mean = resolve("ReduceMean", "", 13).fn(last, axes=[3, 2], keepdims=keepdims)
        assert_close(mean, run_ort("ReduceMean", [x], dict(axes=[2, 3], keepdims=keepdims), 13)[0])


@pytest.mark.parametrize("name", ["k2s2", "k3s2p1", "pool3d"])
def test_max_unpool_roundtrip(name):
    xs, attrs = POOL_CASES[name]
    x = rand(*xs)
    y, idx = run_ort("MaxPool", [x], attrs, 11, n_outputs=2)
    unpool_attrs = {k: v for k, v in attrs.items() if k in ("kernel_shape", "strides", "pads")}
    check("MaxUnpool", [y, idx, np.array(x.shape, dtype=np.int64)], unpool_attrs, 11)
    # without output_shape: (in - 1) * stride + kernel - pads, the pooled input's size when it divides evenly
    x = rand(*xs[:2], *[(n - 1) * 2 + 2 for n in xs[2:]]) if name == "k2s2" else x
    y, idx = run_ort("MaxPool", [x], attrs, 11, n_outputs=2)
    if name != "k3s2p1":
        check("MaxUnpool", [y, idx], unpool_attrs, 11)


# ------------------------------------------------------------------------------------- normalisation

@pytest.mark.parametrize("opset", [7, 9, 14, 15])
@pytest.mark.parametrize("shape", [(2, 5, 7, 6), (3, 13), (1, 11, 4), (2, 3, 2, 3, 4)])
def test_batch_normalization(opset, shape):
    C = shape[1]
    var = np.abs(rand(C)) + 0.1
    check("BatchNormalization", [rand(*shape), rand(C), rand(C), rand(C), var], dict(epsilon=1e-3), opset)


def test_batch_normalization_spatial0():
    x = rand(2, 3, 4, 5)
    params = [rand(3, 4, 5), rand(3, 4, 5), rand(3, 4, 5), np.abs(rand(3, 4, 5)) + 0.1]
    got = run_tinyrt("BatchNormalization", [x] + params, dict(spatial=0), 7)[0]
    s, b, m, v = params
    np.testing.assert_allclose(got, (x - m) / np.sqrt(v + 1e-5) * s + b, rtol=1e-5, atol=1e-5)


def test_batch_normalization_training_refused():
    C = 3
    args = [rand(2, C, 4, 4), rand(C), rand(C), rand(C), np.abs(rand(C))]
    with pytest.raises(UnsupportedError):
        run_tinyrt("BatchNormalization", args, dict(training_mode=1), 15, n_outputs=3)
    with pytest.raises(UnsupportedError):
        run_tinyrt("BatchNormalization", args, {}, 9, n_outputs=5)


@pytest.mark.parametrize("shape", [(2, 5, 7, 6), (1, 3, 9), (2, 3, 2, 3, 4), (1, 4, 1, 1)])
def test_instance_normalization(shape):
    C = shape[1]
    check("InstanceNormalization", [rand(*shape), rand(C), rand(C)], dict(epsilon=1e-4), 11)


@pytest.mark.parametrize("axis", [-1, 1, 2, -3])
@pytest.mark.parametrize("with_bias", [True, False])
def test_layer_normalization(axis, with_bias):
    x = rand(2, 3, 5, 4)
    norm_shape = x.shape[axis % 4:]
    inputs = [x, rand(*norm_shape)] + ([rand(*norm_shape)] if with_bias else [])
    check("LayerNormalization", inputs, dict(axis=axis, epsilon=1e-3), 17, n_outputs=3)
    check("LayerNormalization", inputs, dict(axis=axis), 17, n_outputs=1)


@pytest.mark.parametrize("shape,groups", [((2, 6, 4, 5), 3), ((1, 4, 7), 2), ((2, 6, 3, 3), 6),
                                          ((1, 6, 2, 2), 1)])
@pytest.mark.parametrize("opset", [18, 21])
def test_group_normalization(shape, groups, opset):
    n_params = groups if opset == 18 else shape[1]
    check("GroupNormalization", [rand(*shape), rand(n_params), rand(n_params)],
          dict(num_groups=groups, epsilon=1e-4), opset)


@pytest.mark.parametrize("axes", [None, [0, 2, 3], [1], [2, 3], [-1]])
def test_mean_variance_normalization(axes):
    attrs = {} if axes is None else dict(axes=axes)
    check("MeanVarianceNormalization", [rand(2, 5, 4, 3)], attrs, 13)
    check("MeanVarianceNormalization", [rand(2, 5, 4, 3)], attrs, 9)


@pytest.mark.parametrize("size", [1, 3, 5, 9])
def test_lrn(size):
    check("LRN", [rand(2, 7, 5, 4)], dict(size=size, alpha=1e-2, beta=0.6, bias=2.0), 13)
    check("LRN", [rand(1, 5, 3, 2)], dict(size=size), 7)


@pytest.mark.parametrize("size", [2, 4])
@pytest.mark.parametrize("shape", [(2, 7, 5, 4), (1, 5, 3)])
def test_lrn_even_size_and_3d(size, shape):
    # onnxruntime only takes 4-D input and odd sizes: check the spec's formula directly. The window of
    # channel c is c - floor((size-1)/2) .. c + ceil((size-1)/2).
    x = rand(*shape)
    got = run_tinyrt("LRN", [x], dict(size=size, alpha=0.5, beta=0.75, bias=1.5), 13)[0]
    C = shape[1]
    want = np.empty_like(x)
    for c in range(C):
        lo, hi = max(0, c - (size - 1) // 2), min(C - 1, c + size - 1 - (size - 1) // 2)
        sq = (x[:, lo:hi + 1] ** 2).sum(axis=1)
        want[:, c] = x[:, c] / (1.5 + 0.5 / size * sq) ** 0.75
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------ float16

def _f16(*shape):
    return rand(*shape, dtype=np.float16)


FLOAT16_CASES = {
    "Conv": (lambda: [_f16(2, 4, 7, 7), _f16(3, 4, 3, 3), _f16(3)], dict(pads=[1, 1, 1, 1], strides=[2, 2]), 1),
    "Conv_depthwise": (lambda: [_f16(1, 6, 7, 7), _f16(6, 1, 3, 3)], dict(group=6, pads=[1, 1, 1, 1]), 1),
    "MaxPool": (lambda: [_f16(2, 4, 7, 7)], dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), 1),
    "AveragePool": (lambda: [_f16(2, 4, 7, 7)], dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), 1),
    "GlobalAveragePool": (lambda: [_f16(2, 4, 7, 7)], {}, 1),
    "BatchNormalization": (lambda: [_f16(2, 4, 7, 7), _f16(4), _f16(4), _f16(4),
                                    np.abs(_f16(4)) + np.float16(0.5)], {}, 1),
    "LayerNormalization": (lambda: [_f16(2, 4, 7, 7), _f16(7), _f16(7)], {}, 3),
    "InstanceNormalization": (lambda: [_f16(2, 4, 7, 7), _f16(4), _f16(4)], {}, 1),
}


@pytest.mark.parametrize("name", sorted(FLOAT16_CASES))
def test_float16(name):
    # computed in float32 and rounded once: within float16 resolution of onnxruntime
    make, attrs, n_outputs = FLOAT16_CASES[name]
    check(name.split("_")[0], make(), attrs, 17, n_outputs=n_outputs, rtol=1e-3)
