"""Seed models for the fuzzer: small, valid ONNX files that together touch most of what tinyrt reads.

Each seed is built with onnx.helper here (no files checked in), is small (a few hundred bytes to a few
KB, so every mutant runs in milliseconds), and is checked to load and run in tinyrt and onnxruntime by
``tests/test_hardening_fuzz.py``. Mutants of them reach the reader (every field kind), the graph builder
(subgraphs, functions, initializers in every storage form) and the ops that allocate from numbers held in
the file (shapes, sizes, pads, repeats, trip counts, k, max boxes...).
"""
import numpy as np
from onnx import AttributeProto, TensorProto, helper, numpy_helper

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def _vi(name, shape, elem=F):
    return helper.make_tensor_value_info(name, elem, shape)


def _c(name, value, dtype=np.int64):
    return numpy_helper.from_array(np.array(value, dtype), name)


def _model(nodes, inputs, outputs, inits=(), opset=13, functions=(), extra_opsets=(), value_info=()):
    graph = helper.make_graph(nodes, "seed", inputs, outputs, list(inits), value_info=list(value_info))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    model = helper.make_model(graph, opset_imports=opsets, functions=list(functions))
    model.ir_version = 8
    return model


def _rng():
    return np.random.default_rng(0)


def tiny_cnn():
    """Conv-BN-Relu-MaxPool-Conv(depthwise)-GlobalAveragePool-Flatten-Gemm-Softmax: the main workload."""
    r = _rng()
    inits = [numpy_helper.from_array(r.standard_normal((4, 3, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(r.standard_normal(4).astype(np.float32), "b1"),
             numpy_helper.from_array(np.ones(4, np.float32), "scale"),
             numpy_helper.from_array(np.zeros(4, np.float32), "bias"),
             numpy_helper.from_array(np.zeros(4, np.float32), "mean"),
             numpy_helper.from_array(np.ones(4, np.float32), "var"),
             numpy_helper.from_array(r.standard_normal((4, 1, 3, 3)).astype(np.float32), "wd"),
             numpy_helper.from_array(r.standard_normal((5, 4)).astype(np.float32), "fc"),
             numpy_helper.from_array(r.standard_normal(5).astype(np.float32), "fcb")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], strides=[1, 1]),
             helper.make_node("BatchNormalization", ["c1", "scale", "bias", "mean", "var"], ["n1"], epsilon=1e-5),
             helper.make_node("Clip", ["n1", "lo", "hi"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "wd"], ["c2"], group=4, pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("AveragePool", ["r2"], ["a2"], kernel_shape=[2, 2], pads=[0, 0, 1, 1]),
             helper.make_node("GlobalAveragePool", ["a2"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "fc", "fcb"], ["logits"], transB=1),
             helper.make_node("Softmax", ["logits"], ["probs"], axis=-1)]
    inits += [_c("lo", 0.0, np.float32), _c("hi", 6.0, np.float32)]
    return _model(nodes, [_vi("x", ["N", 3, 8, 8])], [_vi("probs", ["N", 5])], inits)


def shape_chain():
    """torch's x.view(x.size(0), -1) chain, plus Slice/Concat/Transpose/Squeeze: shape data from the file."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Shape", ["r"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
             helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
             helper.make_node("Reshape", ["r", "shape"], ["flat"]),
             helper.make_node("Slice", ["flat", "starts", "ends", "sl_axes", "steps"], ["sl"]),
             helper.make_node("Transpose", ["sl"], ["t"], perm=[1, 0]),
             helper.make_node("Unsqueeze", ["t", "axes"], ["u"]),
             helper.make_node("Squeeze", ["u", "axes"], ["y"])]
    inits = [_c("zero", 0), _c("axes", [0]), _c("minus1", [-1]), _c("starts", [1]), _c("ends", [1000]),
             _c("sl_axes", [1]), _c("steps", [2])]
    return _model(nodes, [_vi("x", ["N", 3, 4])], [_vi("y", [None, "N"])], inits)


def generators():
    """Ops whose output size comes from data: ConstantOfShape, Expand, Tile, Range, Pad, OneHot, EyeLike."""
    nodes = [helper.make_node("ConstantOfShape", ["cshape"], ["z"], value=numpy_helper.from_array(
                 np.array([1.5], np.float32))),
             helper.make_node("Expand", ["x", "eshape"], ["e"]),
             helper.make_node("Tile", ["e", "reps"], ["t"]),
             helper.make_node("Pad", ["t", "pads", "pval"], ["p"], mode="constant"),
             helper.make_node("Range", ["r0", "r1", "rd"], ["rng"]),
             helper.make_node("OneHot", ["idx", "depth", "ohv"], ["oh"], axis=-1),
             helper.make_node("EyeLike", ["z"], ["eye"], k=1),
             helper.make_node("ReduceSum", ["p"], ["s1"], keepdims=0),
             helper.make_node("ReduceSum", ["rng"], ["s2"], keepdims=0),
             helper.make_node("ReduceSum", ["oh"], ["s3"], keepdims=0),
             helper.make_node("ReduceSum", ["eye"], ["s4"], keepdims=0),
             helper.make_node("Sum", ["s1", "s2", "s3", "s4"], ["y"])]
    inits = [_c("cshape", [3, 4]), _c("eshape", [2, 1, 4]), _c("reps", [1, 2, 1]), _c("pads", [0, 1, 0, 0, 1, 0]),
             _c("pval", 0.5, np.float32), _c("r0", 0.0, np.float32), _c("r1", 10.0, np.float32),
             _c("rd", 1.5, np.float32), _c("idx", [0, 2, 1]), _c("depth", 4), _c("ohv", [0.0, 1.0], np.float32)]
    return _model(nodes, [_vi("x", [3, 1])], [_vi("y", [])], inits)


def resize_and_friends():
    """Resize by scales and by sizes, Upsample-free; DepthToSpace, ConvTranspose with output_shape."""
    r = _rng()
    inits = [_c("scales", [1.0, 1.0, 2.0, 2.0], np.float32), _c("sizes", [1, 2, 3, 5]),
             numpy_helper.from_array(r.standard_normal((2, 2, 3, 3)).astype(np.float32), "wt")]
    nodes = [helper.make_node("Resize", ["x", "", "scales"], ["up"], mode="linear"),
             helper.make_node("Resize", ["up", "", "", "sizes"], ["down"], mode="nearest",
                              coordinate_transformation_mode="asymmetric"),
             helper.make_node("ConvTranspose", ["down", "wt"], ["ct"], strides=[2, 2], output_shape=[7, 11]),
             helper.make_node("DepthToSpace", ["ct"], ["y"], blocksize=1)]
    return _model(nodes, [_vi("x", [1, 2, 2, 3])], [_vi("y", None)], inits)


def upsample_legacy():
    """Opset 7 files: Upsample with a scales attribute, Pad with a pads attribute."""
    nodes = [helper.make_node("Upsample", ["x"], ["u"], scales=[1.0, 1.0, 2.0, 3.0], mode="nearest"),
             helper.make_node("Pad", ["u"], ["p"], pads=[0, 0, 1, 1, 0, 0, 1, 1], value=0.0),
             helper.make_node("Split", ["p"], ["a", "b"], axis=1, split=[1, 1]),
             helper.make_node("Concat", ["b", "a"], ["y"], axis=1)]
    return _model(nodes, [_vi("x", [1, 2, 2, 2])], [_vi("y", None)], opset=7)


def detection_tail():
    """The SSD post-processing ops: TopK, Gather, NonMaxSuppression, ArgMax, Cast, NonZero, Where."""
    nodes = [helper.make_node("ReduceMax", ["scores"], ["best"], axes=[1], keepdims=0),
             helper.make_node("TopK", ["best", "k"], ["tv", "ti"], axis=-1),
             helper.make_node("Gather", ["boxes", "ti"], ["tb"], axis=1),
             helper.make_node("NonMaxSuppression", ["boxes", "scores", "maxb", "iou", "thr"], ["sel"]),
             helper.make_node("ArgMax", ["scores"], ["am"], axis=1, keepdims=0),
             helper.make_node("Cast", ["am"], ["amf"], to=F),
             helper.make_node("Greater", ["tv", "thrv"], ["mask"]),
             helper.make_node("Where", ["mask", "tv", "zerof"], ["w"]),
             helper.make_node("NonZero", ["mask"], ["nz"])]
    inits = [_c("k", [3]), _c("maxb", [5]), _c("iou", [0.5], np.float32), _c("thr", [0.0], np.float32),
             _c("thrv", 0.1, np.float32), _c("zerof", 0.0, np.float32)]
    return _model(nodes, [_vi("boxes", [1, 6, 4]), _vi("scores", [1, 2, 6])],
                  [_vi("tb", None), _vi("sel", None, I64), _vi("amf", None), _vi("w", None), _vi("nz", None, I64)],
                  inits)


def control_flow():
    """If with two branches, and a Loop with a trip count and a scan output."""
    then_g = helper.make_graph([helper.make_node("Add", ["x", "one"], ["t"])], "then", [], [_vi("t", [2])])
    else_g = helper.make_graph([helper.make_node("Constant", [], ["e"], value_floats=[2.0, 2.0])],
                               "else", [], [_vi("e", [2])])
    body = helper.make_graph(
        [helper.make_node("Add", ["acc", "x"], ["acc2"]), helper.make_node("Identity", ["c"], ["c2"]),
         helper.make_node("Mul", ["acc2", "half"], ["sc"])],
        "body", [_vi("i", [], I64), _vi("c", [], TensorProto.BOOL), _vi("acc", [2])],
        [_vi("c2", [], TensorProto.BOOL), _vi("acc2", [2]), _vi("sc", [2])])
    nodes = [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
             helper.make_node("Greater", ["s", "zero"], ["cond"]),
             helper.make_node("If", ["cond"], ["b"], then_branch=then_g, else_branch=else_g),
             helper.make_node("Loop", ["trips", "true", "b"], ["final", "scans"], body=body),
             helper.make_node("Concat", ["final", "b"], ["y"], axis=0)]
    inits = [_c("one", [1.0, 1.0], np.float32), _c("zero", 0.0, np.float32), _c("trips", 3),
             _c("true", True, np.bool_), _c("half", 0.5, np.float32)]
    return _model(nodes, [_vi("x", [2])], [_vi("y", [4]), _vi("scans", [3, 2])], inits)


def local_function():
    """A model-local function with an attribute reference, called twice (torch dynamo style)."""
    body = [helper.make_node("Mul", ["a", "b"], ["t"]), helper.make_node("LeakyRelu", ["t"], ["out"])]
    body[1].attribute.append(helper.make_attribute_ref("alpha", AttributeProto.FLOAT))
    fn = helper.make_function("custom", "MulLeaky", ["a", "b"], ["out"], body, [helper.make_opsetid("", 13)],
                              attributes=["alpha"])
    nodes = [helper.make_node("MulLeaky", ["x", "x"], ["m"], domain="custom", alpha=0.5),
             helper.make_node("Neg", ["m"], ["n"]),
             helper.make_node("MulLeaky", ["n", "x"], ["y"], domain="custom", alpha=0.25)]
    return _model(nodes, [_vi("x", [4])], [_vi("y", [4])], functions=[fn], extra_opsets=[("custom", 1)])


def typed_fields():
    """Initializers in the typed fields (float_data, int64_data, int32_data, double_data) and unpacked forms,
    elementwise ops over several dtypes, and metadata."""
    inits = [helper.make_tensor("fd", F, [2, 2], [1.0, 2.0, 3.0, 4.0]),
             helper.make_tensor("i64", I64, [2], [1, -2]),
             helper.make_tensor("i32", TensorProto.INT32, [2], [7, 8]),
             helper.make_tensor("dd", TensorProto.DOUBLE, [2], [0.5, 0.25]),
             helper.make_tensor("h", TensorProto.FLOAT16, [2], np.array([1, 2], np.float16).view(np.uint16).tolist())]
    nodes = [helper.make_node("MatMul", ["x", "fd"], ["mm"]),
             helper.make_node("Cast", ["i64"], ["i64f"], to=F),
             helper.make_node("Add", ["mm", "i64f"], ["a"]),
             helper.make_node("Cast", ["i32"], ["i32f"], to=F),
             helper.make_node("Div", ["a", "i32f"], ["d"]),
             helper.make_node("Cast", ["dd"], ["ddf"], to=F),
             helper.make_node("Cast", ["h"], ["hf"], to=F),
             helper.make_node("Sub", ["ddf", "hf"], ["s"]),
             helper.make_node("Pow", ["d", "two"], ["pw"]),
             helper.make_node("Mul", ["pw", "s"], ["y"]),
             helper.make_node("ReduceMean", ["y"], ["m"], axes=[1], keepdims=1)]
    inits.append(_c("two", 2.0, np.float32))
    model = _model(nodes, [_vi("x", ["N", 2])], [_vi("y", ["N", 2]), _vi("m", ["N", 1])], inits)
    helper.set_model_props(model, {"task": "fuzz", "classes": "a|b"})
    return model


def norms_and_activations():
    """InstanceNormalization, LayerNormalization, LRN, Hardmax, LogSoftmax, Elu, HardSwish, Erf, Einsum."""
    r = _rng()
    inits = [numpy_helper.from_array(np.ones(3, np.float32), "g"), numpy_helper.from_array(np.zeros(3, np.float32), "bt"),
             numpy_helper.from_array(r.standard_normal((4, 4)).astype(np.float32), "ln_g")]
    nodes = [helper.make_node("InstanceNormalization", ["x", "g", "bt"], ["in"], epsilon=1e-5),
             helper.make_node("LRN", ["in"], ["lrn"], size=3),
             helper.make_node("HardSwish", ["lrn"], ["hs"]),
             helper.make_node("Elu", ["hs"], ["el"], alpha=0.5),
             helper.make_node("LayerNormalization", ["el", "ln_g"], ["ln"], axis=-2),
             helper.make_node("LogSoftmax", ["ln"], ["ls"], axis=1),
             helper.make_node("Hardmax", ["ls"], ["hm"], axis=-1),
             helper.make_node("Erf", ["hm"], ["er"]),
             helper.make_node("Einsum", ["er", "er"], ["y"], equation="ncij,ncjk->ncik")]
    return _model(nodes, [_vi("x", [1, 3, 4, 4])], [_vi("y", None)], inits, opset=17)


def scatter_gather():
    """GatherElements, ScatterND, GatherND, CumSum, ReduceL2, Mod, BitShift-free integer paths."""
    nodes = [helper.make_node("GatherElements", ["x", "gi"], ["ge"], axis=1),
             helper.make_node("ScatterND", ["x", "si", "su"], ["sn"]),
             helper.make_node("GatherND", ["sn", "gn"], ["gnd"]),
             helper.make_node("CumSum", ["ge", "ax"], ["cs"], exclusive=1),
             helper.make_node("ReduceL2", ["cs"], ["l2"], keepdims=1),
             helper.make_node("Mod", ["gi", "three"], ["md"]),
             helper.make_node("Cast", ["md"], ["mdf"], to=F),
             helper.make_node("Add", ["l2", "mdf"], ["y"])]
    inits = [_c("gi", [[0, 1], [1, 0]]), _c("si", [[1]]), _c("su", [[9.0, 8.0]], np.float32),
             _c("gn", [[0, 1]]), _c("ax", 1), _c("three", 3)]
    return _model(nodes, [_vi("x", [2, 2])], [_vi("y", [2, 2]), _vi("gnd", None)], inits)


SEEDS = {
    "tiny_cnn": tiny_cnn, "shape_chain": shape_chain, "generators": generators,
    "resize_and_friends": resize_and_friends, "upsample_legacy": upsample_legacy,
    "detection_tail": detection_tail, "control_flow": control_flow, "local_function": local_function,
    "typed_fields": typed_fields, "norms_and_activations": norms_and_activations,
    "scatter_gather": scatter_gather,
}


def seed_models():
    """{name: ModelProto} of every seed."""
    return {name: make() for name, make in SEEDS.items()}


def seed_bytes():
    """{name: serialized bytes} of every seed."""
    return {name: m.SerializeToString() for name, m in seed_models().items()}
