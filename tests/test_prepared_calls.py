"""The compiled program's prepared calls (ops.registry.prepared): a static step of a small op runs as the
bare numpy call, with what follows from the signature worked out once, and gives the op's numbers."""
import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import pytest
import tinyrt


def _model(nodes, inputs, outputs, initializers):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def _const(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


def _box_decoder():
    """The shape of a detector's box decoding: slices, gathers, broadcasts, clips, reshapes, concat."""
    f = TensorProto.FLOAT
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),            # [1, 6, 4]
        helper.make_node("Reshape", ["xt", "shape"], ["r"]),                     # [6, 4]
        helper.make_node("Gather", ["r", "i0"], ["cx"], axis=1),
        helper.make_node("Gather", ["r", "i2"], ["w"], axis=1),
        helper.make_node("Clip", ["w", "lo", "hi"], ["wc"]),
        helper.make_node("Mul", ["wc", "half"], ["hw"]),
        helper.make_node("Sub", ["cx", "hw"], ["x0"]),
        helper.make_node("Add", ["cx", "hw"], ["x1"]),
        helper.make_node("Unsqueeze", ["x0", "ax"], ["u0"]),
        helper.make_node("Unsqueeze", ["x1", "ax"], ["u1"]),
        helper.make_node("Concat", ["u0", "u1"], ["c"], axis=1),
        helper.make_node("Slice", ["c", "starts", "ends", "axes"], ["s"]),
        helper.make_node("Squeeze", ["s", "ax"], ["y"]),
    ]
    inits = [_const("shape", np.array([6, 4], np.int64)), _const("i0", np.array(0, np.int64)),
             _const("i2", np.array(-2, np.int64)), _const("lo", np.float32(0.5)), _const("hi", np.float32(2)),
             _const("half", np.float32(0.5)), _const("ax", np.array([1], np.int64)),
             _const("starts", np.array([1], np.int64)), _const("ends", np.array([2], np.int64)),
             _const("axes", np.array([1], np.int64))]
    return _model(nodes, [helper.make_tensor_value_info("x", f, [1, 4, 6])],
                  [helper.make_tensor_value_info("y", f, [6])], inits)


def test_small_static_ops_run_as_prepared_calls_with_the_ops_numbers():
    data = _box_decoder()
    sess = tinyrt.InferenceSession(data)
    oracle = ort.InferenceSession(data)
    rng = np.random.RandomState(0)
    for run in range(4):  # runs 2.. use the program; each run with other values
        x = (rng.standard_normal((1, 4, 6)) * 3).astype(np.float32)
        x[0, 2, 0] = np.nan  # Clip and the arithmetic keep a NaN where the ops do
        got = sess.run(None, {"x": x})[0]
        np.testing.assert_array_equal(got, oracle.run(None, {"x": x})[0])
    source = sess.plan.last_program.source
    for name in ("transpose_prepared", "reshape_prepared", "gather_prepared", "clip_prepared", "slice_prepared",
                 "concat_prepared", "multiply", "subtract", "add"):
        assert name in source, name


def test_gather_with_indices_that_change_between_runs_keeps_its_index_check():
    """Only a constant's value is worked out once: indices fed at run time are checked on every run."""
    data = _model([helper.make_node("Gather", ["x", "i"], ["y"], axis=0)],
                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 2]),
                   helper.make_tensor_value_info("i", TensorProto.INT64, [3])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 2])], [])
    sess = tinyrt.InferenceSession(data)
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    for _ in range(3):
        np.testing.assert_array_equal(sess.run(None, {"x": x, "i": np.array([4, -1, 0])})[0], x[[4, 4, 0]])
    assert sess.plan.last_program is not None
    with pytest.raises(tinyrt.errors.InputError, match="out of range"):
        sess.run(None, {"x": x, "i": np.array([0, 5, 1])})


@pytest.mark.parametrize("strides, dilations, pads", [([1, 1], [1, 1], [1, 1, 1, 1]), ([2, 2], [1, 1], [0, 1, 1, 0]),
                                                      ([2, 3], [2, 1], [2, 0, 1, 2])])
