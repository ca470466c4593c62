"""The fusion passes: BatchNormalization and per-channel Mul/Add folded into Conv, residual Add and
activations fused into FusedConv, and what they must leave alone. Results are checked against
onnxruntime with the project's tolerance, on whatever path TINYRT_KERNELS selects."""
import numpy as np
import pytest
from onnx import TensorProto, helper

import tinyrt
from oracle import assert_close, make_model, ort_run


def _rand(*shape, seed=0):
    return np.random.RandomState(seed).standard_normal(shape).astype(np.float32)


def _model(nodes, inits, x_shape=(2, 6, 9, 9), outputs=("y",), opset=13):
    return make_model(nodes, {"x": (TensorProto.FLOAT, x_shape)}, outputs, inits, opset)


def _ops(sess):
    return [(s.node.op_type, s.node.attrs.get("activation", "")) for s in sess.plan.steps]


def _compare(data, x_shape=(2, 6, 9, 9), level=None):
    options = tinyrt.SessionOptions()
    if level is not None:
        options.graph_optimization_level = level
    sess = tinyrt.InferenceSession(data, options)
    x = _rand(*x_shape, seed=9)
    ours = sess.run(None, {"x": x})
    theirs = ort_run(data, {"x": x})
    for a, b in zip(ours, theirs):
        assert_close(a, b)
    return sess


def _conv_inits(m=8, c=6, k=3, bias=True):
    inits = {"w": _rand(m, c, k, k, seed=1) * 0.3}
    if bias:
        inits["b"] = _rand(m, seed=2)
    return inits


def _bn_inits(m=8):
    r = np.random.RandomState(3)
    return {"scale": r.uniform(0.5, 2, m).astype(np.float32), "shift": r.randn(m).astype(np.float32),
            "mean": r.randn(m).astype(np.float32), "var": r.uniform(0.2, 3, m).astype(np.float32)}


@pytest.mark.parametrize("bias", [True, False])
def test_batchnorm_folds_into_conv(bias):
    inits = dict(_conv_inits(bias=bias), **_bn_inits())
    conv_in = ["x", "w", "b"] if bias else ["x", "w"]
    nodes = [helper.make_node("Conv", conv_in, ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "scale", "shift", "mean", "var"], ["y"], epsilon=1e-3)]
    data = _model(nodes, inits)
    assert _ops(_compare(data)) == [("Conv", "")]
    off = _compare(data, level=tinyrt.GraphOptimizationLevel.ORT_DISABLE_ALL)
    assert [op for op, _ in _ops(off)] == ["Conv", "BatchNormalization"]


def test_basic_level_folds_but_does_not_fuse():
    """onnxruntime's levels: BASIC folds (BatchNormalization into the Conv), EXTENDED and ALL also fuse
    (the Relu into a FusedConv); the results are the same at every level."""
    inits = dict(_conv_inits(), **_bn_inits())
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "scale", "shift", "mean", "var"], ["r"]),
             helper.make_node("Relu", ["r"], ["y"])]
    data = _model(nodes, inits)
    levels = tinyrt.GraphOptimizationLevel
    assert _ops(_compare(data, level=levels.ORT_ENABLE_BASIC)) == [("Conv", ""), ("Relu", "")]
    for level in (levels.ORT_ENABLE_EXTENDED, levels.ORT_ENABLE_ALL):
        assert _ops(_compare(data, level=level)) == [("FusedConv", "Relu")]


def test_batchnorm_not_after_conv_stays():
    inits = _bn_inits(6)
    nodes = [helper.make_node("BatchNormalization", ["x", "scale", "shift", "mean", "var"], ["y"])]
    assert [op for op, _ in _ops(_compare(_model(nodes, inits)))] == ["BatchNormalization"]


