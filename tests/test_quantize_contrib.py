"""onnxruntime's com.microsoft quantized ops, one node at a time, against onnxruntime: the attributes and
cases the quantized CNNs of test_quantized_models.py do not reach (broadcasting, int8, channels_last,
pooling options, float QGemm output, Softmax before opset 13). Integer outputs must be equal, or within
one quantization step where onnxruntime's vector kernels use another arithmetic than its scalar formula:
QLinearAdd / QLinearMul (fixed-point multipliers in MLAS's SSE/NEON code; tinyrt multiplies by float32
scale ratios), QLinearSoftmax and QLinearAveragePool (computed through float)."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import tinyrt  # noqa: E402

MS = "com.microsoft"
TYPES = {np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.int8): TensorProto.INT8,
         np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int32): TensorProto.INT32}


def run_both(op_type, inputs, attrs=None, steps=0, out=None):
    """inputs: list of (name, array, is_constant); one node of ``op_type`` in com.microsoft, whose output
    has the type of ``out`` (default: the last input's, the output zero point)."""
    names = [n for n, _, _ in inputs]
    node = helper.make_node(op_type, names, ["y"], domain=MS, **(attrs or {}))
    feeds = {n: a for n, a, const in inputs if not const and a is not None}
    graph = helper.make_graph(
        [node], "q", [helper.make_tensor_value_info(n, TYPES[a.dtype], a.shape) for n, a in feeds.items()],
        [helper.make_tensor_value_info("y", TYPES[np.dtype(out if out is not None else inputs[-1][1].dtype)], None)],
        [numpy_helper.from_array(np.asarray(a), n) for n, a, const in inputs if const])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(MS, 1)])
    data = model.SerializeToString()
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    got = tinyrt.InferenceSession(data).run(None, feeds)[0]
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
    err = np.abs(got.astype(np.float64) - want.astype(np.float64)).max() if want.size else 0
    if want.dtype.kind == "f":
        assert err <= 1e-4 * max(1.0, float(np.abs(want).max())), err
    else:
        assert err <= steps, err
    return got


def q(shape, dtype, seed=0):
    info = np.iinfo(dtype)
    return np.random.RandomState(seed).randint(info.min, info.max + 1, shape).astype(dtype)


def s(v):
    return np.array(v, np.float32)


def z(v, dtype):
    return np.array(v, dtype)


@pytest.mark.parametrize("op_type", ["QLinearAdd", "QLinearMul"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_binary_broadcasting(op_type, dtype):
    zp = 128 if dtype == np.uint8 else 0
    run_both(op_type, [("a", q((2, 3, 4, 5), dtype, 1), False), ("sa", s(0.05), True), ("za", z(zp - 3, dtype), True),
                       ("b", q((3, 1, 1), dtype, 2), False), ("sb", s(0.02), True), ("zb", z(zp + 5, dtype), True),
                       ("sc", s(0.07), True), ("zc", z(zp, dtype), True)], steps=1)


@pytest.mark.parametrize("op_type,attrs", [("QLinearSigmoid", {}), ("QLinearLeakyRelu", {"alpha": 0.2})])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_lookup_ops(op_type, attrs, dtype):
    zp = 128 if dtype == np.uint8 else 0
    run_both(op_type, [("x", q((2, 8, 5, 5), dtype), False), ("sx", s(0.06), True), ("zx", z(zp + 7, dtype), True),
                       ("sy", s(1 / 255.0 if op_type == "QLinearSigmoid" else 0.05), True),
                       ("zy", z(zp - 128 if op_type == "QLinearSigmoid" else zp, dtype), True)], attrs)


@pytest.mark.parametrize("channels_last", [0, 1])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_global_average_pool(channels_last, dtype):
    zp = 128 if dtype == np.uint8 else 0
    run_both("QLinearGlobalAveragePool", [("x", q((2, 6, 7, 9), dtype), False), ("sx", s(0.03), True),
                                          ("zx", z(zp + 3, dtype), True), ("sy", s(0.01), True),
                                          ("zy", z(zp - 2, dtype), True)], {"channels_last": channels_last})


@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1},
    {"kernel_shape": [2, 3], "strides": [2, 2], "ceil_mode": 1},
    {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER", "channels_last": 1},
])
def test_average_pool(attrs):
    run_both("QLinearAveragePool", [("x", q((1, 5, 9, 8), np.uint8), False), ("sx", s(0.03), True),
                                    ("zx", z(120, np.uint8), True), ("sy", s(0.025), True),
                                    ("zy", z(130, np.uint8), True)], attrs, steps=1)


def test_concat_mixed_scales():
    run_both("QLinearConcat", [("sy", s(0.05), True), ("zy", z(128, np.uint8), True),
                               ("a", q((1, 3, 4, 4), np.uint8, 1), False), ("sa", s(0.05), True), ("za", z(128, np.uint8), True),
                               ("b", q((1, 2, 4, 4), np.uint8, 2), False), ("sb", s(0.11), True), ("zb", z(100, np.uint8), True)],
             {"axis": 1}, out=np.uint8)


@pytest.mark.parametrize("attrs", [{"axis": -1, "opset": 13}, {"axis": 1, "opset": 12}])
def test_softmax(attrs):
    run_both("QLinearSoftmax", [("x", q((2, 3, 10), np.uint8), False), ("sx", s(0.1), True), ("zx", z(128, np.uint8), True),
                                ("sy", s(1 / 256.0), True), ("zy", z(0, np.uint8), True)], attrs, steps=1)


@pytest.mark.parametrize("with_y", [True, False])
def test_qgemm(with_y):
    inputs = [("a", q((4, 16), np.uint8, 1), False), ("sa", s(0.02), True), ("za", z(128, np.uint8), True),
              ("b", q((10, 16), np.int8, 2) // 2, True), ("sb", s(0.01), True), ("zb", z(0, np.int8), True),
              ("c", np.random.RandomState(3).randint(-500, 500, 10).astype(np.int32), True)]
    if with_y:
        inputs += [("sy", s(0.05), True), ("zy", z(120, np.uint8), True)]
    run_both("QGemm", inputs, {"transB": 1}, out=np.uint8 if with_y else np.float32)
