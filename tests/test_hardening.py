"""Issue 7 (hardening): hostile and broken inputs get clear errors, never crashes, hangs, memory blow-ups or
escapes. One test (or a few) per item of the issue; the fuzzing of item 1 is in test_hardening_fuzz.py.

Already covered elsewhere, not repeated here:
  item 2  cycle, value produced twice, input nothing produces, output nothing produces:
          tests/test_session.py::test_broken_graphs_raise_model_error
  item 3  absolute / `..` / link out of the folder / missing file / past the end, model given as bytes:
          tests/test_proto.py::test_external_data_may_not_leave_the_folder, ..._through_a_link_out_of_the_folder,
          ..._past_the_end_of_its_file, test_external_data
  item 4  wrong dtype, rank, fixed dim, missing or extra feed: tests/test_session.py::test_bad_feeds_name_the_input
  item 5  missing / renamed keys: tests/exporter/test_checkpoints.py::test_bad_checkpoints_name_the_key
"""
import inspect
import os
import threading
import time
import tracemalloc

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import AttributeProto, TensorProto, defs, helper, numpy_helper

import tinyrt
from bounded import check_bounded
from tinyrt import limits
from tinyrt.ops import registry

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def vi(name, shape, elem=F):
    return helper.make_tensor_value_info(name, elem, shape)


def const(name, value, dtype=np.int64):
    return numpy_helper.from_array(np.array(value, dtype), name)


def model(nodes, inputs, outputs, inits=(), opset=13, **kwargs):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits), **kwargs)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m.SerializeToString()


def traced(fn):
    """(result or exception, peak bytes traced) of ``fn()``."""
    tracemalloc.start()
    try:
        try:
            out = fn()
        except Exception as e:  # noqa: B902
            out = e
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# =============================================================================================================
# item 1: sizes read from the file never make tinyrt allocate (or loop) beyond the session's limits

X = vi("x", [1, 2, 3, 4])
X_FEED = {"x": np.zeros((1, 2, 3, 4), np.float32)}
BIG = 1 << 40

ALLOCATORS = {
    "ConstantOfShape": ([helper.make_node("ConstantOfShape", ["s"], ["y"])], [const("s", [BIG, 8])], 13),
    "ConstantOfShape of an empty huge tensor": (
        [helper.make_node("ConstantOfShape", ["s"], ["y"])], [const("s", [10 ** 9, 0])], 13),
    "Expand": ([helper.make_node("Expand", ["x", "s"], ["y"])], [const("s", [BIG, 1, 1, 1])], 13),
    "Tile": ([helper.make_node("Tile", ["x", "r"], ["y"])], [const("r", [1, 1, 1 << 30, 1])], 13),
    "Range": ([helper.make_node("Range", ["a", "b", "d"], ["y"])],
              [const("a", 0), const("b", 1 << 50), const("d", 1)], 13),
    "Range (floats)": ([helper.make_node("Range", ["a", "b", "d"], ["y"])],
                       [const("a", 0.0, np.float32), const("b", 1e30, np.float32), const("d", 1.0, np.float32)], 13),
    "Pad (input)": ([helper.make_node("Pad", ["x", "p"], ["y"])], [const("p", [0, 0, 0, 1 << 31, 0, 0, 0, 0])], 13),
    "Pad (attribute, opset 7)": ([helper.make_node("Pad", ["x"], ["y"], pads=[0, 0, 1 << 30, 0, 0, 0, 0, 0])], [], 7),
    "Pad (reflect)": ([helper.make_node("Pad", ["x", "p"], ["y"], mode="edge")], [const("p", [0, 0, 0, BIG, 0, 0, 0, 0])], 13),
    "Resize scales": ([helper.make_node("Resize", ["x", "", "sc"], ["y"])],
                      [const("sc", [1, 1, 1e6, 1e6], np.float32)], 13),
    "Resize sizes": ([helper.make_node("Resize", ["x", "", "", "sz"], ["y"])], [const("sz", [1, 2, 1 << 20, 1 << 20])], 13),
    "Upsample": ([helper.make_node("Upsample", ["x"], ["y"], scales=[1.0, 1.0, 1e5, 1e5])], [], 7),
    "OneHot": ([helper.make_node("OneHot", ["i", "d", "v"], ["y"])],
               [const("i", [0, 1]), const("d", BIG), const("v", [0.0, 1.0], np.float32)], 13),
    "ConvTranspose output_shape": ([helper.make_node("ConvTranspose", ["x", "w"], ["y"], output_shape=[1 << 20, 1 << 20])],
                                   [const("w", np.ones((2, 1, 1, 1)), np.float32)], 13),
    "ConvTranspose strides": ([helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[1 << 20, 1 << 20])],
                              [const("w", np.ones((2, 1, 1, 1)), np.float32)], 13),
    "Conv pads": ([helper.make_node("Conv", ["x", "w"], ["y"], pads=[0, 0, 1 << 31, 1 << 31])],
                  [const("w", np.ones((3, 2, 1, 1)), np.float32)], 13),
    "MaxPool pads": ([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[1, 1], pads=[0, 0, 1 << 20, 1 << 20])],
                     [], 13),
    "MaxPool huge kernel": ([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[1 << 12, 1 << 12],
                                              pads=[1 << 12, 1 << 12, 0, 0])], [], 13),
    "MaxUnpool output_shape": ([helper.make_node("MaxUnpool", ["x", "i", "s"], ["y"], kernel_shape=[1, 1])],
                               [const("i", np.zeros((1, 2, 3, 4))), const("s", [1, 2, 1 << 20, 1 << 20])], 13),
    "Concat of one input many times": ([helper.make_node("Expand", ["x", "s"], ["e"]),
                                        helper.make_node("Concat", ["e"] * 400, ["y"], axis=0)],
                                       [const("s", [1 << 12, 2, 3, 4])], 13),
    "broadcast": ([helper.make_node("Reshape", ["x", "a"], ["c"]), helper.make_node("Reshape", ["x", "b"], ["r"]),
                   helper.make_node("Tile", ["c", "t1"], ["cc"]), helper.make_node("Tile", ["r", "t2"], ["rr"]),
                   helper.make_node("Add", ["cc", "rr"], ["y"])],
                  [const("a", [-1, 1]), const("b", [1, -1]), const("t1", [1 << 9, 1]), const("t2", [1, 1 << 9])], 13),
    "MatMul outer product": ([helper.make_node("Reshape", ["x", "a"], ["c"]), helper.make_node("Reshape", ["x", "b"], ["r"]),
                              helper.make_node("Tile", ["c", "t1"], ["cc"]), helper.make_node("Tile", ["r", "t2"], ["rr"]),
                              helper.make_node("MatMul", ["cc", "rr"], ["y"])],
                             [const("a", [-1, 1]), const("b", [1, -1]), const("t1", [1 << 10, 1]),
                              const("t2", [1, 1 << 10])], 13),
    "Einsum outer product": ([helper.make_node("Reshape", ["x", "a"], ["f"]), helper.make_node("Tile", ["f", "t"], ["ff"]),
                              helper.make_node("Einsum", ["ff", "ff", "ff"], ["y"], equation="i,j,k->ijk")],
                             [const("a", [-1]), const("t", [1 << 6])], 13),
    "LRN size": ([helper.make_node("LRN", ["x"], ["y"], size=12345678901)], [], 13),
}