def test_numpy_path_convs_specialised_for_the_program_give_the_ops_numbers(strides, dilations, pads):
    """On the numpy path a conv of the program is worked out once for its input shape (_NumpyConv.specialize:
    the depthwise conv's phases and their tiled weights, the geometry, the checks): the numbers of the conv's
    own call (the suite's check mode holds the program to it bit for bit) and of onnxruntime."""
    f = TensorProto.FLOAT
    rng = np.random.RandomState(0)
    inits = [_const("wd", rng.standard_normal((8, 1, 3, 3)).astype(np.float32)),
             _const("bd", rng.standard_normal(8).astype(np.float32)),
             _const("wp", rng.standard_normal((6, 8, 1, 1)).astype(np.float32)),
             _const("lo", np.float32(0)), _const("hi", np.float32(6))]
    nodes = [helper.make_node("Conv", ["x", "wd", "bd"], ["d"], group=8, strides=strides, dilations=dilations,
                              pads=pads),
             helper.make_node("Clip", ["d", "lo", "hi"], ["r"]),
             helper.make_node("Conv", ["r", "wp"], ["y"])]
    data = _model(nodes, [helper.make_tensor_value_info("x", f, [1, 8, 11, 13])],
                  [helper.make_tensor_value_info("y", f, None)], inits)
    options = tinyrt.SessionOptions()
    options.kernels = "numpy"
    sess = tinyrt.InferenceSession(data, options)
    oracle = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    for run in range(4):
        x = rng.standard_normal((1, 8, 11, 13)).astype(np.float32)
        got = sess.run(None, {"x": x})[0]
        want = oracle.run(None, {"x": x})[0]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(want).max())))
    assert "call_0(" in sess.plan.last_program.source  # the specialised conv (no attributes passed)


def _shape_of_a_value_sized_by_data():
    """Reshape(a, Compress([-1, 1], mask)): rank 2 ([4, 1]) when mask is [1, 1], rank 1 ([4]) when [1, 0];
    then the Shape of it, a Gather of that shape and a Size: what a detector's post-processing does with
    the boxes a class keeps (Shape -> Gather -> Min -> TopK)."""
    nodes = [helper.make_node("Compress", ["dims", "mask"], ["target"], axis=0),
             helper.make_node("Reshape", ["a", "target"], ["r"]),
             helper.make_node("Shape", ["r"], ["shape"]),
             helper.make_node("Gather", ["shape", "i0"], ["first"], axis=0),
             helper.make_node("Size", ["r"], ["size"]),
             helper.make_node("Add", ["first", "size"], ["total"])]
    inits = [_const("dims", np.array([-1, 1], np.int64)), _const("i0", np.array(0, np.int64))]
    return _model(nodes, [helper.make_tensor_value_info("a", TensorProto.FLOAT, [4]),
                          helper.make_tensor_value_info("mask", TensorProto.BOOL, [2])],
                  [helper.make_tensor_value_info("shape", TensorProto.INT64, None),
                   helper.make_tensor_value_info("total", TensorProto.INT64, None)], inits)


def test_the_shape_of_a_value_sized_by_data_is_sized_by_its_rank_checked_every_run():
    """A Shape (or Size) of a value whose size depends on data has a size known from the signature, its
    input's rank: the program runs it and what reads it as static steps (no per-step checks), and checks
    on every run that the rank is the first run's. When it is not, that run and the later ones of the
    signature go step by step, with the right results."""
    data = _shape_of_a_value_sized_by_data()
    options = tinyrt.SessionOptions()
    options.intra_op_num_threads = 1  # one width: one program (programs are made per thread width)
    sess = tinyrt.InferenceSession(data, options)
    oracle = ort.InferenceSession(data)
    a = np.arange(4, dtype=np.float32)
    feeds = [{"a": a, "mask": np.array([True, True])}] * 3 + [{"a": a, "mask": np.array([True, False])}] * 2
    for feed in feeds:
        got, want = sess.run(None, feed), oracle.run(None, feed)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
    assert sess.plan.program_source() == [], "the program gave way to the step-by-step run"
    sess = tinyrt.InferenceSession(data, options)
    for feed in feeds[:3]:
        sess.run(None, feed)
    source = sess.plan.last_program.source
    assert "_rank_changed" in source and "gather_prepared" in source
    assert source.count("_checked") == 2, source  # the Compress and the Reshape only


