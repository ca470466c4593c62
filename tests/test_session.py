"""InferenceSession: onnxruntime's API, load-time refusals, feed checks, passes and the execution plan."""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import AttributeProto, TensorProto, helper, numpy_helper

import tinyrt


def make_model(nodes, inputs, outputs, initializers=(), opset=13, value_info=(), **kwargs):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers), value_info=list(value_info))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], **kwargs).SerializeToString()


def tensor(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def relu_model(shape=("N", 3), opset=13):
    return make_model([helper.make_node("Relu", ["x"], ["y"])], [tensor("x", list(shape))],
                      [tensor("y", list(shape))], opset=opset)


def test_api_matches_onnxruntime():
    data = relu_model()
    ours, theirs = tinyrt.InferenceSession(data), ort.InferenceSession(data)
    for a, b in [(ours.get_inputs()[0], theirs.get_inputs()[0]), (ours.get_outputs()[0], theirs.get_outputs()[0])]:
        assert (a.name, a.shape, a.type) == (b.name, b.shape, b.type)
    x = np.array([[-1, 0, 2]], np.float32)
    assert ours.run(None, {"x": x})[0].tolist() == theirs.run(None, {"x": x})[0].tolist()
    assert ours.run(["y"], {"x": x})[0].tolist() == [[0, 0, 2]]
    assert ours.get_providers() == ["CPUExecutionProvider"]


def test_session_options_and_providers_are_accepted():
    options = tinyrt.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = tinyrt.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = tinyrt.InferenceSession(relu_model(), options, providers=["CPUExecutionProvider"])
    assert sess.run(None, {"x": np.ones((2, 3), np.float32)})[0].shape == (2, 3)


def test_intra_op_num_threads_is_honoured_on_blas():
    from tinyrt import threads
    if not threads.blas_threads_controllable():
        pytest.skip("numpy's BLAS here is not OpenBLAS: nothing to control")
    seen = []
    before = threads.get_blas_threads()
    options = tinyrt.SessionOptions()
    options.intra_op_num_threads = 1
    sess = tinyrt.InferenceSession(relu_model(), options)
    original = sess.plan.run

    def spy(*args, **kwargs):
        seen.append(threads.get_blas_threads())
        return original(*args, **kwargs)

    sess.plan.run = spy
    sess.run(None, {"x": np.ones((1, 3), np.float32)})
    assert seen == [1] and threads.get_blas_threads() == before


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
def test_a_session_at_the_default_threads_gives_the_same_answer_every_run(kernels):
    """OpenBLAS's float32 GEMM changes in the last bits with its thread count, so the numpy path holds it at
    one thread at the default (a width chosen run by run gave one session's runs different answers); the
    numba kernels give the same numbers at any width."""
    from tinyrt import threads
    w = np.random.RandomState(0).standard_normal((96, 576)).astype(np.float32)
    data = make_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [tensor("x", [400, 96])],
                      [tensor("y", [400, 576])], [numpy_helper.from_array(w, "w")])
    options = tinyrt.SessionOptions()
    options.kernels = kernels
    sess = tinyrt.InferenceSession(data, options)
    assert sess.kernels.name == kernels or kernels == "numba"  # (no numba here: both runs are numpy's)
    seen = []
    original = sess.plan.run

    def spy(*args, **kwargs):
        seen.append(threads.get_blas_threads())
        return original(*args, **kwargs)

    sess.plan.run = spy
    x = np.random.RandomState(1).standard_normal((400, 96)).astype(np.float32)
    first = sess.run(None, {"x": x})[0]
    for _ in range(11):  # past the warm-up runs, through runs at both widths where a chooser alternates
        assert sess.run(None, {"x": x})[0].tobytes() == first.tobytes()
    if threads.blas_threads_controllable():
        assert set(seen) == {1}


def test_metadata():
    data = make_model([helper.make_node("Relu", ["x"], ["y"])], [tensor("x", [1])], [tensor("y", [1])],
                      producer_name="pytest")
    from onnx import load_from_string
    m = load_from_string(data)
    helper.set_model_props(m, {"classes": '["cat", "dog"]', "MODEL_INFO": "{}"})
    meta = tinyrt.InferenceSession(m.SerializeToString()).get_modelmeta()
    assert meta.custom_metadata_map == {"classes": '["cat", "dog"]', "MODEL_INFO": "{}"}
    assert meta.producer_name == "pytest"


