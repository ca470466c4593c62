"""MobileNetV3-Small and -Large, laid out (and keyed) as torchvision's ``mobilenet_v3_small/large``.

* ``features.0``: 3x3 stride-2 conv + BN + Hardswish to 16 channels.
* ``features.1..``: inverted residual blocks ``block`` = [expand 1x1 conv+BN+act if expanded != input]
  + depthwise kxk conv+BN+act + [squeeze-excite: global average, 1x1 conv ``fc1``, ReLU, 1x1 conv ``fc2``,
  Hardsigmoid, multiply] + linear 1x1 conv+BN; residual add when stride 1 and channels unchanged.
* last ``features``: 1x1 conv+BN+Hardswish to 6x the last block's channels.
* global average pooling, ``classifier`` = Linear, Hardswish, Dropout, Linear.

BatchNorm eps is 1e-3 as in torchvision. Channel counts are scaled by ``width_mult`` and rounded with
``make_divisible(., 8)``. The exporter appends the softmax.
"""
import torch
from torch import nn

from ._layers import make_divisible


class ConvBNAct(nn.Sequential):
    """torchvision's Conv2dNormActivation: children ``0`` conv (no bias), ``1`` BN, ``2`` activation."""

    def __init__(self, cin, cout, kernel, stride=1, groups=1, act=nn.Hardswish):
        layers = [nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)]
        if act is not None:
            layers.append(act())
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    def __init__(self, channels, squeeze):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x):
        s = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return x * s


class InvertedResidual(nn.Module):
    def __init__(self, cin, kernel, expanded, cout, use_se, use_hs, stride):
        super().__init__()
        act = nn.Hardswish if use_hs else nn.ReLU
        self.use_res_connect = stride == 1 and cin == cout
        layers = []
        if expanded != cin:
            layers.append(ConvBNAct(cin, expanded, 1, act=act))
        layers.append(ConvBNAct(expanded, expanded, kernel, stride, groups=expanded, act=act))
        if use_se:
            layers.append(SqueezeExcitation(expanded, make_divisible(expanded // 4, 8)))
        layers.append(ConvBNAct(expanded, cout, 1, act=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_res_connect else y


# (input, kernel, expanded, output, squeeze-excite, hardswish, stride), torchvision's tables
SMALL = [(16, 3, 16, 16, True, False, 2), (16, 3, 72, 24, False, False, 2), (24, 3, 88, 24, False, False, 1),
         (24, 5, 96, 40, True, True, 2), (40, 5, 240, 40, True, True, 1), (40, 5, 240, 40, True, True, 1),
         (40, 5, 120, 48, True, True, 1), (48, 5, 144, 48, True, True, 1), (48, 5, 288, 96, True, True, 2),
         (96, 5, 576, 96, True, True, 1), (96, 5, 576, 96, True, True, 1)]
LARGE = [(16, 3, 16, 16, False, False, 1), (16, 3, 64, 24, False, False, 2), (24, 3, 72, 24, False, False, 1),
         (24, 5, 72, 40, True, False, 2), (40, 5, 120, 40, True, False, 1), (40, 5, 120, 40, True, False, 1),
         (40, 3, 240, 80, False, True, 2), (80, 3, 200, 80, False, True, 1), (80, 3, 184, 80, False, True, 1),
         (80, 3, 184, 80, False, True, 1), (80, 3, 480, 112, True, True, 1), (112, 3, 672, 112, True, True, 1),
         (112, 5, 672, 160, True, True, 2), (160, 5, 960, 160, True, True, 1), (160, 5, 960, 160, True, True, 1)]


class MobileNetV3(nn.Module):
    def __init__(self, setting, last_channel, num_classes=1000, width_mult=1.0, dropout=0.2):
        super().__init__()
        adjust = lambda c: make_divisible(c * width_mult, 8)  # noqa: E731
        layers = [ConvBNAct(3, adjust(setting[0][0]), 3, 2, act=nn.Hardswish)]
        for cin, k, exp, cout, se, hs, s in setting:
            layers.append(InvertedResidual(adjust(cin), k, adjust(exp), adjust(cout), se, hs, s))
        last_in = adjust(setting[-1][3])
        last_out = 6 * last_in
        layers.append(ConvBNAct(last_in, last_out, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        hidden = adjust(last_channel)
        self.classifier = nn.Sequential(nn.Linear(last_out, hidden), nn.Hardswish(), nn.Dropout(dropout),
                                        nn.Linear(hidden, num_classes))

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def mobilenet_v3_small(num_classes=1000, width_mult=1.0):
    return MobileNetV3(SMALL, 1024, num_classes, width_mult)


def mobilenet_v3_large(num_classes=1000, width_mult=1.0):
    return MobileNetV3(LARGE, 1280, num_classes, width_mult)
