"""SSD-Lite with a MobileNetV2 backbone, laid out exactly as mmdet's ``ssdlite_mobilenetv2`` (MMEdu's ``SSD_Lite``).

This is mmdet 2.x ``configs/ssd/ssdlite_mobilenetv2_scratch_600e_coco.py`` in plain PyTorch (no mmcv), with the
same module tree, so an mmdet checkpoint's ``state_dict`` keys are this module's keys one for one::

    backbone   mmdet MobileNetV2(out_indices=(4, 7)), BN eps 1e-3, ReLU6
      conv1                     ConvModule 3x3 s2: conv1.conv, conv1.bn
      layer1 .. layer7          InvertedResidual blocks: layerN.j.{expand_conv,depthwise_conv,linear_conv}.{conv,bn}
                                (no expand_conv in layer1, whose expand ratio is 1)
      conv2                     ConvModule 1x1 to 1280: conv2.conv, conv2.bn
      outputs                   layer5 (96 ch, stride 16: 20x20 at 320) and conv2 (1280 ch, stride 32: 10x10)
    neck       SSDNeck(use_depthwise=True, l2_norm_scale=None): four extra levels, each
      extra_layers.i.0          ConvModule 1x1 to out/2 (+BN+ReLU6)
      extra_layers.i.1          DepthwiseSeparableConvModule 3x3 stride 2 padding 1 to out:
                                .depthwise_conv.{conv,bn} then .pointwise_conv.{conv,bn}, each +ReLU6
                                channels 1280->512, 512->256, 256->256, 256->128 (5x5, 3x3, 2x2, 1x1 at 320)
    bbox_head  SSDHead(use_depthwise=True), per level i (6 levels, 6 anchors a cell):
      cls_convs.i.0             ConvModule depthwise 3x3 (+BN+ReLU6)
      cls_convs.i.1             Conv2d 1x1 with bias to 6 * (num_classes + 1); background is the LAST class
      reg_convs.i.0 / .1        likewise, to 6 * 4 box deltas (dx, dy, dw, dh)

ConvModule convs have no bias (a norm follows). ``forward`` returns the raw head outputs
``(cls_scores, bbox_preds)``, two lists of 6 tensors ``[N, A*(C+1), H, W]`` and ``[N, A*4, H, W]``: mmdet's
``SSDHead.forward``. Anchors and decoding live in :mod:`exporter.detection`.

Width multiplier (``width_mult``, mmdet's ``widen_factor``): the backbone follows mmdet exactly: every stage's
channels become ``make_divisible(c * w, 8)`` (round to the nearest multiple of 8, never below 8 and never more
than 10% below ``c * w``), including the 32-channel stem; the blocks' hidden width is
``int(round(in * expand_ratio))``; the last 1x1 conv keeps 1280 channels when ``w <= 1`` and is
``int(1280 * w)`` when ``w > 1``. mmdet has no rule for the neck (its config lists the channels); we scale the
four extra levels' outputs the same way, ``make_divisible(c * w, 8)`` for c in (512, 256, 256, 128), so
``w = 1`` is exactly the mmdet config and a smaller ``w`` gives a small, fast model for tests and small boards.
"""
import torch
from torch import nn

from ._layers import make_divisible

__all__ = ["SSDLite", "make_divisible", "feature_sizes", "BN_EPS", "NUM_ANCHORS", "ARCH_SETTINGS"]

BN_EPS = 1e-3
NUM_ANCHORS = (6, 6, 6, 6, 6, 6)  # 1 + 1 + 2 * len(ratios [2, 3]) per cell, every level
# mmdet MobileNetV2.arch_settings: expand_ratio, channels, num_blocks, stride (of the first block)
ARCH_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                 (6, 320, 1, 1))
EXTRA_CHANNELS = (512, 256, 256, 128)


