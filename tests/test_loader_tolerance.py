"""Quirks of real exporters that onnxruntime accepts, and malformed files that stay errors.

- old Paddle2ONNX declares the batch dimension as ``dim_value: -1``: a dynamic dimension (noted by
  ``tinyrt info``);
- torch writes the outputs of If branches with an empty type: the type comes from what produces them;
- a model may declare an output shape its graph does not produce: declared shapes are not checked;
- a negative dimension of an initializer is malformed data: ModelError.
"""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import tinyrt  # noqa: E402


def both(model, feeds):
    data = model.SerializeToString()
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)
    sess = tinyrt.InferenceSession(data)
    got = sess.run(None, feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)
    return sess


def test_negative_declared_dimension_is_dynamic(tmp_path, capsys):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [-1, 3])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 13)])
    feeds = {"x": np.array([[-1, 2, 3], [4, -5, 6]], np.float32)}
    sess = both(model, feeds)
    assert sess.get_inputs()[0].shape == [None, 3]
    assert any("-1" in n and "dynamic" in n for n in sess.model.notes)
    path = tmp_path / "neg.onnx"
    path.write_bytes(model.SerializeToString())
    from tinyrt.cli import main
    assert main(["info", str(path), "--no-macs"]) == 0
    out = capsys.readouterr().out
    assert "note: value 'x' declares dimension 0 as -1: read as dynamic" in out


def _if_model(empty_outer):
    """An If whose branch outputs have empty types, as torch writes them."""
    def branch(name, value):
        out = onnx.ValueInfoProto()
        out.name = name + "_out"           # no type at all
        c = helper.make_node("Constant", [], [name + "_c"], value=numpy_helper.from_array(value))
        add = helper.make_node("Add", ["x", name + "_c"], [name + "_out"])
        return helper.make_graph([c, add], name, [], [out])

    then = branch("then", np.array([1.0], np.float32))
    other = branch("else", np.array([-1.0], np.float32))
    node = helper.make_node("If", ["cond"], ["y"], then_branch=then, else_branch=other)
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
              helper.make_tensor_value_info("cond", TensorProto.BOOL, [])]
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    if empty_outer:
        y = onnx.ValueInfoProto()
        y.name = "y"
        y.type.CopyFrom(onnx.TypeProto())   # present but empty
    return helper.make_model(helper.make_graph([node], "g", inputs, [y]),
                             opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("empty_outer", [False, True])
def test_empty_types_of_branch_outputs(empty_outer):
    model = _if_model(empty_outer)
    for cond in (True, False):
        both(model, {"x": np.array([1, 2], np.float32), "cond": np.array(cond)})


def test_declared_output_shape_is_not_checked():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "seqlen"])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 13)])
    both(model, {"x": np.ones((2, 3), np.float32)})


def test_negative_initializer_dimension_stays_model_error():
    w = numpy_helper.from_array(np.zeros(3, np.float32), "w")
    w.dims[:] = [-3]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])
    model = helper.make_model(helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], [w]),
                              opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(tinyrt.ModelError, match="negative dimension"):
        tinyrt.InferenceSession(model.SerializeToString())


def test_unknown_type_kind_is_still_refused():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])
    y = onnx.ValueInfoProto()
    y.name = "y"
    y.type.map_type.key_type = TensorProto.INT64   # a map: not a tensor, and not empty
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(tinyrt.UnsupportedError, match="map"):
        tinyrt.InferenceSession(model.SerializeToString())
