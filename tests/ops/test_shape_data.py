"""Shape, data-movement, creation, detection and control-flow ops against onnxruntime (the oracle).

Each case builds a small ONNX model (usually one node) with onnx.helper, feeds every input at run time (so
no constant folding hides the op), and compares tinyrt's InferenceSession with onnxruntime: same dtype,
same shape, values exact for integers and within 1e-4 relative for floats.
"""

import numpy as np
import pytest

import tinyrt
from oracle import assert_close, ort_run
from tinyrt.errors import TinyrtError, UnsupportedError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

RNG = np.random.default_rng(0)


def _type(dtype):
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def make_model(op_type, inputs, n_out=1, opset=18, **attrs):
    """A one-node model. ``inputs``: list of arrays (graph inputs) or None (an absent optional input)."""
    names, vis, feeds = [], [], {}
    for i, a in enumerate(inputs):
        if a is None:
            names.append("")
            continue
        a = np.asarray(a)
        names.append("x%d" % i)
        vis.append(helper.make_tensor_value_info("x%d" % i, _type(a.dtype), a.shape))
        feeds["x%d" % i] = a
    outs = ["y%d" % i for i in range(n_out)]
    node = helper.make_node(op_type, names, outs, **attrs)
    graph = helper.make_graph([node], "g", vis, [helper.make_empty_tensor_value_info(o) for o in outs])
    return graph_model(graph, opset), feeds


def graph_model(graph, opset):
    """The model, with output types that onnx's shape inference fills in where the graph leaves them out."""
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model)


def run_both(model, feeds):
    data = model.SerializeToString()
    expected = ort_run(data, feeds)
    got = tinyrt.InferenceSession(data).run(None, feeds)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert_close(g, e)
    return got


def check(op_type, inputs, n_out=1, opset=18, **attrs):
    model, feeds = make_model(op_type, inputs, n_out, opset, **attrs)
    return run_both(model, feeds)


def i64(*v):
    return np.array(v, dtype=np.int64)