def _one_class_of_a_detector():
    """torchvision's post-processing of one class, in miniature: the scores above a threshold and their
    boxes (x[mask]: GatherNonZero), the best k = min(3, count) of them (TopK), their boxes, and a label
    for each (ConstantOfShape of their Shape): every size depends on the data."""
    f, i64 = TensorProto.FLOAT, TensorProto.INT64
    nodes = [helper.make_node("Gather", ["scores", "c"], ["s"], axis=1),
             helper.make_node("Greater", ["s", "threshold"], ["m"]),
             helper.make_node("NonZero", ["m"], ["nz"]),
             helper.make_node("Transpose", ["nz"], ["idx"], perm=[1, 0]),
             helper.make_node("GatherND", ["s", "idx"], ["kept"]),
             helper.make_node("GatherND", ["boxes", "idx"], ["kept_boxes"]),
             helper.make_node("Shape", ["kept"], ["n"]),
             helper.make_node("Gather", ["n", "zero"], ["n0"], axis=0),
             helper.make_node("Min", ["three", "n0"], ["k0"]),
             helper.make_node("Reshape", ["k0", "one"], ["k"]),
             helper.make_node("TopK", ["kept", "k"], ["values", "order"], axis=0),
             helper.make_node("Gather", ["kept_boxes", "order"], ["best"], axis=0),
             helper.make_node("Shape", ["values"], ["nv"]),
             helper.make_node("ConstantOfShape", ["nv"], ["labels"],
                              value=numpy_helper.from_array(np.array([7], np.int64)))]
    inits = [_const("c", np.array(1, np.int64)), _const("threshold", np.float32(0.5)),
             _const("zero", np.array(0, np.int64)), _const("three", np.array(3, np.int64)),
             _const("one", np.array([1], np.int64))]
    return _model(nodes, [helper.make_tensor_value_info("scores", f, [6, 2]),
                          helper.make_tensor_value_info("boxes", f, [6, 4])],
                  [helper.make_tensor_value_info(name, t, None)
                   for name, t in (("values", f), ("best", f), ("labels", i64))], inits)


@pytest.mark.parametrize("chosen", [[0, 3], [1, 2, 4, 5], []])  # two, four (TopK keeps 3), none (empty)
def test_steps_sized_by_data_are_checked_and_charged_by_the_program_as_step_by_step(chosen):
    """The program checks and charges a step sized by data with a checker of its own (program_checks.checker:
    the bytes of inputs sized by the signature summed once): the same results as onnxruntime's, the same
    work spent as the step-by-step run (empty results at their nominal bytes), and a budget one byte short
    stops both runs with a LimitError."""
    from tinyrt import limits
    data = _one_class_of_a_detector()
    sess = tinyrt.InferenceSession(data)
    oracle = ort.InferenceSession(data)
    scores = np.full((6, 2), 0.25, np.float32)
    scores[chosen, 1] = np.float32(0.75) + np.arange(len(chosen), dtype=np.float32) / 8
    feeds = {"scores": scores, "boxes": np.arange(24, dtype=np.float32).reshape(6, 4)}
    for _ in range(3):
        for got, want in zip(sess.run(None, feeds), oracle.run(None, feeds)):
            np.testing.assert_array_equal(got, want)
    plan = sess.plan
    source = plan.last_program.source
    assert "_checked_one(" not in source and "_checked(" not in source, source  # each a checker of its own

    def spent(run, work):
        with limits.scope(1 << 20, work) as budget:
            results = run()
        return work - budget.work, results

    for _ in range(2):  # the program of this limit's signature made (the first run of one goes step by step)
        spent(lambda: plan.run(dict(feeds)), 1 << 40)
    step_by_step, want = spent(lambda: plan.run_steps(dict(feeds)), 1 << 40)
    program, got = spent(lambda: plan.run(dict(feeds)), 1 << 40)
    assert program == step_by_step
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])
    for run in (lambda: plan.run_steps(dict(feeds)), lambda: plan.run(dict(feeds))):
        spent(run, step_by_step)  # exactly enough
        with pytest.raises(limits.LimitError, match="more work than"):
            spent(run, step_by_step - 1)
