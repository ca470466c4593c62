"""Both kernel paths held to the plain definitions of tinyrt/ops/reference.py on random shapes (hypothesis).

The reference computes in float64; each path's float32 result must be within the project's tolerance of it,
and the reference itself is checked against onnxruntime on a few of the same cases.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from onnx import TensorProto, helper

from oracle import assert_close, make_model, ort_run, tinyrt_run
from tinyrt.ops import reference

ort = pytest.importorskip("onnxruntime")

PATHS = ["numpy", "numba"]
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _model(node, inputs, inits, opset=13):
    outputs = {name: TensorProto.INT64 if node.op_type == "NonMaxSuppression" else TensorProto.FLOAT
               for name in node.output}
    return make_model([node], inputs, outputs, inits, opset)


def _run(data, feeds, kernels):
    return tinyrt_run(data, feeds, kernels)[0]


def _close(got, want):
    """float32 results held to the float64 definitions."""
    assert_close(got, want, dtype=False)


def _rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


@st.composite
def conv_cases(draw, ranks=(2,)):
    """Conv geometry: groups (depthwise too), kernels, strides, dilations and pads that leave an output."""
    rank = draw(st.sampled_from(ranks))
    group = draw(st.sampled_from([1, 1, 2, "depthwise"]))
    cg = draw(st.integers(1, 5))
    c = cg * (2 if group == 2 else 1) if group != "depthwise" else draw(st.integers(1, 12))
    if group == "depthwise":
        group, cg = c, 1
    m = group * draw(st.integers(1, 3))
    kernel = [draw(st.integers(1, 3)) for _ in range(rank)]
    strides = [draw(st.integers(1, 3)) for _ in range(rank)]
    dilations = [draw(st.integers(1, 2)) for _ in range(rank)]
    pads = [draw(st.integers(0, 2)) for _ in range(2 * rank)]
    size = [draw(st.integers(max(1, (k - 1) * d + 1 - pads[i] - pads[i + rank]), 9))
            for i, (k, d) in enumerate(zip(kernel, dilations))]
    n = draw(st.integers(1, 2))
    return dict(x=(n, c) + tuple(size), w=(m, cg) + tuple(kernel), group=group, strides=strides,
                dilations=dilations, pads=pads, bias=draw(st.booleans()), seed=draw(st.integers(0, 1000)))


def _conv(case):
    rng = np.random.default_rng(case["seed"])
    x, w = _rand(rng, *case["x"]), _rand(rng, *case["w"])
    b = _rand(rng, case["w"][0]) if case["bias"] else None
    attrs = {k: case[k] for k in ("group", "strides", "dilations", "pads")}
    inits = {"w": w} if b is None else {"w": w, "b": b}
    node = helper.make_node("Conv", ["x"] + list(inits), ["y"], **attrs)
    want = reference.conv(x.astype(np.float64), w.astype(np.float64), None if b is None else b.astype(np.float64),
                          **attrs)
    return _model(node, {"x": x}, inits), {"x": x}, want


@pytest.mark.slow
@pytest.mark.parametrize("kernels", PATHS)
@SETTINGS
@given(case=conv_cases(ranks=(1, 2, 3)))
def test_conv_matches_reference(kernels, case):
    data, feeds, want = _conv(case)
    _close(_run(data, feeds, kernels), want)


@st.composite
def pool_cases(draw):
    """Pool geometry; the dilations are MaxPool's (AveragePool has them from opset 19 only)."""
    kernel = [draw(st.integers(1, 3)) for _ in range(2)]
    dilations = [draw(st.integers(1, 2)) for _ in range(2)]
    pads = [draw(st.integers(0, k - 1)) for k in kernel * 2]  # ONNX: pads smaller than the kernel
    size = [draw(st.integers((k - 1) * d + 1, 10)) for k, d in zip(kernel, dilations)]
    return dict(shape=(draw(st.integers(1, 2)), draw(st.integers(1, 11))) + tuple(size), kernel_shape=kernel,
                strides=[draw(st.integers(1, 3)) for _ in range(2)], dilations=dilations, pads=pads,
                count_include_pad=draw(st.integers(0, 1)), nan=draw(st.booleans()), seed=draw(st.integers(0, 1000)))


@pytest.mark.slow
@pytest.mark.parametrize("kernels", PATHS)
@SETTINGS
@given(case=pool_cases())
def test_max_pool_matches_reference(kernels, case):
    rng = np.random.default_rng(case["seed"])
    x = _rand(rng, *case["shape"])
    if case["nan"]:
        x[rng.random(x.shape) < 0.2] = np.nan
    attrs = {k: case[k] for k in ("kernel_shape", "strides", "dilations", "pads")}
    data = _model(helper.make_node("MaxPool", ["x"], ["y"], **attrs), {"x": x}, {})
    np.testing.assert_array_equal(_run(data, {"x": x}, kernels), reference.max_pool(x, **attrs))