def floats(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# ------------------------------------------------------------------------------------------ Reshape


@pytest.mark.parametrize("shape", [(0, -1), (-1, 4), (2, 0, 2, -1), (0, 0, 4), (24,), (-1,), (4, 3, 2)])
def test_reshape_zero_and_minus_one(shape):
    check("Reshape", [floats(2, 3, 4), i64(*shape)], opset=13)


@pytest.mark.parametrize("shape", [(0, 3, 4), (3, 0, 4), (2, 3, 4)])
def test_reshape_allowzero(shape):
    # allowzero=1: a 0 in the shape is a real zero-sized dimension, not "copy the input's"
    x = np.zeros((0, 3, 4), np.float32) if 0 in shape else floats(2, 3, 4)
    check("Reshape", [x, i64(*shape)], opset=14, allowzero=1)


def test_reshape_allowzero_off_copies_dims():
    check("Reshape", [floats(2, 3, 4), i64(0, 0, 2, 2)], opset=14, allowzero=0)


def test_reshape_bad_shape_is_refused():
    model, feeds = make_model("Reshape", [floats(2, 3), i64(4, -1)], opset=14)
    with pytest.raises(TinyrtError):
        tinyrt.InferenceSession(model.SerializeToString()).run(None, feeds)


# -------------------------------------------------------------------------------------------- Slice


@pytest.mark.parametrize("starts,ends,axes,steps", [
    ((-1,), (-1000,), (0,), (-1,)),               # whole axis reversed
    ((20, 10), (0, -1000), (0, 1), (-2, -3)),     # starts past the end, clamped
    ((-2, 3), (-10, 0), (1, 2), (-1, -1)),
    ((1, 0, 0), (1000, 10, -1), (0, 1, 2), (2, 3, 1)),
    ((0,), (-1,), (-1,), (1,)),                   # negative axis
    ((5,), (1,), (1,), (-1,)),
    ((-100,), (100,), (0,), (3,)),
])
def test_slice_steps_and_clamping(starts, ends, axes, steps):
    check("Slice", [floats(6, 10, 5), i64(*starts), i64(*ends), i64(*axes), i64(*steps)], opset=13)


def test_slice_optional_axes_and_steps_absent():
    check("Slice", [floats(6, 10, 5), i64(1, -3), i64(5, 100), None, None], opset=13)


def test_slice_attribute_form():
    check("Slice", [floats(6, 10, 5)], opset=9, starts=[1, -4], ends=[1000, -1], axes=[2, 1])


# ---------------------------------------------------------------------------------------------- Pad


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_modes(mode):
    pads = i64(0, 1, 2, 3, 0, 2, 1, 1)
    value = np.array(1.5, np.float32) if mode == "constant" else None
    check("Pad", [floats(2, 3, 4, 5), pads, value], opset=19, mode=mode)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_negative_pads_crop(mode):
    check("Pad", [floats(3, 6, 7), i64(0, -1, 2, 1, 2, -3)], opset=13, mode=mode)


def test_pad_axes_input():
    check("Pad", [floats(2, 3, 4), i64(1, 2, 3, 0), np.array(-2.0, np.float32), i64(-1, 0)],
          opset=18, mode="constant")


def test_pad_int_keeps_dtype():
    x = RNG.integers(-5, 5, (3, 4)).astype(np.int32)
    check("Pad", [x, i64(1, 1, 2, 0), np.array(7, np.int32)], opset=13)


def test_pad_attribute_form():
    check("Pad", [floats(2, 3)], opset=10, pads=[1, 0, 0, 2], value=3.0)
    check("Pad", [floats(2, 4)], opset=10, pads=[1, 2, 1, 1], mode="reflect")


def test_pad_wrap_refused_before_19():
    model, _ = make_model("Pad", [floats(2, 3), i64(1, 1, 1, 1)], opset=18, mode="wrap")
    with pytest.raises(UnsupportedError):
        tinyrt.InferenceSession(model.SerializeToString())


# ---------------------------------------------------------------------------------- Gather, Scatter


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_negative_indices(axis):
    idx = np.array([[-1, 0], [2, -3]], dtype=np.int64)
    check("Gather", [floats(3, 4, 5), idx], opset=13, axis=axis)


def test_gather_scalar_index_int32_keeps_dtype():
    x = RNG.integers(0, 100, (5, 3)).astype(np.int64)
    check("Gather", [x, np.array(-2, np.int32)], opset=13, axis=0)


def test_gather_elements_negative_indices():
    idx = np.array([[-1, 0, 1], [2, -2, 0]], dtype=np.int64)
    check("GatherElements", [floats(3, 3), idx], opset=13, axis=0)
    check("GatherElements", [floats(2, 4), idx], opset=13, axis=1)


@pytest.mark.parametrize("batch_dims", [0, 1])
def test_gather_nd(batch_dims):
    x = floats(2, 3, 4)
    idx = np.array([[[1, -1]], [[0, 2]]], dtype=np.int64) if batch_dims else \
        np.array([[1, 2], [0, -1], [1, 0]], dtype=np.int64)
    check("GatherND", [x, idx], opset=13, batch_dims=batch_dims)


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_nd(reduction):
    idx = np.array([[0], [2], [0]], dtype=np.int64) if reduction != "none" else np.array([[0], [2]], np.int64)
    upd = floats(len(idx), 4, 4)
    check("ScatterND", [floats(4, 4, 4), idx, upd], opset=18, reduction=reduction)


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_elements(reduction):
    idx = np.array([[1, -1, 0], [0, 2, 1]], dtype=np.int64)
    check("ScatterElements", [floats(3, 3), idx, floats(2, 3)], opset=18, axis=0, reduction=reduction)


def test_onehot_and_trilu_and_compress():
    check("OneHot", [np.array([[1, -1], [5, 0]], np.int64), np.array(4, np.int64),
                     np.array([0.5, 2.0], np.float32)], opset=11, axis=1)
    check("Trilu", [floats(2, 4, 5), np.array(-1, np.int64)], opset=14, upper=0)
    check("Trilu", [floats(5, 3)], opset=14)
    check("Compress", [floats(3, 4), np.array([True, False, True])], opset=11, axis=-2)


# --------------------------------------------------------------------------------------------- TopK


@pytest.mark.parametrize("largest", [1, 0])
@pytest.mark.parametrize("axis", [-1, 0])
def test_topk_ties_keep_lower_index(largest, axis):
    x = np.array([[3, 1, 3, 2, 1, 3], [0, 0, 0, 5, 5, 0], [2, 2, 2, 2, 2, 2]], dtype=np.float32)
    k = 2 if axis == 0 else 4
    check("TopK", [x, i64(k)], n_out=2, opset=11, axis=axis, largest=largest)


def test_topk_int_and_full_k():
    x = RNG.integers(0, 4, (3, 7)).astype(np.int64)
    check("TopK", [x, i64(7)], n_out=2, opset=11)
    x = RNG.integers(0, 4, (3, 7)).astype(np.int32)
    check("TopK", [x, i64(0)], n_out=2, opset=11)


def test_topk_attribute_form():
    check("TopK", [floats(4, 6)], n_out=2, opset=9, k=3, axis=1)


# -------------------------------------------------------------------------------- NonMaxSuppression


def _nms(boxes, scores, max_out=None, iou=None, score=None, **attrs):
    inputs = [boxes, scores,
              None if max_out is None else i64(max_out),
              None if iou is None else np.array([iou], np.float32),
              None if score is None else np.array([score], np.float32)]
    while inputs[-1] is None:
        inputs.pop()
    return check("NonMaxSuppression", inputs, opset=11, **attrs)


def test_nms_classes_batches_and_identical_boxes():
    rng = np.random.default_rng(1)
    centers = rng.uniform(0, 10, (2, 30, 2)).astype(np.float32)
    sizes = rng.uniform(1, 4, (2, 30, 2)).astype(np.float32)
    boxes = np.concatenate([centers, centers + sizes], axis=2)  # [y1, x1, y2, x2]
    boxes[:, 5] = boxes[:, 3]                                    # identical boxes...
    scores = rng.uniform(0, 1, (2, 3, 30)).astype(np.float32)
    scores[:, :, 5] = scores[:, :, 3]                            # ...with identical scores
    scores[0, 1, 7] = scores[0, 1, 8]                            # a score tie between different boxes
    out = _nms(boxes, scores, max_out=10, iou=0.3, score=0.2)
    assert out[0].dtype == np.int64 and out[0].shape[1] == 3
    _nms(boxes, scores, max_out=100, iou=0.5)
    _nms(boxes, scores, max_out=2, iou=0.0, score=0.5)


def test_nms_identical_boxes_keep_earliest():
    boxes = np.tile(np.array([[[0, 0, 1, 1]]], np.float32), (1, 8, 1))
    scores = np.full((1, 1, 8), 0.9, np.float32)
    out = _nms(boxes, scores, max_out=3, iou=0.5)
    assert out[0].tolist() == [[0, 0, 0]]


def test_nms_center_point_and_flipped_corners():
    rng = np.random.default_rng(2)
    boxes = np.concatenate([rng.uniform(0, 10, (1, 20, 2)), rng.uniform(1, 3, (1, 20, 2))], 2).astype(np.float32)
    scores = rng.uniform(0, 1, (1, 2, 20)).astype(np.float32)
    _nms(boxes, scores, max_out=20, iou=0.2, center_point_box=1)
    corners = np.concatenate([boxes[..., :2], boxes[..., :2] + boxes[..., 2:]], 2)
    flipped = corners[..., [2, 1, 0, 3]]
    _nms(flipped, scores, max_out=20, iou=0.2)


def test_nms_no_max_output_means_no_boxes():
    boxes, scores = floats(1, 4, 4), floats(1, 2, 4)
    assert _nms(boxes, scores)[0].shape == (0, 3)
    assert _nms(boxes, scores, max_out=0, iou=0.5)[0].shape == (0, 3)


# -------------------------------------------------------------------------------------------- Split


def test_split_forms():
    x = floats(4, 7)
    check("Split", [x], n_out=3, opset=11, axis=1, split=[2, 4, 1])
    check("Split", [x, i64(1, 0, 6)], n_out=3, opset=13, axis=-1)
    check("Split", [x], n_out=2, opset=13, axis=0)
    check("Split", [x, None], n_out=4, opset=18, axis=1, num_outputs=4)  # 2, 2, 2, 1
    check("Split", [x], n_out=3, opset=18, axis=1, num_outputs=3)        # 3, 3, 1
    check("Split", [x, i64(3, 4)], n_out=2, opset=18, axis=1)


def test_concat_keeps_int64():
    a, b = i64(1, 2).reshape(1, 2), i64(3, 4, 5, 6).reshape(2, 2)
    out = check("Concat", [a, b], opset=13, axis=0)
    assert out[0].dtype == np.int64


# ------------------------------------------------------------------------------------ Shape and co.


def test_shape_family():
    x = floats(2, 3, 4, 5)
    check("Shape", [x], opset=15, start=1, end=-1)
    check("Shape", [x], opset=15, start=-10, end=10)
    check("Size", [x], opset=13)
    check("Flatten", [x], opset=13, axis=-2)
    check("Flatten", [x], opset=13, axis=0)
    check("Squeeze", [floats(1, 3, 1, 2), i64(-2)], opset=13)
    check("Squeeze", [floats(1, 3, 1, 2)], opset=11)
    check("Unsqueeze", [floats(3, 2), i64(-1, 0)], opset=13)
    check("Unsqueeze", [floats(3, 2)], opset=11, axes=[1, 3])
    check("Transpose", [x], opset=13)
    check("Transpose", [x], opset=13, perm=[0, 2, 3, 1])
    check("Expand", [floats(3, 1), i64(2, 1, 4)], opset=13)
    check("Tile", [floats(2, 3), i64(2, 3)], opset=13)
    check("DepthToSpace", [floats(1, 8, 2, 3)], opset=13, blocksize=2, mode="CRD")
    check("DepthToSpace", [floats(1, 8, 2, 3)], opset=13, blocksize=2)
    check("SpaceToDepth", [floats(1, 2, 4, 6)], opset=13, blocksize=2)
    check("Identity", [floats(3)], opset=13)


def test_generators():
    check("ConstantOfShape", [i64(2, 3)], opset=9, value=helper.make_tensor("v", TensorProto.INT32, [1], [7]))
    check("ConstantOfShape", [i64(0, 3)], opset=9)
    check("Range", [np.array(1.5, np.float32), np.array(7.2, np.float32), np.array(0.7, np.float32)], opset=11)
    check("Range", [np.array(10, np.int64), np.array(-3, np.int64), np.array(-4, np.int64)], opset=11)
    check("NonZero", [np.array([[1, 0, 3], [0, 0, 2]], np.int32)], opset=13)
    check("EyeLike", [floats(3, 5)], opset=9, k=2, dtype=TensorProto.INT64)


def test_constant_value_attributes():
    for attrs in ({"value_float": 2.5}, {"value_floats": [1.0, 2.0]}, {"value_int": 3},
                  {"value_ints": [4, 5, 6]}, {"value": helper.make_tensor("t", TensorProto.FLOAT, [2], [1, 2])}):
        node = helper.make_node("Constant", [], ["y0"], **attrs)
        graph = helper.make_graph([node], "g", [], [helper.make_empty_tensor_value_info("y0")])
        run_both(graph_model(graph, 13), {})


def test_dropout_inference_and_training_refused():
    x = floats(3, 4)
    check("Dropout", [x], n_out=2, opset=13)
    check("Dropout", [x, np.array(0.3, np.float32), np.array(False)], n_out=2, opset=13)
    model, feeds = make_model("Dropout", [x, np.array(0.3, np.float32), np.array(True)], n_out=1, opset=13)
    sess = tinyrt.InferenceSession(model.SerializeToString())
    with pytest.raises(UnsupportedError):
        sess.run(None, feeds)


# ------------------------------------------------------------------------------------- Control flow


def _vi(name, dtype=TensorProto.FLOAT, shape=None):
    return helper.make_tensor_value_info(name, dtype, shape)


def test_if_uses_outer_scope():
    then_g = helper.make_graph([helper.make_node("Add", ["a", "b"], ["t"])], "then", [], [_vi("t")])
    else_g = helper.make_graph([helper.make_node("Sub", ["a", "b"], ["e"])], "else", [], [_vi("e")])
    node = helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)
    graph = helper.make_graph([node], "g", [_vi("c", TensorProto.BOOL, []), _vi("a", shape=[3]), _vi("b", shape=[3])],
                              [_vi("y")])
    model = graph_model(graph, 13)
    a, b = floats(3), floats(3)
    for c in (True, False):
        run_both(model, {"c": np.array(c), "a": a, "b": b})


