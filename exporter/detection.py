"""SSD-Lite post-processing in the graph: anchors, DeltaXYWH decoding, NonMaxSuppression, TopK.

``DetectionExport(model)`` wraps an :class:`~exporter.models.ssdlite.SSDLite` so that its ``forward`` gives the
final detections, the same in torch (for verification) and in the exported ONNX graph (onnxruntime, tinyrt):

    dets   [N, K, 5] float32   x1, y1, x2, y2, score; boxes in input pixels (the 320x320 network input)
    labels [N, K]    int64     class index in 0..C-1

Rows are sorted by score, best first. When fewer than K boxes survive, the remaining rows are padding:
``dets`` all zero and ``labels`` -1 (MMEdu's files put zero boxes and scores there too, with arbitrary labels;
a kept box always has a score > score_threshold > 0, so ``score > 0`` also tells real rows from padding).

The pipeline is MMEdu's / mmdet 2.x's ONNX export of SSDHead (``BaseDenseHead.onnx_export`` with
``add_dummy_nms_for_onnx``) with ``test_cfg`` of ``ssdlite_mobilenetv2``:

1. per level: ``[N, A*(C+1), H, W]`` -> ``[N, H*W*A, C+1]``, Softmax over the C+1 classes;
2. per level, when the level has more than ``nms_pre`` (1000) anchors: TopK(nms_pre) on the best foreground
   score of each anchor; gather those anchors' scores, deltas and anchors (a level with fewer anchors keeps
   them all: the same set, mmdet's TopK there only reorders);
3. decode the deltas against the anchors (DeltaXYWH, means 0, stds 0.1 0.1 0.2 0.2, dw/dh clamped to
   |log(16/1000)|) and clip the boxes to the input (0..W, 0..H);
4. drop the background column (the last), NonMaxSuppression per class (IoU > 0.45 suppresses; only scores
   > 0.02 take part; at most ``max_output_boxes_per_class`` = 200 a class);
5. zero every (class, box) score that NMS did not keep, TopK(K = max_per_img = 200) over all of them, gather
   box and label, and pad to exactly K rows so the output shapes are static.

NMS in the graph is the standard ONNX NonMaxSuppression op. In torch it is :func:`batched_nms`, a small
implementation of that op's exact semantics (onnxruntime's float32 IoU arithmetic, ties keep the lower index;
it runs in numpy float32 because torchvision is not used). The two are joined by :class:`_NMSOp`: an autograd
Function that computes :func:`batched_nms` and whose ``symbolic`` emits NonMaxSuppression for the TorchScript
exporter (``dynamo=False``, opsets 11-18); under the dynamo exporter (``dynamo=True``)
``torch.onnx.ops.symbolic`` emits it. Plain ``torch.onnx.export(DetectionExport(model), ...)`` works with both;
a dynamic batch axis works too. The input height and width are fixed: the anchors are graph constants.

The exported graph's ops (opset 11-18, TorchScript exporter, 320x320): Conv, Clip (ReLU6), Add, Transpose,
Reshape, Softmax, ReduceMax, TopK, GatherElements, Gather, Slice, Mul, Sub, Exp, Concat, Unsqueeze,
NonMaxSuppression, ScatterElements, Div, Cast, Greater, Where, Equal, Expand, Shape, ConstantOfShape, Constant.

Comparing two runs: use :func:`tinyrt.vision.detections.compare_detections`, not an elementwise comparison.
Two boxes whose scores differ by float noise may come out in either order in torch and in a runtime, which
is not an error.
"""
import math
import warnings

import numpy as np
import torch
from torch import nn

__all__ = ["DEFAULTS", "ANCHOR_CFG", "BBOX_STDS", "ssd_anchors", "delta2bbox", "batched_nms", "DetectionExport",
           "postprocess_reference"]

