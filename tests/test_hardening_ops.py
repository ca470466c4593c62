"""Issue 21 (hardening, round two), item 10: ops whose output size was checked after computing, or not at
all: GridSample cubic on an 8-D grid (2.95 GB from a 356-byte file, even with max_tensor_bytes = 1 MiB),
an implicit Einsum "i,j" (1.13 GB), PRelu and LayerNormalization broadcasting their slope / scale outward
(2 GB, 1.7 GB), GridSample over 16k channels (2.2 GB), SplitToSequence of a 16 MB tensor (2.6 GB, 20 s).
All run in one child process under a memory limit, on both kernel paths; each must end in a TinyrtError
within seconds, and the results of ordinary sizes stay onnxruntime's."""
import json

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper

import tinyrt
from bounded import check_bounded
from hardening_models import F, I64, const, model, vi


def _range(n, name="r"):
    return [helper.make_node("Range", ["zero", "n_" + name, "one"], [name])], \
        [const("zero", 0.0, np.float32), const("n_" + name, float(n), np.float32), const("one", 1.0, np.float32)]


def attacks():
    """name -> (model bytes, feeds, the errors that may end it)."""
    cases = {}
    # GridSample cubic, 8-D: 4^6 tap combinations over 262,144 points
    nodes = [helper.make_node("ConstantOfShape", ["s"], ["grid"], value=helper.make_tensor("v", F, [1], [0.1])),
             helper.make_node("GridSample", ["x", "grid"], ["y"], mode="cubic")]
    cases["GridSample cubic 8-D"] = (model(nodes, [vi("x", [1, 1, 2, 2, 2, 2, 2, 2])], [vi("y", None)],
                                           [const("s", [1, 8, 8, 8, 8, 8, 8, 6])], opset=20),
                                     {"x": np.ones((1, 1, 2, 2, 2, 2, 2, 2), np.float32)})
    # GridSample over 16k channels
    nodes = [helper.make_node("Expand", ["x", "e"], ["big"]),
             helper.make_node("ConstantOfShape", ["s"], ["grid"], value=helper.make_tensor("v", F, [1], [0.1])),
             helper.make_node("GridSample", ["big", "grid"], ["y"])]
    cases["GridSample 16k channels"] = (model(nodes, [vi("x", [1, 1, 4, 4])], [vi("y", None)],
                                              [const("e", [1, 16384, 4, 4]), const("s", [1, 64, 64, 2])], opset=20),
                                        {"x": np.ones((1, 1, 4, 4), np.float32)})
    # implicit Einsum "i,j" of two 16,000-vectors
    r, inits = _range(16000)
    cases["Einsum i,j"] = (model(r + [helper.make_node("Einsum", ["r", "r"], ["y"], equation="i,j")],
                                 [vi("x", [1])], [vi("y", None)], inits),
                           {"x": np.ones(1, np.float32)})
    cases["Einsum ...i,...j"] = (model(r + [helper.make_node("Einsum", ["r", "r"], ["y"], equation="...i,...j")],
                                       [vi("x", [1])], [vi("y", None)], inits),
                                 {"x": np.ones(1, np.float32)})
    # PRelu / LayerNormalization broadcasting outward: [N, 1] against [1, N]
    col = [helper.make_node("Reshape", ["r", "c"], ["col"]), helper.make_node("Reshape", ["r", "w"], ["row"])]
    shapes = [const("c", [-1, 1]), const("w", [1, -1])]
    cases["PRelu outer"] = (model(r + col + [helper.make_node("PRelu", ["col", "row"], ["y"])],
                                  [vi("x", [1])], [vi("y", None)], inits + shapes), {"x": np.ones(1, np.float32)})
    cases["LayerNormalization outer"] = (
        model(r + col + [helper.make_node("LayerNormalization", ["col", "row"], ["y"], axis=-1)],
              [vi("x", [1])], [vi("y", None)], inits + shapes, opset=17), {"x": np.ones(1, np.float32)})
    # SplitToSequence of a 16 MB tensor into 4M pieces
    nodes = [helper.make_node("ConstantOfShape", ["s"], ["t"]),
             helper.make_node("SplitToSequence", ["t"], ["seq"], keepdims=0),
             helper.make_node("SequenceLength", ["seq"], ["y"])]
    cases["SplitToSequence 4M pieces"] = (model(nodes, [vi("x", [1])], [helper.make_tensor_value_info("y", I64, None)],
                                                [const("s", [1 << 22])], opset=13), {"x": np.ones(1, np.float32)})
    return cases