@pytest.mark.parametrize("name", sorted(ALLOCATORS))
def test_sizes_from_the_file_are_checked_before_allocating(name):
    nodes, inits, opset = ALLOCATORS[name]
    data = model(nodes, [X], [vi("y", None)], inits, opset=opset)
    assert len(data) < 2000  # a small file...
    sess = tinyrt.InferenceSession(data)
    result, peak = traced(lambda: sess.run(None, X_FEED))
    # ...refused with LimitError, or (LRN) computed, never allocating more than a few tensor limits
    if name == "LRN size":  # (onnxruntime tries to allocate 590 GB here and fails)
        assert not isinstance(result, Exception), result
        assert result[0].shape == (1, 2, 3, 4)
    else:
        assert isinstance(result, limits.LimitError), result
        assert "limit" in str(result)
    assert peak < 4 * limits.FLOOR_BYTES, "%s: %d bytes traced" % (name, peak)


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
def test_conv_pads_are_checked_on_both_kernel_paths(kernels):
    data = model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1 << 31, 1])], [X], [vi("y", None)],
                 [const("w", np.ones((3, 2, 3, 3)), np.float32)])
    options = tinyrt.SessionOptions()
    options.kernels = kernels
    sess = tinyrt.InferenceSession(data, options)
    result, peak = traced(lambda: sess.run(None, X_FEED))
    assert isinstance(result, limits.LimitError) and peak < 4 * limits.FLOOR_BYTES


def test_constant_folding_checks_sizes_before_computing():
    """A ConstantOfShape of a huge constant shape is not computed at load (the fold is refused before it
    allocates), and refused when it runs."""
    data = model([helper.make_node("ConstantOfShape", ["s"], ["c"]), helper.make_node("Add", ["x", "c"], ["y"])],
                 [X], [vi("y", None)], [const("s", [1 << 16, 1 << 16, 1, 1])])
    sess, peak = traced(lambda: tinyrt.InferenceSession(data))
    assert isinstance(sess, tinyrt.InferenceSession) and peak < limits.FLOOR_BYTES
    with pytest.raises(limits.LimitError, match="ConstantOfShape"):
        sess.run(None, X_FEED)
    # small results are still folded
    small = model([helper.make_node("ConstantOfShape", ["s"], ["c"]), helper.make_node("Add", ["x", "c"], ["y"])],
                  [X], [vi("y", None)], [const("s", [1, 2, 3, 4])])
    assert [s.node.op_type for s in tinyrt.InferenceSession(small).plan.steps] == ["Add"]


