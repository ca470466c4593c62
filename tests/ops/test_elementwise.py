"""Elementwise, math, softmax, matrix, reduction and cast ops against onnxruntime (the oracle).

Each case builds a one-node ONNX model with onnx.helper, runs it in onnxruntime and in
tinyrt.InferenceSession, and compares values, shapes and dtypes: ONNX's T -> T must survive numpy's
type promotion (float16 stays float16, int64 stays int64), integer Div truncates, Softmax before
opset 13 flattens to 2-D, Gemm broadcasts C, and so on.
"""
import math

import numpy as np
import pytest

import tinyrt
from oracle import assert_close, ort_run
from tinyrt.errors import UnsupportedError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

RNG = np.random.default_rng(0)


def _model(op_type, inputs, opset, attrs, n_outputs=1):
    names = ["" if x is None else "in%d" % i for i, x in enumerate(inputs)]
    while names and names[-1] == "":
        names.pop()
    node = helper.make_node(op_type, names, ["out%d" % i for i in range(n_outputs)], **attrs)
    graph_inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(x.dtype), x.shape)
                    for n, x in zip(names, inputs) if n]
    outputs = [helper.make_empty_tensor_value_info("out%d" % i) for i in range(n_outputs)]
    model = helper.make_model(helper.make_graph([node], "g", graph_inputs, outputs),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    # Declare the outputs' types, as exporters do.
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def _ort(op_type, inputs, opset, n_outputs, attrs):
    model = _model(op_type, inputs, opset, attrs, n_outputs)
    feeds = {"in%d" % i: x for i, x in enumerate(inputs) if x is not None}
    return ort_run(model, feeds)


def run_both(op_type, inputs, opset, n_outputs=1, **attrs):
    """Outputs of (onnxruntime, tinyrt) for one node; ``inputs`` may hold None for an absent input."""
    try:
        expected = _ort(op_type, inputs, opset, n_outputs, attrs)
    except Exception as e:
        if not any(x is not None and x.dtype == np.float16 for x in inputs):
            # the oracle lacks a kernel for this dtype/opset: nothing to compare with
            pytest.skip("onnxruntime cannot run %s-%d: %s" % (op_type, opset, str(e).splitlines()[0][:120]))
        # onnxruntime has many float32-only kernels: compute in float32 and round to float16.
        up = [x.astype(np.float32) if x is not None and x.dtype == np.float16 else x for x in inputs]
        expected = [y.astype(np.float16) if y.dtype == np.float32 else y
                    for y in _ort(op_type, up, opset, n_outputs, attrs)]
    model = _model(op_type, inputs, opset, attrs, n_outputs)
    feeds = {"in%d" % i: x for i, x in enumerate(inputs) if x is not None}
    got = tinyrt.InferenceSession(model.SerializeToString()).run(None, feeds)
    return expected, got


def check(op_type, inputs, opset, rtol=1e-4, n_outputs=1, **attrs):
    expected, got = run_both(op_type, inputs, opset, n_outputs, **attrs)
    for e, g in zip(expected, got):
        assert isinstance(g, np.ndarray)
        # float16 results: onnxruntime's float32 answer rounded to float16 (one float16 step is ~1e-3)
        assert_close(g, e, rtol if e.dtype != np.float16 else 2e-3, what=op_type)
    return got


def rand(shape, dtype=np.float32, low=-3.0, high=3.0):
    if np.dtype(dtype).kind in "iu":
        return np.asarray(RNG.integers(int(low), int(high) + 1, size=shape), dtype=dtype)
    return np.asarray(RNG.uniform(low, high, size=shape), dtype=dtype)


# --- dtype preservation of activations whose attributes are Python floats

ACTIVATIONS = [
    ("Relu", 14, {}), ("LeakyRelu", 16, {"alpha": 0.1}), ("Sigmoid", 13, {}), ("Tanh", 13, {}),
    ("HardSigmoid", 6, {"alpha": 0.3, "beta": 0.4}), ("HardSwish", 14, {}), ("Softplus", 1, {}),
    ("Softsign", 1, {}), ("Elu", 6, {"alpha": 0.7}), ("Selu", 6, {}), ("Celu", 12, {"alpha": 2.0}),
    ("Gelu", 20, {}), ("Gelu", 20, {"approximate": "tanh"}), ("Mish", 18, {}),
    ("ThresholdedRelu", 10, {"alpha": 0.5}), ("Shrink", 9, {"bias": 0.5, "lambd": 1.0}), ("Erf", 13, {}),
    ("Exp", 13, {}), ("Sin", 7, {}), ("Atan", 7, {}), ("Round", 11, {}), ("Floor", 13, {}), ("Abs", 13, {}),
    ("Neg", 13, {}), ("Sign", 13, {}), ("Reciprocal", 13, {}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
@pytest.mark.parametrize("op_type,opset,attrs", ACTIVATIONS, ids=lambda v: str(v) if not isinstance(v, dict) else "")
def test_activation_keeps_dtype(op_type, opset, attrs, dtype):
    check(op_type, [rand((2, 3, 5), dtype)], opset, **attrs)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int8])
@pytest.mark.parametrize("op_type", ["Relu", "Abs", "Neg", "Sign"])
def test_integer_unary(op_type, dtype):
    check(op_type, [rand((4, 5), dtype, -9, 9)], 14 if op_type == "Relu" else 13)


def test_erf_accuracy():
    x = np.linspace(-7, 7, 20001)
    ref = np.array([math.erf(v) for v in x])
    got = tinyrt.ops.resolve("Erf", "", 13).fn(x)
    assert got.dtype == np.float64
    assert np.abs(got - ref).max() < 1e-14
    special = tinyrt.ops.resolve("Erf", "", 13).fn(np.array([np.nan, np.inf, -np.inf, 0.0], np.float32))
    assert np.isnan(special[0]) and list(special[1:]) == [1.0, -1.0, 0.0]


# --- Clip: attributes at opset 6, optional inputs from 11

@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_clip_6(dtype):
    x = rand((3, 4), dtype, -10, 10)
    check("Clip", [x], 6, min=-1.5, max=2.0)
    check("Clip", [x], 6, min=0.0)  # ReLU
    check("Clip", [x], 6)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int64, np.int8])
