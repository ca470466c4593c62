"""Real CNNs (tests/torch_models.py: MobileNetV2, MobileNetV3-Small, ShuffleNetV2) quantized by onnxruntime's
own tool in every way it offers, through tinyrt on both kernel paths and onnxruntime.

The matrix: QDQ and QOperator static (per tensor and per channel; uint8 or int8 activations with int8
weights, uint8 with uint8 weights; ``reduce_range`` on and off) and dynamic (int8 or uint8 weights, per
tensor and per channel). Each must match onnxruntime to one quantization step of the output (the scale
of the DequantizeLinear that produces it; dynamic models, with float outputs, to the house tolerance).

Two onnxruntime results are compared:

* the exact oracle: onnxruntime, graph optimizations off, on the same model with its int8 constants
  stored as uint8 + 128 (quant_models.as_uint8: the same numbers, onnxruntime's exact uint8 x uint8
  kernels, and no QDQ fusion: the model as the ONNX spec computes it). tinyrt must match it always.
* onnxruntime as a user runs it (default optimizations, the file as written). tinyrt must match it too,
  except where onnxruntime is not exact. Measured (tests below): on x86 without VNNI (this machine: AVX2),
  MLAS's uint8 x int8 GEMM (QLinearConv, QLinearMatMul, MatMulInteger, and QDQ convs/matmuls it fuses
  into them; int8 activations are moved to uint8 first) multiplies with VPMADDUBSW, which adds each two
  neighbouring products of the reduction (raw uint8 times int8, before the zero points are taken off)
  into an int16, saturated. A 3x3 conv's reduction runs over (kh, kw, c) (NHWC im2col), so the pairs are
  neighbouring input channels of one tap. Depthwise convs (their own kernel), ConvInteger and uint8 x
  uint8 products are exact. Full-range int8 weights (reduce_range off) overflow those pairs: the model's
  output moves by tens of steps (30-80 on MobileNetV2-0.5). With reduce_range (7-bit weights, 255 * 63
  * 2 < 32767) nothing overflows and onnxruntime is exact. tinyrt does NOT emulate the saturation: it
  is a property of one instruction on one family of machines, not of the model (onnxruntime on ARM, on
  VNNI machines and the ONNX spec give the exact sums, and tinyrt's boards are ARM and RISC-V), and
  emulating it would need MLAS's packing order per kernel. So with reduce_range off, tinyrt is held to the
  exact oracle, and onnxruntime's own difference is checked to be this saturation (bit for bit on the
  single ops below).
"""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("torch")
pytest.importorskip("onnxruntime.quantization")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import quant_models  # noqa: E402
import torch_models  # noqa: E402
import tinyrt  # noqa: E402

SHAPE = (1, 3, 64, 64)
PATHS = ("numba", "numpy")


# ------------------------------------------------------------------ where onnxruntime is not exact


def _ort(model_bytes, feeds, optimize=True):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"]).run(None, feeds)


def _tinyrt(model, feeds, kernels):
    so = tinyrt.SessionOptions()
    so.kernels = kernels
    return tinyrt.InferenceSession(model, so).run(None, feeds)