def _loop_model(trips):
    body = helper.make_graph([helper.make_node("Identity", ["c"], ["c2"]), helper.make_node("Add", ["a", "one"], ["a2"])],
                             "body", [vi("i", [], I64), vi("c", [], TensorProto.BOOL), vi("a", [1])],
                             [vi("c2", [], TensorProto.BOOL), vi("a2", [1])])
    return model([helper.make_node("Loop", ["n", "", "a0"], ["y"], body=body)], [], [vi("y", [1])],
                 [const("n", trips), const("a0", [0.0], np.float32), const("one", [1.0], np.float32)])


def test_loop_trip_count_from_the_file_is_bounded(tmp_path):
    assert tinyrt.InferenceSession(_loop_model(100)).run(None, {})[0].tolist() == [100.0]
    _stops_with_limit_error(tmp_path, _loop_model(1 << 62), {}, "more work than this session allows")


def _stops_with_limit_error(tmp_path, data, feeds, match=""):
    """The run ends in a LimitError once its work budget is spent. It runs in a child whose time limit is a
    hang guard (without the budget these runs would go on for years), not a speed test."""
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    np.savez(str(tmp_path / "feeds.npz"), **feeds)
    out = check_bounded("""
        import numpy as np, tinyrt
        from tinyrt import limits
        feeds = dict(np.load(%r))
        try:
            tinyrt.InferenceSession(%r).run(None, feeds)
            print("no error")
        except limits.LimitError as e:
            print("LimitError:", e)
    """ % (str(tmp_path / "feeds.npz"), str(path)), timeout=300)
    assert out.startswith("LimitError:") and match in out, out


def test_loop_scan_outputs_are_bounded():
    body = helper.make_graph([helper.make_node("Identity", ["c"], ["c2"]), helper.make_node("Identity", ["big"], ["s"])],
                             "body", [vi("i", [], I64), vi("c", [], TensorProto.BOOL)],
                             [vi("c2", [], TensorProto.BOOL), vi("s", None)])
    data = model([helper.make_node("ConstantOfShape", ["shape"], ["big"]),
                  helper.make_node("Loop", ["n", ""], ["y"], body=body)], [], [vi("y", None)],
                 [const("n", 1000), const("shape", [1 << 18])])
    result, peak = traced(lambda: tinyrt.InferenceSession(data).run(None, {}))
    assert isinstance(result, limits.LimitError) and peak < 4 * limits.FLOOR_BYTES


def test_nms_over_many_classes_is_bounded(tmp_path):
    data = model([helper.make_node("NonMaxSuppression", ["b", "s", "m"], ["y"])],
                 [vi("b", [1, 4, 4]), vi("s", [1, "C", 4])], [vi("y", None, I64)], [const("m", [10])])
    sess = tinyrt.InferenceSession(data)
    assert sess.run(None, {"b": np.zeros((1, 4, 4), np.float32), "s": np.ones((1, 3, 4), np.float32)})[0].shape == (12, 3)
    _stops_with_limit_error(tmp_path, data, {"b": np.zeros((1, 4, 4), np.float32),
                                             "s": np.ones((1, 1 << 18, 4), np.float32)})


def test_max_tensor_bytes_option():
    data = model([helper.make_node("ConstantOfShape", ["s"], ["y"])], [], [vi("y", None)], [const("s", [1 << 23])])
    with pytest.raises(limits.LimitError, match="32.0 MiB"):
        tinyrt.InferenceSession(data).run(None, {})  # 32 MiB from a 100-byte file: refused by default
    options = tinyrt.SessionOptions()
    options.max_tensor_bytes = 64 << 20
    assert tinyrt.InferenceSession(data, options).run(None, {})[0].shape == (1 << 23,)
    options.max_tensor_bytes = 0  # no limit
    assert tinyrt.InferenceSession(data, options).run(None, {})[0].shape == (1 << 23,)
    options.max_tensor_bytes = 1000
    relu = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [1, 2, 3, "W"])], [vi("y", None)])
    tinyrt.InferenceSession(relu, options).run(None, X_FEED)  # 96 bytes
    with pytest.raises(limits.LimitError):
        tinyrt.InferenceSession(relu, options).run(None, {"x": np.zeros((1, 2, 3, 400), np.float32)})


def test_automatic_limit_scales_with_the_model_and_the_feeds():
    assert limits.tensor_limit(None, 1000) == limits.FLOOR_BYTES
    assert limits.tensor_limit(None, 1000, 10 << 20) == 64 * ((10 << 20) + 1000)
    assert limits.tensor_limit(None, 1 << 30) == limits.DEFAULT_MAX_TENSOR_BYTES
    assert limits.tensor_limit(123, 1 << 30) == 123 and limits.tensor_limit(0, 1) is None
    # a feed far bigger than the model is fine: the limit follows it
    relu = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", ["N", 3, 224, 224])], [vi("y", None)])
    x = np.ones((64, 3, 224, 224), np.float32)  # 38 MB
    assert tinyrt.InferenceSession(relu).run(None, {"x": x})[0].shape == x.shape


