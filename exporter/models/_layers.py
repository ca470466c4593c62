"""Small building blocks shared by the classification models, and seeded random initialisation.

``ConvModule`` mirrors mmcv's ConvModule as MMEdu's checkpoints use it: a Conv2d named ``conv`` (no bias,
since a BatchNorm follows), a BatchNorm2d named ``bn`` and an optional activation named ``activate``
(no parameters, so it adds no keys).
"""
import torch
from torch import nn


def make_divisible(value, divisor=8, min_value=None, min_ratio=0.9):
    """Round a channel count to the nearest multiple of ``divisor``, never more than 10% below ``value``.

    The same rounding mmcls (``mmcls.models.utils.make_divisible``) and torchvision (``_make_divisible``) use.
    """
    if min_value is None:
        min_value = divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < min_ratio * value:
        new_value += divisor
    return new_value


class ConvModule(nn.Module):
    """Conv2d (no bias) -> BatchNorm2d -> activation, with mmcv's child names ``conv``, ``bn``, ``activate``."""

    def __init__(self, cin, cout, kernel, stride=1, padding=0, groups=1, act=nn.ReLU6, bn_eps=1e-5):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=bn_eps)
        self.activate = act() if act is not None else None

    def forward(self, x):
        x = self.bn(self.conv(x))
        return self.activate(x) if self.activate is not None else x


def randomize(model, seed=0, input_shape=(2, 3, 64, 64), calib_steps=2):
    """Seeded random weights whose outputs really depend on the input; returns the model in eval mode.

    Convolutions and linear layers get torch's default init from ``torch.manual_seed(seed)``. Every
    BatchNorm then gets weight ~ U(0.5, 1.5), bias ~ N(0, 0.25), running statistics *calibrated* by a few
    training-mode passes on random input (so each BN normalises what it sees and activations stay O(1)),
    and finally perturbed mean/var. With the default BN init (mean 0, var 1) activations would shrink or
    grow through the layers until the output hardly depends on the input, which would test nothing.
    """
    torch.manual_seed(seed)
    for m in model.modules():
        if hasattr(m, "reset_parameters") and not isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_parameters()
    g = torch.Generator().manual_seed(seed + 1)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for m in bns:
            n = m.num_features
            m.weight.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.copy_(torch.randn(n, generator=g) * 0.25)
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration passes
        if bns:
            model.train()
            for _ in range(calib_steps):
                model(torch.randn(*input_shape, generator=g))
        for m in bns:
            n = m.num_features
            m.running_mean.add_(torch.randn(n, generator=g) * 0.05 * m.running_var.sqrt())
            m.running_var.mul_(torch.rand(n, generator=g) * 0.4 + 0.8)
            m.momentum = 0.1
    return model.eval()
