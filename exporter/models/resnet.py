"""ResNet-18, laid out (and keyed) as torchvision's ``resnet18`` (mmcls's ResNet(depth=18) has the same
names under ``backbone.``, with its classifier at ``head.fc``; checkpoint.py maps that).

7x7 stride-2 stem conv + BN + ReLU, 3x3 stride-2 max pool, four stages of two BasicBlocks (3x3 conv, BN,
ReLU, 3x3 conv, BN, + shortcut (1x1 stride-2 conv + BN where the shape changes), ReLU), global average
pooling, ``fc``. ``width_mult`` scales the base width 64 (for small test models; 1.0 is the real ResNet-18).
"""
import torch
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    def __init__(self, num_classes=1000, width_mult=1.0):
        super().__init__()
        widths = [max(8, int(64 * width_mult)) * 2 ** i for i in range(4)]
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = widths[0]
        for i, w in enumerate(widths):
            self.add_module("layer%d" % (i + 1), nn.Sequential(BasicBlock(cin, w, 1 if i == 0 else 2),
                                                               BasicBlock(w, w, 1)))
            cin = w
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))