# --- feeds -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("feeds,message", [
    ({"x": np.ones((2, 3), np.float64)}, r"input 'x': expected tensor\(float\).*got float64"),
    ({"x": np.ones((2, 3, 1), np.float32)}, r"input 'x': expected rank 2 \[N, 3\], got rank 3"),
    ({"x": np.ones((2, 4), np.float32)}, r"input 'x': dimension 1 must be 3"),
    ({}, r"missing input 'x'"),
    ({"x": np.ones((2, 3), np.float32), "z": np.ones(1)}, r"no input 'z'"),
    ({"x": "not an array"}, r"input 'x'"),
])
def test_bad_feeds_name_the_input(feeds, message):
    sess = tinyrt.InferenceSession(relu_model(("N", 3)))
    with pytest.raises(tinyrt.InputError, match=message):
        sess.run(None, feeds)


def test_unknown_output_name():
    with pytest.raises(tinyrt.InputError, match="no output 'nope'"):
        tinyrt.InferenceSession(relu_model()).run(["nope"], {"x": np.ones((1, 3), np.float32)})


# --- refusals at load ---------------------------------------------------------------------------------------

def test_every_unsupported_node_is_listed_at_once():
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="fine"),
             helper.make_node("FancyOp", ["a"], ["b"], name="first", domain="my.domain"),
             helper.make_node("Relu", ["b"], ["c"], name="second", not_an_attribute=3),
             helper.make_node("NoSuchOp", ["c"], ["y"], name="third")]
    graph = helper.make_graph(nodes, "g", [tensor("x", [1])], [tensor("y", [1])])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                   helper.make_opsetid("my.domain", 1)]).SerializeToString()
    with pytest.raises(tinyrt.UnsupportedError) as info:
        tinyrt.InferenceSession(data)
    text = str(info.value)
    assert "'first'" in text and "my.domain" in text and "FancyOp" in text
    assert "'second'" in text and "not_an_attribute" in text
    assert "'third'" in text and "NoSuchOp" in text
    assert "'fine'" not in text


def test_opset_newer_than_known_is_refused():
    with pytest.raises(tinyrt.UnsupportedError, match="opset 99"):
        tinyrt.InferenceSession(relu_model(opset=99))


def test_unsupported_dtype_is_refused_at_load():
    data = make_model([helper.make_node("Identity", ["x"], ["y"])], [tensor("x", [1], TensorProto.BFLOAT16)],
                      [tensor("y", [1], TensorProto.BFLOAT16)])
    with pytest.raises(tinyrt.UnsupportedError, match="bfloat16"):
        tinyrt.InferenceSession(data)


def test_supported_ops_lists_the_default_domain():
    ops = tinyrt.supported_ops()
    for name in ["Conv", "Relu", "Clip", "Gemm", "Resize", "NonMaxSuppression", "TopK", "If", "Softmax"]:
        assert name in ops
    assert ops == sorted(ops)


# --- broken graphs ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("nodes,outputs,message", [
    ([helper.make_node("Relu", ["b"], ["a"]), helper.make_node("Relu", ["a"], ["b"])], ["b"], "cycle"),
    ([helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Neg", ["x"], ["y"])], ["y"], "produced twice"),
    ([helper.make_node("Add", ["x", "ghost"], ["y"])], ["y"], "'ghost'"),
    ([helper.make_node("Relu", ["x"], ["y"])], ["nobody"], "output 'nobody'"),
])
def test_broken_graphs_raise_model_error(nodes, outputs, message):
    data = make_model(nodes, [tensor("x", [1])], [tensor(o, [1]) for o in outputs])
    with pytest.raises(tinyrt.ModelError, match=message):
        tinyrt.InferenceSession(data)


# --- the plan -----------------------------------------------------------------------------------------------

def test_values_are_freed_after_their_last_use():
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Neg", ["a"], ["b"]),
             helper.make_node("Abs", ["b"], ["c"]), helper.make_node("Add", ["c", "x"], ["y"])]
    sess = tinyrt.InferenceSession(make_model(nodes, [tensor("x", [4])], [tensor("y", [4])]))
    alive = []

    def hook(step, args, run):
        results = run()
        alive.append(set(step.free_after))
        return results

    x = np.arange(4, dtype=np.float32)
    sess.plan.run({"x": x}, hook=hook)
    assert alive == [set(), {"a"}, {"b"}, {"c", "x"}]


def test_torch_shape_chain_is_folded_at_load():
    # Shape -> Gather -> Unsqueeze -> Concat -> Reshape, as torch writes x.view(x.size(0), -1)
    k = lambda name, v: numpy_helper.from_array(np.array(v, np.int64), name)  # noqa: E731
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Shape", ["r"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
             helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
             helper.make_node("Reshape", ["r", "shape"], ["y"])]
    inits = [k("zero", 0), k("axes", [0]), k("minus1", [-1])]
    data = make_model(nodes, [tensor("x", [2, 3, 4])], [tensor("y", [2, 12])], inits)
    sess = tinyrt.InferenceSession(data)
    assert [s.node.op_type for s in sess.plan.steps] == ["Relu", "Reshape"]
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], np.maximum(x, 0).reshape(2, 12))
    options = tinyrt.SessionOptions()
    options.graph_optimization_level = tinyrt.GraphOptimizationLevel.ORT_DISABLE_ALL
    unoptimized = tinyrt.InferenceSession(data, options)
    assert len(unoptimized.plan.steps) == 6
    np.testing.assert_array_equal(unoptimized.run(None, {"x": x})[0], np.maximum(x, 0).reshape(2, 12))