def test_batchnorm_after_conv_read_twice_stays():
    inits = dict(_conv_inits(), **_bn_inits())
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "scale", "shift", "mean", "var"], ["y"]),
             helper.make_node("Relu", ["c"], ["y2"])]
    sess = _compare(_model(nodes, inits, outputs=("y", "y2")))
    assert "BatchNormalization" in [op for op, _ in _ops(sess)]


def test_shared_weight_is_not_changed_for_the_other_conv():
    inits = dict(_conv_inits(), **_bn_inits())
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "scale", "shift", "mean", "var"], ["y"]),
             helper.make_node("Conv", ["x", "w", "b"], ["y2"], pads=[1, 1, 1, 1])]
    sess = _compare(_model(nodes, inits, outputs=("y", "y2")))
    assert [op for op, _ in _ops(sess)] == ["Conv", "Conv"]


def test_per_channel_mul_add_sub_div_fold():
    m = 8
    inits = dict(_conv_inits(m), mul=np.linspace(0.5, 2, m, dtype=np.float32).reshape(1, m, 1, 1),
                 add=np.arange(m, dtype=np.float32).reshape(m, 1, 1), sub=np.array(0.25, np.float32),
                 div=np.array([2.0], np.float32))
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Mul", ["mul", "c"], ["c1"]),
             helper.make_node("Add", ["c1", "add"], ["c2"]),
             helper.make_node("Sub", ["c2", "sub"], ["c3"]),
             helper.make_node("Div", ["c3", "div"], ["y"])]
    assert _ops(_compare(_model(nodes, inits))) == [("Conv", "")]


@pytest.mark.parametrize("shape", [(1, 1, 9, 9), (9,), (2, 8, 1, 1)])
def test_mul_that_is_not_per_channel_stays(shape):
    inits = dict(_conv_inits(), c=_rand(*shape, seed=5))
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c0"], pads=[1, 1, 1, 1]),
             helper.make_node("Mul", ["c0", "c"], ["y"])]
    assert "Mul" in [op for op, _ in _ops(_compare(_model(nodes, inits)))]


ACTIVATIONS = [
    (helper.make_node("Relu", ["c"], ["y"]), {}, "Relu", 13),
    (helper.make_node("Clip", ["c", "lo", "hi"], ["y"]), {"lo": np.array(0, np.float32), "hi": np.array(6, np.float32)},
     "Clip", 13),
    (helper.make_node("Clip", ["c", "lo"], ["y"]), {"lo": np.array(0, np.float32)}, "Relu", 13),
    (helper.make_node("Clip", ["c"], ["y"], min=-1.0, max=1.5), {}, "Clip", 10),
    (helper.make_node("LeakyRelu", ["c"], ["y"], alpha=0.2), {}, "LeakyRelu", 13),
    (helper.make_node("HardSigmoid", ["c"], ["y"]), {}, "HardSigmoid", 13),
    (helper.make_node("HardSwish", ["c"], ["y"]), {}, "HardSwish", 14),
    (helper.make_node("Sigmoid", ["c"], ["y"]), {}, "Sigmoid", 13),
]


@pytest.mark.parametrize("case", ACTIVATIONS, ids=[a[2] + str(i) for i, a in enumerate(ACTIVATIONS)])
def test_activation_fuses(case):
    node, extra, name, opset = case
    inits = dict(_conv_inits(), **extra)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), node]
    assert _ops(_compare(_model(nodes, inits, opset=opset))) == [("FusedConv", name)]


def test_an_activation_is_one_record(monkeypatch):
    """A conv tail is one record beside its op (ops/tails.py): with a record for Elu, made here and known to
    no kernel, the pass fuses Conv -> Elu (alpha from the node, or the op's default), the numpy path applies
    the record's function, and the numba path runs its conv kernel and then that function."""
    from tinyrt import kernels_select
    from tinyrt.ops import activation, tails

    def elu_tail(y, alpha):
        y[...] = activation.elu(y, alpha=alpha)
        return y
    monkeypatch.setitem(tails.TAILS, "Elu", tails.Tail("Elu", elu_tail, params=("alpha",)))
    for attrs, alpha in (({"alpha": 0.5}, 0.5), ({}, 1.0)):
        nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
                 helper.make_node("Elu", ["c"], ["y"], **attrs)]
        sess = _compare(_model(nodes, _conv_inits()))
        assert _ops(sess) == [("FusedConv", "Elu")]
        step = sess.plan.steps[0]
        assert step.node.attrs["activation_params"] == [alpha]
        if sess.kernels.name == "numba":
            assert kernels_select.kernel_label(step).startswith("numba conv")