@pytest.mark.slow
@pytest.mark.parametrize("kernels", PATHS)
@SETTINGS
@given(case=pool_cases())
def test_average_pool_matches_reference(kernels, case):
    x = _rand(np.random.default_rng(case["seed"]), *case["shape"])
    attrs = {k: case[k] for k in ("kernel_shape", "strides", "pads", "count_include_pad")}
    data = _model(helper.make_node("AveragePool", ["x"], ["y"], **attrs), {"x": x}, {})
    _close(_run(data, {"x": x}, kernels), reference.average_pool(x.astype(np.float64), **attrs))


@st.composite
def nms_cases(draw):
    return dict(batches=draw(st.integers(1, 2)), classes=draw(st.integers(1, 3)), boxes=draw(st.integers(0, 60)),
                max_out=draw(st.integers(0, 70)), iou=draw(st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0])),
                score=draw(st.sampled_from([None, 0.2, 0.6])), center=draw(st.integers(0, 1)),
                seed=draw(st.integers(0, 1000)))


def _nms(case):
    rng = np.random.default_rng(case["seed"])
    B, C, N = case["batches"], case["classes"], case["boxes"]
    corner = rng.uniform(0, 10, (B, N, 2)).astype(np.float32)
    size = rng.uniform(0, 4, (B, N, 2)).astype(np.float32)
    boxes = np.concatenate([corner, corner + size], axis=2) if not case["center"] else \
        np.concatenate([corner, size], axis=2)
    scores = rng.choice([0.1, 0.25, 0.5, 0.75, 0.9], (B, C, N)).astype(np.float32)  # ties on purpose
    inits = {"max_out": np.array([case["max_out"]], np.int64), "iou": np.array([case["iou"]], np.float32)}
    if case["score"] is not None:
        inits["score"] = np.array([case["score"]], np.float32)
    node = helper.make_node("NonMaxSuppression", ["boxes", "scores"] + list(inits), ["selected"],
                            center_point_box=case["center"])
    data = _model(node, {"boxes": boxes, "scores": scores}, inits, opset=11)
    want = reference.non_max_suppression(boxes, scores, case["max_out"], np.float32(case["iou"]),
                                         None if case["score"] is None else np.float32(case["score"]), case["center"])
    return data, {"boxes": boxes, "scores": scores}, want


@pytest.mark.slow
@pytest.mark.parametrize("kernels", PATHS)
@SETTINGS
@given(case=nms_cases())
def test_non_max_suppression_matches_reference(kernels, case):
    data, feeds, want = _nms(case)
    np.testing.assert_array_equal(_run(data, feeds, kernels), want)


@pytest.mark.parametrize("seed", range(6))
def test_the_references_agree_with_onnxruntime(seed):
    """The definitions themselves, against the oracle (one conv with every attribute, pools, NMS)."""
    conv = dict(x=(2, 4, 9, 8), w=(6, 2, 3, 2), group=2, strides=[2, 1], dilations=[1, 2], pads=[1, 0, 2, 1],
                bias=True, seed=seed)
    data, feeds, want = _conv(conv)
    _close(ort_run(data, feeds)[0].astype(np.float64), want)
    x = _rand(np.random.default_rng(seed), 1, 3, 7, 9)
    for include in (0, 1):
        attrs = dict(kernel_shape=[3, 2], strides=[2, 1], pads=[1, 0, 1, 1], count_include_pad=include)
        data = _model(helper.make_node("AveragePool", ["x"], ["y"], **attrs), {"x": x}, {})
        theirs = ort_run(data, {"x": x})[0]
        _close(theirs, reference.average_pool(x.astype(np.float64), **attrs))
    attrs = dict(kernel_shape=[3, 2], strides=[2, 1], pads=[1, 0, 1, 1])
    data = _model(helper.make_node("MaxPool", ["x"], ["y"], **attrs), {"x": x}, {})
    theirs = ort_run(data, {"x": x})[0]
    np.testing.assert_array_equal(theirs, reference.max_pool(x, **attrs))
    case = dict(batches=2, classes=3, boxes=50, max_out=10, iou=0.5, score=0.2, center=seed % 2, seed=seed)
    data, feeds, want = _nms(case)
    np.testing.assert_array_equal(ort_run(data, feeds)[0],
                                  want)


@pytest.mark.parametrize("name", ["conv", "max_pool", "average_pool", "non_max_suppression"])
def test_the_references_stay_short(name):
    """A student reads these (docs/how-inference-works.md links them): each stays under 40 lines."""
    import inspect
    lines, _ = inspect.getsourcelines(getattr(reference, name))
    assert len(lines) < 40, "%s is %d lines" % (name, len(lines))
