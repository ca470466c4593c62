"""Conv results written inside a zero border, and the depthwise convs that read them in place (numpy path).

tinyrt/ops/_bordered.py: a prepared conv whose result a depthwise conv reads writes it into the interior of a
buffer with a zero border, and the depthwise conv reads it where it lies (ops/conv.py ``depthwise_conv``)
instead of copying it with its pads. Here: the depthwise conv read in place gives the numbers of the copying
path for every kernel, stride, dilation and pad that fits the border; a conv writes the same numbers into a
border as into a fresh array on each of its branches; the border stays zero and is recognised only as itself;
the tails work on a bordered result; and a model whose convs write borders matches onnxruntime with the
depthwise convs reading in place.
"""
import gc

import numpy as np
import pytest

import tinyrt
from oracle import assert_close, make_model, ort_run
from tinyrt.ops import _depthwise as D
from tinyrt.ops import conv as C
from tinyrt.ops import tails
from tinyrt.ops._bordered import border_of, bordered


def rand(*shape, seed=0):
    return np.random.RandomState(seed).standard_normal(shape).astype(np.float32)


def in_border(values, border):
    """values (N, C, H, W) copied into the interior of a bordered buffer; the (N, C, H, W) view of it."""
    N, C, H, W = values.shape
    y = bordered((N, H, W, C), border)
    y[...] = values.transpose(0, 2, 3, 1)
    return y.transpose(0, 3, 1, 2)


def reference_depthwise(x, w, kernel, strides, dilations, begin, end, out):
    """The copying path: column phases of a padded copy, one einsum each."""
    tiled = D.tile_depthwise(w, out[1])
    phases = D.depthwise_phases(x.shape, 4, kernel, strides, dilations, begin, end, out)
    plain = np.ascontiguousarray(x)  # NCHW memory: certainly no border
    return D.depthwise(plain, [(b, view, tiled[:, js]) for b, js, view in phases], begin, end, strides[1], out)


GEOMETRIES = [  # (kernel, strides, dilations, begin, end)
    ((3, 3), (1, 1), (1, 1), (1, 1), (1, 1)),
    ((3, 3), (2, 2), (1, 1), (1, 1), (1, 1)),
    ((5, 5), (1, 1), (1, 1), (2, 2), (2, 2)),
    ((5, 5), (2, 2), (1, 1), (2, 2), (2, 2)),
    ((3, 3), (1, 1), (2, 2), (2, 2), (2, 2)),
    ((3, 3), (2, 1), (1, 1), (0, 1), (1, 0)),   # asymmetric pads and strides
    ((3, 3), (1, 1), (1, 1), (0, 0), (0, 0)),   # no pads at all
]