def test_clip_11_optional_inputs(dtype):
    opset = 13 if np.dtype(dtype).kind != "f" else 11
    x = rand((3, 4), dtype, -10, 10)
    lo, hi = np.array(-2, dtype), np.array(6, dtype)
    check("Clip", [x, lo, hi], opset)
    check("Clip", [x, None, hi], opset)   # "" for min
    check("Clip", [x, lo], opset)
    check("Clip", [x], opset)
    check("Clip", [x, hi, lo], opset)     # min > max: everything becomes max


# --- binary arithmetic: broadcasting and integer semantics

SHAPES = [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (4,)), ((2, 3, 4), (3, 1)), ((2, 1, 4), (1, 3, 1)),
          ((), (2, 3)), ((2, 3), ()), ((1,), (5,)), ((0, 3), (1, 3))]


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int64])
@pytest.mark.parametrize("op_type", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
def test_arithmetic_broadcast(op_type, dtype, shapes):
    a = rand(shapes[0], dtype, -20, 20)
    b = rand(shapes[1], dtype, 1, 7)
    if np.dtype(dtype).kind == "i":
        b = np.asarray(b * np.where(RNG.random(b.shape) < 0.5, -1, 1).astype(dtype))
    check(op_type, [a, b], 14)


def test_integer_div_truncates_toward_zero():
    a = np.array([-7, 7, -7, 7, 0, -1, 9, -9], np.int64)
    b = np.array([2, -2, -2, 2, 3, 2, 3, 3], np.int64)
    got = check("Div", [a, b], 14)[0]
    assert got.tolist() == [-3, -3, 3, 3, 0, 0, 3, -3]
    check("Div", [a.astype(np.int32), b.astype(np.int32)], 14)
    check("Div", [np.array([200, 7], np.uint8), np.array([3, 2], np.uint8)], 14)


@pytest.mark.parametrize("fmod", [0, 1])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float32])
def test_mod(fmod, dtype):
    if np.dtype(dtype).kind == "f" and fmod == 0:
        pytest.skip("opsets before 28 require fmod=1 for floats")
    a = np.array([-7, 7, -7, 7, 0, 5, -4, 3], dtype)
    b = np.array([2, -2, -2, 3, 3, -3, 3, 5], dtype)
    check("Mod", [a, b], 13, fmod=fmod)
    check("Mod", [rand((2, 3, 4), dtype, -20, 20), np.array([3, -4, 5, 7], dtype)], 13, fmod=fmod)