def test_torch_hardswish_pattern_fuses():
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("HardSigmoid", ["c"], ["h"], alpha=1.0 / 6),
             helper.make_node("Mul", ["c", "h"], ["y"])]
    assert _ops(_compare(_model(nodes, _conv_inits(), opset=11))) == [("FusedConv", "HardSwish")]


def test_clip_with_computed_bounds_stays():
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("ReduceMin", ["x"], ["lo"], keepdims=0),
             helper.make_node("Clip", ["c", "lo"], ["y"])]
    assert "Clip" in [op for op, _ in _ops(_compare(_model(nodes, _conv_inits())))]


def test_conv_output_read_elsewhere_or_graph_output_is_not_fused():
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"])]
    sess = _compare(_model(nodes, _conv_inits(), outputs=("y", "c")))
    assert [op for op, _ in _ops(sess)] == ["Conv", "Relu"]


def test_residual_add_then_relu_fuse():
    inits = dict(_conv_inits(6), **_bn_inits(6))
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "scale", "shift", "mean", "var"], ["n"]),
             helper.make_node("Add", ["x", "n"], ["s"]),
             helper.make_node("Relu", ["s"], ["y"])]
    sess = _compare(_model(nodes, inits))
    assert _ops(sess) == [("FusedConv", "Relu")]
    assert sess.plan.steps[0].inputs[3] == "x"


def test_activation_then_add_does_not_fold_the_add():
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Add", ["r", "x"], ["y"])]
    sess = _compare(_model(nodes, _conv_inits(6)))
    assert _ops(sess) == [("FusedConv", "Relu"), ("Add", "")]


def test_passes_are_listed_and_can_be_turned_off():
    from tinyrt import passes
    names = [p[0] for p in passes.PASSES]
    assert any("BatchNormalization" in n for n in names) and any("FusedConv" in n for n in names)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"])]
    sess = _compare(_model(nodes, _conv_inits()), level=tinyrt.GraphOptimizationLevel.ORT_DISABLE_ALL)
    assert _ops(sess) == [("Conv", ""), ("Relu", "")] and sess.applied_passes == []


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small", "resnet18"])
def test_whole_models_with_batchnorm_kept(tmp_path, name):
    torch_models = pytest.importorskip("tests.torch_models")
    model = torch_models.build(name, seed=1)
    path = torch_models.export(model, tmp_path / "m.onnx", opset=13, keep_batchnorm=True,
                               input_shape=(2, 3, 64, 64), input_name="x")
    assert torch_models.batchnorm_count(path) > 0
    data = open(path, "rb").read()
    sess = _compare(data, x_shape=(2, 3, 64, 64))
    ops = [op for op, _ in _ops(sess)]
    assert "BatchNormalization" not in ops and "FusedConv" in ops


