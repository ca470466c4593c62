"""RoiAlign against onnxruntime: opset 10 and 16, both coordinate transformation modes, avg and max,
sampling_ratio 0 (adaptive) and fixed, rois partly or wholly outside the map, tiny and inverted rois."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

import tinyrt  # noqa: E402


def model(opset, attrs):
    node = helper.make_node("RoiAlign", ["X", "rois", "idx"], ["Y"], **attrs)
    graph = helper.make_graph(
        [node], "roi",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("rois", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("idx", TensorProto.INT64, None)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def feeds():
    rs = np.random.RandomState(0)
    X = rs.standard_normal((2, 5, 12, 10)).astype(np.float32)
    rois = np.array([[0, 0, 9, 11], [1.3, 2.2, 4.7, 8.1], [-3, -2, 5, 4], [6, 8, 14, 15], [2, 2, 2.4, 2.3],
                     [5, 5, 3, 3], [-20, -20, -5, -5], [0.5, 0.5, 30, 40]], np.float32)
    idx = np.array([0, 1, 1, 0, 1, 0, 1, 0], np.int64)
    return {"X": X, "rois": rois, "idx": idx}


CASES = [
    (10, dict(output_height=3, output_width=4, sampling_ratio=2, spatial_scale=1.0)),
    (10, dict(output_height=2, output_width=2, sampling_ratio=0, spatial_scale=0.5)),
    (10, dict(output_height=3, output_width=3, sampling_ratio=0, mode="max")),
    (16, dict(output_height=3, output_width=4, sampling_ratio=2)),
    (16, dict(output_height=5, output_width=2, sampling_ratio=0, spatial_scale=0.7)),
    (16, dict(output_height=3, output_width=4, sampling_ratio=2, coordinate_transformation_mode="output_half_pixel")),
    (16, dict(output_height=4, output_width=4, sampling_ratio=0, mode="max",
              coordinate_transformation_mode="output_half_pixel")),
    (16, dict(output_height=2, output_width=3, sampling_ratio=3, mode="max")),
]


@pytest.mark.parametrize("opset,attrs", CASES)
def test_roi_align_matches_onnxruntime(opset, attrs):
    data = model(opset, attrs)
    f = feeds()
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, f)[0]
    got = tinyrt.InferenceSession(data).run(None, f)[0]
    assert got.shape == want.shape and got.dtype == want.dtype
    assert np.abs(got - want).max() <= 1e-4 * max(1.0, float(np.abs(want).max()))


def test_bad_mode_refused_at_load():
    with pytest.raises(tinyrt.UnsupportedError, match="mode='median'"):
        tinyrt.InferenceSession(model(16, dict(mode="median")))


def test_batch_index_out_of_range():
    f = feeds()
    f["idx"] = f["idx"] + 1
    with pytest.raises(tinyrt.InputError, match="batch_indices"):
        tinyrt.InferenceSession(model(16, {})).run(None, f)