@pytest.mark.slow
def test_op_sizes_are_checked_before_computing():
    out = check_bounded("""
        import json, sys, time, resource
        sys.path.insert(0, "tests")
        import tinyrt
        from test_hardening_ops import attacks
        report = {}
        for kernels in ("numba", "numpy"):
            for limit in (None, 1 << 20):
                for name, (data, feeds) in sorted(attacks().items()):
                    o = tinyrt.SessionOptions()
                    o.kernels, o.max_tensor_bytes = kernels, limit
                    start = time.time()
                    try:
                        tinyrt.InferenceSession(data, o).run(None, feeds)
                        outcome = "ran"
                    except tinyrt.TinyrtError as e:
                        outcome = type(e).__name__
                    report["%s/%s/%s" % (name, kernels, limit)] = (outcome, time.time() - start)
        # this image's peak (VmHWM, KiB): ru_maxrss carries over the forked pytest process's before exec
        report["peak RSS MB"] = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")][0] / 1024.0
        print(json.dumps(report))
        """, timeout=600, memory_mb=1536)
    report = json.loads(out.splitlines()[-1])
    peak = report.pop("peak RSS MB")
    for case, (outcome, seconds) in report.items():
        assert outcome in ("LimitError", "InputError"), (case, outcome)
        assert seconds < 60, (case, seconds)  # a hang guard on a shared machine, not a benchmark
    assert peak < 1000, peak


@pytest.mark.parametrize("equation", ["i,j", "ij,jk", "...i,...i", "ii", "i,i", "bij,bjk->bik", "...ij,...jk"])
def test_einsum_results_stay_onnxruntimes(equation):
    shapes = {"i,j": [(3,), (4,)], "ij,jk": [(2, 3), (3, 4)], "...i,...i": [(2, 3, 4), (2, 3, 4)], "ii": [(3, 3)],
              "i,i": [(5,), (5,)], "bij,bjk->bik": [(2, 3, 4), (2, 4, 5)], "...ij,...jk": [(2, 3, 4), (2, 4, 5)]}
    rng = np.random.default_rng(0)
    feeds = {"x%d" % i: rng.standard_normal(s).astype(np.float32) for i, s in enumerate(shapes[equation])}
    data = model([helper.make_node("Einsum", list(feeds), ["y"], equation=equation)],
                 [vi(k, list(v.shape)) for k, v in feeds.items()], [vi("y", None)], opset=12)
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    np.testing.assert_allclose(tinyrt.InferenceSession(data).run(None, feeds)[0], want, rtol=0, atol=1e-4)


# (onnxruntime has cubic GridSample in 2-D only: 3-D cubic has no oracle)
@pytest.mark.parametrize("mode,rank", [("linear", 2), ("nearest", 2), ("cubic", 2), ("linear", 3), ("nearest", 3)])
def test_grid_sample_results_stay_onnxruntimes(mode, rank):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2) + (4,) * rank).astype(np.float32)
    grid = rng.uniform(-1.1, 1.1, (1,) + (3,) * rank + (rank,)).astype(np.float32)
    data = model([helper.make_node("GridSample", ["x", "g"], ["y"], mode=mode)],
                 [vi("x", list(x.shape)), vi("g", list(grid.shape))], [vi("y", None)], opset=20)
    feeds = {"x": x, "g": grid}
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    np.testing.assert_allclose(tinyrt.InferenceSession(data).run(None, feeds)[0], want, rtol=0, atol=1e-4)


def test_prelu_and_layer_norm_that_broadcast_inward_still_run():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    for node, inits, opset in (
            (helper.make_node("PRelu", ["x", "s"], ["y"]), [const("s", rng.standard_normal((3, 1)), np.float32)], 16),
            (helper.make_node("LayerNormalization", ["x", "s", "b"], ["y"], axis=1),
             [const("s", rng.standard_normal((3, 4)), np.float32), const("b", rng.standard_normal((4,)), np.float32)], 17)):
        data = model([node], [vi("x", [2, 3, 4])], [vi("y", None)], inits, opset=opset)
        want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        np.testing.assert_allclose(tinyrt.InferenceSession(data).run(None, {"x": x})[0], want, rtol=0, atol=1e-4)