def test_repeated_nodes_are_merged():
    """torchvision's detectors call torch.where(mask) twice a class: two NonZero (and two Transposes of
    them) on one mask. The repeats are dropped, their readers read the first; onnxruntime's answer."""
    nodes = [helper.make_node("Greater", ["x", "zero"], ["mask"]),
             helper.make_node("NonZero", ["mask"], ["nz1"]), helper.make_node("NonZero", ["mask"], ["nz2"]),
             helper.make_node("Transpose", ["nz1"], ["i1"]), helper.make_node("Transpose", ["nz2"], ["i2"]),
             helper.make_node("GatherND", ["x", "i1"], ["v1"]), helper.make_node("GatherND", ["x", "i2"], ["v2"]),
             helper.make_node("Add", ["v1", "v2"], ["y"])]
    data = _model(nodes, {"zero": np.float32(0)}, x_shape=(3, 4))
    sess = _compare(data, x_shape=(3, 4))
    # one NonZero -> Transpose -> GatherND is left: torch's x[mask], one GatherNonZero (passes/mask_select.py)
    assert [s.node.op_type for s in sess.plan.steps] == ["Greater", "GatherNonZero", "Add"]
    assert "merge repeated nodes (common subexpressions)" in sess.applied_passes


def test_repeats_that_differ_or_must_keep_their_names_stay():
    """A repeat with other attributes, and a repeat that is a graph output, are kept."""
    nodes = [helper.make_node("LeakyRelu", ["x"], ["a"], alpha=0.1), helper.make_node("LeakyRelu", ["x"], ["b"], alpha=0.2),
             helper.make_node("Relu", ["x"], ["c"]), helper.make_node("Relu", ["x"], ["y2"]),
             helper.make_node("Sum", ["a", "b", "c"], ["y"])]
    data = _model(nodes, {}, x_shape=(3, 4), outputs=("y", "y2"))
    sess = _compare(data, x_shape=(3, 4))
    assert sorted(s.node.op_type for s in sess.plan.steps) == ["LeakyRelu", "LeakyRelu", "Relu", "Relu", "Sum"]


def test_static_shape_rules_are_one_per_op_type():
    """Constant folding's shapes come from the op records (ops.registry.static_shape): every version of an
    op carries the same rule, so a node's shape never depends on which version its opset resolves to."""
    from tinyrt.ops import registry
    with_rule = set()
    for domain, op_type in registry.registered():
        table = registry._REGISTRY[(domain, op_type)]
        rules = {getattr(impl.fn, "static_shape", None) for impl in table.values()}
        assert len(rules) == 1, op_type
        if rules != {None}:
            assert domain == "", op_type
            with_rule.add(op_type)
    assert {"Conv", "MaxPool", "Relu", "Add", "Reshape", "Concat", "Gemm", "Shape", "Unsqueeze"} <= with_rule
    assert registry.static_shape_rule("Gelu", 13) is registry.static_shape_rule("Gelu", 20) is not None


def test_static_shapes_flow_to_a_folded_shape():
    from tinyrt.graph import Graph, Node, ValueSpec
    from tinyrt.passes import shapes
    g = Graph(nodes=[Node("Conv", ["x", "w"], ["c"], {"pads": [1, 1, 1, 1], "strides": [2, 2]}, opset=13),
                     Node("Relu", ["c"], ["r"], opset=13),
                     Node("Add", ["r", "b"], ["a"], opset=13),
                     Node("MaxPool", ["a"], ["p"], {"kernel_shape": [2, 2], "ceil_mode": 1, "strides": [2, 2]},
                          opset=13),
                     Node("Flatten", ["p"], ["f"], opset=13),
                     Node("Shape", ["f"], ["s"], opset=13),
                     Node("Exp", ["unknown"], ["e"], opset=13)],
              inputs=[ValueSpec("x", 1, [1, 3, 9, 9])],
              initializers={"w": np.zeros((8, 3, 3, 3), np.float32), "b": np.zeros((8, 1, 1), np.float32)})
    known = shapes.infer(g)
    assert (known["c"], known["r"], known["a"], known["p"]) == ((1, 8, 5, 5),) * 3 + ((1, 8, 3, 3),)
    assert known["f"] == (1, 72) and known["s"] == (2,) and "e" not in known


