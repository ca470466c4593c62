"""Quantized CNNs made by onnxruntime's quantization tool, through tinyrt and onnxruntime.

Every format the tool writes (QDQ and QOperator static, per tensor and per channel, uint8 and int8
activations; dynamic) of a small torch CNN (tests/quant_models.py) must match onnxruntime to one
quantization step of the output (the scale of the DequantizeLinear that produces it); dynamic models,
whose outputs are float, to the house tolerance. The QOperator models match exactly: same integer
arithmetic. QDQ models may differ by one step: onnxruntime fuses DequantizeLinear -> Conv -> QuantizeLinear
into an integer conv, tinyrt computes the float conv of the dequantized values, and a sum that lands
within float rounding of a .5 boundary can round either way.
"""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("torch")
pytest.importorskip("onnxruntime.quantization")

import quant_models  # noqa: E402
import tinyrt  # noqa: E402
from tinyrt.passes import quantization  # noqa: E402


@pytest.fixture(scope="module")
def float_model(tmp_path_factory):
    return quant_models.export_float(str(tmp_path_factory.mktemp("quant") / "small_cnn.onnx"))


def inputs():
    rs = np.random.RandomState(7)
    return [rs.standard_normal(quant_models.INPUT_SHAPE).astype(np.float32) * s for s in (0.5, 1.0, 2.0)]


@pytest.mark.slow
@pytest.mark.parametrize("config", sorted(quant_models.CONFIGS))
def test_quantized_model_matches_onnxruntime(config, float_model, tmp_path):
    path = quant_models.quantize(float_model, str(tmp_path / (config + ".onnx")), config)
    ops = {(n.domain, n.op_type) for n in onnx.load(path).graph.node}
    fmt = quant_models.CONFIGS[config][0]
    if fmt == "QOperator":
        assert ("", "QLinearConv") in ops and ("com.microsoft", "QLinearAdd") in ops
    elif fmt == "QDQ":
        assert ("", "QuantizeLinear") in ops and ("", "DequantizeLinear") in ops
    else:
        assert ("", "ConvInteger") in ops and ("", "DynamicQuantizeLinear") in ops
    want_sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    sess = tinyrt.InferenceSession(path)
    step = quant_models.output_step(path, "output")
    assert (step is None) == (fmt == "dynamic")
    for x in inputs():
        want = want_sess.run(None, {"input": x})[0]
        got = sess.run(None, {"input": x})[0]
        assert got.shape == want.shape and got.dtype == want.dtype
        err = float(np.abs(got.astype(np.float64) - want).max())
        if step is None:
            assert err <= 1e-4 * max(1.0, float(np.abs(want).max())), err
        elif fmt == "QOperator":
            assert err == 0.0, "%s: %g (%.2f steps)" % (config, err, err / step)
        else:
            assert err <= step * 1.0001, "%s: %g (%.2f steps)" % (config, err, err / step)