# MMEdu's SSD_Lite test_cfg (mmdet ssdlite_mobilenetv2_scratch_600e_coco.py) and mmdet's ONNX export defaults
DEFAULTS = {
    "score_thr": 0.02,                     # test_cfg.score_thr
    "iou_thr": 0.45,                       # test_cfg.nms.iou_threshold
    "max_per_img": 200,                    # test_cfg.max_per_img: K, the rows of dets / labels
    "nms_pre": 1000,                       # test_cfg.nms_pre: per-level TopK before NMS
    "max_output_boxes_per_class": 200,     # mmdet's default for cfg.nms.max_output_boxes_per_class
}

# SSDAnchorGenerator of ssdlite_mobilenetv2 (scale_major=False)
ANCHOR_CFG = {
    "strides": (16, 32, 64, 107, 160, 320),
    "min_sizes": (48, 100, 150, 202, 253, 304),
    "max_sizes": (100, 150, 202, 253, 304, 320),
    "ratios": ((2, 3),) * 6,
}
BBOX_MEANS = (0.0, 0.0, 0.0, 0.0)
BBOX_STDS = (0.1, 0.1, 0.2, 0.2)
WH_RATIO_CLIP = 16 / 1000


# ---------------------------------------------------------------------------------------------- anchors


def _base_anchors(base_size, max_size, stride, ratios):
    """mmdet SSDAnchorGenerator base anchors of one level, [2 + 2*len(ratios), 4], float32 like mmdet.

    Scales (1, sqrt(max/min)) times aspect ratios (1, 1/r1, r1, 1/r2, r2, ...) with ratio = h / w, every scale
    with every ratio (scale_major=False: scale-major rows, ratio columns), then only the big-scale square
    anchor is kept of the second scale and moved to position 1:
    order = [min square, sqrt(min*max) square, 1/r1, r1, 1/r2, r2] (all at the min size)."""
    scales = torch.tensor([1.0, float(np.sqrt(max_size / base_size))], dtype=torch.float32)
    ratio_list = [1.0]
    for r in ratios:
        ratio_list += [1.0 / r, float(r)]
    ratios_t = torch.tensor(ratio_list, dtype=torch.float32)
    h_ratios = torch.sqrt(ratios_t)
    w_ratios = 1 / h_ratios
    ws = (base_size * scales[:, None] * w_ratios[None, :]).reshape(-1)
    hs = (base_size * scales[:, None] * h_ratios[None, :]).reshape(-1)
    xc = yc = stride / 2.0  # SSDAnchorGenerator: centre of the first cell at (stride/2, stride/2)
    base = torch.stack([xc - 0.5 * ws, yc - 0.5 * hs, xc + 0.5 * ws, yc + 0.5 * hs], dim=-1)
    order = list(range(len(ratio_list)))
    order.insert(1, len(order))
    return base[order]


def ssd_anchors(feature_sizes, strides=ANCHOR_CFG["strides"], min_sizes=ANCHOR_CFG["min_sizes"],
                max_sizes=ANCHOR_CFG["max_sizes"], ratios=ANCHOR_CFG["ratios"]):
    """Per-level anchors [H*W*A, 4] (x1, y1, x2, y2), float32: cells row by row (y, then x), A anchors a cell,
    the order of the head's ``permute(0, 2, 3, 1)`` outputs. Cell (i, j) shifts the base anchors by
    (j * stride, i * stride): centres at (j + 0.5) * stride for the integer strides of this config."""
    out = []
    for (fh, fw), s, lo, hi, r in zip(feature_sizes, strides, min_sizes, max_sizes, ratios):
        base = _base_anchors(lo, hi, s, r)
        sx = torch.arange(fw) * s
        sy = torch.arange(fh) * s
        xx = sx.repeat(fh)
        yy = sy.view(-1, 1).repeat(1, fw).view(-1)
        shifts = torch.stack([xx, yy, xx, yy], dim=-1).to(base.dtype)
        out.append((base[None, :, :] + shifts[:, None, :]).reshape(-1, 4))
    return out


# --------------------------------------------------------------------------------------------- box coder