def test_limits_are_per_thread():
    seen = {}

    def worker(n):
        with limits.scope(n):
            time.sleep(0.05)
            seen[n] = limits.current().tensor_bytes

    threads = [threading.Thread(target=worker, args=(n,)) for n in (10, 20, 30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {10: 10, 20: 20, 30: 30}
    assert limits.current().tensor_bytes == limits.DEFAULT_MAX_TENSOR_BYTES


def test_packed_fields_decode_in_proportion():
    """A million packed int64 values (typed field, not raw_data): decoded by numpy, kept as an array (a list
    of Python ints would take several times the file's size)."""
    values = np.arange(1 << 20, dtype=np.int64) * 977 - (1 << 40)
    t = helper.make_tensor("w", I64, [values.size], values.tolist())
    data = model([helper.make_node("Identity", ["w"], ["y"])], [], [vi("y", None, I64)], [t])
    sess, peak = traced(lambda: tinyrt.InferenceSession(data))
    assert peak < 8 * len(data)
    np.testing.assert_array_equal(sess.run(None, {})[0], values)


def test_varints_longer_than_64_bits_are_truncated_like_protobuf():
    from tinyrt.proto.wire import read_packed_varints, read_varint
    ten = bytes([0xFF] * 9 + [0x7F])
    assert read_varint(ten, 0, 10)[0] == (1 << 64) - 1
    assert read_packed_varints(ten + b"\x05", 0, 11).tolist() == [(1 << 64) - 1, 5]
    with pytest.raises(tinyrt.ModelError):
        read_packed_varints(b"\x80\x80", 0, 2)
    with pytest.raises(tinyrt.ModelError):
        read_packed_varints(bytes([0x80] * 11 + [1]), 0, 12)


# =============================================================================================================
# item 2: checks on the graph at load, each a ModelError naming the node or value

def _raw_initializer(dims, nbytes, name="w"):
    t = onnx.TensorProto(name=name, data_type=F, dims=dims)
    t.raw_data = b"\0" * nbytes
    return t


def _identity_of(t, elem=F):
    return model([helper.make_node("Identity", [t.name], ["y"])], [], [vi("y", None, elem)], [t])


@pytest.mark.parametrize("t,message", [
    (_raw_initializer([2, 3], 20), r"initializer 'w': dims \[2, 3\] need 24 bytes of data, the file holds 20"),
    (_raw_initializer([2, 3], 28), r"initializer 'w': dims \[2, 3\] need 24 bytes"),
    (onnx.TensorProto(name="w", data_type=F, dims=[4], float_data=[1.0, 2.0, 3.0]),
     r"initializer 'w': dims \[4\] need 4 values, the file holds 3"),
    (_raw_initializer([2, -3], 0), r"initializer 'w' has a negative dimension"),
    (_raw_initializer([1 << 40, 0], 0), r"initializer 'w' has an absurd dimension"),
    (_raw_initializer([1] * 40, 4), r"initializer 'w' has rank 40"),
    (onnx.TensorProto(name="w", data_type=TensorProto.INT8, dims=[2], int32_data=[1, 300]),
     r"initializer 'w' holds values out of range"),
])
def test_initializer_data_and_dims(t, message):
    with pytest.raises(tinyrt.ModelError, match=message):
        tinyrt.InferenceSession(_identity_of(t, t.data_type))


# (a negative declared dimension is read as dynamic since issue 19: tests/test_loader_tolerance.py)
@pytest.mark.parametrize("dims,message", [([1 << 40], "absurd dimension"), ([1] * 33, "rank 33")])
def test_declared_dimensions(dims, message):
    x = helper.make_tensor_value_info("x", F, [1])
    x.type.tensor_type.shape.Clear()
    for d in dims:
        x.type.tensor_type.shape.dim.add().dim_value = d
    data = model([helper.make_node("Relu", ["x"], ["y"])], [x], [vi("y", None)])
    with pytest.raises(tinyrt.ModelError, match="value 'x' has .*" + message):
        tinyrt.InferenceSession(data)


def _with_attribute(op, inputs, attr, inits=(), opset=13):
    node = helper.make_node(op, inputs, ["y"], name="the_node")
    node.attribute.append(attr)
    return model([node], [vi("x", [2, 3])], [vi("y", None)], inits, opset=opset)


@pytest.mark.parametrize("op,inputs,attr,expected", [
    ("Flatten", ["x"], helper.make_attribute("axis", [1]), "INT"),                     # INTS where an INT belongs
    ("Gemm", ["x", "x"], helper.make_attribute("transB", 1.0), "INT"),                 # FLOAT where an INT belongs
    ("LeakyRelu", ["x"], helper.make_attribute("alpha", 1), "FLOAT"),                   # INT where a FLOAT belongs
    ("Gemm", ["x", "x"], helper.make_attribute("alpha", "1.0"), "FLOAT"),              # STRING where a FLOAT belongs
    ("ArgMax", ["x"], helper.make_attribute("keepdims", [0, 1]), "INT"),
    ("Softmax", ["x"], helper.make_attribute("axis", numpy_helper.from_array(np.array(1))), "INT"),  # TENSOR
    ("Resize", ["x", "", "s"], helper.make_attribute("mode", 1), "STRING"),
    ("Elu", ["x"], helper.make_attribute("alpha", helper.make_graph([], "g", [], [])), "FLOAT"),  # GRAPH
])
def test_attribute_of_the_wrong_type(op, inputs, attr, expected):
    inits = [const("s", [1, 1], np.float32)] if op == "Resize" else []
    with pytest.raises(tinyrt.ModelError, match=r"'the_node'.*attribute %r is of type .*expects %s" % (attr.name, expected)):
        tinyrt.InferenceSession(_with_attribute(op, inputs, attr, inits))


def test_attribute_checks_that_choke_become_model_errors():
    # EyeLike's dtype has no default, so its own check reads it: a list there must not escape as a TypeError
    with pytest.raises(tinyrt.ModelError, match="'the_node'.*invalid attributes"):
        tinyrt.InferenceSession(_with_attribute("EyeLike", ["x"], helper.make_attribute("dtype", [1, 2])))


def test_registry_defaults_have_the_onnx_attribute_types():
    """The generic attribute-type check trusts each op's defaults: they must have ONNX's types."""
    from tinyrt.plan import _fits, _kind
    names = {AttributeProto.FLOAT: "float", AttributeProto.INT: "int", AttributeProto.STRING: "string",
             AttributeProto.TENSOR: "tensor", AttributeProto.GRAPH: "graph", AttributeProto.FLOATS: "floats",
             AttributeProto.INTS: "ints", AttributeProto.STRINGS: "strings"}
    wrong = []
    for domain, op_type in registry.registered():
        if domain:
            continue
        for version in registry.versions(op_type):
            impl = registry.resolve(op_type, "", version)
            try:
                schema = defs.get_schema(op_type, version, "")
            except Exception:  # noqa: B902 - a version onnx does not know
                continue
            for name, default in impl.attributes.items():
                if default is None or default is inspect.Parameter.empty or name not in schema.attributes:
                    continue
                expected = names.get(schema.attributes[name].type)
                if expected and not _fits(_kind(default), expected):
                    wrong.append((op_type, version, name, default, expected))
    assert wrong == []


def test_missing_subgraph():
    then = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "then", [], [vi("t", None)])
    node = helper.make_node("If", ["c"], ["y"], name="branchy", then_branch=then)
    data = model([node], [vi("c", [], TensorProto.BOOL), vi("x", [1])], [vi("y", None)])
    with pytest.raises(tinyrt.ModelError, match="'branchy'.*required attribute 'else_branch' is missing"):
        tinyrt.InferenceSession(data)
    # a GRAPH attribute whose graph is not there
    node = helper.make_node("If", ["c"], ["y"], name="branchy", then_branch=then, else_branch=then)
    [a for a in node.attribute if a.name == "else_branch"][0].ClearField("g")
    data = model([node], [vi("c", [], TensorProto.BOOL), vi("x", [1])], [vi("y", None)])
    with pytest.raises(tinyrt.ModelError, match="'else_branch' of node 'branchy'.*without a graph"):
        tinyrt.InferenceSession(data)
    loop = helper.make_node("Loop", ["n", ""], [], name="loopy")
    data = model([loop], [vi("n", [], I64)], [])
    with pytest.raises(tinyrt.ModelError, match="'loopy'.*'body'"):
        tinyrt.InferenceSession(data)


def test_errors_in_subgraphs_name_the_value():
    body = helper.make_graph([helper.make_node("Add", ["t", "ghost"], ["u"])], "then", [], [vi("u", None)])
    node = helper.make_node("If", ["c"], ["y"], then_branch=body, else_branch=body)
    data = model([helper.make_node("Identity", ["x"], ["t"]), node], [vi("c", [], TensorProto.BOOL), vi("x", [1])],
                 [vi("y", None)])
    with pytest.raises(tinyrt.ModelError, match="'ghost'"):
        tinyrt.InferenceSession(data)


# =============================================================================================================
# item 3: external data (the usual escapes are in tests/test_proto.py; these are the rest)

def _external(folder, location, offset=0, length=None, dims=(3,)):
    t = onnx.TensorProto(name="w", data_type=F, dims=list(dims), data_location=TensorProto.EXTERNAL)
    entries = [("location", location), ("offset", str(offset))]
    if length is not None:
        entries.append(("length", str(length)))
    for key, value in entries:
        e = t.external_data.add()
        e.key, e.value = key, value
    path = folder / "model.onnx"
    path.write_bytes(_identity_of(t))
    return str(path)


@pytest.mark.parametrize("make,location,offset,length,message", [
    ("file", "w.bin", 100, None, "past the end"),             # offset beyond the file
    ("file", "w.bin", -4, None, "past the end"),              # negative offset
    ("file", "w.bin", 0, 8, "need 12 bytes"),                 # length disagrees with the dims
    ("file", "w.bin", "x", None, "not integers"),
    ("dir", "w.bin", 0, None, "not a regular file"),
    ("fifo", "w.bin", 0, None, "not a regular file"),        # reading it would block for ever
    ("file", "w\0.bin", 0, None, "NUL"),
    ("file", "", 0, None, "names no location"),
])
def test_external_data_is_refused(tmp_path, make, location, offset, length, message):
    target = tmp_path / "w.bin"
    if make == "file":
        target.write_bytes(np.zeros(3, np.float32).tobytes())
    elif make == "dir":
        target.mkdir()
    else:
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        os.mkfifo(str(target))
    path = _external(tmp_path, location, offset, length)
    with pytest.raises(tinyrt.ModelError, match=message):
        tinyrt.InferenceSession(path)


# =============================================================================================================
# item 4: inputs. Bad feeds: tests/test_session.py::test_bad_feeds_name_the_input. NaN and inf flow through.

NAN_X = np.array([[1, np.nan, 3, -np.inf], [np.inf, 2, np.nan, 0], [5, np.nan, np.nan, np.nan],
                  [np.nan, 1, 2, 3]], np.float32)
NAN_OPS = [
    ("Relu", {}), ("Sigmoid", {}), ("Tanh", {}), ("Exp", {}), ("Log", {}), ("Sqrt", {}), ("Abs", {}), ("Floor", {}),
    ("Softmax", {"axis": 1}), ("LogSoftmax", {"axis": 1}), ("Hardmax", {"axis": 1}),
    ("ArgMax", {"axis": 1, "keepdims": 0}), ("ArgMax", {"axis": 0, "keepdims": 0}),
    ("ArgMin", {"axis": 1, "keepdims": 0}), ("ReduceMax", {"axes": [1], "keepdims": 0}),
    ("ReduceMax", {"axes": [0], "keepdims": 1}), ("ReduceSum", {}), ("ReduceMean", {"keepdims": 0}),
    ("Clip", {}), ("LeakyRelu", {}), ("Elu", {}), ("HardSigmoid", {}), ("Sign", {}), ("IsNaN", {}), ("IsInf", {}),
    ("Max", {}), ("Min", {}), ("Sum", {}), ("Neg", {}), ("Reciprocal", {}), ("Round", {}), ("Erf", {}),
]


@pytest.mark.parametrize("op,attrs", NAN_OPS, ids=["%s%s" % (o, a or "") for o, a in NAN_OPS])
def test_nan_and_inf_flow_through_like_onnxruntime(op, attrs):
    """(ReduceMin and ArgMin on NaN depend on onnxruntime's vectorisation: see docs/limits.md.)"""
    node = helper.make_node(op, ["x", "x"] if op in ("Max", "Min", "Sum") else ["x"], ["y"], **attrs)
    out_type = I64 if op.startswith("Arg") else TensorProto.BOOL if op.startswith("Is") else F
    data = model([node], [vi("x", [4, 4])], [vi("y", None, out_type)])
    ours = tinyrt.InferenceSession(data).run(None, {"x": NAN_X})[0]
    theirs = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": NAN_X})[0]
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, equal_nan=True)


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
def test_nan_and_inf_through_a_cnn(kernels):
    import sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from fuzz.seeds import seed_bytes
    data = seed_bytes()["tiny_cnn"]
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    x[0, 0, 3, 3] = np.nan
    x[1, 1, 0, 0] = np.inf
    x[1, 2, 5, 5] = -np.inf
    options = tinyrt.SessionOptions()
    options.kernels = kernels
    ours = tinyrt.InferenceSession(data, options).run(None, {"x": x})[0]
    theirs = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5, equal_nan=True)


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
@pytest.mark.parametrize("kernel_shape,strides", [([2, 2], [1, 1]), ([2, 2], [2, 2]), ([3, 3], [1, 1])])
def test_max_pool_treats_nan_like_onnxruntime(kernels, kernel_shape, strides):
    """A window [NaN, 1, 2, 3] gives 3, [1, NaN] gives NaN: a running max ``m = m if x < m else x`` tap by tap,
    as onnxruntime's vectorised kernel takes it, on both paths.

    Elsewhere onnxruntime's NaN results depend on which of its loops a shape lands in (its vector and scalar
    loops and its dilated loop differ; ARM's vmaxq differs again), so tinyrt keeps that one rule everywhere
    and both paths give the same NaNs on every shape (tests/test_kernels.py)."""
    attrs = {"kernel_shape": kernel_shape, "strides": strides}
    data = model([helper.make_node("MaxPool", ["x"], ["y"], **attrs)], [vi("x", [1, 1, 4, 4])], [vi("y", None)])
    x = NAN_X.reshape(1, 1, 4, 4)
    options = tinyrt.SessionOptions()
    options.kernels = kernels
    ours = tinyrt.InferenceSession(data, options).run(None, {"x": x})[0]
    theirs = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(ours, theirs)


