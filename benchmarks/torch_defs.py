"""Plain-torch copies of torchvision models the benchmarks need (torchvision does not install beside our
torch build): ShuffleNetV2 and an SSDlite320-MobileNetV3-Large detector with torchvision's transform and
post-processing, so their ONNX graphs look like what torchvision exports (channel shuffles; a detector
whose post-processing is thousands of small shape ops, a per-class loop and a batched NMS inside an If).

Only the architecture matters here: the weights are torch's random initialisation (seeded).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from exporter.models.mobilenetv3 import LARGE, ConvBNAct, InvertedResidual, make_divisible


# --- ShuffleNetV2 (torchvision.models.shufflenetv2) ----------------------------------------------------------

def channel_shuffle(x, groups):
    n, c, h, w = x.size()
    x = x.view(n, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(n, -1, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, inp, oup, stride):
        super().__init__()
        self.stride = stride
        branch = oup // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False), nn.BatchNorm2d(inp),
                nn.Conv2d(inp, branch, 1, 1, 0, bias=False), nn.BatchNorm2d(branch), nn.ReLU(inplace=True))
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else branch, branch, 1, 1, 0, bias=False), nn.BatchNorm2d(branch),
            nn.ReLU(inplace=True),
            nn.Conv2d(branch, branch, 3, stride, 1, groups=branch, bias=False), nn.BatchNorm2d(branch),
            nn.Conv2d(branch, branch, 1, 1, 0, bias=False), nn.BatchNorm2d(branch), nn.ReLU(inplace=True))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, stages_repeats=(4, 8, 4), stages_out=(24, 48, 96, 192, 1024), num_classes=1000):
        super().__init__()
        inp = 3
        out = stages_out[0]
        self.conv1 = nn.Sequential(nn.Conv2d(inp, out, 3, 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inp = out
        stages = []
        for repeats, out in zip(stages_repeats, stages_out[1:]):
            units = [ShuffleUnit(inp, out, 2)] + [ShuffleUnit(out, out, 1) for _ in range(repeats - 1)]
            stages.append(nn.Sequential(*units))
            inp = out
        self.stage2, self.stage3, self.stage4 = stages
        out = stages_out[-1]
        self.conv5 = nn.Sequential(nn.Conv2d(inp, out, 1, 1, 0, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True))
        self.fc = nn.Linear(out, num_classes)

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
        return self.fc(x.mean([2, 3]))


def shufflenet_v2_x0_5(num_classes=1000):
    return ShuffleNetV2((4, 8, 4), (24, 48, 96, 192, 1024), num_classes)


# --- SSDlite320 MobileNetV3-Large (torchvision.models.detection.ssdlite) ------------------------------------

def _dw_separable(cin, cout, kernel=3):
    return nn.Sequential(
        nn.Conv2d(cin, cin, kernel, padding=kernel // 2, groups=cin, bias=False), nn.BatchNorm2d(cin, eps=1e-3),
        nn.ReLU6(inplace=True), nn.Conv2d(cin, cout, 1))


def _extra_block(cin, cout):
    mid = cout // 2
    return nn.Sequential(
        nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid, eps=1e-3), nn.ReLU6(inplace=True),
        nn.Conv2d(mid, mid, 3, 2, 1, groups=mid, bias=False), nn.BatchNorm2d(mid, eps=1e-3), nn.ReLU6(inplace=True),
        nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout, eps=1e-3), nn.ReLU6(inplace=True))


class SSDliteBackbone(nn.Module):
    """MobileNetV3-Large features with torchvision's ``reduce_tail`` (last stage at half width); feature
    maps: the expansion of the last stride-2 block (20x20 at 320) and the end of the features (10x10),
    then four extra blocks (5, 3, 2, 1)."""

    def __init__(self):
        super().__init__()
        setting = [list(s) for s in LARGE]
        setting[-3][3] //= 2  # reduce_tail: the last stage at half width (its first expansion kept)
        for s in setting[-2:]:
            s[0], s[2], s[3] = s[0] // 2, s[2] // 2, s[3] // 2
        layers = [ConvBNAct(3, 16, 3, 2)]
        for cin, k, exp, cout, se, hs, s in setting:
            layers.append(InvertedResidual(cin, k, exp, cout, se, hs, s))
        last_in = setting[-1][3]
        layers.append(ConvBNAct(last_in, 6 * last_in, 1))
        c4 = 1 + len(setting) - 3  # the first block of the last stage (stride 2)
        self.head = nn.Sequential(*layers[:c4], layers[c4].block[0])
        self.tail = nn.Sequential(*layers[c4].block[1:], *layers[c4 + 1:])
        self.extra = nn.ModuleList([_extra_block(6 * last_in, 512), _extra_block(512, 256),
                                    _extra_block(256, 256), _extra_block(256, 128)])
        self.channels = [setting[-3][2], 6 * last_in, 512, 256, 256, 128]

    def forward(self, x):
        a = self.head(x)
        b = self.tail(a)
        out = [a, b]
        for block in self.extra:
            out.append(block(out[-1]))
        return out


@torch.jit._script_if_tracing
def _batched_nms(boxes, scores, idxs, iou_threshold: float):
    # torchvision.ops.boxes._batched_nms_coordinate_trick
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    max_coordinate = boxes.max()
    offsets = idxs.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))
    boxes_for_nms = boxes + offsets[:, None]
    return _nms(boxes_for_nms, scores, iou_threshold)


# torchvision.ops.nms: a custom op exported as ONNX's NonMaxSuppression by the symbolic torchvision registers
# (torchvision/ops/_register_onnx_ops.py). Only traced for export, never evaluated for its value: its eager
# body returns the boxes in score order.
@torch.library.custom_op("tinyrt_bench::nms", mutates_args=())
def _nms_op(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    return scores.argsort(descending=True)


@_nms_op.register_fake
def _(boxes, scores, iou_threshold):
    return scores.new_empty((scores.shape[0],), dtype=torch.int64)


def _nms_symbolic(g, boxes, scores, iou_threshold):
    from torch.onnx.symbolic_helper import _unsqueeze_helper
    iou_threshold = _float(iou_threshold)
    boxes = _unsqueeze_helper(g, boxes, [0])
    scores = _unsqueeze_helper(g, _unsqueeze_helper(g, scores, [0]), [0])
    max_out = g.op("Constant", value_t=torch.tensor([2 ** 63 - 1], dtype=torch.long))
    iou = g.op("Constant", value_t=torch.tensor([iou_threshold], dtype=torch.float))
    nms_out = g.op("NonMaxSuppression", boxes, scores, max_out, iou)
    select = g.op("Gather", nms_out, g.op("Constant", value_t=torch.tensor([2], dtype=torch.long)), axis_i=1)
    return g.op("Squeeze", select, g.op("Constant", value_t=torch.tensor([1], dtype=torch.long)))


def _float(value):
    from torch.onnx.symbolic_helper import _maybe_get_const
    return float(_maybe_get_const(value, "f"))


torch.onnx.register_custom_op_symbolic("tinyrt_bench::nms", _nms_symbolic, 11)


def _nms(boxes, scores, iou_threshold: float):
    return torch.ops.tinyrt_bench.nms(boxes, scores, iou_threshold)


class SSDlite320(nn.Module):
    """torchvision's ssdlite320_mobilenet_v3_large: transform (normalise, resize to 320), backbone, SSDLite
    head (depthwise-separable), softmax, box decoding, per-class score threshold and top-k, batched NMS."""

    def __init__(self, num_classes=91, size=320, background=15.0):
        super().__init__()
        self.size = size
        self.num_classes = num_classes
        self.backbone = SSDliteBackbone()
        anchors = 6
        self.cls = nn.ModuleList([_dw_separable(c, anchors * num_classes) for c in self.backbone.channels])
        self.reg = nn.ModuleList([_dw_separable(c, anchors * 4) for c in self.backbone.channels])
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1))
        self.register_buffer("anchors", self._anchors([20, 10, 5, 3, 2, 1]))
        self.score_thresh, self.nms_thresh, self.detections_per_img, self.topk_candidates = 0.001, 0.55, 300, 300
        # Like a trained detector: class scores that differ (random-init features barely reach the head, so
        # the logits are the biases), mostly background, so a few hundred (anchor, class) pairs pass the
        # 0.001 threshold into NMS, not all 3234 x 90 nor none.
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for head in self.cls:
                head[-1].bias.copy_(2.0 * torch.randn(head[-1].bias.shape, generator=g))
                head[-1].bias.view(anchors, num_classes)[:, 0] += background

    def _anchors(self, sizes, min_ratio=0.2, max_ratio=0.95):
        # torchvision DefaultBoxGenerator, aspect ratios [2, 3] on every level, (cx, cy, w, h) -> corners
        k = len(sizes)
        scales = [min_ratio + (max_ratio - min_ratio) * i / (k - 1.0) for i in range(k)] + [1.0]
        boxes = []
        for i, f in enumerate(sizes):
            sk, sk1 = scales[i], math.sqrt(scales[i] * scales[i + 1])
            wh = [[sk, sk], [sk1, sk1]]
            for r in (2, 3):
                sq = math.sqrt(r)
                wh += [[sk * sq, sk / sq], [sk / sq, sk * sq]]
            wh = torch.tensor(wh)
            c = (torch.arange(f, dtype=torch.float32) + 0.5) / f
            cy, cx = torch.meshgrid(c, c, indexing="ij")
            centers = torch.stack([cx.reshape(-1), cy.reshape(-1)], 1).repeat_interleave(len(wh), 0)
            boxes.append(torch.cat([centers, wh.repeat(f * f, 1)], 1))
        b = torch.cat(boxes).clamp(0, 1) * self.size
        return torch.cat([b[:, :2] - 0.5 * b[:, 2:], b[:, :2] + 0.5 * b[:, 2:]], 1)

    def forward(self, images):
        x = (images - self.mean) / self.std
        h, w = images.shape[-2:]
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        feats = self.backbone(x)
        n = x.shape[0]
        cls = torch.cat([head(f).permute(0, 2, 3, 1).reshape(n, -1, self.num_classes)
                         for head, f in zip(self.cls, feats)], 1)
        reg = torch.cat([head(f).permute(0, 2, 3, 1).reshape(n, -1, 4) for head, f in zip(self.reg, feats)], 1)
        scores = F.softmax(cls[0], -1)
        boxes = self._decode(reg[0], self.anchors)
        boxes = torch.stack([boxes[:, 0].clamp(0, self.size), boxes[:, 1].clamp(0, self.size),
                             boxes[:, 2].clamp(0, self.size), boxes[:, 3].clamp(0, self.size)], 1)
        all_boxes, all_scores, all_labels = [], [], []
        for label in range(1, self.num_classes):
            score = scores[:, label]
            keep = score > self.score_thresh
            score, box = score[keep], boxes[keep]
            num = min(self.topk_candidates, score.size(0)) if not torch.jit.is_tracing() else \
                torch.min(torch.tensor(self.topk_candidates), torch._shape_as_tensor(score)[0])
            score, idxs = score.topk(num)
            all_boxes.append(box[idxs])
            all_scores.append(score)
            all_labels.append(torch.full_like(score, label, dtype=torch.int64))
        b, s, l = torch.cat(all_boxes), torch.cat(all_scores), torch.cat(all_labels)
        keep = _batched_nms(b, s, l, self.nms_thresh)[: self.detections_per_img]
        ratio_h, ratio_w = h / self.size, w / self.size
        b = b[keep] * torch.tensor([ratio_w, ratio_h, ratio_w, ratio_h])
        return b, s[keep], l[keep]

    @staticmethod
    def _decode(rel, anchors, weights=(10.0, 10.0, 5.0, 5.0)):
        # torchvision BoxCoder.decode_single
        widths = anchors[:, 2] - anchors[:, 0]
        heights = anchors[:, 3] - anchors[:, 1]
        cx = anchors[:, 0] + 0.5 * widths
        cy = anchors[:, 1] + 0.5 * heights
        dx, dy = rel[:, 0::4] / weights[0], rel[:, 1::4] / weights[1]
        dw = torch.clamp(rel[:, 2::4] / weights[2], max=math.log(1000.0 / 16))
        dh = torch.clamp(rel[:, 3::4] / weights[3], max=math.log(1000.0 / 16))
        pcx = dx * widths[:, None] + cx[:, None]
        pcy = dy * heights[:, None] + cy[:, None]
        pw = torch.exp(dw) * widths[:, None]
        ph = torch.exp(dh) * heights[:, None]
        c = torch.tensor(0.5, dtype=pcx.dtype) * pw
        d = torch.tensor(0.5, dtype=pcy.dtype) * ph
        return torch.stack((pcx - c, pcy - d, pcx + c, pcy + d), dim=2).flatten(1)


def export(model, path, size, opset=13):
    """``model`` (eval mode) to ONNX at ``path``, input ``input`` [1, 3, size, size], with torch's
    TorchScript exporter (what torchvision users get by default)."""
    model.eval()
    x = torch.rand(1, 3, size, size)
    with torch.no_grad():
        torch.onnx.export(model, (x,), path, input_names=["input"], opset_version=opset, dynamo=False)
