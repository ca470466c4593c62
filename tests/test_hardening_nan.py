"""Issue 7 (hardening), item 4: NaN and inf flow through the ops and a whole CNN as they do in onnxruntime,
on both kernel paths. Bad feeds (wrong dtype, rank, fixed dim, missing or extra feed):
tests/test_session.py::test_bad_feeds_name_the_input."""
import os

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from hardening_models import F, I64, model, vi
import tinyrt
from tinyrt import limits


# item 4: inputs. Bad feeds: tests/test_session.py::test_bad_feeds_name_the_input. NaN and inf flow through.

NAN_X = np.array([[1, np.nan, 3, -np.inf], [np.inf, 2, np.nan, 0], [5, np.nan, np.nan, np.nan],
                  [np.nan, 1, 2, 3]], np.float32)
NAN_OPS = [
    ("Relu", {}), ("Sigmoid", {}), ("Tanh", {}), ("Exp", {}), ("Log", {}), ("Sqrt", {}), ("Abs", {}), ("Floor", {}),
    ("Softmax", {"axis": 1}), ("LogSoftmax", {"axis": 1}), ("Hardmax", {"axis": 1}),
    ("ArgMax", {"axis": 1, "keepdims": 0}), ("ArgMax", {"axis": 0, "keepdims": 0}),
    ("ArgMin", {"axis": 1, "keepdims": 0}), ("ReduceMax", {"axes": [1], "keepdims": 0}),
    ("ReduceMax", {"axes": [0], "keepdims": 1}), ("ReduceSum", {}), ("ReduceMean", {"keepdims": 0}),
    ("Clip", {}), ("LeakyRelu", {}), ("Elu", {}), ("HardSigmoid", {}), ("Sign", {}), ("IsNaN", {}), ("IsInf", {}),
    ("Max", {}), ("Min", {}), ("Sum", {}), ("Neg", {}), ("Reciprocal", {}), ("Round", {}), ("Erf", {}),
]


@pytest.mark.parametrize("op,attrs", NAN_OPS, ids=["%s%s" % (o, a or "") for o, a in NAN_OPS])
def test_nan_and_inf_flow_through_like_onnxruntime(op, attrs):
    """(ReduceMin and ArgMin on NaN depend on onnxruntime's vectorisation: see docs/limits.md.)"""
    node = helper.make_node(op, ["x", "x"] if op in ("Max", "Min", "Sum") else ["x"], ["y"], **attrs)
    out_type = I64 if op.startswith("Arg") else TensorProto.BOOL if op.startswith("Is") else F
    data = model([node], [vi("x", [4, 4])], [vi("y", None, out_type)])
    ours = tinyrt.InferenceSession(data).run(None, {"x": NAN_X})[0]
    theirs = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": NAN_X})[0]
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, equal_nan=True)


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
def test_nan_and_inf_through_a_cnn(kernels):
    import sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from fuzz.seeds import seed_bytes
    data = seed_bytes()["tiny_cnn"]
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    x[0, 0, 3, 3] = np.nan
    x[1, 1, 0, 0] = np.inf
    x[1, 2, 5, 5] = -np.inf
    options = tinyrt.SessionOptions()
    options.kernels = kernels
    ours = tinyrt.InferenceSession(data, options).run(None, {"x": x})[0]
    theirs = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5, equal_nan=True)


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
@pytest.mark.parametrize("kernel_shape,strides", [([2, 2], [1, 1]), ([2, 2], [2, 2]), ([3, 3], [1, 1])])
def test_max_pool_treats_nan_like_onnxruntime(kernels, kernel_shape, strides):
    """A window [NaN, 1, 2, 3] gives 3, [1, NaN] gives NaN: a running max ``m = m if x < m else x`` tap by tap,
    as onnxruntime's vectorised kernel takes it, on both paths.

    Elsewhere onnxruntime's NaN results depend on which of its loops a shape lands in (its vector and scalar
    loops and its dilated loop differ; ARM's vmaxq differs again), so tinyrt keeps that one rule everywhere
    and both paths give the same NaNs on every shape (tests/test_kernels.py)."""
    attrs = {"kernel_shape": kernel_shape, "strides": strides}
    data = model([helper.make_node("MaxPool", ["x"], ["y"], **attrs)], [vi("x", [1, 1, 4, 4])], [vi("y", None)])
    x = NAN_X.reshape(1, 1, 4, 4)
    options = tinyrt.SessionOptions()
    options.kernels = kernels
    ours = tinyrt.InferenceSession(data, options).run(None, {"x": x})[0]
    theirs = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(ours, theirs)
