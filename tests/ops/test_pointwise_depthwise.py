"""PointwiseDepthwise: a 1x1 conv and the stride-2 depthwise conv that alone reads it, as one op (numpy path).

tinyrt/passes/fuse_pointwise_depthwise.py writes it on the numpy path only; tinyrt/ops/pointwise_depthwise.py
is its math (the two FusedConvs one after the other); kernel_wrappers/numpy_pointwise_depthwise.py runs it
with the 1x1 conv writing the depthwise conv's column phases. Here: the prepared kernel, on both of its
ways (phases written a row at a time, or made whole and copied), gives the op's numbers for every kernel,
pad, stride, activation and layout it takes; models with such pairs match onnxruntime on both paths, fused
on the numpy path only and shown so by the profile's kernel label; the pairs it must not fuse stay apart;
and a file holding the op itself runs on both paths.
"""
import numpy as np
import pytest
from onnx import helper

import tinyrt
from oracle import assert_close, make_model, ort_run, tinyrt_session
from tinyrt.kernel_wrappers.numpy_pointwise_depthwise import _NumpyPointwiseDepthwise
from tinyrt.ops.pointwise_depthwise import pointwise_depthwise
from tinyrt.passes import fuse_pointwise_depthwise


def rand(*shape, seed=0):
    return np.random.RandomState(seed).standard_normal(shape).astype(np.float32)


class _Step:
    """What the wrapper reads of a plan's step: its op and attributes."""

    def __init__(self, attrs):
        self.fn, self.attrs = pointwise_depthwise, attrs


GEOMETRIES = [  # (kernel, pads (top, left, bottom, right), strides)
    ((3, 3), [1, 1, 1, 1], [2, 2]),
    ((5, 5), [2, 2, 2, 2], [2, 2]),
    ((3, 3), [0, 1, 1, 0], [1, 2]),   # asymmetric pads, a row stride of 1
    ((3, 3), [0, 0, 0, 0], [2, 2]),   # no pads at all
    ((5, 3), [2, 0, 2, 1], [2, 2]),
]
TAILS = [("", []), ("Relu", []), ("Clip", [0.0, 6.0]), ("HardSwish", []), ("HardSigmoid", [0.2, 0.5])]


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("size, C, M", [((20, 72), 32, 72), ((9, 12), 8, 16)])  # phases by rows / copied
@pytest.mark.parametrize("tails", [(TAILS[1], TAILS[2]), (TAILS[3], TAILS[3]), (TAILS[4], TAILS[0])])
def test_the_prepared_kernel_gives_the_numbers_of_the_two_convs(geometry, size, C, M, tails):
    kernel, pads, strides = geometry
    (act1, params1), (act, params) = tails
    attrs = dict(group=M, kernel_shape=list(kernel), pads=pads, strides=strides, activation=act,
                 activation_params=params, pointwise_activation=act1, pointwise_activation_params=params1)
    W, B, DW, DB = rand(M, C, 1, 1, seed=1), rand(M, seed=2), rand(M, 1, *kernel, seed=3), rand(M, seed=4)
    kernel_fn = _NumpyPointwiseDepthwise(_Step(attrs), W, B, DW, DB)
    for N, layout in ((1, "channels last"), (2, "NCHW")):
        x = rand(N, C, *size, seed=5)
        if layout == "channels last":
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        want = pointwise_depthwise(x, W, B, DW, DB, **attrs)
        prepared = kernel_fn.prepare(x.shape, None)
        assert prepared is not None
        by_rows = prepared[0][0]
        assert by_rows == (size == (20, 72))
        got = kernel_fn(x, W, B, DW, DB, **attrs)
        call, _ = kernel_fn.specialize([x, W, B, DW, DB], None)
        again = call(x, W, B, DW, DB)
        assert got.shape == want.shape
        # the same sums in another order, and HardSwish's 1/sqrt(6) taken into the weights (Tail.fold)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
        np.testing.assert_array_equal(again, got)


def test_without_biases_and_with_a_dilation_it_runs_the_op_itself():
    attrs = dict(group=8, kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2], activation="Relu",
                 activation_params=[], pointwise_activation="", pointwise_activation_params=[])
    W, DW = rand(8, 4, 1, 1, seed=1), rand(8, 1, 3, 3, seed=3)
    x = rand(1, 4, 40, 40, seed=5)
    kernel_fn = _NumpyPointwiseDepthwise(_Step(attrs), W, None, DW, None)
    np.testing.assert_allclose(kernel_fn(x, W, None, DW, None, **attrs),
                               pointwise_depthwise(x, W, None, DW, None, **attrs), rtol=1e-5, atol=1e-5)
    dilated = dict(attrs, dilations=[2, 2], pads=[2, 2, 2, 2])
    kernel_fn = _NumpyPointwiseDepthwise(_Step(dilated), W, None, DW, None)
    assert kernel_fn.prepare(x.shape, None) is None  # (the pass never fuses these)
    np.testing.assert_array_equal(kernel_fn(x, W, None, DW, None, **dilated),
                                  pointwise_depthwise(x, W, None, DW, None, **dilated))