def test_loop_carried_and_scan_outputs():
    # body: acc = acc + x * i ; emits acc each iteration ; stops when i reaches the cond limit
    body = helper.make_graph(
        [helper.make_node("Cast", ["i"], ["fi"], to=TensorProto.FLOAT),
         helper.make_node("Mul", ["x", "fi"], ["xi"]),
         helper.make_node("Add", ["acc_in", "xi"], ["acc_out"]),
         helper.make_node("Less", ["i", "limit"], ["cond_out"]),
         helper.make_node("Identity", ["acc_out"], ["scan_out"])],
        "body", [_vi("i", TensorProto.INT64, []), _vi("cond_in", TensorProto.BOOL, []), _vi("acc_in")],
        [_vi("cond_out", TensorProto.BOOL, []), _vi("acc_out"), _vi("scan_out")])
    node = helper.make_node("Loop", ["M", "cond", "acc0"], ["acc", "scans"], body=body)
    graph = helper.make_graph([node], "g", [_vi("M", TensorProto.INT64, []), _vi("cond", TensorProto.BOOL, []),
                                            _vi("acc0", shape=[2]), _vi("x", shape=[2]),
                                            _vi("limit", TensorProto.INT64, [])], [_vi("acc"), _vi("scans")])
    model = graph_model(graph, 13)
    for m, limit in ((5, 100), (10, 3)):
        run_both(model, {"M": np.array(m, np.int64), "cond": np.array(True), "acc0": floats(2), "x": floats(2),
                         "limit": np.array(limit, np.int64)})


