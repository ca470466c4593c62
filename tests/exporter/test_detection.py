"""SSD-Lite (mmdet ssdlite_mobilenetv2 layout) and its in-graph post-processing: torch == onnxruntime == tinyrt.

* anchors: 3234 at 320x320, and spot values against mmdet's SSDAnchorGenerator formula restated here;
* the DeltaXYWH decoder against its formula; the torch NMS against hand-made cases;
* the torch pipeline (DetectionExport) against a plain numpy restatement of it on the raw head outputs;
* exports at opsets 11 and 13 (TorchScript exporter, one with a dynamic batch of 2) and with the dynamo
  exporter: dets / labels from torch, onnxruntime and tinyrt agree (same number of real rows, same labels,
  boxes and scores within tolerance, rows matched by compare_detections so float-noise reorderings of
  near-equal scores do not count), and the graph holds NonMaxSuppression and TopK.

The models are SSD-Lite at width 0.25 with seeded random weights: conv weights He-normal, BatchNorm statistics
calibrated on random input (variances floored so no channel amplifies rounding noise), and the background
logit biased so that some anchors fall below the score threshold. Most tests use a 160x160 input with
nms_pre lowered to 300 so that the per-level TopK is in the graph; one uses MMEdu's 320x320 and defaults.
"""
import io
import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import tinyrt  # noqa: E402
from exporter.detection import (DEFAULTS, DetectionExport, batched_nms, delta2bbox,  # noqa: E402
                                postprocess_reference, ssd_anchors)
from tinyrt.vision.detections import compare_detections  # noqa: E402
from exporter.models.ssdlite import SSDLite, feature_sizes  # noqa: E402


# ------------------------------------------------------------------------------------------------ helpers


def randomize_(model, seed=0, input_size=(160, 160), bg_bias=2.0):
    """Seeded random weights whose outputs depend on the input and whose scores straddle the threshold."""
    g = torch.Generator().manual_seed(seed)
    nn = torch.nn
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.Conv2d):
                fan_in = mod.weight[0].numel()
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * math.sqrt(2.0 / fan_in))
                if mod.bias is not None:
                    mod.bias.copy_(torch.randn(mod.bias.shape, generator=g) * 0.1)
            elif isinstance(mod, nn.BatchNorm2d):
                mod.reset_running_stats()
                mod.momentum = None  # cumulative average over the calibration batches
        model.train()
        for _ in range(2):
            model(torch.randn((8, 3) + tuple(input_size), generator=g))
        model.eval()
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.momentum = 0.1
                # a channel that ReLU6 almost always saturates has a tiny variance and would amplify noise
                mod.running_var.clamp_(min=0.1)
                mod.weight.copy_(1 + 0.2 * torch.randn(mod.weight.shape, generator=g))
                mod.bias.copy_(0.2 * torch.randn(mod.bias.shape, generator=g))
        c1 = model.bbox_head.cls_out_channels
        for seq in model.bbox_head.cls_convs:
            seq[1].bias.view(-1, c1)[:, -1] += bg_bias  # background is the last class
    return model


def make_input(n, size, seed=1):
    return torch.randn((n, 3) + tuple(size), generator=torch.Generator().manual_seed(seed))


