"""Segments (tinyrt/kernel_wrappers/segment.py, kernels/segment.py): a run of convs in the compiled program
executed by one compiled call, with the numbers of the convs' own calls (the test suite's check mode holds
every program to the step-by-step run bit for bit; these tests make sure segments are there to be held)."""
import os
import re

import numpy as np
import pytest
from onnx import helper

from oracle import assert_close, make_model, ort_run, tinyrt_session

pytest.importorskip("numba")


def _trunk(escape=False, size=12):
    """A small MobileNet-like trunk: a 3x3 conv of 16 channels (im2col), an inverted residual block (pointwise
    expand, depthwise, pointwise project, residual Add), a strided depthwise and a pointwise conv; with
    ``escape`` a value inside is also a graph output."""
    rng = np.random.RandomState(0)

    def w(*shape):
        return (rng.standard_normal(shape) * (2.0 / np.prod(shape[1:])) ** 0.5).astype(np.float32)

    inits = {"w0": w(16, 16, 3, 3), "b0": w(16), "w1": w(48, 16, 1, 1), "b1": w(48), "w2": w(48, 1, 3, 3),
             "b2": w(48), "w3": w(16, 48, 1, 1), "b3": w(16), "w4": w(16, 1, 3, 3), "w5": w(24, 16, 1, 1),
             "b5": w(24), "lo": np.float32(0), "hi": np.float32(6)}
    nodes = [helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c0"], ["r0"]),
             helper.make_node("Conv", ["r0", "w1", "b1"], ["c1"]),
             helper.make_node("Clip", ["c1", "lo", "hi"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], group=48, pads=[1, 1, 1, 1]),
             helper.make_node("Clip", ["c2", "lo", "hi"], ["r2"]),
             helper.make_node("Conv", ["r2", "w3", "b3"], ["c3"]),
             helper.make_node("Add", ["c3", "r0"], ["a3"]),
             helper.make_node("Conv", ["a3", "w4"], ["c4"], group=16, strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["c4", "w5", "b5"], ["y"])]
    outputs = ["y", "r2"] if escape else ["y"]
    return make_model(nodes, {"x": np.zeros((1, 16, size, size), np.float32)}, outputs, inits)


def _runs(model, x, threads=1, runs=3):
    sess = tinyrt_session(model, "numba", threads)
    for _ in range(runs):  # the second run makes the program, later ones run it
        got = sess.run(None, {"x": x})
    return sess, got


@pytest.mark.parametrize("escape", [False, True])
def test_a_trunk_runs_as_segments_with_onnxruntimes_numbers(escape):
    model = _trunk(escape)
    x = np.random.RandomState(1).standard_normal((1, 16, 12, 12)).astype(np.float32)
    sess, got = _runs(model, x)
    source = sess.plan.last_program.source
    for g, want in zip(got, ort_run(model, {"x": x})):
        assert_close(g, want)
    numpy_path = tinyrt_session(model, "numpy").run(None, {"x": x})
    for g, want in zip(got, numpy_path):
        assert_close(g, want)
    if escape:  # r2 is a graph output too: the segment returns it with y (from the arena it was made in)
        assert re.search(r"t\d+, t\d+ = segment_0\(t0\)  # steps 0-5, 6 convs in one compiled call", source), source
    else:
        assert "steps 0-5, 6 convs in one compiled call" in source, source


@pytest.mark.parametrize("escape", [False, True])
def test_a_segment_gives_the_numbers_of_its_layers_own_calls(escape):
    """Bit for bit: the segment's call against its layers' calls one by one (what a wider run does); with
    a value read after the segment too (``escape``), both return it first, then the last output."""
    model = _trunk(escape)
    x = np.random.RandomState(2).standard_normal((1, 16, 12, 12)).astype(np.float32)
    sess, got = _runs(model, x)
    program = sess.plan.last_program
    segment = program.globals["segment_0"]
    together = segment(x)
    one_by_one = segment._one_by_one(x)
    if escape:
        assert len(together) == len(one_by_one) == 2 and together[0].shape == (1, 48, 12, 12)
        assert together[0].tobytes() == np.ascontiguousarray(one_by_one[0]).tobytes()
        np.testing.assert_array_equal(got[1], together[0])
        together, one_by_one = together[1], one_by_one[1]
    assert together.shape == one_by_one.shape == (1, 24, 6, 6)
    assert together.tobytes() == np.ascontiguousarray(one_by_one).tobytes()
    np.testing.assert_array_equal(got[0], together)


