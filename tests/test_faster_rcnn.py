"""torchvision's fasterrcnn_mobilenet_v3_large_320_fpn, exported by torch, through tinyrt and onnxruntime.

The model is torchvision's own code (tests/torchvision_local.py: its Python files beside our CPU torch,
its two compiled ops defined in torch), with random weights: torchvision's init makes every box's score
nearly the same, so the box classifier, the box head and the backbone's biases are drawn wider, which
gives 100 detections with 100 different scores. The graph has what such files have: the transform
(normalize, resize), the backbone and FPN, the RPN's anchors, top-k and NonMaxSuppression per level,
RoiAlign over the pyramid levels (MultiScaleRoIAlign), the box head and the per-class post-processing.
tinyrt must give onnxruntime's boxes, labels and scores (tinyrt.vision.detections.compare_detections:
rows matched as sets, since two boxes whose scores differ by float noise may come out in either order).
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

import torchvision_local  # noqa: E402
import tinyrt  # noqa: E402
from tinyrt.vision.detections import compare_detections  # noqa: E402

SIZE = 320
SCORE_THR = 0.05  # torchvision's box_score_thresh


def build():
    torchvision, why = torchvision_local.load()
    if torchvision is None:
        pytest.skip("torchvision's Python code is not available here: " + why)
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn
    torch.manual_seed(0)
    model = fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None, num_classes=5).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "roi_heads.box_predictor.cls_score" in name:
                p.copy_(torch.randn(p.shape, generator=g) * (0.3 if p.ndim > 1 else 1.0))
            elif "roi_heads.box_head" in name and p.ndim > 1:
                p.copy_(torch.randn(p.shape, generator=g) * (2.0 / p[0].numel()) ** 0.5)
            elif "backbone" in name and name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return model


@pytest.fixture(scope="module", params=[16, 11], ids=["opset16", "opset11"])
def exported(request, tmp_path_factory):
    import warnings
    model = build()
    path = str(tmp_path_factory.mktemp("frcnn") / ("frcnn_%d.onnx" % request.param))
    image = torch.from_numpy(picture())
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, ([image],), path, opset_version=request.param, dynamo=False,
                          input_names=["image"], output_names=["boxes", "labels", "scores"])
    return path


def picture():
    return np.random.RandomState(0).rand(3, SIZE, SIZE).astype(np.float32)


def _ops(graph):
    """The op types of a graph and of its subgraphs (NMS sits in an If)."""
    found = set()
    for node in graph.node:
        found.add(node.op_type)
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                found |= _ops(sub)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("kernels", ["numba", "numpy"])
def test_faster_rcnn_matches_onnxruntime(exported, kernels):
    ops = _ops(__import__("onnx").load(exported).graph)
    assert {"RoiAlign", "NonMaxSuppression", "TopK", "Resize"} <= ops, ops
    x = {"image": picture()}
    so = ort.SessionOptions()
    so.log_severity_level = 3
    want_boxes, want_labels, want_scores = ort.InferenceSession(exported, so, providers=["CPUExecutionProvider"]).run(
        None, x)
    assert len(want_scores) == 100 and len(np.unique(want_scores)) == 100 and want_scores.min() > SCORE_THR
    options = tinyrt.SessionOptions()
    options.kernels = kernels
    boxes, labels, scores = tinyrt.InferenceSession(exported, options).run(None, x)
    assert boxes.dtype == want_boxes.dtype and labels.dtype == want_labels.dtype and scores.dtype == want_scores.dtype
    match = compare_detections(np.concatenate([want_boxes, want_scores[:, None]], 1)[None], want_labels[None],
                               np.concatenate([boxes, scores[:, None]], 1)[None], labels[None], score_thr=SCORE_THR)
    assert match.ok, match
    assert match.excused == 0, match