def export_bytes(module, x, opset, dynamo=False, dynamic_batch=False):
    f = io.BytesIO()
    kwargs = dict(opset_version=opset, input_names=["input"], output_names=["dets", "labels"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            kwargs["dynamic_shapes"] = {"x": {0: torch.export.Dim("N")}} if dynamic_batch else None
            prog = torch.onnx.export(module, (x,), None, dynamo=True, verbose=False, **kwargs)
            return prog.model_proto.SerializeToString()
        if dynamic_batch:
            kwargs["dynamic_axes"] = {"input": {0: "N"}, "dets": {0: "N"}, "labels": {0: "N"}}
        torch.onnx.export(module, (x,), f, dynamo=False, **kwargs)
    return f.getvalue()


def run_all(model_bytes, module, x):
    with torch.no_grad():
        ref = [t.numpy() for t in module(x)]
    feeds = {"input": x.numpy()}
    got_ort = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"]).run(None, feeds)
    got_trt = tinyrt.InferenceSession(model_bytes).run(None, feeds)
    return ref, got_ort, got_trt


def assert_same_detections(ref, got, who):
    m = compare_detections(ref[0], ref[1], got[0], got[1], near_ties=False)
    assert m.ok, "%s: %s" % (who, m.detail)
    assert got[0].dtype == np.float32 and got[1].dtype == np.int64
    padding = got[0][..., 4] <= 0                      # padding rows: all zero, label -1
    assert np.all(got[0][padding] == 0) and np.all(got[1][padding] == -1), "%s: padding rows" % who
    return m.box_diff, m.score_diff


@pytest.fixture(scope="module")
def small():
    """Width 0.25, 4 classes, 160x160, nms_pre 300 (so level 0's 600 anchors go through TopK)."""
    m = randomize_(SSDLite(4, width_mult=0.25, input_size=160), input_size=(160, 160), bg_bias=8.0)
    return DetectionExport(m, nms_pre=300).eval()


# ------------------------------------------------------------------------------------------------ anchors


def mmdet_anchor(level, i, j, a, strides=(16, 32, 64, 107, 160, 320), min_sizes=(48, 100, 150, 202, 253, 304),
                 max_sizes=(100, 150, 202, 253, 304, 320)):
    """mmdet SSDAnchorGenerator, written out: cell (i, j) of a level, anchor a of 6.

    Centre (j * s + s / 2, i * s + s / 2). Anchors: min square, sqrt(min * max) square, then the min size
    with ratio h/w = 1/2, 2, 1/3, 3 (width min / sqrt(r), height min * sqrt(r))."""
    s, lo, hi = strides[level], min_sizes[level], max_sizes[level]
    cx, cy = j * s + s / 2.0, i * s + s / 2.0
    if a == 0:
        w = h = lo
    elif a == 1:
        w = h = lo * math.sqrt(hi / lo)
    else:
        r = (0.5, 2.0, 1 / 3.0, 3.0)[a - 2]
        w, h = lo / math.sqrt(r), lo * math.sqrt(r)
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def test_anchor_count_and_layout_at_320():
    model = SSDLite(80)
    sizes = model.feature_sizes()
    assert sizes == [(20, 20), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
    anchors = model.anchors()
    assert [a.shape[0] for a in anchors] == [2400, 600, 150, 54, 24, 6]
    assert sum(a.shape[0] for a in anchors) == 3234
    assert all(a.dtype == torch.float32 for a in anchors)


@pytest.mark.parametrize("level,i,j,a", [(0, 0, 0, 0), (0, 0, 0, 1), (0, 3, 7, 2), (0, 19, 19, 5), (1, 4, 2, 3),
                                         (2, 2, 4, 4), (3, 1, 2, 5), (3, 2, 2, 1), (4, 1, 0, 2), (5, 0, 0, 0),
                                         (5, 0, 0, 1), (5, 0, 0, 5)])
def test_anchor_spot_values(level, i, j, a):
    anchors = ssd_anchors(feature_sizes(320))
    fw = feature_sizes(320)[level][1]
    got = anchors[level][(i * fw + j) * 6 + a].tolist()
    np.testing.assert_allclose(got, mmdet_anchor(level, i, j, a), rtol=0, atol=1e-3)


def test_anchors_of_a_non_square_input():
    sizes = feature_sizes((320, 192))
    assert sizes == [(20, 12), (10, 6), (5, 3), (3, 2), (2, 1), (1, 1)]
    anchors = ssd_anchors(sizes)
    # cell (i=2, j=5) of level 0: row-major over a 12-wide grid
    np.testing.assert_allclose(anchors[0][(2 * 12 + 5) * 6 + 3].tolist(), mmdet_anchor(0, 2, 5, 3), atol=1e-3)


def test_head_outputs_match_the_anchor_grid():
    model = SSDLite(3, width_mult=0.25, input_size=160).eval()
    with torch.no_grad():
        cls, reg = model(torch.zeros(1, 3, 160, 160))
    for c, r, (h, w), anc in zip(cls, reg, model.feature_sizes(), model.anchors()):
        assert tuple(c.shape) == (1, 6 * 4, h, w) and tuple(r.shape) == (1, 6 * 4, h, w)
        assert anc.shape[0] == h * w * 6


# ----------------------------------------------------------------------------------------- decode and NMS


def test_delta2bbox_formula_and_clipping():
    anchors = torch.tensor([[10.0, 20.0, 50.0, 100.0], [0.0, 0.0, 16.0, 16.0], [300.0, 300.0, 340.0, 330.0]])
    deltas = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, -2.0, 0.5, -0.5], [0.3, 0.1, 100.0, -100.0]])
    got = delta2bbox(anchors, deltas, max_shape=(320, 320)).numpy()
    exp = []
    max_ratio = abs(math.log(16 / 1000))
    for (x1, y1, x2, y2), (dx, dy, dw, dh) in zip(anchors.tolist(), deltas.tolist()):
        dx, dy, dw, dh = dx * 0.1, dy * 0.1, dw * 0.2, dh * 0.2
        dw, dh = max(-max_ratio, min(max_ratio, dw)), max(-max_ratio, min(max_ratio, dh))
        pw, ph = x2 - x1, y2 - y1
        gx, gy = (x1 + x2) / 2 + pw * dx, (y1 + y2) / 2 + ph * dy
        gw, gh = pw * math.exp(dw), ph * math.exp(dh)
        exp.append([min(max(v, 0), 320) for v in (gx - gw / 2, gy - gh / 2, gx + gw / 2, gy + gh / 2)])
    np.testing.assert_allclose(got, exp, rtol=1e-5, atol=1e-4)
    assert got[0].tolist() == [10.0, 20.0, 50.0, 100.0]