def test_a_segment_on_two_threads_gives_the_numbers_of_one():
    """At 56x56 the layers are worth splitting: the pool's threads run the segment together, meeting at
    every layer; the numbers are those of one thread, bit for bit."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one core")
    model = _trunk(size=56)
    x = np.random.RandomState(3).standard_normal((1, 16, 56, 56)).astype(np.float32)
    one = _runs(model, x, threads=1)[1][0]
    sess, two = _runs(model, x, threads=2, runs=6)
    segment = sess.plan.last_program.globals["segment_0"]
    assert segment.width == 2 and segment.parallel
    np.testing.assert_array_equal(one, two[0])
    assert_close(two[0], ort_run(model, {"x": x})[0])


def test_a_program_per_thread_width():
    """At the default thread count the width is chosen run by run (threads.WidthChooser): each width gets
    its own program, with segments made for it, and the same numbers."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one core")
    model = _trunk(size=56)
    x = np.random.RandomState(4).standard_normal((1, 16, 56, 56)).astype(np.float32)
    sess = tinyrt_session(model, "numba", 0)
    first = sess.run(None, {"x": x})[0]
    widths = iter([1, 1, 1, 2, 2, 2, 1, 2])
    sess.kernels.chooser.pick = lambda: next(widths)
    for _ in range(8):
        np.testing.assert_array_equal(sess.run(None, {"x": x})[0], first)
    by_width = {key[-1]: p for key, p in sess.plan._programs.items()}
    assert sorted(by_width) == [1, 2]
    assert {w: p.globals["segment_0"].width for w, p in by_width.items()} == {1: 1, 2: 2}


def _squeeze_excite(size=14, scales_first=False):
    """MobileNetV3's block: pointwise expand, depthwise, squeeze-excite (GlobalAveragePool, two 1x1 convs,
    HardSigmoid, the scaling Mul; ``scales_first``: Mul(s, x)), pointwise project; then a pooled head."""
    rng = np.random.RandomState(5)

    def w(*shape):
        return (rng.standard_normal(shape) * (2.0 / np.prod(shape[1:])) ** 0.5).astype(np.float32)

    inits = {"w1": w(32, 16, 1, 1), "b1": w(32), "w2": w(32, 1, 3, 3), "b2": w(32), "w3": w(8, 32, 1, 1),
             "b3": w(8), "w4": w(32, 8, 1, 1), "b4": w(32), "w5": w(16, 32, 1, 1), "b5": w(16)}
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"]),
             helper.make_node("HardSwish", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], group=32, pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
             helper.make_node("Conv", ["g", "w3", "b3"], ["c3"]),
             helper.make_node("Relu", ["c3"], ["r3"]),
             helper.make_node("Conv", ["r3", "w4", "b4"], ["c4"]),
             helper.make_node("HardSigmoid", ["c4"], ["s"], alpha=1.0 / 6),
             helper.make_node("Mul", ["s", "r2"] if scales_first else ["r2", "s"], ["m"]),
             helper.make_node("Conv", ["m", "w5", "b5"], ["c5"]),
             helper.make_node("GlobalAveragePool", ["c5"], ["y"])]
    return make_model(nodes, {"x": np.zeros((1, 16, size, size), np.float32)}, ["y"], inits, opset=14)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("scales_first", [False, True])
def test_a_squeeze_excite_block_runs_in_one_segment(scales_first, threads):
    """GlobalAveragePool and the scaling Mul are layers too (kernels/pool.py and eltwise.py's kernels, the
    same calls): a MobileNetV3 block and its pooled head are one compiled call, with the numbers of the
    layers' own calls and onnxruntime's."""
    if threads > 1 and len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one core")
    model = _squeeze_excite(size=28, scales_first=scales_first)
    x = np.random.RandomState(6).standard_normal((1, 16, 28, 28)).astype(np.float32)
    sess, got = _runs(model, x, threads=threads, runs=4)
    source = sess.plan.last_program.source
    assert "steps 0-7, 5 convs, 2 poolings, 1 scaling in one compiled call" in source, source
    segment = sess.plan.last_program.globals["segment_0"]
    assert segment(x).tobytes() == np.ascontiguousarray(segment._one_by_one(x)).tobytes()
    np.testing.assert_array_equal(got[0], tinyrt_session(model, "numba", threads).run(None, {"x": x})[0])
    assert_close(got[0], ort_run(model, {"x": x})[0])
    assert_close(got[0], tinyrt_session(model, "numpy").run(None, {"x": x})[0])


