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
    x = np.concatenate([rs.standard_normal(20000).astype(np.float32) * 4,  # two of the numba kernel's blocks of 16K
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


def _near_ties(rs, scale, n):
    """x within a few float32 steps of (k + 0.5) * scale and of k * scale: where a quotient one step off
    would round to another integer."""
    k = rs.randint(-300, 300, n).astype(np.float32) + np.float32(0.5) * rs.randint(0, 2, n).astype(np.float32)
    return ((k * scale).astype(np.float32).view(np.int32) + rs.randint(-3, 4, n).astype(np.int32)).view(np.float32)


@pytest.mark.parametrize("with_addend", [False, True])
def test_rounding_kernel_is_the_numpy_rounding(with_addend):
    """The numba path's division-free rounding (kernels/_round.py: Markstein's corrected product where the
    CPU has an FMA, used by eltwise.quantize_dequantize and by the conv tiles' store) gives exactly what
    the numpy op (ops/quantize.py round_in_place: x / s, rint) gives, bit for bit: values a float32 step
    or three from ties and whole steps, over scales of every size, saturation both sides, inf and NaN,
    lengths that end mid-vector; scales too small or too large for it (the division then)."""
    pytest.importorskip("numba")
    from tinyrt import kernels_select
    from tinyrt.ops.quantize import round_in_place
    k = kernels_select._import_kernels()
    rs = np.random.RandomState(11)
    edges = [2.0 ** -60, 2.0 ** 60, 2.0 ** -70, 2.0 ** 70, 1e-40, 3e38]  # the last four: the division (_round.py)
    for scale in [np.float32(0.0213), np.float32(1.0), np.float32(3.0e-5), np.float32(0.1), np.float32(7.77)] + \
            [np.float32(np.exp(v)) for v in rs.uniform(np.log(1e-6), np.log(10.0), 20)] + [np.float32(e) for e in edges]:
        n = 40000 + rs.randint(0, 16)
        with np.errstate(over="ignore", invalid="ignore"):  # the largest scales make inf
            x = np.concatenate([_near_ties(rs, scale, n), rs.standard_normal(n).astype(np.float32) * scale * 200,
                                np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e30, -1e30], np.float32)])
            b = _near_ties(rs, scale, x.size) if with_addend else x
            low, high = -128.0, 127.0
            want = round_in_place((x + b) if with_addend else x.copy(), scale, low, high)
        got = np.empty_like(x)
        k.eltwise.quantize_dequantize(x, b, with_addend, got, scale, np.float32(low), np.float32(high),
                                      k._sync.counters(1))
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
@pytest.mark.parametrize("kind", ["pointwise", "depthwise", "im2col", "stem"])
@pytest.mark.parametrize("activation", ["", "Relu", "Clip"])
@pytest.mark.parametrize("scale", [0.013, 1.0])
def test_rounding_fused_into_conv(kind, activation, kernels, scale, monkeypatch):
    """Conv (-> Relu | Clip) -> QuantizeLinear -> DequantizeLinear becomes one FusedConv whose activation is
    the rounding (passes/quantization.py fuse_rounding_into_conv), computed in place (numba: inside the conv
    kernel, block by block): bit for bit what the same session computes without that pass (on the numpy
    path the prepared conv takes 1/scale into its weights, ops/quantize.py _rounding_folded: a float
    rounding away, which may move a near-tie by one step; on these data it moves none), and within one
    step of onnxruntime. The activation's bounds fold into the rounding's (Clip [-0.7, 2.2] with a
    uint8 zero point of 60: both bounds bind). Scale 1 (a rounding that hands on whole steps,
    passes/quantization.py round_in_steps) is the kernels' rint alone (kernels/gemm.py mode 4), the
    weights, bias and Clip bounds scaled so that the steps are the same."""
    from onnx import TensorProto, helper, numpy_helper
    from tinyrt import passes
    C, M, k, group, H = {"pointwise": (24, 40, 1, 1, 20), "depthwise": (24, 24, 3, 24, 20),
                         "im2col": (24, 16, 3, 1, 20), "stem": (3, 16, 3, 1, 40)}[kind]
    rs = np.random.RandomState(5)
    f = scale / 0.013
    w = (rs.standard_normal((M, C // group, k, k)) / np.sqrt(C // group * k * k) * f).astype(np.float32)
    b = (rs.standard_normal(M) * 0.1 * f).astype(np.float32)
    scale, zp = np.float32(scale), np.uint8(60)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[k // 2] * 4, group=group)]
    if activation == "Relu":
        nodes.append(helper.make_node("Relu", ["c"], ["a"]))
    elif activation == "Clip":
        nodes.append(helper.make_node("Clip", ["c", "lo", "hi"], ["a"]))
    src = "a" if activation else "c"
    nodes += [helper.make_node("QuantizeLinear", [src, "s", "z"], ["q"]),
              helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    inits = [numpy_helper.from_array(v, n) for n, v in [("w", w), ("b", b), ("s", np.array(scale)), ("z", np.array(zp)),
                                                        ("lo", np.array(-0.7 * f, np.float32)),
                                                        ("hi", np.array(2.2 * f, np.float32))]]
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
    lo = max(-60, np.rint(np.float32(-0.7 * f) / scale)) if activation == "Clip" else (0 if activation == "Relu" else -60)
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


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
@pytest.mark.parametrize("between", ["MaxPool", "Flatten"])
def test_repeated_rounding_dropped(between, kernels, monkeypatch):
    """A QuantizeLinear -> DequantizeLinear pair after a MaxPool or Flatten of values already rounded with the
    same scale (and bounds as wide) is the identity: passes/quantization.py drop_repeated_rounding removes
    it; one with another scale is kept. Bit for bit what the session computes without that pass."""
    from onnx import TensorProto, helper, numpy_helper
    from tinyrt import passes
    rs = np.random.RandomState(2)
    C, H = 8, 12
    w = (rs.standard_normal((C, 3, 3, 3)) * 0.3).astype(np.float32)
    mid = [helper.make_node("MaxPool", ["y1"], ["m"], kernel_shape=[2, 2], strides=[2, 2])] if between == "MaxPool" \
        else [helper.make_node("Flatten", ["y1"], ["m"])]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("QuantizeLinear", ["c", "s", "z"], ["q1"]),
             helper.make_node("DequantizeLinear", ["q1", "s", "z"], ["y1"])] + mid + [
             helper.make_node("QuantizeLinear", ["m", "s", "z"], ["q2"]),
             helper.make_node("DequantizeLinear", ["q2", "s", "z"], ["y"]),
             helper.make_node("QuantizeLinear", ["m", "s2", "z"], ["q3"]),
             helper.make_node("DequantizeLinear", ["q3", "s2", "z"], ["y3"])]
    inits = [numpy_helper.from_array(v, n) for n, v in [("w", w), ("s", np.array(0.017, np.float32)),
                                                        ("s2", np.array(0.029, np.float32)),
                                                        ("z", np.array(100, np.uint8))]]
    graph = helper.make_graph(nodes, "twice", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, H, H])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("y3", TensorProto.FLOAT, None)], inits)
    # a graph output keeps its pair: y is read by a Relu instead
    graph.output[0].name = "out"
    graph.node.append(helper.make_node("Relu", ["y"], ["out"]))
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    x = rs.standard_normal((1, 3, H, H)).astype(np.float32) * 2
    so = tinyrt.SessionOptions()
    so.kernels = kernels
    fused = tinyrt.InferenceSession(data, so)
    ops = [s.node.op_type for s in fused.plan.steps]
    assert ops.count("QuantizeDequantize") == 1, ops  # the other-scale pair stays; the same-scale one goes
    got = fused.run(None, {"x": x})
    monkeypatch.setattr(passes, "PASSES", [p for p in passes.PASSES if p[2] is not quantization.drop_repeated_rounding])
    plain = tinyrt.InferenceSession(data, so)
    assert [s.node.op_type for s in plain.plan.steps].count("QuantizeDequantize") == 2
    for g, p in zip(got, plain.run(None, {"x": x})):
        np.testing.assert_array_equal(g, p)
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert float(np.abs(got[0] - want[0]).max()) <= np.float32(0.017) * 1.0001


@pytest.mark.parametrize("threads", [1, 2])
def test_roundings_run_inside_segments(threads):
    """On the numba path (one thread, and two: the layers' blocks shared) a QDQ trunk (a stem conv, then an inverted residual: expand, depthwise, project,
    the residual Add and its rounding, and a last conv) runs as one segment (kernel_wrappers/segment.py),
    the rounding with its addend one of its layers: bit for bit its layers' own calls, within one step of
    onnxruntime."""
    pytest.importorskip("numba")
    import re
    from onnx import TensorProto, helper, numpy_helper
    rs = np.random.RandomState(4)

    def w(*shape):
        return (rs.standard_normal(shape) * (2.0 / np.prod(shape[1:])) ** 0.5).astype(np.float32)

    scales = [0.02, 0.031, 0.027, 0.019, 0.035, 0.04, 0.025]
    inits = [numpy_helper.from_array(v, n) for n, v in [
        ("w0", w(16, 16, 3, 3)), ("b0", w(16)), ("w1", w(48, 16, 1, 1)), ("b1", w(48)), ("w2", w(48, 1, 3, 3)),
        ("b2", w(48)), ("w3", w(16, 48, 1, 1)), ("b3", w(16)), ("w4", w(24, 16, 1, 1)), ("b4", w(24))]]
    inits += [numpy_helper.from_array(np.array(s, np.float32), "s%d" % i) for i, s in enumerate(scales)]
    inits.append(numpy_helper.from_array(np.array(128, np.uint8), "z"))
    nodes = []

    def qdq(src, i, out):
        nodes.extend([helper.make_node("QuantizeLinear", [src, "s%d" % i, "z"], [out + "_q"]),
                      helper.make_node("DequantizeLinear", [out + "_q", "s%d" % i, "z"], [out])])
    qdq("x", 6, "xq")
    nodes.append(helper.make_node("Conv", ["xq", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1]))
    qdq("c0", 0, "a0")
    nodes.append(helper.make_node("Conv", ["a0", "w1", "b1"], ["c1"]))
    qdq("c1", 1, "a1")
    nodes.append(helper.make_node("Conv", ["a1", "w2", "b2"], ["c2"], group=48, pads=[1, 1, 1, 1]))
    qdq("c2", 2, "a2")
    nodes.append(helper.make_node("Conv", ["a2", "w3", "b3"], ["c3"]))
    qdq("c3", 3, "a3")
    nodes.append(helper.make_node("Add", ["a3", "a0"], ["s"]))
    qdq("s", 4, "a4")
    nodes.append(helper.make_node("Conv", ["a4", "w4", "b4"], ["c4"]))
    qdq("c4", 5, "y")
    graph = helper.make_graph(nodes, "qdq_trunk", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 12, 12])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    x = rs.standard_normal((1, 16, 12, 12)).astype(np.float32)
    so = tinyrt.SessionOptions()
    so.kernels, so.intra_op_num_threads = "numba", threads
    sess = tinyrt.InferenceSession(data, so)
    for _ in range(3):  # the second run makes the program, later ones run it
        got = sess.run(None, {"x": x})[0]
    program = sess.plan.last_program
    added = [i for i, s in enumerate(sess.plan.steps) if s.node.op_type == "QuantizeDequantize" and len(s.inputs) == 3]
    assert len(added) == 1
    spans = [(name, int(a), int(b)) for name, a, b in re.findall(r"(segment_\d+)\(.*steps (\d+)-(\d+)", program.source)]
    inside = [name for name, a, b in spans if a <= added[0] <= b]
    assert inside and any(b == added[0] + 1 for _, _, b in spans), program.source  # through the last conv
    segment = program.globals[inside[0]]
    assert [layer.kind for layer in segment.layers if layer.has_z] == ["round"]
    # onnxruntime's optimised graph is 7 steps away from its own unoptimised run of this random trunk (its
    # QDQ fusions round elsewhere); the unoptimised run computes the graph as written
    o = ort.SessionOptions()
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    want = ort.InferenceSession(data, o, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert float(np.abs(got - want).max()) <= np.float32(scales[5]) * 1.0001
    # the segment against its layers one by one, on the value it starts from
    start = np.ascontiguousarray(rs.standard_normal((1, 16, 12, 12)).astype(np.float32) * 0.3)
    start = (np.rint(start / np.float32(scales[0])) * np.float32(scales[0])).astype(np.float32)
    together = segment(start)
    one_by_one = segment._one_by_one(start)
    assert together.tobytes() == np.ascontiguousarray(one_by_one).tobytes()


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
def test_rounding_hands_on_whole_steps(kernels, monkeypatch):
    """A conv's rounding whose values only convs read hands on whole steps (passes/quantization.py
    round_in_steps): its rounding's scale becomes 1, its weights and bias take 1/s and its readers' weights
    s; the rounding of the graph's output keeps its scale. Within one step of onnxruntime's unoptimised
    run and of tinyrt's run without the pass (a float rounding away from it: a near-tie may move)."""
    from onnx import TensorProto, helper, numpy_helper
    from tinyrt import passes
    rs = np.random.RandomState(11)

    def w(*shape):
        return (rs.standard_normal(shape) * (2.0 / np.prod(shape[1:])) ** 0.5).astype(np.float32)

    scales = [0.021, 0.033, 0.027, 0.05]
    inits = [numpy_helper.from_array(v, n) for n, v in [
        ("w0", w(24, 8, 3, 3)), ("b0", w(24)), ("w1", w(24, 1, 3, 3)), ("b1", w(24)), ("w2", w(16, 24, 1, 1))]]
    inits += [numpy_helper.from_array(np.array(s, np.float32), "s%d" % i) for i, s in enumerate(scales)]
    inits += [numpy_helper.from_array(np.array(128, np.uint8), "z"), numpy_helper.from_array(np.array(0, np.uint8), "z0")]
    nodes = []

    def qdq(src, i, out, z="z"):
        nodes.extend([helper.make_node("QuantizeLinear", [src, "s%d" % i, z], [out + "_q"]),
                      helper.make_node("DequantizeLinear", [out + "_q", "s%d" % i, z], [out])])
    qdq("x", 3, "xq")
    nodes += [helper.make_node("Conv", ["xq", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1]),
              helper.make_node("Relu", ["c0"], ["r0"])]
    qdq("r0", 0, "a0", "z0")
    nodes.append(helper.make_node("Conv", ["a0", "w1", "b1"], ["c1"], group=24, pads=[1, 1, 1, 1], strides=[2, 2]))
    qdq("c1", 1, "a1")
    nodes.append(helper.make_node("Conv", ["a1", "w2"], ["c2"]))
    qdq("c2", 2, "y")
    graph = helper.make_graph(nodes, "qdq_chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 15, 15])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    x = rs.standard_normal((1, 8, 15, 15)).astype(np.float32)
    so = tinyrt.SessionOptions()
    so.kernels = kernels
    sess = tinyrt.InferenceSession(data, so)
    convs = [s.node for s in sess.plan.steps if s.node.op_type == "FusedConv"]
    assert [n.attrs["activation_params"][0] for n in convs] == [1.0, 1.0, np.float32(scales[2])]
    assert all(n.inputs[1].endswith("_steps0") for n in convs)
    # values in steps are values of their own, under names of their own: never steps under the file's names
    assert [n.outputs[0] for n in convs[:2]] == ["a0 (in steps)", "a1 (in steps)"]
    assert [n.inputs[0] for n in convs[1:]] == ["a0 (in steps)", "a1 (in steps)"]
    got = [sess.run(None, {"x": x})[0] for _ in range(3)][-1]  # the step loop, then the program
    q = got / np.float32(scales[2])
    assert np.abs(q - np.rint(q)).max() < 1e-3
    o = ort.SessionOptions()
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    want = ort.InferenceSession(data, o, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert float(np.abs(got - want).max()) <= np.float32(scales[2]) * 1.0001
    monkeypatch.setattr(passes, "PASSES", [p for p in passes.PASSES if p[2] is not quantization.round_in_steps])
    plain = tinyrt.InferenceSession(data, so)
    assert [s.node.attrs["activation_params"][0] for s in plain.plan.steps if s.node.op_type == "FusedConv"] == \
        [np.float32(s) for s in scales[:3]]
    assert float(np.abs(got - plain.run(None, {"x": x})[0]).max()) <= np.float32(scales[2]) * 1.0001


# weights dtype, zero point (None: absent; "varied": one per column), per column (else per tensor), transB,
# rows of A, whether the numba path reads the integers (kernels/qgemm.py): a scale along k keeps the float
# weights
_QGEMMS = [(np.int8, None, True, 1, 1, True), (np.int8, 0, False, 0, 6, True), (np.uint8, 128, True, 1, 3, True),
           (np.uint8, 128, False, 0, 1, True), (np.uint8, 3, False, 1, 2, True), (np.uint8, "varied", True, 0, 1, True),
           (np.int8, "varied", True, 1, 5, True), ("along k", 0, True, 1, 1, False)]


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
@pytest.mark.parametrize("case", _QGEMMS, ids=[str(i) for i in range(len(_QGEMMS))])
def test_gemm_of_dequantized_weights(case, kernels, monkeypatch):
    """A Gemm whose B is DequantizeLinear of constant 8-bit weights (a QDQ model's classifier head): the
    numba path reads the integers themselves where the scale (and zero point) is per output column or per
    tensor, else the float weights; the numbers are onnxruntime's and the numpy path's, to float
    rounding, on one thread and on two (blocks of columns)."""
    from onnx import TensorProto, helper, numpy_helper
    from oracle import assert_close
    from tinyrt import kernel_wrappers
    dtype, zp, per_column, trans_b, N, reads_int8 = case
    K, M = 300, 70
    rs = np.random.RandomState(5)
    along_k = dtype == "along k"
    dtype = np.int8 if along_k else dtype
    shape = (M, K) if trans_b else (K, M)
    info = np.iinfo(dtype)
    q = rs.randint(info.min, info.max + 1, shape).astype(dtype)
    axis = trans_b if along_k else 1 - trans_b  # B's axis of k, or of output columns (0 with transB)
    n_scales = shape[axis] if per_column else 1
    scale = (rs.rand(n_scales) * 0.01 + 1e-3).astype(np.float32).reshape((-1,) if per_column else ())
    inits = {"q": q, "s": scale, "c": rs.standard_normal(M).astype(np.float32)}
    dq_inputs = ["q", "s"]
    if zp is not None:
        inits["z"] = rs.randint(info.min, info.max + 1, scale.shape).astype(dtype) if zp == "varied" \
            else np.full(scale.shape, zp, dtype)
        dq_inputs.append("z")
    nodes = [helper.make_node("DequantizeLinear", dq_inputs, ["b"], axis=axis),
             helper.make_node("Gemm", ["x", "b", "c"], ["y"], transB=trans_b)]
    graph = helper.make_graph(nodes, "qgemm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [N, K])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.asarray(v), n) for n, v in inits.items()])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    x = rs.standard_normal((N, K)).astype(np.float32)
    opts = ort.SessionOptions()  # (its optimizations quantize x too for some of these)
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    want = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    if kernels == "numba":
        pytest.importorskip("numba")
        monkeypatch.setattr(kernel_wrappers.conv, "PARALLEL_MIN_MACS", 0)  # two threads: blocks of columns
    for threads in (1, 2):
        so = tinyrt.SessionOptions()
        so.kernels, so.intra_op_num_threads = kernels, threads
        sess = tinyrt.InferenceSession(data, so)
        bound = type(sess.plan.steps[-1].fn).__name__
        if kernels == "numba":
            assert bound == ("_QGemmKernel" if reads_int8 else "_GemmKernel")
        for _ in range(2):  # the step by step run, then the compiled program
            assert_close(sess.run(None, {"x": x})[0], want)


# the conv reading the rounded input: (input shape, weight shape, strides, pads): the stem kernel (3 channels,
# 3x3 stride 2, batch 2, odd sizes), a 7x7 stem (too many taps for it: im2col_nchw), a 1x1 conv of 20 channels
_INPUT_ROUNDINGS = [((2, 3, 37, 29), (16, 3, 3, 3), [2, 2], [1, 0, 1, 1]), ((1, 3, 30, 30), (8, 3, 7, 7), [2, 2], [3, 3, 3, 3]),
                    ((1, 20, 9, 11), (24, 20, 1, 1), [1, 1], [0, 0, 0, 0])]


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
@pytest.mark.parametrize("case", _INPUT_ROUNDINGS, ids=["stem", "7x7", "pointwise"])
@pytest.mark.parametrize("zp", [np.uint8(128), np.int8(-3)])
def test_input_rounding_fused_into_conv(case, zp, kernels, monkeypatch):
    """The model input's QuantizeLinear -> DequantizeLinear, read by one conv alone, becomes that conv's
    input_rounding (passes/quantization.py fuse_input_rounding; the stem kernel rounds the rows it reads):
    bit for bit what the session computes without that pass, on one thread and two, and onnxruntime's
    numbers to float rounding. A rounding that two nodes read stays a step of its own."""
    from onnx import TensorProto, helper, numpy_helper
    from oracle import assert_close
    from tinyrt import kernel_wrappers, passes
    x_shape, w_shape, strides, pads = case
    rs = np.random.RandomState(4)
    inits = [numpy_helper.from_array(v, n) for n, v in [
        ("w", (rs.standard_normal(w_shape) * 0.3).astype(np.float32)), ("b", rs.standard_normal(w_shape[0]).astype(np.float32)),
        ("s", np.array(0.021, np.float32)), ("z", np.array(zp))]]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["r"]),
             helper.make_node("Conv", ["r", "w", "b"], ["y"], strides=strides, pads=pads)]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    data = helper.make_model(helper.make_graph(nodes, "in_round", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, list(x_shape))], outputs, inits), opset_imports=[helper.make_opsetid("", 13)])
    also_read = helper.make_model(helper.make_graph(nodes + [helper.make_node("Relu", ["r"], ["r2"])], "in_round2", [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        outputs + [helper.make_tensor_value_info("r2", TensorProto.FLOAT, None)], inits),
        opset_imports=[helper.make_opsetid("", 13)])
    x = (rs.standard_normal(x_shape) * 2).astype(np.float32)
    want = ort.InferenceSession(data.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    if kernels == "numba":
        pytest.importorskip("numba")
        monkeypatch.setattr(kernel_wrappers.conv, "PARALLEL_MIN_MACS", 0)  # two threads share the blocks

    def session(model, threads):
        so = tinyrt.SessionOptions()
        so.kernels, so.intra_op_num_threads = kernels, threads
        return tinyrt.InferenceSession(model.SerializeToString(), so)
    for threads in (1, 2):
        fused = session(data, threads)
        assert [s.node.op_type for s in fused.plan.steps] == ["FusedConv"]
        assert [s.node.op_type for s in session(also_read, threads).plan.steps][0] == "QuantizeDequantize"
        got = [fused.run(None, {"x": x})[0] for _ in range(2)]  # the step by step run, then the program
        with monkeypatch.context() as m:
            m.setattr(passes, "PASSES", [p for p in passes.PASSES if p[2] is not quantization.fuse_input_rounding])
            plain = session(data, threads)
        assert [s.node.op_type for s in plain.plan.steps][0] == "QuantizeDequantize"
        for g in got:
            np.testing.assert_array_equal(g, plain.run(None, {"x": x})[0])
            assert_close(g, want)
        if kernels == "numba":  # the stem kernel took the 3x3 stem, rounding as it read
            assert ("stem" in fused.plan.steps[0].fn.kernel_name) == (w_shape[1:] == (3, 3, 3))