def _mask_select(x_shape, mask_shape, keep_nonzero=False):
    """torch's ``x[s > 0]`` as its exporter writes it: Greater, NonZero, Transpose, GatherND; with
    ``keep_nonzero`` the NonZero's positions are a graph output too."""
    nodes = [helper.make_node("Greater", ["s", "zero"], ["m"]),
             helper.make_node("NonZero", ["m"], ["nz"]),
             helper.make_node("Transpose", ["nz"], ["idx"], perm=[1, 0]),
             helper.make_node("GatherND", ["x", "idx"], ["y"])]
    return make_model(nodes, {"x": (TensorProto.FLOAT, list(x_shape)), "s": (TensorProto.FLOAT, list(mask_shape))},
                      {"y": TensorProto.FLOAT, "nz": TensorProto.INT64} if keep_nonzero else ["y"],
                      {"zero": np.float32(0)})


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
@pytest.mark.parametrize("x_shape, mask_shape, keep_nonzero", [
    ((3234, 4), (3234,), False),    # a detector's boxes of one class's kept scores
    ((5, 6, 3), (5, 6), False),     # a 2-D mask
    ((8, 3), (5,), True),           # a mask over the first rows only; the positions read elsewhere too
    ((7,), (7,), False),
])
def test_boolean_indexing_runs_as_one_gather_nonzero(x_shape, mask_shape, keep_nonzero, kernels):
    data = _mask_select(x_shape, mask_shape, keep_nonzero)
    options = tinyrt.SessionOptions()
    options.kernels = kernels
    sess = tinyrt.InferenceSession(data, options)
    ops = [s.node.op_type for s in sess.plan.steps]
    assert "GatherNonZero" in ops and "GatherND" not in ops
    assert ("NonZero" in ops) == keep_nonzero and "Transpose" not in ops  # (dead once GatherND is gone)
    rng = np.random.RandomState(7)
    for run in range(3):  # (the second run makes the compiled program, the third runs it)
        feeds = {"x": rng.standard_normal(x_shape).astype(np.float32),
                 "s": rng.standard_normal(mask_shape).astype(np.float32)}
        if run == 2:
            feeds["s"][...] = -1  # nothing selected
        for ours, theirs in zip(sess.run(None, feeds), ort_run(data, feeds)):
            np.testing.assert_array_equal(ours, theirs)


def test_gather_nonzero_refuses_positions_outside_the_data_as_gathernd_does():
    data = _mask_select((4, 3), (6,))
    sess = tinyrt.InferenceSession(data)
    s = np.array([1, -1, 1, -1, -1, -1], np.float32)
    x = _rand(4, 3)
    np.testing.assert_array_equal(sess.run(None, {"x": x, "s": s})[0], x[[0, 2]])
    s[5] = 1
    with pytest.raises(tinyrt.errors.InputError, match="GatherND: an index is out of range"):
        sess.run(None, {"x": x, "s": s})