# =============================================================================================================
# item 5: the exporter. Each failure is an ExporterError, and leaves no files behind.

exporter = pytest.importorskip("exporter")


def _lenet_checkpoint(path, classes=2, **damage):
    import torch
    from exporter.models import get_backbone
    sd = get_backbone("LeNet").build(classes).state_dict()
    for key, value in damage.items():
        sd[key.replace("__", ".")] = value
    torch.save({"meta": {"CLASSES": ["c%d" % i for i in range(classes)]}, "state_dict": sd}, str(path))


def _files(folder):
    return sorted(p for p in os.listdir(str(folder)))


def test_exporter_not_a_checkpoint(tmp_path):
    from exporter.errors import CheckpointError
    for i, blob in enumerate([b"", b"not a checkpoint at all", b"PK\x03\x04" + os.urandom(200), os.urandom(4096)]):
        (tmp_path / "bad.pth").write_bytes(blob)
        before = _files(tmp_path)
        with pytest.raises(CheckpointError):
            exporter.convert("LeNet", checkpoint=tmp_path / "bad.pth", out_file=tmp_path / "m.onnx", log=None)
        assert _files(tmp_path) == before


def test_exporter_pickled_code_is_refused(tmp_path):
    import torch
    from exporter.errors import CheckpointError

    class Payload:
        def __reduce__(self):
            return (os.system, ("touch %s" % (tmp_path / "pwned"),))

    torch.save({"state_dict": {}, "x": Payload()}, str(tmp_path / "evil.pth"))
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        exporter.convert("LeNet", checkpoint=tmp_path / "evil.pth", out_file=tmp_path / "m.onnx", log=None)
    assert _files(tmp_path) == ["evil.pth"]  # no pwned, no half-written model