def test_batched_nms_semantics():
    boxes = torch.tensor([[[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [20, 20, 30, 30], [5, 5, 5, 5],
                           [50, 50, 60, 60]]], dtype=torch.float32)
    scores = torch.tensor([[[0.9, 0.8, 0.9, 0.7, 0.95, 0.01],      # class 0
                            [0.1, 0.5, 0.2, 0.3, 0.0, 0.6]]])      # class 1
    sel = batched_nms(boxes, scores, torch.tensor([10]), torch.tensor([0.5]), torch.tensor([0.02]))
    # class 0: the zero-area box 4 first (never suppresses), then box 0 (ties: lower index), which
    # suppresses its duplicate 2 and box 1 (IoU 0.68), then 3; box 5 is below the score threshold.
    # class 1: 5, then 1 (which suppresses 2 and 0), then 3; the zero-score box 4 does not take part
    assert sel.tolist() == [[0, 0, 4], [0, 0, 0], [0, 0, 3], [0, 1, 5], [0, 1, 1], [0, 1, 3]]
    sel = batched_nms(boxes, scores, torch.tensor([2]), torch.tensor([0.5]), torch.tensor([0.02]))
    assert sel.tolist() == [[0, 0, 4], [0, 0, 0], [0, 1, 5], [0, 1, 1]]
    # the same through onnxruntime's NonMaxSuppression
    from onnx import TensorProto, helper
    node = helper.make_node("NonMaxSuppression", ["b", "s", "m", "i", "t"], ["y"])
    graph = helper.make_graph([node], "nms", [
        helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 6, 4]),
        helper.make_tensor_value_info("s", TensorProto.FLOAT, [1, 2, 6]),
        helper.make_tensor_value_info("m", TensorProto.INT64, [1]),
        helper.make_tensor_value_info("i", TensorProto.FLOAT, [1]),
        helper.make_tensor_value_info("t", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, [None, 3])])
    mb = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]).SerializeToString()
    y = ort.InferenceSession(mb, providers=["CPUExecutionProvider"]).run(None, {
        "b": boxes.numpy(), "s": scores.numpy(), "m": np.array([10], np.int64), "i": np.array([0.5], np.float32),
        "t": np.array([0.02], np.float32)})[0]
    assert y.tolist() == batched_nms(boxes, scores, torch.tensor([10]), torch.tensor([0.5]),
                                     torch.tensor([0.02])).tolist()


# ------------------------------------------------------------------------------------- torch pipeline


def test_torch_pipeline_matches_a_numpy_restatement(small):
    x = make_input(1, (160, 160))
    with torch.no_grad():
        dets, labels = small(x)
        cls, reg = small.model(x)
    assert dets.shape == (1, 200, 5) and labels.shape == (1, 200) and labels.dtype == torch.int64
    ref_d, ref_l = postprocess_reference([c.numpy() for c in cls], [r.numpy() for r in reg],
                                         [a.numpy() for a in small.model.anchors()], (160, 160), 4,
                                         nms_pre=300)
    n = ref_d.shape[0]
    assert 0 < n
    pad_d = np.zeros((1, 200, 5))
    pad_l = np.full((1, 200), -1, np.int64)
    pad_d[0, :n], pad_l[0, :n] = ref_d[:200], ref_l[:200]
    m = compare_detections(pad_d, pad_l, dets.numpy(), labels.numpy(), near_ties=False, score_tolerance=1e-5)
    assert m.ok, m.detail