@pytest.mark.parametrize("dtype,zp", [(np.uint8, 128), (np.int8, -3), (np.uint16, 30000), (np.int16, 0)])
def test_quantize_dequantize_pair_is_exact(dtype, zp):
    """The pass's QuantizeDequantize (numpy op and numba kernel) is exactly DequantizeLinear(QuantizeLinear(x)):
    ties (x / scale = k + 0.5), saturation on both sides, zero."""
    from onnx import TensorProto, helper, numpy_helper
    scale = np.float32(0.05)
    rs = np.random.RandomState(0)
    x = np.concatenate([rs.standard_normal(20000).astype(np.float32) * 4,  # over the numba kernel's 4096
                        (np.arange(-40, 40) + 0.5).astype(np.float32) * scale,
                        np.array([0, 1e6, -1e6, 3000, -3000], np.float32)]).reshape(1, -1)
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y2"]),
             helper.make_node("Add", ["y", "y2"], ["out"])]
    graph = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.array(scale), "s"), numpy_helper.from_array(np.array(zp, dtype), "z")])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]).SerializeToString()
    fused = tinyrt.InferenceSession(data)
    assert [s.node.op_type for s in fused.plan.steps] == ["QuantizeDequantize", "Add"]
    so = tinyrt.SessionOptions()
    so.graph_optimization_level = tinyrt.GraphOptimizationLevel.ORT_DISABLE_ALL
    plain = tinyrt.InferenceSession(data, so)
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(plain.run(None, {"x": x})[0], want)
    np.testing.assert_array_equal(fused.run(None, {"x": x})[0], want)


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
@pytest.mark.parametrize("kind", ["pointwise", "depthwise", "im2col", "stem"])
@pytest.mark.parametrize("activation", ["", "Relu", "Clip"])
def test_rounding_fused_into_conv(kind, activation, kernels, monkeypatch):
    """Conv (-> Relu | Clip) -> QuantizeLinear -> DequantizeLinear becomes one FusedConv whose activation is
    the rounding (passes/quantization.py fuse_rounding_into_conv), computed in place (numba: inside the conv
    kernel, block by block): bit for bit what the same session computes without that pass, and within one
    step of onnxruntime. The activation's bounds fold into the rounding's (Clip [-0.7, 2.2] with a
    uint8 zero point of 60: both bounds bind)."""
    from onnx import TensorProto, helper, numpy_helper
    from tinyrt import passes
    C, M, k, group, H = {"pointwise": (24, 40, 1, 1, 20), "depthwise": (24, 24, 3, 24, 20),
                         "im2col": (24, 16, 3, 1, 20), "stem": (3, 16, 3, 1, 40)}[kind]
    rs = np.random.RandomState(5)
    w = (rs.standard_normal((M, C // group, k, k)) / np.sqrt(C // group * k * k)).astype(np.float32)
    b = rs.standard_normal(M).astype(np.float32) * 0.1
    scale, zp = np.float32(0.013), np.uint8(60)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[k // 2] * 4, group=group)]
    if activation == "Relu":
        nodes.append(helper.make_node("Relu", ["c"], ["a"]))
    elif activation == "Clip":
        nodes.append(helper.make_node("Clip", ["c", "lo", "hi"], ["a"]))
    src = "a" if activation else "c"
    nodes += [helper.make_node("QuantizeLinear", [src, "s", "z"], ["q"]),
              helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    inits = [numpy_helper.from_array(v, n) for n, v in [("w", w), ("b", b), ("s", np.array(scale)), ("z", np.array(zp)),
                                                        ("lo", np.array(-0.7, np.float32)),
                                                        ("hi", np.array(2.2, np.float32))]]
    graph = helper.make_graph(nodes, "conv_qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, H, H])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    x = rs.standard_normal((1, C, H, H)).astype(np.float32) * 2
    so = tinyrt.SessionOptions()
    so.kernels = kernels
    fused = tinyrt.InferenceSession(data, so)
    steps = [(s.node.op_type, s.node.attrs.get("activation")) for s in fused.plan.steps]
    assert steps == [("FusedConv", "QuantizeDequantize")], steps
    got = fused.run(None, {"x": x})[0]
    monkeypatch.setattr(passes, "PASSES", [p for p in passes.PASSES if p[2] is not quantization.fuse_rounding_into_conv])
    plain = tinyrt.InferenceSession(data, so)
    assert "QuantizeDequantize" in [s.node.op_type for s in plain.plan.steps]
    np.testing.assert_array_equal(got, plain.run(None, {"x": x})[0])
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert float(np.abs(got - want).max()) <= scale * 1.0001
    # the rounded values: whole steps within [qmin - zp, qmax - zp] (and the Clip's bounds)
    q = got / scale
    assert np.abs(q - np.rint(q)).max() < 1e-3
    lo = max(-60, np.rint(np.float32(-0.7) / scale)) if activation == "Clip" else (0 if activation == "Relu" else -60)
    assert q.min() >= lo - 1e-3 and (got == np.float32(lo) * scale).any()


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
@pytest.mark.parametrize("layout", ["nchw", "channels-last", "broadcast"])
def test_add_folded_into_rounding(layout, kernels, monkeypatch):
    """Add -> QuantizeLinear -> DequantizeLinear (a QDQ model's residual Add) becomes one QuantizeDequantize
    with the Add's second input as its third (passes/quantization.py fuse_add_into_rounding): bit for bit
    what the session computes without that pass, on NCHW inputs, on conv results (channels-last memory on
    the numba path) and with a broadcast addend (the numpy op)."""
    from onnx import TensorProto, helper, numpy_helper
    from tinyrt import passes
    rs = np.random.RandomState(3)
    C, H = 16, 40
    scale, zp = np.float32(0.021), np.uint8(128)
    b_shape = [1, C, 1, 1] if layout == "broadcast" else [1, C, H, H]
    nodes = [helper.make_node("Add", ["a", "b"], ["s"]),
             helper.make_node("QuantizeLinear", ["s", "sc", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "sc", "z"], ["y"])]
    inits = [numpy_helper.from_array(np.array(scale), "sc"), numpy_helper.from_array(np.array(zp), "z")]
    inputs = [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, C, H, H]),
              helper.make_tensor_value_info("b", TensorProto.FLOAT, b_shape)]
    if layout == "channels-last":  # both addends computed by convs
        w = (rs.standard_normal((C, C, 1, 1)) * 0.3).astype(np.float32)
        inits.append(numpy_helper.from_array(w, "w"))
        nodes = [helper.make_node("Conv", ["a", "w"], ["a1"]), helper.make_node("Conv", ["b", "w"], ["b1"]),
                 helper.make_node("QuantizeLinear", ["a1", "sc", "z"], ["aq"]),
                 helper.make_node("DequantizeLinear", ["aq", "sc", "z"], ["a2"]),
                 helper.make_node("QuantizeLinear", ["b1", "sc", "z"], ["bq"]),
                 helper.make_node("DequantizeLinear", ["bq", "sc", "z"], ["b2"]),
                 helper.make_node("Add", ["a2", "b2"], ["s"])] + nodes[1:]
    graph = helper.make_graph(nodes, "add_qdq", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              inits)
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    feeds = {"a": rs.standard_normal((1, C, H, H)).astype(np.float32),
             "b": rs.standard_normal(b_shape).astype(np.float32)}
    so = tinyrt.SessionOptions()
    so.kernels = kernels
    fused = tinyrt.InferenceSession(data, so)
    rounding = [s for s in fused.plan.steps if s.node.op_type == "QuantizeDequantize"]
    assert len(rounding) == 1 and len(rounding[0].inputs) == 3
    assert "Add" not in [s.node.op_type for s in fused.plan.steps]
    got = fused.run(None, feeds)[0]
    monkeypatch.setattr(passes, "PASSES", [p for p in passes.PASSES if p[2] is not quantization.fuse_add_into_rounding])
    plain = tinyrt.InferenceSession(data, so)
    assert "Add" in [s.node.op_type for s in plain.plan.steps]
    np.testing.assert_array_equal(got, plain.run(None, feeds)[0])
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    assert float(np.abs(got - want).max()) <= scale * 1.0001