def test_exporter_wrong_shapes(tmp_path):
    import torch
    from exporter.errors import CheckpointError
    _lenet_checkpoint(tmp_path / "ck.pth", **{"head__fc__weight": torch.zeros(2, 3)})
    sd = torch.load(str(tmp_path / "ck.pth"), weights_only=True)["state_dict"]
    key = [k for k in sd if k.endswith("weight")][0]
    sd[key] = torch.zeros(7, 7)
    torch.save({"state_dict": sd}, str(tmp_path / "ck.pth"))
    with pytest.raises(CheckpointError, match=key.replace(".", r"\.")):
        exporter.convert("LeNet", checkpoint=tmp_path / "ck.pth", out_file=tmp_path / "out" / "m.onnx", log=None)
    assert not (tmp_path / "out").exists() or _files(tmp_path / "out") == []


def test_exporter_class_file_count(tmp_path):
    from exporter.errors import ClassesError
    _lenet_checkpoint(tmp_path / "ck.pth", classes=2)
    (tmp_path / "classes.txt").write_text("cat\ndog\nbird\n", encoding="utf-8")
    with pytest.raises(ClassesError, match="3"):
        exporter.convert("LeNet", checkpoint=tmp_path / "ck.pth", out_file=tmp_path / "m.onnx",
                         class_path=tmp_path / "classes.txt", log=None)
    with pytest.raises(ClassesError, match="3 classes but num_classes is 4"):
        exporter.convert("LeNet", out_file=tmp_path / "m.onnx", num_classes=4, class_path=tmp_path / "classes.txt",
                         log=None)
    assert _files(tmp_path) == ["ck.pth", "classes.txt"]