@pytest.mark.parametrize("channels", [5, 130, 400])
@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("wider", [False, True])
def test_a_depthwise_conv_reads_a_bordered_input_in_place_with_the_numbers_of_the_padded_copy(channels, geometry,
                                                                                             wider):
    kernel, strides, dilations, begin, end = geometry
    N, H, W = 2, 11, 9
    x = rand(N, channels, H, W)
    w = rand(channels, 1, *kernel, seed=1)
    out = [(H + begin[0] + end[0] - dilations[0] * (kernel[0] - 1) - 1) // strides[0] + 1,
           (W + begin[1] + end[1] - dilations[1] * (kernel[1] - 1) - 1) // strides[1] + 1]
    extra = 1 if wider else 0  # a border wider than the pads (another reader wanted more)
    border = (begin[0] + extra, end[0] + extra, begin[1] + extra, end[1] + 2 * extra)
    xb = in_border(x, border)
    assert D.bordered_input(xb, list(begin), list(end)) is not None
    want = reference_depthwise(x, w, kernel, strides, dilations, list(begin), list(end), out)
    got = C._conv2d(xb, w, channels, list(kernel), list(strides), list(dilations), list(begin), list(end), out)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # and written into a border of its own
    into = bordered((N,) + tuple(out) + (channels,), (1, 1, 1, 1))
    got = C._conv2d(xb, w, channels, list(kernel), list(strides), list(dilations), list(begin), list(end), out,
                    into=into)
    assert got is into
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_a_border_narrower_than_the_pads_is_not_read_in_place():
    x = in_border(rand(1, 4, 6, 6), (1, 1, 1, 1))
    assert D.bordered_input(x, [1, 1], [1, 1]) is not None
    assert D.bordered_input(x, [2, 1], [1, 1]) is None
    assert D.bordered_input(x, [1, 1], [1, 2]) is None
    assert D.bordered_input(x, [-1, 0], [0, 0]) is None  # negative pads crop: the copying path


def test_only_the_interior_itself_is_recognised_and_the_buffer_is_forgotten_when_it_dies():
    x = in_border(rand(1, 4, 6, 5), (1, 2, 1, 1))
    buf, border = border_of(x)
    assert border == (1, 2, 1, 1)
    assert not buf[:, :1].any() and not buf[:, -2:].any() and not buf[:, :, :1].any() and not buf[:, :, -1:].any()
    assert border_of(x.transpose(0, 2, 3, 1)) is None  # not the (N, C, H, W) view
    assert border_of(x[:, :, 1:]) is None               # a part of the interior
    assert border_of(x[:, :2]) is None                   # some channels
    assert border_of(np.ascontiguousarray(x)) is None    # a copy
    assert border_of(rand(1, 4, 6, 5)) is None
    from tinyrt.ops import _bordered
    before = len(_bordered._BUFFERS)
    del x, buf
    gc.collect()
    assert len(_bordered._BUFFERS) == before - 1


CONVS = {  # name: (x (N, C, H, W), layout, w, group, kernel, strides, begin, end)
    "pointwise": ((1, 6, 5, 7), "last", (9, 6, 1, 1), 1, (1, 1), (1, 1), (0, 0), (0, 0)),
    "pointwise_nchw": ((2, 6, 5, 7), "nchw", (9, 6, 1, 1), 1, (1, 1), (1, 1), (0, 0), (0, 0)),
    "pointwise_bordered_input": ((1, 6, 5, 7), "bordered", (9, 6, 1, 1), 1, (1, 1), (1, 1), (0, 0), (0, 0)),
    "stem_nchw": ((1, 3, 9, 8), "nchw", (8, 3, 3, 3), 1, (3, 3), (2, 2), (1, 1), (1, 1)),
    "im2col_last": ((2, 4, 7, 6), "last", (5, 4, 3, 3), 1, (3, 3), (1, 1), (1, 1), (1, 1)),
    "grouped_last": ((1, 6, 7, 6), "last", (4, 3, 3, 3), 2, (3, 3), (1, 2), (1, 0), (1, 1)),
    "depthwise": ((1, 6, 7, 6), "last", (6, 1, 3, 3), 6, (3, 3), (1, 1), (1, 1), (1, 1)),
}


@pytest.mark.parametrize("name", sorted(CONVS))
def test_a_conv_writes_into_a_border_what_it_writes_into_a_fresh_array(name):
    xs, layout, ws, group, kernel, strides, begin, end = CONVS[name]
    x = rand(*xs)
    if layout == "last":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    elif layout == "bordered":
        x = in_border(x, (1, 1, 1, 1))
    w = rand(*ws, seed=2)
    N, _, H, W = xs
    out = [(H + begin[0] + end[0] - kernel[0]) // strides[0] + 1, (W + begin[1] + end[1] - kernel[1]) // strides[1] + 1]
    args = (x, w, group, list(kernel), list(strides), [1, 1], list(begin), list(end), out)
    want = C._conv2d(*args)
    into = bordered((N, out[0], out[1], ws[0]), (2, 1, 1, 2))
    got = C._conv2d(*args, into=into)
    assert got is into
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    buf, border = border_of(got.transpose(0, 3, 1, 2))
    inside = np.zeros(buf.shape, bool)
    inside[:, 2:2 + out[0], 1:1 + out[1]] = True
    assert not buf[~inside].any()  # the border is still zero


@pytest.mark.parametrize("name", ["HardSwish", "Relu", "QuantizeDequantize"])
def test_tails_work_on_a_bordered_result_in_row_pieces(name):
    values = rand(1, 7, 9, 11) * 4
    y = in_border(values, (1, 1, 2, 1))
    flat = np.ascontiguousarray(values.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    params = [0.05, -128.0, 127.0] if name == "QuantizeDequantize" else []
    assert len(tails.pieces(y, 64)) > 1  # rows, not the whole array
    tails.TAILS[name].apply(flat, *params)
    got = tails.TAILS[name].apply(y, *params)
    np.testing.assert_array_equal(got, flat)
    buf, _ = border_of(y)
    assert not buf[:, 0].any() and not buf[:, :, :2].any()


def _expand_depthwise_model(channels, stride):
    """x -> 1x1 conv (+HardSwish) -> depthwise 3x3 (stride) -> Relu, and the 1x1's result read by a second,
    5x5 depthwise conv and an Add as well (three readers, two pads), -> y."""
    from onnx import helper
    C0 = 64  # (a 1x1 conv writes a border only for rows of enough multiply-adds)
    inits = {"w1": rand(channels, C0, 1, 1, seed=3), "b1": rand(channels, seed=4),
             "wd": rand(channels, 1, 3, 3, seed=5), "bd": rand(channels, seed=6),
             "we": rand(channels, 1, 5, 5, seed=7)}
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["e"]),
        helper.make_node("HardSwish", ["e"], ["h"]),
        helper.make_node("Conv", ["h", "wd", "bd"], ["d"], group=channels, pads=[1, 1, 1, 1], strides=[stride, stride]),
        helper.make_node("Relu", ["d"], ["r"]),
        helper.make_node("Conv", ["h", "we"], ["f"], group=channels, pads=[2, 2, 2, 2], strides=[stride, stride]),
        helper.make_node("Add", ["r", "f"], ["s"]),
        helper.make_node("Conv", ["h", "wd"], ["g"], group=channels, pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["g", "h"], ["t"]),
    ]
    return make_model(nodes, {"x": rand(1, C0, 40, 36, seed=8)}, ["s", "t"], inits, opset=14)


# the border the 1x1's result gets: its widest reader's pads, not counting a 5x5 kernel striding over fewer
# than 128 channels (that reader copies column phases: ops/conv.py depthwise_conv)
BORDER = {(32, 1): (2, 2, 2, 2), (32, 2): (1, 1, 1, 1), (160, 2): (2, 2, 2, 2), (400, 1): (2, 2, 2, 2)}


@pytest.mark.parametrize("channels, stride", [(32, 1), (32, 2), (160, 2), (400, 1)])
def test_a_model_whose_convs_write_borders_matches_onnxruntime_reading_them_in_place(monkeypatch, channels, stride):
    model = _expand_depthwise_model(channels, stride)
    feeds = {"x": rand(1, 64, 40, 36, seed=8)}
    read_in_place = []
    real = D.depthwise_in_border
    monkeypatch.setattr(D, "depthwise_in_border", lambda *a, **k: read_in_place.append(a[1]) or real(*a, **k))
    options = tinyrt.SessionOptions()
    options.kernels = "numpy"
    session = tinyrt.InferenceSession(model, options)
    for _ in range(2):  # the first run specialises the program's calls
        got = session.run(None, feeds)
    want = ort_run(model, feeds)
    for g, w in zip(got, want):
        assert_close(g, w)
    assert read_in_place and set(read_in_place) == {BORDER[channels, stride]}
    # what tinyrt profile / trace / code show for each conv
    labels = {step.node.op_type + ":" + step.node.inputs[1]: tinyrt.kernels_select.kernel_label(step)
              for step in session.plan.steps if step.node.op_type in ("Conv", "FusedConv")}
    assert labels["FusedConv:w1"] == "numpy conv, prepared, into a zero border"
    assert labels["FusedConv:wd"].endswith("input read in place")