def _model(nodes, inputs, outputs, inits):
    graph = helper.make_graph(nodes, "g", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def _matmul_integer(a, b, a_zp):
    return _model([helper.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["y"])],
                  [helper.make_tensor_value_info("a", TensorProto.UINT8, list(a.shape))],
                  [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
                  {"b": b, "az": np.array(a_zp, np.uint8), "bz": np.array(0, np.int8)})


def _pair_saturated(a, b):
    """sum over k of a[., k] * b[k, .] with each two neighbouring products (k = 2i, 2i + 1) added into an
    int16, saturated (VPMADDUBSW), then the pairs summed exactly; a uint8 (M, K), b int8 (K, N)."""
    a, b = a.astype(np.int64), b.astype(np.int64)
    if a.shape[1] % 2:
        a, b = np.pad(a, ((0, 0), (0, 1))), np.pad(b, ((0, 1), (0, 0)))
    pairs = a[:, 0::2, None] * b[None, 0::2] + a[:, 1::2, None] * b[None, 1::2]
    return np.clip(pairs, -32768, 32767).sum(axis=1)


def ort_saturates():
    """Does this machine's onnxruntime saturate uint8 x int8 pairs? 255 * 127 + 255 * 127 = 64770."""
    y = _ort(_matmul_integer(np.full((1, 2), 255, np.uint8), np.full((2, 1), 127, np.int8), 0),
             {"a": np.full((1, 2), 255, np.uint8)})[0]
    assert int(y[0, 0]) in (64770, 32767), y
    return int(y[0, 0]) == 32767


@pytest.mark.parametrize("kernels", PATHS)
@pytest.mark.parametrize("M,K,N", [(4, 16, 8), (3, 7, 5), (16, 256, 64)])
def test_matmul_integer_u8s8_is_exact_where_onnxruntime_saturates(M, K, N, kernels):
    rs = np.random.RandomState(K)
    a = rs.randint(0, 256, (M, K)).astype(np.uint8)
    b = rs.randint(-128, 128, (K, N)).astype(np.int8)
    a_zp = 100
    model = _matmul_integer(a, b, a_zp)
    exact = (a.astype(np.int64) - a_zp) @ b.astype(np.int64)
    got = _tinyrt(model, {"a": a}, kernels)[0]
    np.testing.assert_array_equal(got, exact)
    want = _ort(model, {"a": a})[0]
    if ort_saturates():
        # onnxruntime's result, bit for bit: raw products paired and saturated, the zero point exact
        np.testing.assert_array_equal(want, _pair_saturated(a, b) - a_zp * b.astype(np.int64).sum(axis=0))
        assert (want != exact).any()
    else:
        np.testing.assert_array_equal(want, exact)


def _im2col_hwc(x, k, x_zp):
    """(OH * OW, k * k * C) windows of a stride-1, 'same'-padded conv, taps ordered (kh, kw, c)."""
    N, C, H, W = x.shape
    p = k // 2
    xp = np.pad(x[0].astype(np.int64), ((0, 0), (p, p), (p, p)), constant_values=x_zp)
    cols = np.stack([xp[:, i:i + H, j:j + W] for i in range(k) for j in range(k)])  # (taps, C, H, W)
    return cols.transpose(2, 3, 0, 1).reshape(H * W, k * k * C)


@pytest.mark.parametrize("kernels", PATHS)
@pytest.mark.parametrize("C,M,k", [(3, 8, 3), (16, 8, 3), (32, 16, 1)])
def test_qlinearconv_u8s8_matches_exact_arithmetic(C, M, k, kernels):
    """QLinearConv, uint8 input, full-range int8 weights: tinyrt requantizes the exact sums; onnxruntime
    on x86 without VNNI requantizes the pair-saturated sums of the (kh, kw, c) reduction, bit for bit."""
    rs = np.random.RandomState(C + k)
    x = rs.randint(0, 256, (1, C, 9, 9)).astype(np.uint8)
    w = rs.randint(-128, 128, (M, C, k, k)).astype(np.int8)
    x_zp = 100
    cols = _im2col_hwc(x, k, x_zp)
    wk = w.astype(np.int64).transpose(0, 2, 3, 1).reshape(M, -1)  # (M, taps * C), (kh, kw, c) like cols
    exact = (cols - x_zp) @ wk.T
    y_scale = np.float32(np.abs(exact).max() / 120.0)
    model = _model([helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"],
                                     pads=[k // 2] * 4)],
                   [helper.make_tensor_value_info("x", TensorProto.UINT8, list(x.shape))],
                   [helper.make_tensor_value_info("y", TensorProto.UINT8, None)],
                   {"xs": np.array(1, np.float32), "xz": np.array(x_zp, np.uint8), "w": w,
                    "ws": np.array(1, np.float32), "wz": np.array(0, np.int8), "ys": np.array(y_scale),
                    "yz": np.array(128, np.uint8)})

    def requantize(acc):  # MLAS: float32(acc) * (x_scale * w_scale / y_scale), half to even, + zp
        y = np.rint(acc.astype(np.float32) * (np.float32(1) / y_scale)) + 128
        return np.clip(y, 0, 255).astype(np.uint8).T.reshape(1, M, 9, 9)

    np.testing.assert_array_equal(_tinyrt(model, {"x": x}, kernels)[0], requantize(exact))
    want = _ort(model, {"x": x})[0]
    if ort_saturates():
        sat = _pair_saturated(cols, wk.T) - x_zp * wk.sum(axis=1)
        np.testing.assert_array_equal(want, requantize(sat))
        assert (want != requantize(exact)).any()
    else:
        np.testing.assert_array_equal(want, requantize(exact))


# ------------------------------------------------------------------------------- the model matrix

STATIC = [("QUInt8", "QInt8"), ("QInt8", "QInt8"), ("QUInt8", "QUInt8")]
CONFIGS = ([(fmt, pc, act, w, rr) for fmt in ("QDQ", "QOperator") for pc in (False, True) for act, w in STATIC
            for rr in (False, True)]
           + [("dynamic", pc, None, w, rr) for pc in (False, True) for w in ("QInt8", "QUInt8") for rr in (False, True)])
FAST = {("QDQ", True, "QUInt8", "QInt8", False), ("QOperator", False, "QInt8", "QInt8", True)}
# the other CNNs: one config of each kind
OTHERS = [("QDQ", True, "QUInt8", "QInt8", True), ("QDQ", False, "QInt8", "QInt8", False),
          ("QOperator", True, "QUInt8", "QInt8", False), ("dynamic", True, None, "QInt8", False)]


def _name(c):
    return "%s-%s-%s%s-rr%d" % (c[0], "pc" if c[1] else "pt", {"QUInt8": "u8", "QInt8": "s8", None: ""}[c[2]],
                                {"QUInt8": "u8", "QInt8": "s8"}[c[3]], c[4])


@pytest.fixture(scope="module")
def float_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qcnn")
    made = {}

    def get(name):
        if name not in made:
            made[name] = torch_models.export(torch_models.build(name), str(folder / (name + ".onnx")), opset=13)
        return made[name]
    return get


def _calibration():
    rs = np.random.RandomState(11)
    return [rs.standard_normal(SHAPE).astype(np.float32) for _ in range(4)]


def _oracle_values(exact_path, x):
    """Every float tensor of onnxruntime's exact run (graph optimizations off, quant_models.as_uint8), by name."""
    model = onnx.load(exact_path)
    known = {o.name for o in model.graph.output}
    for node in model.graph.node:
        for name in node.output:
            if name and name not in known:
                model.graph.output.append(onnx.ValueInfoProto(name=name))
                known.add(name)
    names = [o.name for o in model.graph.output]
    values = _ort(model.SerializeToString(), {"input": x}, optimize=False)
    return {n: v for n, v in zip(names, values) if isinstance(v, np.ndarray) and v.dtype == np.float32}


def _activation_steps(path):
    """{name: step} of every dequantized activation of a QDQ model (a DequantizeLinear of a computed value)."""
    model = onnx.load(path)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return {n.output[0]: float(np.max(inits[n.input[1]])) for n in model.graph.node
            if n.op_type == "DequantizeLinear" and n.input[0] not in inits and n.input[1] in inits}


def _layer_by_layer(path, exact_path, x, kernels):
    """The largest difference, in quantization steps, between a quantized activation tinyrt computes and
    onnxruntime's exact one when every node of tinyrt's is fed onnxruntime's values for its inputs; and
    how many activations were compared."""
    oracle = _oracle_values(exact_path, x)
    steps = _activation_steps(path)
    so = tinyrt.SessionOptions()
    so.kernels = kernels
    sess = tinyrt.InferenceSession(path, so)
    worst, compared = [0.0], [0]
    # activations a rounding hands on as whole steps k, not k * s (passes/quantization.py round_in_steps), under
    # a name of their own: "<the file's name> (in steps)"
    in_steps = " (in steps)"

    def file_name(name):
        """The file's value ``name`` holds (in steps or not) and whether it holds it in steps."""
        return (name[:-len(in_steps)], True) if name.endswith(in_steps) else (name, False)

    def hook(step, args, compute):
        for i, name in enumerate(step.inputs):
            name, whole = file_name(name)
            if name in oracle and args[i] is not None and args[i].dtype == np.float32:
                assert args[i].shape == oracle[name].shape, name
                args[i] = oracle[name] / np.float32(steps[name]) if whole else oracle[name]
        out = compute()
        for name, value in zip(step.outputs, out):
            name, whole = file_name(name)
            if name in steps and name in oracle:
                value = value.astype(np.float64) * (steps[name] if whole else 1.0)
                err = float(np.abs(value - oracle[name]).max()) / steps[name]
                worst[0] = max(worst[0], err)
                compared[0] += 1
        return out
    sess.run_with_hook(["output"], {"input": x}, hook)
    return worst[0], compared[0]


def _check(model_name, config, float_models, tmp_path):
    fmt, pc, act, w, rr = config
    path = quant_models.quantize(float_models(model_name), str(tmp_path / "q.onnx"), (fmt, pc, act, w),
                                 batches=_calibration(), reduce_range=rr)
    exact_path = quant_models.as_uint8(path, str(tmp_path / "q_uint8.onnx"))
    ops = {n.op_type for n in onnx.load(path).graph.node}
    assert {"QDQ": "DequantizeLinear", "QOperator": "QLinearConv", "dynamic": "DynamicQuantizeLinear"}[fmt] in ops
    step = quant_models.output_step(path, "output")
    assert (step is None) == (fmt == "dynamic")
    x = torch_models.make_input(SHAPE, seed=3)
    with open(path, "rb") as f:
        data = f.read()
    with open(exact_path, "rb") as f:
        exact = _ort(f.read(), {"input": x}, optimize=False)[0]
    as_run = _ort(data, {"input": x})[0]
    tol = step * 1.0001 if step else 1e-4 * max(1.0, float(np.abs(exact).max()))
    for kernels in PATHS:
        got = _tinyrt(path, {"input": x}, kernels)[0]
        assert got.shape == exact.shape and got.dtype == exact.dtype
        if fmt == "QDQ":
            # tinyrt computes a QDQ model in float, onnxruntime fused in integers or unfused in float: a sum
            # that lands within rounding of a .5 rounds either way, and one such flip grows through the
            # following layers (onnxruntime's own two ways differ by up to 8 steps on the demo's trained
            # classifier). So each activation is held to one step given the same inputs.
            worst, compared = _layer_by_layer(path, exact_path, x, kernels)
            assert compared >= 20, compared
            assert worst <= 1.0001, "%s %s %s: an activation %.2f steps from onnxruntime's given its inputs" % (
                model_name, _name(config), kernels, worst)
            continue
        err = float(np.abs(got.astype(np.float64) - exact).max())
        assert err <= tol, "%s %s %s: %g from the exact oracle (%.2f steps)" % (model_name, _name(config), kernels,
                                                                                 err, err / (step or tol))
        if fmt == "QOperator":  # the same integer arithmetic: the same integers
            assert err == 0.0, (model_name, _name(config), kernels, err)
        if rr or not ort_saturates():
            err_run = float(np.abs(got.astype(np.float64) - as_run).max())
            assert err_run <= tol, "%s %s %s: %g from onnxruntime (%.2f steps)" % (
                model_name, _name(config), kernels, err_run, err_run / (step or tol))


@pytest.mark.parametrize("config", [c for c in CONFIGS if c in FAST], ids=_name)
def test_mobilenet_v2_quantized(config, float_models, tmp_path):
    _check("mobilenet_v2", config, float_models, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("config", [c for c in CONFIGS if c not in FAST], ids=_name)
def test_mobilenet_v2_quantized_every_way(config, float_models, tmp_path):
    _check("mobilenet_v2", config, float_models, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("model_name", ["mobilenet_v3_small", "shufflenet_v2"])
@pytest.mark.parametrize("config", OTHERS, ids=_name)
def test_other_cnns_quantized(model_name, config, float_models, tmp_path):
    _check(model_name, config, float_models, tmp_path)
