"""Issue 7 (hardening), items 2 and 3: the checks on a graph at load, each a ModelError naming the node or
value, and external data that is refused.

Covered elsewhere, not repeated here: a cycle, a value produced twice, an input nothing produces, an output
nothing produces (tests/test_session.py::test_broken_graphs_raise_model_error); external data that is
absolute, `..`, a link out of the folder, a missing file, past the end, or a model given as bytes
(tests/test_proto.py::test_external_data_may_not_leave_the_folder, ..._through_a_link_out_of_the_folder,
..._past_the_end_of_its_file, test_external_data)."""
import inspect
import os

import numpy as np
import onnx
import pytest
from onnx import AttributeProto, TensorProto, defs, helper, numpy_helper

from hardening_models import F, I64, const, model, vi
import tinyrt
from tinyrt.ops import registry


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
    from tinyrt.support import _fits, _kind
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