def _shuffle_units(size=14, units=2):
    """ShuffleNetV2's units as torch exports them: the input cut in two channel halves by Slices (the end of
    the first half worked out from its Shape, as torch writes ``chunk``), a branch of pointwise, depthwise,
    pointwise convs on the second half, and the channel shuffle of the first half and the branch (Concat,
    Reshape, Transpose, Reshape: one ConcatShuffle after the passes); a pointwise conv before and after."""
    rng = np.random.RandomState(7)

    def w(*shape):
        return (rng.standard_normal(shape) * (2.0 / np.prod(shape[1:])) ** 0.5).astype(np.float32)

    inits = {"w_in": w(24, 16, 1, 1), "w_out": w(32, 24, 1, 1), "zero": np.array([0], np.int64),
             "axis1": np.array([1], np.int64), "big": np.array([2 ** 62], np.int64), "one": np.array(1, np.int64),
             "two": np.array(2, np.int64), "grouped": np.array([1, 2, 12, size, size], np.int64),
             "flat": np.array([1, 24, size, size], np.int64)}
    nodes = [helper.make_node("Conv", ["x", "w_in"], ["c"]), helper.make_node("Relu", ["c"], ["u0"])]
    for u in range(units):
        x, p = "u%d" % u, "u%d_" % u
        inits.update({p + "w1": w(12, 12, 1, 1), p + "w2": w(12, 1, 3, 3), p + "w3": w(12, 12, 1, 1)})
        nodes += [helper.make_node("Shape", [x], [p + "shape"]),
                  helper.make_node("Gather", [p + "shape", "one"], [p + "channels"], axis=0),
                  helper.make_node("Div", [p + "channels", "two"], [p + "half"]),
                  helper.make_node("Unsqueeze", [p + "half", "zero"], [p + "mid"]),
                  helper.make_node("Slice", [x, "zero", p + "mid", "axis1"], [p + "x1"]),
                  helper.make_node("Slice", [x, p + "mid", "big", "axis1"], [p + "x2"]),
                  helper.make_node("Conv", [p + "x2", p + "w1"], [p + "b1"]),
                  helper.make_node("Relu", [p + "b1"], [p + "r1"]),
                  helper.make_node("Conv", [p + "r1", p + "w2"], [p + "b2"], group=12, pads=[1, 1, 1, 1]),
                  helper.make_node("Conv", [p + "b2", p + "w3"], [p + "b3"]),
                  helper.make_node("Relu", [p + "b3"], [p + "r3"]),
                  helper.make_node("Concat", [p + "x1", p + "r3"], [p + "cat"], axis=1),
                  helper.make_node("Reshape", [p + "cat", "grouped"], [p + "g"]),
                  helper.make_node("Transpose", [p + "g"], [p + "t"], perm=[0, 2, 1, 3, 4]),
                  helper.make_node("Reshape", [p + "t", "flat"], ["u%d" % (u + 1)])]
    nodes.append(helper.make_node("Conv", ["u%d" % units, "w_out"], ["y"]))
    return make_model(nodes, {"x": np.zeros((1, 16, size, size), np.float32)}, ["y"], inits, opset=13)


@pytest.mark.parametrize("threads", [1, 2])
def test_shufflenet_units_run_in_one_segment(threads):
    """A ShuffleNet's channel shuffles and channel slices are layers too (kernels/channels.py): its units are
    one compiled call (the Shape arithmetic of the slices folded away between them), with the numbers of
    the layers' own calls, of the numpy path and of onnxruntime."""
    if threads > 1 and len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one core")
    model = _shuffle_units(size=28)
    x = np.random.RandomState(8).standard_normal((1, 16, 28, 28)).astype(np.float32)
    sess, got = _runs(model, x, threads=threads, runs=4)
    source = sess.plan.last_program.source
    assert re.search(r"= segment_0\(t0\)  # steps 0-\d+, 8 convs, 2 shuffles, 4 channel slices in one compiled call",
                     source), source
    program = source.split("# legend")[0].replace("shuffles", "").replace("slices", "")
    assert "shuffle" not in program and "slice" not in program, source  # nothing runs alone
    segment = sess.plan.last_program.globals["segment_0"]
    assert segment(x).tobytes() == np.ascontiguousarray(segment._one_by_one(x)).tobytes()
    np.testing.assert_array_equal(got[0], tinyrt_session(model, "numba", threads).run(None, {"x": x})[0])
    assert_close(got[0], ort_run(model, {"x": x})[0])
    assert_close(got[0], tinyrt_session(model, "numpy").run(None, {"x": x})[0])