def _block(M=64, stride=2, second_reader=False, group=None):
    """x -> 1x1 conv -> Relu -> depthwise 3x3 (stride) -> Clip(0, 6) -> 1x1 conv -> y: a MobileNet block
    halving its map; ``second_reader``: the Relu's result is an output as well."""
    inits = {"w1": rand(M, 16, 1, 1, seed=1) * 0.3, "b1": rand(M, seed=2), "wd": rand(M, 1, 3, 3, seed=3),
             "bd": rand(M, seed=4), "w2": rand(8, M, 1, 1, seed=5) * 0.2, "lo": np.float32(0), "hi": np.float32(6)}
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["e"]),
             helper.make_node("Relu", ["e"], ["h"]),
             helper.make_node("Conv", ["h", "wd", "bd"], ["d"], group=group or M, pads=[1, 1, 1, 1],
                              strides=[stride, stride]),
             helper.make_node("Clip", ["d", "lo", "hi"], ["c"]),
             helper.make_node("Conv", ["c", "w2"], ["y"])]
    outputs = ["y", "h"] if second_reader else ["y"]
    return make_model(nodes, {"x": rand(1, 16, 64, 48, seed=6)}, outputs, inits, opset=13)


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
def test_a_block_halving_its_map_is_one_node_on_the_numpy_path_and_matches_onnxruntime(kernels):
    model = _block()
    feeds = {"x": rand(1, 16, 64, 48, seed=6)}
    session = tinyrt_session(model, kernels)
    for _ in range(2):  # the first run specialises the program's calls
        got = session.run(None, feeds)
    assert_close(got[0], ort_run(model, feeds)[0])
    ops = [step.node.op_type for step in session.plan.steps]
    if kernels == "numpy":
        assert ops == ["PointwiseDepthwise", "Conv"]
        assert any("PointwiseDepthwise" in name for name in session.applied_passes)
        fused = session.plan.steps[0]
        label = tinyrt.kernels_select.kernel_label(fused)
        assert label == "numpy 1x1 conv into column phases, depthwise conv over them"
        assert fused.node.attrs["pointwise_activation"] == "Relu" and fused.node.attrs["activation"] == "Clip"
    else:
        assert "PointwiseDepthwise" not in ops


@pytest.mark.parametrize("case", ["second reader", "stride 1", "wide", "grouped"])
def test_pairs_it_must_not_fuse_stay_two_convs(case):
    model = {"second reader": lambda: _block(second_reader=True), "stride 1": lambda: _block(stride=1),
             "wide": lambda: _block(M=fuse_pointwise_depthwise.WIDE),
             "grouped": lambda: _block(M=64, group=32)}[case]()
    feeds = {"x": rand(1, 16, 64, 48, seed=6)}
    if case == "grouped":  # (a grouped conv with two input channels a group: not depthwise)
        model = _grouped(model)
    session = tinyrt_session(model, "numpy")
    got = session.run(None, feeds)
    assert "PointwiseDepthwise" not in [step.node.op_type for step in session.plan.steps]
    for g, w in zip(got, ort_run(model, feeds)):
        assert_close(g, w)


def _grouped(model):
    """The block's depthwise weights made (64, 2, 3, 3) for 32 groups."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load_from_string(model)
    for i, t in enumerate(m.graph.initializer):
        if t.name == "wd":
            m.graph.initializer[i].CopyFrom(numpy_helper.from_array(rand(64, 2, 3, 3, seed=3), "wd"))
    return m.SerializeToString()


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
def test_a_file_holding_the_op_itself_runs_on_both_paths(kernels):
    """An optimized model saved from a numpy session keeps the op: it runs anywhere."""
    M = 32
    inits = {"w1": rand(M, 16, 1, 1, seed=1), "b1": rand(M, seed=2), "wd": rand(M, 1, 3, 3, seed=3)}
    fused = helper.make_node("PointwiseDepthwise", ["x", "w1", "b1", "wd", ""], ["y"], domain="ai.tinyrt",
                             group=M, kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2],
                             activation="Relu", pointwise_activation="HardSwish")
    apart = [helper.make_node("Conv", ["x", "w1", "b1"], ["e"]), helper.make_node("HardSwish", ["e"], ["h"]),
             helper.make_node("Conv", ["h", "wd"], ["d"], group=M, pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Relu", ["d"], ["y"])]
    feeds = {"x": rand(1, 16, 40, 40, seed=6)}
    model = make_model([fused], feeds, ["y"], inits, opset=14, tinyrt_domain=True)
    got = tinyrt_session(model, kernels).run(None, feeds)[0]
    assert_close(got, ort_run(make_model(apart, feeds, ["y"], inits, opset=14), feeds)[0])