def delta2bbox(anchors, deltas, max_shape=None, means=BBOX_MEANS, stds=BBOX_STDS, wh_ratio_clip=WH_RATIO_CLIP):
    """mmdet DeltaXYWHBBoxCoder.decode: anchors [..., 4] and deltas [..., 4] -> boxes [..., 4] (x1, y1, x2, y2),
    clipped to ``max_shape`` = (h, w) when given."""
    d = deltas * deltas.new_tensor(stds)
    if any(m != 0 for m in means):
        d = d + deltas.new_tensor(means)
    dx, dy, dw, dh = d[..., 0], d[..., 1], d[..., 2], d[..., 3]
    ax1, ay1, ax2, ay2 = anchors[..., 0], anchors[..., 1], anchors[..., 2], anchors[..., 3]
    px = (ax1 + ax2) * 0.5
    py = (ay1 + ay2) * 0.5
    pw = ax2 - ax1
    ph = ay2 - ay1
    max_ratio = float(abs(np.log(wh_ratio_clip)))
    dw = dw.clamp(min=-max_ratio, max=max_ratio)
    dh = dh.clamp(min=-max_ratio, max=max_ratio)
    gw = pw * dw.exp()
    gh = ph * dh.exp()
    gx = px + pw * dx
    gy = py + ph * dy
    x1, y1, x2, y2 = gx - gw * 0.5, gy - gh * 0.5, gx + gw * 0.5, gy + gh * 0.5
    if max_shape is not None:
        h, w = float(max_shape[0]), float(max_shape[1])
        x1, x2 = x1.clamp(min=0.0, max=w), x2.clamp(min=0.0, max=w)
        y1, y2 = y1.clamp(min=0.0, max=h), y2.clamp(min=0.0, max=h)
    return torch.stack([x1, y1, x2, y2], dim=-1)


# ----------------------------------------------------------------------------------------------------- NMS


def _nms_one(x0, y0, x1, y1, area, scores, max_out, iou_thr, score_thr):
    """Greedy NMS of one class (numpy float32): kept box indices, best first.

    ONNX NonMaxSuppression with onnxruntime's arithmetic: only scores > score_thr take part; the best
    remaining box is kept (ties: the lower index) and every remaining box whose IoU with it is > iou_thr is
    dropped; boxes of zero area never suppress nor get suppressed. Each step compares the kept box with all
    remaining ones at once, so the cost is (kept boxes) x (candidates)."""
    cand = np.nonzero(scores > score_thr)[0]
    # best first; the stable sort keeps the lower index first among equal scores
    alive = cand[np.argsort(-scores[cand], kind="stable")]
    kept = []
    while alive.size and len(kept) < max_out:
        i = alive[0]
        kept.append(i)
        rest = alive[1:]
        iw = np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest])
        ih = np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest])
        inter = iw * ih
        union = area[i] + area[rest] - inter
        valid = (iw > 0) & (ih > 0) & (inter > 0) & (area[i] > 0) & (area[rest] > 0) & (union > 0)
        iou = inter / np.where(valid, union, np.float32(1))
        alive = rest[~(valid & (iou > iou_thr))]
    return np.asarray(kept, dtype=np.int64)


def batched_nms(boxes, scores, max_output_boxes_per_class, iou_threshold, score_threshold):
    """ONNX NonMaxSuppression (center_point_box=0) in torch: boxes [B, N, 4], scores [B, C, N] -> selected
    [M, 3] int64 rows (batch, class, box), batch by batch, class by class, best first within a class.

    The arithmetic runs in numpy float32 (the same IEEE operations onnxruntime does)."""
    max_out = int(max_output_boxes_per_class.reshape(-1)[0])
    iou_thr = np.float32(iou_threshold.reshape(-1)[0])
    score_thr = np.float32(score_threshold.reshape(-1)[0])
    b = boxes.detach().cpu().numpy().astype(np.float32)
    s = scores.detach().cpu().numpy().astype(np.float32)
    # either pair of opposite corners is allowed: take min / max
    x0, x1 = np.minimum(b[..., 0], b[..., 2]), np.maximum(b[..., 0], b[..., 2])
    y0, y1 = np.minimum(b[..., 1], b[..., 3]), np.maximum(b[..., 1], b[..., 3])
    area = (x1 - x0) * (y1 - y0)
    rows = []
    if max_out > 0:
        for bi in range(s.shape[0]):
            corners = (x0[bi], y0[bi], x1[bi], y1[bi], area[bi])
            for c in range(s.shape[1]):
                kept = _nms_one(*corners, s[bi, c], max_out, iou_thr, score_thr)
                if kept.size:
                    sel = np.empty((kept.size, 3), dtype=np.int64)
                    sel[:, 0], sel[:, 1], sel[:, 2] = bi, c, kept
                    rows.append(sel)
    out = np.concatenate(rows, axis=0) if rows else np.zeros((0, 3), dtype=np.int64)
    return torch.from_numpy(out).to(boxes.device)


