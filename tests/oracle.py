"""The oracle helpers every test shares (``from oracle import assert_close, make_model, ort_run``).

Not in conftest.py: two conftest.py files (tests/ and tests/boards/) share the module name ``conftest``, so
in a run of the whole suite ``from conftest import ...`` found the boards' one and 11 modules failed to import.

* ``assert_close(got, want)``: the project's tolerance, ``|a - b| <= 1e-4 * max(1, max|b|)`` with ``b``
  onnxruntime's (or the reference's) answer; integers and booleans exact; shapes and dtypes equal.
* ``make_model(nodes, inputs, outputs, ...)``: a model built with onnx.helper, as bytes.
* ``ort_run(model, feeds)``: onnxruntime (CPU, quiet) on a model's bytes, ModelProto or path.
* ``tinyrt_run(model, feeds, kernels=...)``: tinyrt on one kernel path.

Tests that need torch start with ``torch = pytest.importorskip("torch")`` (``needs_torch()``), so a machine
without it skips them with the reason instead of failing.
"""
import os
import warnings

import numpy as np
import pytest

TOLERANCE = 1e-4
TINYRT_DOMAIN = "ai.tinyrt"


def tolerance(want, rtol=TOLERANCE):
    """``rtol * max(1, max|want|)``: the largest difference allowed from ``want`` (NaNs left out)."""
    want = np.asarray(want)
    if want.size == 0 or want.dtype.kind not in "fc":
        return rtol
    return rtol * max(1.0, float(np.nanmax(np.abs(want.astype(np.float64)), initial=0.0)))


def assert_close(got, want, rtol=TOLERANCE, dtype=True, what=""):
    """``got`` is ``want`` within the project's tolerance: same shape (and dtype unless ``dtype=False``),
    integers and booleans exact, floats within ``tolerance(want)``, NaN where ``want`` has NaN."""
    got, want = np.asarray(got), np.asarray(want)
    label = (what + ": ") if what else ""
    assert got.shape == want.shape, "%sshape %s, expected %s" % (label, got.shape, want.shape)
    if dtype:
        assert got.dtype == want.dtype, "%sdtype %s, expected %s" % (label, got.dtype, want.dtype)
    if want.dtype.kind not in "fc":
        np.testing.assert_array_equal(got, want, err_msg=label)
        return
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=0,
                               atol=tolerance(want, rtol), equal_nan=True, err_msg=label)


def needs_torch():
    """torch, or the test skips saying torch is not installed."""
    return pytest.importorskip("torch", reason="needs torch (pip install -e '.[exporter]')")


def _value_info(name, value):
    from onnx import helper
    if isinstance(value, tuple) and len(value) == 2 and not isinstance(value[0], (np.ndarray, list)):
        elem_type, shape = value                   # (TensorProto type, shape or None)
        return helper.make_tensor_value_info(name, elem_type, None if shape is None else list(shape))
    value = np.asarray(value)
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype), list(value.shape))


def make_model(nodes, inputs, outputs, inits=None, opset=13, ir_version=None, tinyrt_domain=False, name="test"):
    """A model of ``nodes`` (onnx NodeProtos), as bytes.

    ``inputs``: {name: array (its dtype and shape) or (TensorProto type, shape)}; ``outputs``: names (float,
    shape left open) or {name: TensorProto type}; ``inits``: {name: array}, initializers; ``tinyrt_domain``:
    import tinyrt's own domain (FusedConv) too; ``ir_version``: by default 8, or 10 from opset 21 on."""
    from onnx import TensorProto, helper, numpy_helper
    if not isinstance(outputs, dict):
        outputs = {o: TensorProto.FLOAT for o in outputs}
    graph = helper.make_graph(
        list(nodes), name, [_value_info(n, v) for n, v in inputs.items()],
        [helper.make_tensor_value_info(n, t, None) for n, t in outputs.items()],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in (inits or {}).items()])
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(TINYRT_DOMAIN, 1)] if tinyrt_domain else [])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = ir_version or (8 if opset < 21 else 10)
    return model.SerializeToString()


def ort_session(model):
    """An onnxruntime session (CPU, warnings off) of a model's bytes, ModelProto or path."""
    import onnxruntime as ort
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ort.InferenceSession(model if isinstance(model, bytes) else os.fspath(model), opts,
                                    providers=["CPUExecutionProvider"])


def ort_run(model, feeds, outputs=None):
    """onnxruntime's outputs (a list) for ``feeds``."""
    return ort_session(model).run(outputs, feeds)


def tinyrt_session(model, kernels=None, threads=None):
    """A tinyrt session on the path ``kernels`` ("numba" / "numpy"; None: TINYRT_KERNELS or the default)."""
    import tinyrt
    options = tinyrt.SessionOptions()
    if kernels is not None:
        if kernels == "numba":
            pytest.importorskip("numba")
        options.kernels = kernels
    if threads is not None:
        options.intra_op_num_threads = threads
    sess = tinyrt.InferenceSession(model, options)
    if kernels is not None:
        assert sess.kernels.name == kernels
    return sess


def tinyrt_run(model, feeds, kernels=None, threads=None):
    """tinyrt's outputs (a list) for ``feeds``."""
    return tinyrt_session(model, kernels, threads).run(None, feeds)