def test_exporter_output_folder_that_cannot_be_written(tmp_path):
    from exporter.errors import ExporterError
    (tmp_path / "a_file").write_text("x")
    targets = [tmp_path / "a_file" / "m.onnx"]          # its "folder" is a file
    if os.path.isdir("/proc/self"):
        targets.append("/proc/self/m.onnx")             # not writable, even by root
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        os.chmod(str(ro), 0o500)
        targets.append(ro / "m.onnx")
    (tmp_path / "m.onnx").mkdir()                       # the model's name is taken by a folder
    targets.append(tmp_path / "m.onnx")
    for target in targets:
        with pytest.raises(ExporterError, match="cannot write"):
            exporter.convert("LeNet", out_file=target, num_classes=2, log=None)
    assert _files(tmp_path) == ["a_file", "m.onnx"] + (["ro"] if os.geteuid() != 0 else [])
    assert _files(tmp_path / "m.onnx") == []


# =============================================================================================================
# item 6: one session, many threads: the same results as one thread

@pytest.mark.parametrize("kernels", ["numba", "numpy"])
def test_one_session_from_many_threads(kernels):
    import sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from fuzz.seeds import seed_bytes
    options = tinyrt.SessionOptions()
    options.kernels = kernels
    sessions = {name: tinyrt.InferenceSession(seed_bytes()[name], options)
                for name in ("tiny_cnn", "control_flow", "detection_tail", "shape_chain")}
    rng = np.random.default_rng(0)
    jobs = []
    for i in range(96):
        name = sorted(sessions)[i % len(sessions)]
        sess = sessions[name]
        feeds = {}
        for arg in sess.get_inputs():
            shape = [d if isinstance(d, int) else 1 + i % 3 for d in arg.shape]
            feeds[arg.name] = rng.standard_normal(shape).astype(np.float32)
        jobs.append((name, feeds))
    expected = [sessions[name].run(None, feeds) for name, feeds in jobs]
    got = [None] * len(jobs)
    errors = []
    barrier = threading.Barrier(8)

    def worker(k):
        try:
            barrier.wait()
            for j in range(k, len(jobs), 8):
                name, feeds = jobs[j]
                got[j] = sessions[name].run(None, feeds)
        except Exception as e:  # noqa: B902
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for a, b in zip(got, expected):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