class _NMSOp(torch.autograd.Function):
    """batched_nms in torch; ONNX NonMaxSuppression for the TorchScript exporter."""

    @staticmethod
    def forward(ctx, boxes, scores, max_output_boxes_per_class, iou_threshold, score_threshold):
        # under the tracer this runs for real (its values feed the rest of the trace), but the graph gets
        # the symbolic below, so the tracer's warnings about the Python loop inside do not apply
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            return batched_nms(boxes, scores, max_output_boxes_per_class, iou_threshold, score_threshold)

    @staticmethod
    def symbolic(g, boxes, scores, max_output_boxes_per_class, iou_threshold, score_threshold):
        return g.op("NonMaxSuppression", boxes, scores, max_output_boxes_per_class, iou_threshold,
                    score_threshold, center_point_box_i=0)


def _nms(boxes, scores, max_out, iou_thr, score_thr):
    if torch.jit.is_tracing():  # TorchScript exporter: the autograd Function carries the symbolic
        return _NMSOp.apply(boxes, scores, max_out, iou_thr, score_thr)
    if torch.onnx.is_in_onnx_export():  # dynamo exporter: an ONNX node with a data-dependent row count
        return torch.onnx.ops.symbolic(
            "NonMaxSuppression", (boxes, scores, max_out, iou_thr, score_thr), {"center_point_box": 0},
            dtype=torch.int64, shape=(_data_dependent_size(scores), 3))
    return batched_nms(boxes, scores, max_out, iou_thr, score_thr)


def _data_dependent_size(t):
    """A fresh data-dependent size (an unbacked SymInt) for the shape of NonMaxSuppression's output under
    torch.export: the row count of a NonZero. That NonZero only lends its size; nothing uses its values, so
    the exporter's dead-code elimination drops it from the ONNX graph."""
    return torch.nonzero(t.reshape(-1)[:1] > 0).shape[0]


# ----------------------------------------------------------------------------------------- export wrapper