def test_dynamic_batch_runs_many_times():
    w = numpy_helper.from_array(np.random.default_rng(1).standard_normal((3, 5)).astype(np.float32), "w")
    data = make_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [tensor("x", ["batch", 3])],
                      [tensor("y", ["batch", 5])], [w])
    ours, theirs = tinyrt.InferenceSession(data), ort.InferenceSession(data)
    for batch in (1, 4, 2, 1):
        x = np.random.default_rng(batch).standard_normal((batch, 3)).astype(np.float32)
        np.testing.assert_allclose(ours.run(None, {"x": x})[0], theirs.run(None, {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_identity_and_dropout_are_removed():
    nodes = [helper.make_node("Identity", ["x"], ["a"]), helper.make_node("Dropout", ["a"], ["b"]),
             helper.make_node("Relu", ["b"], ["y"])]
    sess = tinyrt.InferenceSession(make_model(nodes, [tensor("x", [3])], [tensor("y", [3])]))
    assert [s.node.op_type for s in sess.plan.steps] == ["Relu"]
    assert sess.run(None, {"x": np.array([-1, 0, 1], np.float32)})[0].tolist() == [0, 0, 1]


def test_model_local_functions_are_inlined():
    from onnx import load_from_string
    body = [helper.make_node("Mul", ["a", "b"], ["t"]),
            helper.make_node("LeakyRelu", ["t"], ["out"])]
    body[1].attribute.append(helper.make_attribute_ref("alpha", AttributeProto.FLOAT))
    # attribute references: the caller's `alpha` flows into LeakyRelu
    function = helper.make_function("custom", "MulLeaky", ["a", "b"], ["out"], body,
                                    [helper.make_opsetid("", 13)], attributes=["alpha"])
    nodes = [helper.make_node("MulLeaky", ["x", "x"], ["m"], domain="custom", alpha=0.5),
             helper.make_node("Neg", ["m"], ["n"]),
             helper.make_node("MulLeaky", ["n", "x"], ["y"], domain="custom", alpha=0.25)]
    graph = helper.make_graph(nodes, "g", [tensor("x", [4])], [tensor("y", [4])])
    model = helper.make_model(graph, functions=[function],
                              opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("custom", 1)])
    data = model.SerializeToString()
    x = np.array([-2, -1, 1, 2], np.float32)
    expected = ort.InferenceSession(data).run(None, {"x": x})[0]
    sess = tinyrt.InferenceSession(data)
    assert all(s.node.domain == "" for s in sess.plan.steps)
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], expected, rtol=1e-6)
    assert load_from_string(data).functions  # the file really had a function


def test_nested_functions_with_attribute_defaults_are_inlined():
    # inner: y = LeakyRelu(x * a, alpha=<alpha>); outer calls inner twice, passing its own `slope` on
    inner_body = [helper.make_node("Mul", ["x", "a"], ["t"]), helper.make_node("LeakyRelu", ["t"], ["y"])]
    inner_body[1].attribute.append(helper.make_attribute_ref("alpha", AttributeProto.FLOAT, "alpha"))
    inner = helper.make_function("custom", "Scaled", ["x", "a"], ["y"], inner_body,
                                 [helper.make_opsetid("", 13)], attributes=["alpha"])
    call = helper.make_node("Scaled", ["u", "u"], ["v"], domain="custom")
    call.attribute.append(helper.make_attribute_ref("alpha", AttributeProto.FLOAT, "slope"))
    outer_body = [call, helper.make_node("Scaled", ["v", "u"], ["w"], domain="custom", alpha=0.5)]
    outer = helper.make_function("custom", "Twice", ["u"], ["w"], outer_body,
                                 [helper.make_opsetid("", 13), helper.make_opsetid("custom", 1)],
                                 attribute_protos=[helper.make_attribute("slope", 0.1)])
    nodes = [helper.make_node("Twice", ["x"], ["a"], domain="custom"),               # slope: its default 0.1
             helper.make_node("Twice", ["x"], ["b"], domain="custom", slope=0.25),
             helper.make_node("Add", ["a", "b"], ["y"])]
    graph = helper.make_graph(nodes, "g", [tensor("x", [5])], [tensor("y", [5])])
    data = helper.make_model(graph, functions=[inner, outer], opset_imports=[
        helper.make_opsetid("", 13), helper.make_opsetid("custom", 1)]).SerializeToString()
    x = np.array([-2, -0.5, 0, 0.5, 2], np.float32)
    expected = ort.InferenceSession(data).run(None, {"x": x})[0]
    sess = tinyrt.InferenceSession(data)
    assert {s.node.op_type for s in sess.plan.steps} <= {"Mul", "LeakyRelu", "Add"}
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], expected, rtol=1e-6, atol=1e-7)


