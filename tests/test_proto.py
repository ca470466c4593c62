"""The ONNX reader: every dtype and field form it must read, and broken files it must refuse cleanly."""
import os
import random
import struct

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinyrt
from tinyrt import graph as graph_ir
from tinyrt.proto import load_model
from tinyrt.proto.tensors import tensor_to_array
from tinyrt.proto.onnx_messages import TensorProto as TinyTensor

DTYPES = [np.float32, np.float16, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
          np.uint32, np.uint64, np.bool_]


def sample(dtype, shape=(2, 3)):
    rng = np.random.default_rng(0)
    if dtype == np.bool_:
        return rng.random(shape) > 0.5
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    return (rng.standard_normal(shape) * 100).astype(dtype)


# --- a tiny protobuf writer, to make the field forms onnx itself never writes --------------------------------

def varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = v & 0x7F
        v >>= 7
        if v:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number, wire_type, payload):
    key = varint((number << 3) | wire_type)
    if wire_type == 2:
        return key + varint(len(payload)) + payload
    return key + payload


def tensor_bytes(array, packed):
    """TensorProto bytes holding ``array`` in its typed field (not raw_data), packed or not."""
    code = helper.np_dtype_to_tensor_dtype(array.dtype)
    out = b"".join(field(1, 0, varint(d)) for d in array.shape) + field(2, 0, varint(code))
    flat = array.ravel()
    if array.dtype == np.float32:
        number, wire, enc = 4, 5, [struct.pack("<f", v) for v in flat]
    elif array.dtype == np.float64:
        number, wire, enc = 10, 1, [struct.pack("<d", v) for v in flat]
    elif array.dtype == np.int64:
        number, wire, enc = 7, 0, [varint(int(v)) for v in flat]
    elif array.dtype in (np.uint32, np.uint64):
        number, wire, enc = 11, 0, [varint(int(v)) for v in flat]
    elif array.dtype == np.float16:
        number, wire, enc = 5, 0, [varint(int(v)) for v in flat.view(np.uint16)]
    else:
        number, wire, enc = 5, 0, [varint(int(v)) for v in flat]
    if packed:
        return out + field(number, 2, b"".join(enc))
    return out + b"".join(field(number, wire, e) for e in enc)


def decode_tensor(data):
    return tensor_to_array(TinyTensor.decode(memoryview(data), 0, len(data)))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("form", ["raw_data", "typed_packed", "typed_unpacked", "onnx_typed"])
def test_every_dtype_in_every_field_form(dtype, form):
    array = sample(dtype)
    if form == "raw_data":
        data = numpy_helper.from_array(array, "t").SerializeToString()
    elif form == "onnx_typed":
        t = helper.make_tensor("t", helper.np_dtype_to_tensor_dtype(array.dtype), array.shape,
                               array.ravel().tolist(), raw=False)
        data = t.SerializeToString()
    else:
        data = tensor_bytes(array, packed=form == "typed_packed")
    got = decode_tensor(data)
    assert got.dtype == array.dtype and got.shape == array.shape
    np.testing.assert_array_equal(got, array)


def test_scalar_and_empty_tensors():
    for array in [np.array(3.5, np.float32), np.zeros((0, 4), np.int64)]:
        got = decode_tensor(numpy_helper.from_array(array).SerializeToString())
        assert got.shape == array.shape and got.dtype == array.dtype


def model_with_everything():
    """A model that has a bit of everything the reader must understand."""
    w = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "w")
    then_g = helper.make_graph([helper.make_node("Constant", [], ["t"], value=numpy_helper.from_array(
        np.ones(3, np.float32)))], "then", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, [3])])
    else_g = helper.make_graph([helper.make_node("Constant", [], ["e"], value_floats=[2.0, 2.0, 2.0])],
                               "else", [], [helper.make_tensor_value_info("e", TensorProto.FLOAT, [3])])
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["y"], name="mm"),
        helper.make_node("ReduceSum", ["y"], ["s"], keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["c"]),
        helper.make_node("If", ["c"], ["b"], then_branch=then_g, else_branch=else_g),
        helper.make_node("Add", ["y", "b"], ["out"]),
    ]
    zero = numpy_helper.from_array(np.array(0, np.float32), "zero")
    graph = helper.make_graph(
        nodes, "everything",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2]),
         helper.make_tensor_value_info("w", TensorProto.FLOAT, [2, 3])],  # an initializer listed as input
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 3])],
        [w, zero], value_info=[helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    helper.set_model_props(model, {"task": "test", "classes": "猫|狗"})
    return model


def test_model_fields_symbolic_dims_metadata_and_initializer_inputs():
    model = model_with_everything()
    sess = tinyrt.InferenceSession(model.SerializeToString())
    assert [i.name for i in sess.get_inputs()] == ["x"]  # the initializer is not for the caller to feed
    assert sess.get_inputs()[0].shape == ["batch", 2]
    assert sess.get_inputs()[0].type == "tensor(float)"
    assert sess.get_outputs()[0].shape == ["batch", 3]
    assert sess.get_modelmeta().custom_metadata_map == {"task": "test", "classes": "猫|狗"}
    x = np.array([[1, 2], [-3, -4]], np.float32)
    expected = x @ np.arange(6, dtype=np.float32).reshape(2, 3)
    got = sess.run(None, {"x": x})[0]
    np.testing.assert_allclose(got, expected + (1.0 if expected.sum() > 0 else 2.0))


@pytest.mark.parametrize("kind", ["path", "bytes", "file", "pathlike"])
def test_model_sources(tmp_path, kind):
    model = model_with_everything()
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    source = {"path": str(path), "bytes": path.read_bytes(), "pathlike": path}.get(kind)
    if kind == "file":
        with open(path, "rb") as f:
            sess = tinyrt.InferenceSession(f)
    else:
        sess = tinyrt.InferenceSession(source)
    assert sess.run(None, {"x": np.ones((1, 2), np.float32)})[0].shape == (1, 3)


def test_external_data(tmp_path):
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    model = _external_model(tmp_path, array)
    sess = tinyrt.InferenceSession(str(model))
    np.testing.assert_array_equal(sess.run(None, {"x": np.zeros((3, 4), np.float32)})[0], array)
    with pytest.raises(tinyrt.ModelError, match="given as bytes"):
        tinyrt.InferenceSession(model.read_bytes())


def _external_model(folder, array, location="weights.bin", offset=0, length=None, write=True):
    data = array.tobytes()
    if write:
        (folder / "weights.bin").write_bytes(b"\0" * offset + data)
    t = onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=array.shape,
                         data_location=TensorProto.EXTERNAL)
    for key, value in [("location", location), ("offset", str(offset)),
                       ("length", str(len(data) if length is None else length))]:
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "ext",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(array.shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(array.shape))], [t])
    path = folder / "model.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString())
    return path