def _channel_shuffle(shapes, groups, first_shape=None, then_shape=None, keep=None, opset=13, n_inputs=2,
                     perm=(0, 2, 1, 3, 4), conv=False):
    """torchvision's ShuffleNet unit end as torch's exporter writes it: Concat of the branches, Reshape to
    (N, groups, C/groups, H, W), Transpose, Reshape back to (N, C, H, W); ``keep`` names an intermediate
    value that is a graph output too. With ``conv``, each input is a 1x1 conv's result (channels-last
    memory on the numba path) and the result goes on into another conv."""
    N, Cg, H, W = shapes
    C = Cg * n_inputs
    first_shape = [N, groups, C // groups, H, W] if first_shape is None else first_shape
    then_shape = [N, C, H, W] if then_shape is None else then_shape
    names = ["x%d" % j for j in range(n_inputs)]
    nodes, inits = [], {"s1": np.array(first_shape, np.int64), "s2": np.array(then_shape, np.int64)}
    if conv:
        for j in range(n_inputs):
            inits["w%d" % j] = _rand(Cg, Cg, 1, 1, seed=j)
            nodes.append(helper.make_node("Conv", [names[j], "w%d" % j], ["c%d" % j]))
        names = ["c%d" % j for j in range(n_inputs)]
    nodes += [helper.make_node("Concat", names, ["cat"], axis=1),
              helper.make_node("Reshape", ["cat", "s1"], ["grouped"]),
              helper.make_node("Transpose", ["grouped"], ["swapped"], perm=list(perm)),
              helper.make_node("Reshape", ["swapped", "s2"], ["shuffled"])]
    outputs = ["shuffled"]
    if conv:
        inits["w"] = _rand(C, C, 1, 1, seed=9)
        nodes.append(helper.make_node("Conv", ["shuffled", "w"], ["y"]))
        outputs = ["y"]
    if keep:
        outputs.append(keep)
    inputs = {"x%d" % j: (TensorProto.FLOAT, list(shapes)) for j in range(n_inputs)}
    return make_model(nodes, inputs, outputs, inits, opset=opset)


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
@pytest.mark.parametrize("case", [
    dict(shapes=(1, 24, 28, 28), groups=2),                  # ShuffleNetV2's units
    dict(shapes=(2, 6, 5, 7), groups=2, conv=True),          # between convs: channels-last memory both sides
    dict(shapes=(1, 4, 3, 3), groups=3, n_inputs=3),         # three branches, three groups
    dict(shapes=(1, 6, 4, 4), groups=3),                     # groups that are not the branches: the four ops
    dict(shapes=(1, 4, 3, 5), groups=2, first_shape=[0, 2, -1, 3, 5], then_shape=[1, -1, 3, 5]),  # 0 and -1
    dict(shapes=(1, 4, 3, 5), groups=2, perm=(0, 1, 2, 4, 3), then_shape=[1, 8, 5, 3]),  # another transpose
    dict(shapes=(1, 4, 2, 2), groups=2, opset=14),
])
def test_channel_shuffle_runs_as_one_concat_shuffle(case, kernels):
    data = _channel_shuffle(**case)
    options = tinyrt.SessionOptions()
    options.kernels = kernels
    sess = tinyrt.InferenceSession(data, options)
    ops = [s.node.op_type for s in sess.plan.steps]
    assert "ConcatShuffle" in ops and not {"Concat", "Reshape", "Transpose"} & set(ops), ops
    rng = np.random.RandomState(3)
    for run in range(3):  # (the second run makes the compiled program, the third runs it)
        feeds = {"x%d" % j: rng.standard_normal(case["shapes"]).astype(np.float32)
                 for j in range(case.get("n_inputs", 2))}
        ours, theirs = sess.run(None, feeds)[0], ort_run(data, feeds)[0]
        if case.get("conv"):
            assert_close(ours, theirs)
        else:
            np.testing.assert_array_equal(ours, theirs)


def test_channel_shuffle_stays_four_ops_where_its_values_are_read_elsewhere():
    data = _channel_shuffle((1, 4, 3, 3), 2, keep="swapped")
    sess = tinyrt.InferenceSession(data)
    assert "ConcatShuffle" not in [s.node.op_type for s in sess.plan.steps]
    feeds = {"x0": _rand(1, 4, 3, 3), "x1": _rand(1, 4, 3, 3, seed=1)}
    for ours, theirs in zip(sess.run(None, feeds), ort_run(data, feeds)):
        np.testing.assert_array_equal(ours, theirs)


def test_concat_shuffle_reports_a_bad_shape_as_reshape_does():
    data = _channel_shuffle((1, 4, 3, 3), 2, then_shape=[1, 7, 3, 3])
    sess = tinyrt.InferenceSession(data)
    assert "ConcatShuffle" in [s.node.op_type for s in sess.plan.steps]
    with pytest.raises(tinyrt.errors.InputError, match="Reshape: cannot reshape an input of shape"):
        sess.run(None, {"x0": _rand(1, 4, 3, 3), "x1": _rand(1, 4, 3, 3, seed=1)})