def test_mod_refuses_bad_fmod():
    model = _model("Mod", [np.ones(2, np.int64), np.ones(2, np.int64)], 13, {"fmod": 2})
    with pytest.raises(UnsupportedError, match="fmod"):
        tinyrt.InferenceSession(model.SerializeToString())


@pytest.mark.parametrize("xt,yt", [(np.float32, np.float32), (np.float32, np.int64), (np.int64, np.int64),
                                   (np.int32, np.float32), (np.float16, np.float16), (np.float64, np.float32)])
def test_pow_keeps_base_dtype(xt, yt):
    x = rand((3, 4), xt, 1, 4)
    y = rand((4,), yt, -2, 3)
    if np.dtype(xt).kind in "iu" and np.dtype(yt).kind in "iu":
        y = np.abs(y)  # onnxruntime's integer Pow with negative exponents is not worth pinning down
    check("Pow", [x, y], 15)


@pytest.mark.parametrize("op_type", ["Sum", "Max", "Min", "Mean"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_variadic(op_type, dtype):
    a, b, c = rand((2, 3, 4), dtype), rand((3, 1), dtype), rand((4,), dtype)
    check(op_type, [a, b, c], 13)
    check(op_type, [a], 13)


@pytest.mark.parametrize("op_type", ["Max", "Min"])
def test_variadic_int(op_type):
    check(op_type, [rand((2, 3), np.int64, -9, 9), rand((3,), np.int64, -9, 9)], 13)


@pytest.mark.parametrize("op_type", ["Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"])
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_comparisons(op_type, dtype):
    a, b = rand((2, 3, 4), dtype, -2, 2), rand((3, 1), dtype, -2, 2)
    got = check(op_type, [a, b], 16 if "Equal" in op_type and op_type != "Equal" else 13)
    assert got[0].dtype == np.bool_


@pytest.mark.parametrize("op_type", ["And", "Or", "Xor"])
def test_logic(op_type):
    check(op_type, [RNG.random((2, 3, 4)) < 0.5, RNG.random((3, 1)) < 0.5], 7)
    check("Not", [RNG.random((2, 3)) < 0.5], 1)


@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint32, np.uint64])
def test_bitshift(direction, dtype):
    x = rand((3, 4), dtype, 0, 200)
    y = rand((4,), dtype, 0, 7)
    check("BitShift", [x, y], 11, direction=direction)


@pytest.mark.parametrize("op_type", ["BitwiseAnd", "BitwiseOr", "BitwiseXor"])
def test_bitwise(op_type):
    check(op_type, [rand((3, 4), np.int32, -100, 100), rand((4,), np.int32, -100, 100)], 18)
    check("BitwiseNot", [rand((3, 4), np.uint8, 0, 255)], 18)


def test_where_broadcast():
    cond = RNG.random((2, 1, 4)) < 0.5
    check("Where", [cond, rand((3, 1), np.float32), rand((4,), np.float32)], 16)
    check("Where", [cond, rand((2, 3, 4), np.int64), np.array(7, np.int64)], 16)


def test_isnan_isinf():
    x = np.array([1.0, np.nan, np.inf, -np.inf, 0.0], np.float32)
    check("IsNaN", [x], 13)
    for pos in (0, 1):
        for neg in (0, 1):
            check("IsInf", [x], 10, detect_positive=pos, detect_negative=neg)


# --- Softmax family: opset < 13 flattens to 2-D at axis, 13+ works along one axis

@pytest.mark.parametrize("op_type", ["Softmax", "LogSoftmax", "Hardmax"])
@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1, -2])
def test_softmax_semantics(op_type, opset, axis):
    x = rand((2, 3, 4), np.float32, -4, 4)
    if op_type == "Hardmax":
        x = np.round(x)  # ties: the first maximum wins
    attrs = {} if axis is None else {"axis": axis}
    check(op_type, [x], opset, **attrs)


