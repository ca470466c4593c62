"""LeNet-5 as MMEdu's ``LeNet`` backbone (mmcls ``LeNet5`` with its own classifier, ClsHead softmax).

Input: one 32x32 grayscale image [N, 1, 32, 32]. Keys follow mmcls: ``backbone.features.{0,3,6}`` (5x5
convs 1->6->16->120 with Tanh and 2x2 average pooling) and ``backbone.classifier.{0,2}`` (Linear 120->84,
Tanh, Linear 84->num_classes). mmcls squeezes the 120x1x1 features; we flatten them (the same for every
batch size, where squeeze would also drop a batch of one). The exporter appends the softmax.
"""
import torch
from torch import nn


class LeNet5Backbone(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5), nn.Tanh(), nn.AvgPool2d(kernel_size=2),
            nn.Conv2d(6, 16, kernel_size=5), nn.Tanh(), nn.AvgPool2d(kernel_size=2),
            nn.Conv2d(16, 120, kernel_size=5), nn.Tanh())
        self.classifier = nn.Sequential(nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class LeNet(nn.Module):
    def __init__(self, num_classes=10, width_mult=1.0):
        super().__init__()
        if width_mult != 1.0:
            raise ValueError("LeNet has no width multiplier")
        self.backbone = LeNet5Backbone(num_classes)

    def forward(self, x):
        return self.backbone(x)
