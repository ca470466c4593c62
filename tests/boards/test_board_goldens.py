"""The board models and goldens are current (x86, no emulation): the board tests compare against them.

* every golden was made from the model file as it is now (sha256 inside the golden);
* onnxruntime, run again on the stored model and the golden's feed, gives the golden's outputs: if a model
  changed or the goldens went stale, ``python tests/boards/make_models.py`` rebuilds them;
* tinyrt on x86 matches them too (so a board failure is about the board, not the model);
* the files keep the layouts the board tests promise (MMEdu's layout, NMS in the graph, opsets, dynamic
  batch) and stay small (< 2 MB each).
"""
import json
import os

import numpy as np
import pytest

from boardtest import TOLERANCE, model_names
import make_models

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def _rel(a, b):
    return float(np.abs(a.astype(np.float64) - b).max()) / max(1.0, float(np.abs(b).max())) if b.size else 0.0


@pytest.fixture(scope="module", params=model_names())
def case(request):
    name = request.param
    path = os.path.join(make_models.MODELS, name)
    assert os.path.isfile(make_models.golden_path(name)), "no golden for %s: run tests/boards/make_models.py" % name
    golden = dict(np.load(make_models.golden_path(name), allow_pickle=False))
    return name, path, golden


def test_golden_is_for_this_model(case):
    name, path, golden = case
    assert str(golden["sha256"]) == make_models.sha256(path), (
        "%s changed since its golden was made: run tests/boards/make_models.py" % name)
    feed_name, shape, seed = make_models.FEEDS[name]
    assert str(golden["feed_name"]) == feed_name
    assert tuple(golden["feed_shape"]) == shape and int(golden["feed_seed"]) == seed


def test_golden_matches_onnxruntime_now(case):
    name, path, golden = case
    feed_name, shape, seed = make_models.FEEDS[name]
    names, outs = make_models.ort_outputs(path, feed_name, make_models.make_feed(shape, seed))
    assert names == [str(n) for n in golden["output_names"]]
    for i, out in enumerate(outs):
        want = golden["output_%d" % i]
        assert out.dtype == want.dtype and out.shape == want.shape, names[i]
        if want.dtype.kind == "f":
            # another onnxruntime build may round differently; anything beyond that means a stale golden
            assert _rel(out, want) <= 1e-5, "%s %s: %.2e: run tests/boards/make_models.py" % (
                name, names[i], _rel(out, want))
        else:
            np.testing.assert_array_equal(out, want, err_msg="%s %s" % (name, names[i]))


def test_tinyrt_on_x86_matches_golden(case):
    import tinyrt
    name, path, golden = case
    feed_name, shape, seed = make_models.FEEDS[name]
    outs = tinyrt.InferenceSession(path).run(None, {feed_name: make_models.make_feed(shape, seed)})
    for i, out in enumerate(outs):
        want = golden["output_%d" % i]
        assert out.dtype == want.dtype and out.shape == want.shape
        if want.dtype.kind == "f":
            assert _rel(out, want) <= TOLERANCE, "%s: %.2e" % (name, _rel(out, want))
        else:
            np.testing.assert_array_equal(out, want)


def test_model_is_small(case):
    name, path, _ = case
    assert os.path.getsize(path) < 2e6, "%s is %.1f MB: board models must stay under 2 MB" % (
        name, os.path.getsize(path) / 1e6)


def _model(name):
    return onnx.load(os.path.join(make_models.MODELS, name))


def _opset(m):
    return {o.domain or "ai.onnx": o.version for o in m.opset_import}["ai.onnx"]


@pytest.mark.parametrize("opset", [11, 13])
def test_mobilenet_layout(opset):
    m = _model("mobilenetv2_op%d.onnx" % opset)
    assert _opset(m) == opset
    dims = m.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and not dims[0].dim_value, "the batch dimension must be dynamic"
    assert [d.dim_value for d in dims[1:]] == [3, 96, 96]
    assert make_models.FEEDS["mobilenetv2_op%d.onnx" % opset][1][0] == 2, "fed batch 2 on the board"


def test_mmedu_layout():
    m = _model("mmedu_mobilenet.onnx")
    assert _opset(m) == 11
    assert [i.name for i in m.graph.input][0] == "input"
    assert [o.name for o in m.graph.output] == ["probs"]
    assert m.graph.node[-1].op_type == "Softmax"
    inits = {t.name for t in m.graph.initializer}
    assert inits and inits <= {i.name for i in m.graph.input}, "initializers must also be graph inputs"
    meta = {p.key: p.value for p in m.metadata_props}
    info = json.loads(meta["MODEL_INFO"])
    assert info["codebase"] == "MMCls" and info["classes"] == make_models.MMEDU_CLASSES


def test_ssdlite_has_nms_in_graph():
    m = _model("ssdlite_op11.onnx")
    ops = {n.op_type for n in m.graph.node}
    assert {"NonMaxSuppression", "TopK", "Softmax"} <= ops
    assert [o.name for o in m.graph.output] == ["dets", "labels"]
    dets = np.load(make_models.golden_path("ssdlite_op11.onnx"))["output_0"]
    assert 5 <= int((dets[0, :, 4] > 0).sum()) < 200, "the golden should hold a few dozen real detections"