class ConvModule(nn.Module):
    """mmcv's ConvModule as SSD-Lite uses it: Conv2d (no bias) -> BatchNorm2d(eps 1e-3) -> optional ReLU6.

    The children are named ``conv``, ``bn`` (and ``activate``, which has no parameters), like mmcv's."""

    def __init__(self, cin, cout, kernel, stride=1, padding=0, groups=1, act=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.activate = nn.ReLU6() if act else None

    def forward(self, x):
        x = self.bn(self.conv(x))
        return self.activate(x) if self.activate is not None else x


class DepthwiseSeparableConvModule(nn.Module):
    """mmcv's DepthwiseSeparableConvModule: depthwise k x k ConvModule, then pointwise 1x1 ConvModule."""

    def __init__(self, cin, cout, kernel, stride=1, padding=0):
        super().__init__()
        self.depthwise_conv = ConvModule(cin, cin, kernel, stride, padding, groups=cin)
        self.pointwise_conv = ConvModule(cin, cout, 1)

    def forward(self, x):
        return self.pointwise_conv(self.depthwise_conv(x))


class InvertedResidual(nn.Module):
    """mmdet's InvertedResidual: [expand 1x1] -> depthwise 3x3 -> linear 1x1 (no activation), plus the input
    when the stride is 1 and the channel count is unchanged."""

    def __init__(self, cin, cout, mid, stride):
        super().__init__()
        self.with_res_shortcut = stride == 1 and cin == cout
        self.with_expand_conv = mid != cin
        if self.with_expand_conv:
            self.expand_conv = ConvModule(cin, mid, 1)
        self.depthwise_conv = ConvModule(mid, mid, 3, stride, 1, groups=mid)
        self.linear_conv = ConvModule(mid, cout, 1, act=False)

    def forward(self, x):
        out = self.expand_conv(x) if self.with_expand_conv else x
        out = self.linear_conv(self.depthwise_conv(out))
        return x + out if self.with_res_shortcut else out


class MobileNetV2(nn.Module):
    """mmdet's MobileNetV2 backbone with ``out_indices=(4, 7)``: returns (layer5, conv2)."""

    out_indices = (4, 7)

    def __init__(self, widen_factor=1.0):
        super().__init__()
        cin = make_divisible(32 * widen_factor, 8)
        self.conv1 = ConvModule(3, cin, 3, 2, 1)
        self.layer_names = []
        self.out_channels = []
        for i, (expand_ratio, channels, num_blocks, stride) in enumerate(ARCH_SETTINGS):
            cout = make_divisible(channels * widen_factor, 8)
            blocks = []
            for j in range(num_blocks):
                # mmdet: with_expand_conv = expand_ratio != 1, mid = int(round(in * ratio))
                blocks.append(InvertedResidual(cin, cout, int(round(cin * expand_ratio)), stride if j == 0 else 1))
                cin = cout
            self.add_module("layer%d" % (i + 1), nn.Sequential(*blocks))
            self.layer_names.append("layer%d" % (i + 1))
            if i in self.out_indices:
                self.out_channels.append(cout)
        last = int(1280 * widen_factor) if widen_factor > 1.0 else 1280
        self.conv2 = ConvModule(cin, last, 1)
        self.layer_names.append("conv2")
        self.out_channels.append(last)

    def forward(self, x):
        x = self.conv1(x)
        outs = []
        for i, name in enumerate(self.layer_names):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


class SSDNeck(nn.Module):
    """mmdet's SSDNeck with use_depthwise=True, l2_norm_scale=None, level strides 2 and paddings 1."""

    def __init__(self, in_channels, extra_channels):
        super().__init__()
        self.extra_layers = nn.ModuleList()
        prev = in_channels[-1]
        for out in extra_channels:
            self.extra_layers.append(nn.Sequential(
                ConvModule(prev, out // 2, 1),
                DepthwiseSeparableConvModule(out // 2, out, 3, stride=2, padding=1)))
            prev = out

    def forward(self, feats):
        outs = list(feats)
        x = outs[-1]
        for layer in self.extra_layers:
            x = layer(x)
            outs.append(x)
        return tuple(outs)


class SSDHead(nn.Module):
    """mmdet's SSDHead with use_depthwise=True (the SSD-Lite head), no stacked convs."""

    def __init__(self, num_classes, in_channels, num_anchors=NUM_ANCHORS):
        super().__init__()
        self.num_classes = num_classes
        self.cls_out_channels = num_classes + 1  # background is the last class
        self.num_anchors = tuple(num_anchors)
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        for c, a in zip(in_channels, self.num_anchors):
            self.cls_convs.append(nn.Sequential(ConvModule(c, c, 3, 1, 1, groups=c),
                                                nn.Conv2d(c, a * self.cls_out_channels, 1)))
            self.reg_convs.append(nn.Sequential(ConvModule(c, c, 3, 1, 1, groups=c),
                                                nn.Conv2d(c, a * 4, 1)))

    def forward(self, feats):
        cls_scores, bbox_preds = [], []
        for x, reg_conv, cls_conv in zip(feats, self.reg_convs, self.cls_convs):
            cls_scores.append(cls_conv(x))
            bbox_preds.append(reg_conv(x))
        return cls_scores, bbox_preds


def _down(n):
    """Output size of a 3x3 stride-2 conv with padding 1 (every downsampling step of SSD-Lite)."""
    return (n - 1) // 2 + 1


def feature_sizes(input_size):
    """[(h, w)] of the 6 head levels for an input of ``input_size`` (int or (h, w)).

    320 -> 20, 10, 5, 3, 2, 1 (conv1, layer2, layer3, layer4 halve to stride 16; layer6 to 32; each extra
    level halves again)."""
    h, w = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    for _ in range(4):
        h, w = _down(h), _down(w)
    sizes = [(h, w)]
    for _ in range(5):
        h, w = _down(h), _down(w)
        sizes.append((h, w))
    return sizes


class SSDLite(nn.Module):
    """SSD-Lite MobileNetV2 (mmdet ``ssdlite_mobilenetv2``). ``forward(x)`` -> ``(cls_scores, bbox_preds)``.

    ``num_classes`` excludes the background; ``input_size`` (int or (h, w), default 320) is the size the
    model is exported for, which fixes the anchors (see :meth:`anchors`)."""

    backbone_name = "SSD_Lite"

    def __init__(self, num_classes, width_mult=1.0, input_size=320):
        super().__init__()
        self.num_classes = int(num_classes)
        self.width_mult = float(width_mult)
        self.input_size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        self.backbone = MobileNetV2(self.width_mult)
        extra = [make_divisible(c * self.width_mult, 8) for c in EXTRA_CHANNELS]
        self.neck = SSDNeck(self.backbone.out_channels, extra)
        self.bbox_head = SSDHead(self.num_classes, list(self.backbone.out_channels) + extra)

    def forward(self, x):
        return self.bbox_head(self.neck(self.backbone(x)))

    def feature_sizes(self, input_size=None):
        return feature_sizes(self.input_size if input_size is None else input_size)

    def anchors(self, input_size=None):
        """Per-level anchors [A_l, 4] (x1, y1, x2, y2 in input pixels), in the order of the head's outputs."""
        from ..detection import ssd_anchors
        return ssd_anchors(self.feature_sizes(input_size))