def test_softmax_pre13_differs_from_13():
    x = rand((2, 3, 4), np.float32)
    old = check("Softmax", [x], 11, axis=1)[0]
    new = check("Softmax", [x], 13, axis=1)[0]
    np.testing.assert_allclose(old.sum(axis=(1, 2)), 1, rtol=1e-5)  # rows of the 2-D view [2, 12]
    np.testing.assert_allclose(new.sum(axis=1), 1, rtol=1e-5)       # just axis 1


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_softmax_dtypes(dtype):
    check("Softmax", [rand((3, 7), dtype, -30, 30)], 13)
    check("LogSoftmax", [rand((3, 7), dtype, -30, 30)], 13)


@pytest.mark.parametrize("spread", [3, 70, 200], ids=["no-shift", "shift-by-mean", "overflow-takes-max"])
def test_softmax_rows_shifted_by_mean(spread):
    """numpy path (ops/softmax.py _softmax_rows): rows not shifted at all where every value is within +-60,
    else shifted by their mean, or, where a row's spread would overflow exp (or a row holds -inf), the
    whole input by the max: each is onnxruntime's answer."""
    from tinyrt.ops.softmax import _softmax_rows
    x = rand((300, 91), np.float32, -spread, spread)
    assert (_softmax_rows(x) is None) == (spread > 88)
    check("Softmax", [x], 13)
    check("Softmax", [x.reshape(300, 7, 13)], 11, axis=1)  # the 2-D rows of opset 11
    x[5, 3] = -np.inf
    if spread < 88:
        assert _softmax_rows(x) is None
    check("Softmax", [x], 13)


def test_softmax_large_values():
    x = np.array([[1000.0, 1001.0, -1000.0]], np.float32)
    check("Softmax", [x], 13)
    check("LogSoftmax", [x], 13)


# --- Gemm and MatMul

GEMM_C_SHAPES = [None, (), (1,), (5,), (1, 5), (4, 1), (4, 5)]


@pytest.mark.parametrize("c_shape", GEMM_C_SHAPES, ids=str)
@pytest.mark.parametrize("trans", [(0, 0), (1, 0), (0, 1), (1, 1)], ids=str)
def test_gemm(trans, c_shape):
    ta, tb = trans
    a = rand((3, 4) if ta else (4, 3))
    b = rand((5, 3) if tb else (3, 5))
    c = None if c_shape is None else rand(c_shape)
    check("Gemm", [a, b, c], 13, transA=ta, transB=tb)
    check("Gemm", [a, b, c], 13, transA=ta, transB=tb, alpha=0.5, beta=-2.0)


def test_gemm_c_required_before_11_and_float16():
    a, b, c = rand((4, 3)), rand((3, 5)), rand((5,))
    check("Gemm", [a, b, c], 7, alpha=2.0, beta=0.5)
    check("Gemm", [a.astype(np.float16), b.astype(np.float16), c.astype(np.float16)], 13, alpha=0.25)


def test_gemm_fully_connected_shape():
    # What a classifier head exports: x [1, 1280] @ W.T [1280, C] + b [C]
    check("Gemm", [rand((1, 64)), rand((10, 64)), rand((10,))], 11, transB=1, rtol=1e-4)


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)),
                                    ((2, 1, 3, 4), (5, 4, 2)), ((4,), (4,))], ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_matmul(shapes, dtype):
    check("MatMul", [rand(shapes[0], dtype), rand(shapes[1], dtype)], 13)


@pytest.mark.parametrize("eq,shapes", [("ij,jk->ik", [(3, 4), (4, 5)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
                                       ("ii->i", [(4, 4)]), ("ij->ji", [(3, 4)]), ("i,i", [(5,), (5,)]),
                                       ("...ij,...jk", [(2, 3, 4), (2, 4, 2)]), ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)])])
def test_einsum(eq, shapes):
    check("Einsum", [rand(s, np.float32) for s in shapes], 12, equation=eq)