def test_the_compiled_program_stops_soon_after_terminate_is_set():
    """A run with RunOptions runs the compiled program (not the slower step-by-step loop), which looks at
    ``terminate`` every few steps: set by another thread during the run, it stops the run there."""
    ops = ["Relu", "Neg", "Abs", "Sigmoid"] * 5
    nodes = [helper.make_node(op, ["v%d" % i], ["v%d" % (i + 1)]) for i, op in enumerate(ops)]
    data = make_model(nodes, [tensor("v0", [1, 8])], [tensor("v%d" % len(ops), [1, 8])])
    options = tinyrt.SessionOptions()
    options.graph_optimization_level = tinyrt.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = tinyrt.InferenceSession(data, options)
    ro = tinyrt.RunOptions()
    x = np.ones((1, 8), np.float32)
    want = sess.run(None, {"v0": x}, ro)[0]
    sess.run(None, {"v0": x}, ro)  # the second run of a signature makes its program (outside the tests too)
    program = sess.plan.last_program
    assert program is not None and "R.terminate" in program.source
    name = program.called[5]  # the function the program calls for step 5, patched to set terminate
    original = program.globals[name]

    def set_terminate(*args, **kwargs):
        ro.terminate = True  # as another thread would, while the run is under way
        return original(*args, **kwargs)

    program.globals[name] = set_terminate
    with pytest.raises(tinyrt.errors.RunTerminated, match="stopped before"):
        sess.run(None, {"v0": x}, ro)
    program.globals[name] = original
    ro.terminate = False
    np.testing.assert_array_equal(sess.run(None, {"v0": x}, ro)[0], want)


def test_the_compiled_program_reuses_its_variables():
    """A value's local variable is given back after its last use, so a long graph's program has a frame of
    a few variables, not one a node (CPython keeps frames in 16 KB chunks: a frame of thousands of locals
    made every call of the run's ops map and unmap memory, and a detector ran at half speed)."""
    nodes, last = [], "x"
    for i in range(500):  # a chain with a side branch every step: y = relu(v) + neg(v)
        nodes += [helper.make_node("Relu", [last], ["r%d" % i]), helper.make_node("Neg", [last], ["n%d" % i]),
                  helper.make_node("Add", ["r%d" % i, "n%d" % i], ["v%d" % i])]
        last = "v%d" % i
    data = make_model(nodes, [tensor("x", [2, 3])], [tensor(last, [2, 3])])
    options = tinyrt.SessionOptions()
    options.graph_optimization_level = tinyrt.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = tinyrt.InferenceSession(data, options)
    x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
    want = ort.InferenceSession(data).run(None, {"x": x})[0]
    for _ in range(3):
        np.testing.assert_array_equal(sess.run(None, {"x": x})[0], want)
    program = sess.plan.last_program
    assert len(sess.plan.steps) == 1500
    assert program.code.co_nlocals <= 8, program.code.co_nlocals


def test_an_error_in_the_compiled_program_names_the_step_and_its_inputs():
    """With variables reused, an op's unexpected error still names the failing step and shows its own
    inputs (read from the program's frame)."""
    ops = ["Relu", "Neg", "Abs", "Sigmoid"] * 3
    nodes = [helper.make_node(op, ["v%d" % i], ["v%d" % (i + 1)]) for i, op in enumerate(ops)]
    nodes.append(helper.make_node("Concat", ["v0", "v%d" % len(ops)], ["y"], axis=0))
    data = make_model(nodes, [tensor("v0", [2, 4])], [tensor("y", [4, 4])])
    options = tinyrt.SessionOptions()
    options.graph_optimization_level = tinyrt.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = tinyrt.InferenceSession(data, options)
    x = np.ones((2, 4), np.float32)
    for _ in range(2):
        sess.run(None, {"v0": x})
    program = sess.plan.last_program
    assert program.code.co_nlocals < len(ops)  # the chain's values share variables

    def broken(*args, **kwargs):
        raise ValueError("something inside the op")

    program.globals[program.called[len(ops)]] = broken  # the Concat, whose inputs are v0 and v12
    with pytest.raises(tinyrt.errors.InputError, match=r"Concat.*failed on inputs \(float32\[2, 4\], "
                       r"float32\[2, 4\]\): ValueError: something inside the op"):
        sess.run(None, {"v0": x})