class DetectionExport(nn.Module):
    """SSD-Lite plus its post-processing: ``forward(x)`` -> ``(dets [N, K, 5], labels [N, K])``.

    ``x`` is [N, 3, H, W] float32, already normalised, with (H, W) = ``input_size`` (default: the model's).
    The anchors are constants of the graph, computed for that size."""

    def __init__(self, model, score_threshold=DEFAULTS["score_thr"], iou_threshold=DEFAULTS["iou_thr"],
                 max_per_image=DEFAULTS["max_per_img"], nms_pre=DEFAULTS["nms_pre"],
                 max_output_boxes_per_class=None, input_size=None):
        super().__init__()
        self.model = model
        self.num_classes = int(model.num_classes)
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.max_per_image = int(max_per_image)
        self.nms_pre = int(nms_pre)
        if max_output_boxes_per_class is None:
            max_output_boxes_per_class = DEFAULTS["max_output_boxes_per_class"]
        self.max_output_boxes_per_class = int(max_output_boxes_per_class)
        if not 0.0 <= self.iou_threshold <= 1.0:
            raise ValueError("iou_threshold must be in [0, 1], got %r" % iou_threshold)
        if self.max_per_image < 1 or self.max_output_boxes_per_class < 1:
            raise ValueError("max_per_image and max_output_boxes_per_class must be >= 1")
        size = model.input_size if input_size is None else input_size
        self.input_size = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
        anchors = model.anchors(self.input_size)
        self.level_sizes = [int(a.shape[0]) for a in anchors]
        for i, a in enumerate(anchors):
            self.register_buffer("anchors_%d" % i, a.contiguous(), persistent=False)
        # NonMaxSuppression's inputs 2..4, 1-element tensors as mmdet exports them
        self.register_buffer("nms_max_out", torch.tensor([self.max_output_boxes_per_class], dtype=torch.int64),
                             persistent=False)
        self.register_buffer("nms_iou", torch.tensor([self.iou_threshold], dtype=torch.float32), persistent=False)
        self.register_buffer("nms_score", torch.tensor([self.score_threshold], dtype=torch.float32),
                             persistent=False)

    def extra_repr(self):
        return ("input_size=%s, score_threshold=%g, iou_threshold=%g, max_per_image=%d, nms_pre=%d"
                % (self.input_size, self.score_threshold, self.iou_threshold, self.max_per_image, self.nms_pre))

    def forward(self, x):
        h, w = self.input_size
        if not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
            if x.dim() != 4 or tuple(x.shape[2:]) != (h, w):
                raise ValueError("DetectionExport was built for input [N, 3, %d, %d], got %s"
                                 % (h, w, tuple(x.shape)))
        cls_scores, bbox_preds = self.model(x)
        n = x.shape[0]
        c = self.num_classes
        mlvl_boxes, mlvl_scores = [], []
        for lvl, (cls, reg) in enumerate(zip(cls_scores, bbox_preds)):
            anchors = getattr(self, "anchors_%d" % lvl)
            scores = cls.permute(0, 2, 3, 1).reshape(n, -1, c + 1).softmax(-1)
            deltas = reg.permute(0, 2, 3, 1).reshape(n, -1, 4)
            if self.level_sizes[lvl] > self.nms_pre > 0:
                # best foreground score of each anchor (background is the last column)
                best = scores[..., :c].max(-1).values
                idx = best.topk(self.nms_pre, dim=1).indices                      # [N, k]
                scores = torch.gather(scores, 1, idx.unsqueeze(-1).expand(-1, -1, c + 1))
                deltas = torch.gather(deltas, 1, idx.unsqueeze(-1).expand(-1, -1, 4))
                anchors = anchors[idx]                                             # [N, k, 4]
            else:
                anchors = anchors.unsqueeze(0)
            mlvl_boxes.append(delta2bbox(anchors, deltas, max_shape=(h, w)))
            mlvl_scores.append(scores[..., :c])
        boxes = torch.cat(mlvl_boxes, dim=1)                                       # [N, B, 4]
        scores = torch.cat(mlvl_scores, dim=1).permute(0, 2, 1)                    # [N, C, B]
        num_boxes = sum(min(s, self.nms_pre) if self.nms_pre > 0 else s for s in self.level_sizes)

        selected = _nms(boxes, scores.contiguous(), self.nms_max_out, self.nms_iou, self.nms_score)  # [M, 3]

        # keep only the (batch, class, box) scores NMS selected, then the K best of each image
        pos = (selected[:, 0] * c + selected[:, 1]) * num_boxes + selected[:, 2]
        flat = scores.reshape(-1)
        mask = torch.zeros_like(flat).scatter(0, pos, torch.ones_like(pos, dtype=flat.dtype))
        kept = (flat * mask).reshape(n, c * num_boxes)
        k = min(self.max_per_image, c * num_boxes)
        top_scores, top_idx = kept.topk(k, dim=1)                                  # [N, k]
        labels = torch.div(top_idx, num_boxes, rounding_mode="trunc")
        box_idx = top_idx - labels * num_boxes
        top_boxes = torch.gather(boxes, 1, box_idx.unsqueeze(-1).expand(-1, -1, 4))
        valid = top_scores > 0
        top_boxes = top_boxes * valid.unsqueeze(-1).to(top_boxes.dtype)
        labels = torch.where(valid, labels, torch.full_like(labels, -1))
        dets = torch.cat([top_boxes, top_scores.unsqueeze(-1)], dim=-1)
        if k < self.max_per_image:
            pad = self.max_per_image - k
            dets = torch.cat([dets, torch.zeros_like(dets[:, :1, :]).expand(-1, pad, -1)], dim=1)
            labels = torch.cat([labels, torch.full_like(labels[:, :1], -1).expand(-1, pad)], dim=1)
        return dets, labels