@pytest.mark.parametrize("in_axis,in_dir,out_axis,out_dir", [(0, 0, 0, 0), (1, 1, 1, 0), (-1, 0, -1, 1)])
def test_scan_axes_and_directions(in_axis, in_dir, out_axis, out_dir):
    # running sum over the scan axis; emits the running sum and the element times two
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "x_t"], ["s_out"]),
         helper.make_node("Add", ["x_t", "x_t"], ["y_t"])],
        "body", [_vi("s_in", shape=[3]), _vi("x_t", shape=[3])], [_vi("s_out", shape=[3]), _vi("y_t", shape=[3])])
    node = helper.make_node("Scan", ["s0", "xs"], ["s", "ys"], body=body, num_scan_inputs=1,
                            scan_input_axes=[in_axis], scan_input_directions=[in_dir],
                            scan_output_axes=[out_axis], scan_output_directions=[out_dir])
    xs = floats(4, 3) if in_axis == 0 else floats(3, 4)
    graph = helper.make_graph([node], "g", [_vi("s0", shape=[3]), _vi("xs", shape=list(xs.shape))],
                              [_vi("s"), _vi("ys")])
    run_both(graph_model(graph, 11), {"s0": floats(3), "xs": xs})


def test_gather_elements_indices_smaller_than_data():
    idx = np.array([[2, -1], [0, 1]], dtype=np.int64)
    check("GatherElements", [floats(3, 4), idx], opset=13, axis=0)
    check("GatherElements", [floats(3, 4), idx], opset=13, axis=1)