# =============================================================================================================
# item 7: the limits are documented, with the numbers the code uses

def test_limits_are_documented():
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "limits.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    from tinyrt.graph import MAX_INLINE_DEPTH
    from tinyrt.proto.onnx_messages import MAX_DEPTH
    for fact in ["max_tensor_bytes", "16 MiB", "1 GiB", "64", "LimitError", str(MAX_DEPTH), str(MAX_INLINE_DEPTH),
                 str(limits.MAX_RANK), "2^32", "ReduceMin"]:
        assert fact in text, fact
    assert limits.FLOOR_BYTES == 16 << 20 and limits.DEFAULT_MAX_TENSOR_BYTES == 1 << 30
    assert limits.MODEL_FACTOR == 64 and limits.WORK_FACTOR == 64


# =============================================================================================================
# item 4 (pictures): tinyrt.run(model, img) with every kind of picture a user may have. Each either gives
# what Pillow + onnxruntime users get (the picture converted to RGB the way Pillow does), or an InputError.

PIL = pytest.importorskip("PIL.Image")
PICTURE_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "boards", "models", "mmedu_mobilenet.onnx")


def _rgb(seed=0, size=(48, 64)):
    return np.random.default_rng(seed).integers(0, 256, size + (3,), dtype=np.uint8)


def _answer(img):
    return [(r["label"], r["score"]) for r in tinyrt.run(PICTURE_MODEL, img, topk=5)]


def _on_white(rgba):
    """What BaseDT feeds for a transparent picture: each colour over white by its alpha, in float32, truncated."""
    a = rgba[:, :, 3:].astype(np.float32) / np.float32(255)
    return (rgba[:, :, :3] * a + (np.float32(1) - a) * np.float32(255)).astype(np.uint8)


def _picture_cases():
    rgb = _rgb()
    im = PIL.fromarray(rgb)
    gray = im.convert("L")
    rgba = im.convert("RGBA")
    rgba.putalpha(PIL.fromarray(_rgb(1)[:, :, 0]))
    palette = im.convert("P", palette=PIL.ADAPTIVE, colors=16)
    sixteen = PIL.fromarray(np.asarray(gray).astype(np.uint16) * 257)  # mode I;16
    cmyk = im.convert("CMYK")
    return {
        # name: (PIL image, file format, the RGB array Pillow users would feed onnxruntime)
        "rgb png": (im, "PNG", rgb),
        "grayscale": (gray, "PNG", np.asarray(gray.convert("RGB"))),
        "rgba (composited on white, as BaseDT does)": (rgba, "PNG", _on_white(np.asarray(rgba))),
        "palette": (palette, "PNG", np.asarray(palette.convert("RGB"))),
        "16-bit": (sixteen, "PNG", np.asarray(gray.convert("RGB"))),
        "cmyk": (cmyk, "TIFF", np.asarray(cmyk.convert("RGB"))),
    }


@pytest.mark.parametrize("case", sorted(_picture_cases()))
def test_pictures_of_every_kind(tmp_path, case):
    im, fmt, expected = _picture_cases()[case]
    path = tmp_path / ("p." + fmt.lower())
    im.save(str(path), format=fmt)
    assert _answer(str(path)) == _answer(expected)   # from the file
    assert _answer(im) == _answer(expected)          # from the PIL image


def test_broken_pictures_are_input_errors(tmp_path):
    good = tmp_path / "good.jpg"
    PIL.fromarray(_rgb(size=(120, 160))).save(str(good), quality=90)
    data = good.read_bytes()
    cases = {
        "zero-byte.jpg": b"",
        "truncated.jpg": data[:len(data) // 2],
        "corrupt.jpg": data[:200] + bytes(len(data) - 200),
        "not-an-image.jpg": b"%PDF-1.4 this is not a picture\n" * 20,
        "text.png": "hello".encode("utf-8"),
        "model.png": open(PICTURE_MODEL, "rb").read()[:4096],
    }
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(tinyrt.InputError):
            tinyrt.run(PICTURE_MODEL, str(tmp_path / name))
    with pytest.raises(tinyrt.InputError, match="no such picture"):
        tinyrt.run(PICTURE_MODEL, str(tmp_path / "missing.jpg"))
    with pytest.raises(tinyrt.InputError):
        tinyrt.run(PICTURE_MODEL, np.zeros((0, 4, 3), np.uint8))
    with pytest.raises(tinyrt.InputError):
        tinyrt.run(PICTURE_MODEL, np.zeros((4, 4, 3), np.float64))


def _png_header(width, height):
    """A small PNG whose header claims width x height pixels (the data is a few bytes)."""
    import struct
    import zlib

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("width,height", [(10000, 10000), (60000, 60000)])
def test_decompression_bombs_are_refused_before_decoding(tmp_path, width, height):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header(width, height))
    assert path.stat().st_size < 200
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's own DecompressionBombWarning
        result, peak = traced(lambda: tinyrt.run(PICTURE_MODEL, str(path)))
    assert isinstance(result, tinyrt.InputError), result
    assert "pixels" in str(result)
    assert peak < 64 << 20
