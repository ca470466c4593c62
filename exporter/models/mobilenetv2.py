"""MobileNetV2 exactly as mmcls builds it for MMEdu's ``MobileNet`` backbone.

Layout (and state_dict keys) follow mmcls's ``ImageClassifier(backbone=MobileNetV2, neck=GlobalAveragePooling,
head=LinearClsHead)`` so that MMEdu checkpoints load without renaming:

* ``backbone.conv1``: 3x3 stride-2 ConvModule (conv, bn, ReLU6) to make_divisible(32 * widen_factor).
* ``backbone.layer1..7``: inverted residual stages, settings (expand ratio t, channels c, blocks n, stride s)
  below; each block is ``conv`` = [expand 1x1 ConvModule if t != 1] + depthwise 3x3 ConvModule + linear 1x1
  ConvModule (no activation); a residual add when stride 1 and the channel count is unchanged.
* ``backbone.conv2``: 1x1 ConvModule to 1280 channels (``int(1280 * widen_factor)`` only when widen_factor > 1).
* neck: global average pooling; ``head.fc``: Linear(1280, num_classes). Softmax is added at export.

All BatchNorms have eps 1e-5 (mmcv's default) and all activations are ReLU6.
"""
import torch
from torch import nn

from ._layers import ConvModule, make_divisible

# (expand ratio, channels, blocks, stride of the first block)
ARCH_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                 (6, 320, 1, 1)]


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand_ratio):
        super().__init__()
        hidden = int(round(cin * expand_ratio))
        self.use_res_connect = stride == 1 and cin == cout
        layers = []
        if expand_ratio != 1:
            layers.append(ConvModule(cin, hidden, 1))
        layers.append(ConvModule(hidden, hidden, 3, stride, 1, groups=hidden))
        layers.append(ConvModule(hidden, cout, 1, act=None))
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2Backbone(nn.Module):
    def __init__(self, widen_factor=1.0):
        super().__init__()
        cin = make_divisible(32 * widen_factor, 8)
        self.conv1 = ConvModule(3, cin, 3, 2, 1)
        self.layer_names = []
        for i, (t, c, n, s) in enumerate(ARCH_SETTINGS):
            cout = make_divisible(c * widen_factor, 8)
            blocks = []
            for j in range(n):
                blocks.append(InvertedResidual(cin, cout, s if j == 0 else 1, t))
                cin = cout
            self.add_module("layer%d" % (i + 1), nn.Sequential(*blocks))
            self.layer_names.append("layer%d" % (i + 1))
        self.out_channels = int(1280 * widen_factor) if widen_factor > 1.0 else 1280
        self.conv2 = ConvModule(cin, self.out_channels, 1)

    def forward(self, x):
        x = self.conv1(x)
        for name in self.layer_names:
            x = getattr(self, name)(x)
        return self.conv2(x)


class LinearClsHead(nn.Module):
    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x):
        return self.fc(x)


class MobileNetV2(nn.Module):
    """MMEdu's ``MobileNet``: returns logits [N, num_classes] (the exporter appends the softmax)."""

    def __init__(self, num_classes=1000, width_mult=1.0):
        super().__init__()
        self.backbone = MobileNetV2Backbone(width_mult)
        self.head = LinearClsHead(self.backbone.out_channels, num_classes)

    def forward(self, x):
        x = self.backbone(x)
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)  # mmcls GlobalAveragePooling
        return self.head(x)