def test_padding_rows_when_few_boxes_survive():
    m = randomize_(SSDLite(2, width_mult=0.25, input_size=160), seed=3, input_size=(160, 160), bg_bias=8.0)
    d = DetectionExport(m).eval()
    with torch.no_grad():
        dets, labels = d(make_input(1, (160, 160)))
    real = dets[0, :, 4] > 0
    k = int(real.sum())
    assert 0 < k < 200, k
    assert bool(real[:k].all()) and not bool(real[k:].any())           # real rows first, by score
    assert torch.all(dets[0, k:] == 0) and torch.all(labels[0, k:] == -1)
    assert torch.all(dets[0, :k, 4] > DEFAULTS["score_thr"])
    assert torch.all(dets[0, 1:k, 4] <= dets[0, :k - 1, 4])


def test_wrong_input_size_is_refused(small):
    with pytest.raises(ValueError, match="160"):
        small(torch.zeros(1, 3, 320, 320))


# -------------------------------------------------------------------------------- export and runtimes


def _ops(model_bytes):
    return {n.op_type for n in onnx.load_from_string(model_bytes).graph.node}


@pytest.mark.parametrize("opset,batch", [(11, 1), (13, 2)])
def test_export_torchscript_matches_onnxruntime_and_tinyrt(small, opset, batch):
    x = make_input(batch, (160, 160), seed=opset)
    mb = export_bytes(small, make_input(1, (160, 160)), opset, dynamic_batch=batch > 1)
    ops = _ops(mb)
    assert {"NonMaxSuppression", "TopK", "Softmax"} <= ops
    assert all(n.domain in ("", "ai.onnx") for n in onnx.load_from_string(mb).graph.node)
    ref, got_ort, got_trt = run_all(mb, small, x)
    assert ref[0].shape == (batch, 200, 5) and ref[1].shape == (batch, 200)
    assert (ref[0][..., 4] > 0).sum() > 0
    assert_same_detections(ref, got_ort, "onnxruntime")
    assert_same_detections(ref, got_trt, "tinyrt")
    m = compare_detections(got_ort[0], got_ort[1], got_trt[0], got_trt[1], near_ties=False)
    assert m.ok, "tinyrt vs onnxruntime: " + m.detail


def test_export_at_320_with_mmedu_defaults():
    m = randomize_(SSDLite(3, width_mult=0.25, input_size=320), seed=5, input_size=(320, 320), bg_bias=3.0)
    d = DetectionExport(m).eval()
    assert d.level_sizes == [2400, 600, 150, 54, 24, 6]
    mb = export_bytes(d, make_input(1, (320, 320)), 11)
    model = onnx.load_from_string(mb)
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["dets", "labels"]
    topks = [n for n in model.graph.node if n.op_type == "TopK"]
    assert len(topks) == 2  # level 0 (2400 > nms_pre 1000) and the final K = 200
    ref, got_ort, got_trt = run_all(mb, d, make_input(1, (320, 320), seed=7))
    assert ref[0].shape == (1, 200, 5)
    assert_same_detections(ref, got_ort, "onnxruntime")
    assert_same_detections(ref, got_trt, "tinyrt")


def test_export_dynamo(small):
    try:
        mb = export_bytes(small, make_input(1, (160, 160)), 18, dynamo=True)
    except Exception as e:  # pragma: no cover - depends on the torch version
        pytest.skip("the dynamo exporter cannot export DetectionExport here: %s" % str(e).splitlines()[0])
    assert "NonMaxSuppression" in _ops(mb) and "NonZero" not in _ops(mb)
    ref, got_ort, got_trt = run_all(mb, small, make_input(1, (160, 160), seed=3))
    assert_same_detections(ref, got_ort, "onnxruntime")
    assert_same_detections(ref, got_trt, "tinyrt")


def test_compare_detections_catches_differences():
    dets = np.zeros((1, 4, 5), np.float32)
    labels = np.full((1, 4), -1, np.int64)
    dets[0, :2] = [[1, 2, 30, 40, 0.9], [5, 5, 20, 20, 0.8]]
    labels[0, :2] = [1, 0]
    swapped_d, swapped_l = dets.copy(), labels.copy()
    swapped_d[0, [0, 1]], swapped_l[0, [0, 1]] = dets[0, [1, 0]], labels[0, [1, 0]]
    assert compare_detections(dets, labels, swapped_d, swapped_l, near_ties=False).ok     # order alone does not matter
    moved = dets.copy()
    moved[0, 0, 2] += 1.0
    assert not compare_detections(dets, labels, moved, labels, near_ties=False).ok
    relabelled = labels.copy()
    relabelled[0, 0] = 2
    assert not compare_detections(dets, labels, dets, relabelled, near_ties=False).ok
    fewer_d, fewer_l = dets.copy(), labels.copy()
    fewer_d[0, 1], fewer_l[0, 1] = 0, -1
    assert not compare_detections(dets, labels, fewer_d, fewer_l, near_ties=False).ok