@pytest.mark.parametrize("location,match", [
    ("../weights.bin", "leaves"), ("/etc/passwd", "leaves"), ("sub/../../weights.bin", "leaves"),
    ("missing.bin", "does not exist")])
def test_external_data_may_not_leave_the_folder(tmp_path, location, match):
    inner = tmp_path / "model"
    inner.mkdir()
    (tmp_path / "weights.bin").write_bytes(np.zeros(12, np.float32).tobytes())
    model = _external_model(inner, np.zeros((3, 4), np.float32), location=location, write=False)
    with pytest.raises(tinyrt.ModelError, match=match):
        tinyrt.InferenceSession(str(model))


def test_external_data_through_a_link_out_of_the_folder(tmp_path):
    inner = tmp_path / "model"
    inner.mkdir()
    (tmp_path / "secret.bin").write_bytes(np.zeros(12, np.float32).tobytes())
    os.symlink(tmp_path / "secret.bin", inner / "link.bin")
    model = _external_model(inner, np.zeros((3, 4), np.float32), location="link.bin", write=False)
    with pytest.raises(tinyrt.ModelError, match="out of the model's folder"):
        tinyrt.InferenceSession(str(model))


def test_external_data_past_the_end_of_its_file(tmp_path):
    model = _external_model(tmp_path, np.zeros((3, 4), np.float32), offset=0, length=4800)
    with pytest.raises(tinyrt.ModelError, match="past the end"):
        tinyrt.InferenceSession(str(model))


# --- broken files -------------------------------------------------------------------------------------------

def model_bytes():
    return model_with_everything().SerializeToString()


def only_model_errors(data):
    """Loading ``data`` either works or raises ModelError; nothing else is acceptable."""
    try:
        load_model(data)
    except tinyrt.ModelError:
        return "refused"
    return "loaded"


def test_truncated_files_raise_model_error():
    data = model_bytes()
    for cut in range(0, len(data), 7):
        try:
            tinyrt.InferenceSession(data[:cut])
        except tinyrt.TinyrtError:
            pass
    for cut in (1, 10, len(data) // 2, len(data) - 1):
        with pytest.raises(tinyrt.ModelError):
            load_model(data[:cut]) if cut < 40 else tinyrt.InferenceSession(data[:cut])


def test_random_bytes_raise_model_error():
    rng = random.Random(0)
    refused = 0
    for _ in range(300):
        data = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 400)))
        refused += only_model_errors(data) == "refused"
    assert refused > 250


def test_length_larger_than_the_file():
    # field 7 (graph), length-delimited, says 2**40 bytes follow
    data = field(1, 0, varint(8)) + varint((7 << 3) | 2) + varint(1 << 40) + b"\0" * 16
    with pytest.raises(tinyrt.ModelError, match="only 16 are left"):
        load_model(data)


def test_empty_and_non_model_inputs():
    with pytest.raises(tinyrt.ModelError, match="empty"):
        tinyrt.InferenceSession(b"")
    with pytest.raises(tinyrt.ModelError, match="cannot read"):
        tinyrt.InferenceSession("/no/such/model.onnx")
    with pytest.raises(TypeError, match="not int"):      # as onnxruntime: a TypeError (tinyrt's ArgumentTypeError)
        tinyrt.InferenceSession(12)


def test_deep_nesting_is_refused_not_a_recursion_error():
    # a TypeProto... simplest deep nest: graphs inside attributes inside nodes, 400 levels deep
    inner = b""
    for _ in range(400):
        inner = field(1, 2, field(5, 2, field(6, 2, inner)))  # graph.node.attribute.g
    data = field(7, 2, inner)
    # a graph's nodes are decoded as the graph is built (proto.onnx_messages.Lazy): refused there
    with pytest.raises(tinyrt.ModelError, match="nested"):
        graph_ir.build(*load_model(data))
    with pytest.raises(tinyrt.ModelError, match="nested"):
        tinyrt.InferenceSession(data)