def postprocess_reference(cls_scores, bbox_preds, anchors, input_size, num_classes, score_thr=DEFAULTS["score_thr"],
                          iou_thr=DEFAULTS["iou_thr"], max_per_img=DEFAULTS["max_per_img"],
                          nms_pre=DEFAULTS["nms_pre"], max_per_class=DEFAULTS["max_output_boxes_per_class"]):
    """A plain numpy re-statement of the pipeline for one image (tests use it as an independent check):
    lists of [1, A*(C+1), H, W] / [1, A*4, H, W] arrays -> (dets [K', 5], labels [K']) without padding."""
    h, w = input_size
    all_boxes, all_scores = [], []
    for cls, reg, anc in zip(cls_scores, bbox_preds, anchors):
        cls = np.asarray(cls, dtype=np.float64)[0].transpose(1, 2, 0).reshape(-1, num_classes + 1)
        reg = np.asarray(reg, dtype=np.float64)[0].transpose(1, 2, 0).reshape(-1, 4)
        anc = np.asarray(anc, dtype=np.float64)
        e = np.exp(cls - cls.max(-1, keepdims=True))
        sc = e / e.sum(-1, keepdims=True)
        if nms_pre > 0 and sc.shape[0] > nms_pre:
            keep = np.argsort(-sc[:, :num_classes].max(-1), kind="stable")[:nms_pre]
            sc, reg, anc = sc[keep], reg[keep], anc[keep]
        d = reg * np.array(BBOX_STDS)
        px, py = (anc[:, 0] + anc[:, 2]) / 2, (anc[:, 1] + anc[:, 3]) / 2
        pw, ph = anc[:, 2] - anc[:, 0], anc[:, 3] - anc[:, 1]
        mr = abs(math.log(WH_RATIO_CLIP))
        gw, gh = pw * np.exp(np.clip(d[:, 2], -mr, mr)), ph * np.exp(np.clip(d[:, 3], -mr, mr))
        gx, gy = px + pw * d[:, 0], py + ph * d[:, 1]
        b = np.stack([gx - gw / 2, gy - gh / 2, gx + gw / 2, gy + gh / 2], -1)
        b[:, 0::2] = b[:, 0::2].clip(0, w)
        b[:, 1::2] = b[:, 1::2].clip(0, h)
        all_boxes.append(b)
        all_scores.append(sc[:, :num_classes])
    boxes, scores = np.concatenate(all_boxes), np.concatenate(all_scores)
    rows = []
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for c in range(num_classes):
        s = scores[:, c]
        alive = [int(i) for i in np.argsort(-s, kind="stable") if s[i] > score_thr]
        kept = []
        while alive and len(kept) < max_per_class:
            i = alive.pop(0)
            kept.append(i)
            iw = np.minimum(boxes[i, 2], boxes[alive, 2]) - np.maximum(boxes[i, 0], boxes[alive, 0])
            ih = np.minimum(boxes[i, 3], boxes[alive, 3]) - np.maximum(boxes[i, 1], boxes[alive, 1])
            inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
            iou = inter / np.maximum(area[i] + area[alive] - inter, 1e-12)
            alive = [a for a, o in zip(alive, iou) if not o > iou_thr]
        rows += [(s[i], c, i) for i in kept]
    rows.sort(key=lambda r: -r[0])
    rows = rows[:max_per_img]
    dets = np.array([list(boxes[i]) + [s] for s, c, i in rows], dtype=np.float64).reshape(-1, 5)
    labels = np.array([c for s, c, i in rows], dtype=np.int64)
    return dets, labels