def test_matmul_integer():
    a = rand((3, 4), np.uint8, 0, 255)
    b = rand((4, 5), np.uint8, 0, 255)
    check("MatMulInteger", [a, b, np.array(12, np.uint8), np.array(200, np.uint8)], 10)
    check("MatMulInteger", [a, b], 10)
    check("MatMulInteger", [a, b, np.array(3, np.uint8), rand((5,), np.uint8, 0, 255)], 10)  # per column of B


# --- reductions

REDUCES = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
           "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"]


@pytest.mark.parametrize("op_type", REDUCES)
@pytest.mark.parametrize("axes", [None, [1], [0, 2], [-1]], ids=str)
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_axes_attribute(op_type, axes, keepdims):
    x = rand((2, 3, 4), np.float32, 0.5, 2.0)
    attrs = {"keepdims": keepdims}
    if axes is not None:
        attrs["axes"] = axes
    check(op_type, [x], 13 if op_type != "ReduceSum" else 11, **attrs)


@pytest.mark.parametrize("op_type", REDUCES)
@pytest.mark.parametrize("axes", [None, [], [1], [0, -1]], ids=str)
@pytest.mark.parametrize("noop", [0, 1])
def test_reduce_axes_input(op_type, axes, noop):
    # negative values too, so that a noop that forgets the elementwise part (|x|, x^2) shows
    x = rand((2, 3, 4), np.float32, -2.0, 2.0) if op_type != "ReduceLogSum" else rand((2, 3, 4), np.float32, 0.5, 2.0)
    ax = None if axes is None else np.array(axes, np.int64)
    check(op_type, [x, ax], 18, keepdims=1, noop_with_empty_axes=noop)
    check(op_type, [x, ax], 18, keepdims=0, noop_with_empty_axes=noop)


