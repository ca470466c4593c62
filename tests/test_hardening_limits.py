"""Issue 7 (hardening), items 1 and 7: sizes read from a file never make tinyrt allocate (or loop) beyond the
session's limits, and those limits are documented with the numbers the code uses (docs/limits.md).
The fuzzing of item 1 is in test_hardening_fuzz.py."""
import os
import threading
import time

import numpy as np
import pytest
from onnx import TensorProto, helper

from bounded import check_bounded
from hardening_models import I64, const, model, traced, vi
import tinyrt
from tinyrt import limits


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


SLOW_ALLOCATORS = {"Concat of one input many times"}   # about 10 s each on a busy 2-core machine


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_ALLOCATORS else n
                                  for n in sorted(ALLOCATORS)])
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


@pytest.mark.slow  # a bounded child process: about 10 s
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


@pytest.mark.slow  # a bounded child process: about 10 s
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