@pytest.mark.parametrize("op_type", ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd"])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float16])
def test_reduce_keeps_dtype(op_type, dtype):
    x = rand((2, 3, 4), dtype, -5, 5)
    check(op_type, [x, np.array([1], np.int64)], 18)


def test_reduce_sum_int32_does_not_widen():
    got = check("ReduceSum", [rand((3, 4), np.int32, -5, 5), np.array([1], np.int64)], 13)[0]
    assert got.dtype == np.int32


@pytest.mark.parametrize("op_type", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("last", [0, 1])
def test_argmax(op_type, axis, keepdims, last):
    x = np.round(rand((3, 4, 5), np.float32, -2, 2))  # many ties
    got = check(op_type, [x], 13, axis=axis, keepdims=keepdims, select_last_index=last)[0]
    assert got.dtype == np.int64


@pytest.mark.parametrize("exclusive", [0, 1])
@pytest.mark.parametrize("reverse", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.int32])
def test_cumsum(exclusive, reverse, dtype):
    x = rand((3, 4), dtype, -5, 5)
    for axis in (0, 1, -1):
        check("CumSum", [x, np.array(axis, np.int64)], 14, exclusive=exclusive, reverse=reverse)


# --- Cast

CAST_TYPES = [np.float32, np.float16, np.float64, np.int64, np.int32, np.int8, np.uint8, np.bool_]


@pytest.mark.parametrize("src", CAST_TYPES, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("dst", CAST_TYPES, ids=lambda t: np.dtype(t).name)
def test_cast(src, dst):
    if np.dtype(src).kind == "b":
        x = RNG.random((3, 4)) < 0.5
    elif np.dtype(src).kind == "u":
        x = rand((3, 4), src, 0, 255)
    elif np.dtype(src).kind == "f":
        x = np.array([[-2.7, -1.5, -0.5, 0.0], [0.4, 1.5, 2.5, 100.9], [-100.2, 0.0, 3.0, -0.0]], src)
    else:
        x = rand((3, 4), src, -100, 100)
    got = check("Cast", [x], 13, to=helper.np_dtype_to_tensor_dtype(np.dtype(dst)))[0]
    assert got.dtype == np.dtype(dst)
    check("CastLike", [x, np.zeros((1,), dst)], 15)


def test_cast_wraps_and_truncates():
    got = check("Cast", [np.array([200, -200, 300], np.int64)], 13, to=TensorProto.INT8)[0]
    assert got.tolist() == [-56, 56, 44]
    got = check("Cast", [np.array([-7.9, 7.9, -0.5], np.float32)], 13, to=TensorProto.INT64)[0]
    assert got.tolist() == [-7, 7, 0]
    got = check("Cast", [np.array([0.0, -0.0, np.nan, 0.1], np.float32)], 13, to=TensorProto.BOOL)[0]
    assert got.tolist() == [False, False, True, True]


def test_cast_with_saturate_attribute():
    check("Cast", [rand((3,), np.float32)], 19, to=TensorProto.FLOAT16, saturate=1)
    check("Cast", [rand((3,), np.float32)], 21, to=TensorProto.INT32)


def test_cast_to_unsupported_type_refused_at_load():
    model = _model("Cast", [np.ones(2, np.float32)], 13, {"to": TensorProto.BFLOAT16})
    with pytest.raises(UnsupportedError):
        tinyrt.InferenceSession(model.SerializeToString())


# --- edge shapes: 0-d and empty tensors (numpy returns scalars for 0-d, in-place code must cope)

@pytest.mark.parametrize("shape", [(), (0, 3)], ids=str)
@pytest.mark.parametrize("op_type,opset,attrs", ACTIVATIONS + [("Clip", 6, {"min": 0.0, "max": 6.0}),
                                                               ("Softmax", 13, {}), ("LogSoftmax", 13, {}),
                                                               ("Hardmax", 13, {})],
                         ids=lambda v: str(v) if not isinstance(v, dict) else "")
def test_edge_shapes(op_type, opset, attrs, shape):
    check(op_type, [rand(shape, np.float32)], opset, **attrs)


@pytest.mark.parametrize("e", [2.0, 0.5, 1.0, 3.0, -1.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_pow_scalar_exponent(e, dtype):
    x = rand((3, 4), dtype, -2, 2)
    check("Pow", [x, np.array(e, dtype)], 15)
    check("Pow", [x, np.array([e], np.float32)], 15)


@pytest.mark.parametrize("layout", ["nchw", "channels_last", "strided"])
def test_hard_swish_tail_in_pieces_is_the_formula(layout):
    """A conv's HardSwish tail works over pieces of y's memory with a small temporary (ops/activation.py):
    the same numbers as x * clip(x / 6 + 1/2, 0, 1) at once, whatever the layout and the piece size."""
    from tinyrt.ops.activation import _hard_swish_tail
    x = (np.random.RandomState(0).standard_normal((2, 24, 7, 9)) * 4).astype(np.float32)
    if layout == "channels_last":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    elif layout == "strided":
        x = np.repeat(x, 2, axis=3)[..., ::2]  # memory numpy cannot flatten: y whole
    g = x * np.float32(1 / 6)
    g += np.float32(0.5)
    expected = x * np.clip(g, 0, 1)
    for chunk in (7, 100, 1 << 16):
        y = x.copy(order="K") if layout != "strided" else np.repeat(x, 2, axis=3)[..., ::2]
        assert _hard_swish_tail(y, chunk) is y
        np.testing.assert_array_equal(y, expected)


def test_hard_swish_folded_into_the_conv_is_hard_swish_of_the_conv():
    """The numpy path's prepared conv folds 1/sqrt(6) into its weights and bias (ops/activation.py
    _hard_swish_folded): its tail on the sums of those, u * clip(u + 3/sqrt(6), 0, sqrt(6)), is HardSwish of
    the conv's own sums up to float rounding; weights that the division makes non-finite are refused."""
    from tinyrt.ops.activation import _hard_swish_folded
    rng = np.random.RandomState(1)
    W = rng.standard_normal((8, 5)).astype(np.float32)
    B = rng.standard_normal(8).astype(np.float32)
    x = (rng.standard_normal((5, 300)) * 3).astype(np.float32)
    y = W @ x + B[:, None]
    want = y * np.clip(y / 6 + 0.5, 0, 1)
    Wf, Bf, apply = _hard_swish_folded(W, B)
    u = Wf @ x + Bf[:, None]
    got = apply(u)
    assert got is u
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert _hard_swish_folded(np.array([[np.inf]], np.float32), None) is None
