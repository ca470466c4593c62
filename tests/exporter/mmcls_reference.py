"""An independent reference for MMEdu's ``MobileNet`` (mmcls ImageClassifier + MobileNetV2 + GAP + LinearClsHead).

Written for the tests from mmcls 0.25's source (``mmcls/models/backbones/mobilenet_v2.py``,
``utils/make_divisible.py``, ``necks/gap.py``, ``heads/linear_head.py``) and mmcv's ConvModule, without
looking at exporter/, so that a mistake in exporter/models/mobilenetv2.py is not repeated here. Its
state_dict keys are mmcls's; its forward returns softmaxed probabilities like mmcls's ``simple_test``.

``real_mmcls_mobilenet_v2()`` goes further when an mmcls wheel is available (``TINYRT_MMCLS_WHEEL`` = the
.whl file or the folder it was unpacked into, e.g. from ``pip download --no-deps mmcls==0.25.0``): it
imports mmcls's own ``mobilenet_v2.py`` with the few mmcv pieces it needs stubbed (ConvModule, BaseModule,
the registry), so the network is built by mmcls's code itself. Nothing from the wheel is kept in the repo.
"""
import os
import sys
import types
import zipfile

import torch
import torch.nn.functional as F
from torch import nn


def mmcls_make_divisible(value, divisor, min_value=None, min_ratio=0.9):
    if min_value is None:
        min_value = divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < min_ratio * value:
        new_value += divisor
    return new_value


class StubConvModule(nn.Module):
    """mmcv.cnn.ConvModule for the configurations MobileNetV2 uses: conv (bias only without norm), BN, act."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias="auto", conv_cfg=None, norm_cfg=None, act_cfg=dict(type="ReLU"), **kwargs):
        super().__init__()
        with_norm = norm_cfg is not None
        if bias == "auto":
            bias = not with_norm
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias=bias)
        self.bn = nn.BatchNorm2d(out_channels) if with_norm else None   # mmcv BN: eps 1e-5
        act = None if act_cfg is None else act_cfg["type"]
        self.activate = {"ReLU6": nn.ReLU6(), "ReLU": nn.ReLU(), None: None}[act]

    def forward(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.activate(x) if self.activate is not None else x


class RefBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride, expand_ratio):
        super().__init__()
        hidden_dim = int(round(in_channels * expand_ratio))
        self.use_res_connect = stride == 1 and in_channels == out_channels
        bn, relu6 = dict(type="BN"), dict(type="ReLU6")
        layers = []
        if expand_ratio != 1:
            layers.append(StubConvModule(in_channels, hidden_dim, 1, norm_cfg=bn, act_cfg=relu6))
        layers.append(StubConvModule(hidden_dim, hidden_dim, 3, stride=stride, padding=1, groups=hidden_dim,
                                     norm_cfg=bn, act_cfg=relu6))
        layers.append(StubConvModule(hidden_dim, out_channels, 1, norm_cfg=bn, act_cfg=None))
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        out = self.conv(x)
        return x + out if self.use_res_connect else out


class RefMobileNetV2Backbone(nn.Module):
    arch_settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
                     [6, 320, 1, 1]]

    def __init__(self, widen_factor=1.0):
        super().__init__()
        bn, relu6 = dict(type="BN"), dict(type="ReLU6")
        self.in_channels = mmcls_make_divisible(32 * widen_factor, 8)
        self.conv1 = StubConvModule(3, self.in_channels, 3, stride=2, padding=1, norm_cfg=bn, act_cfg=relu6)
        self.layers = []
        for i, (t, c, n, s) in enumerate(self.arch_settings):
            out_channels = mmcls_make_divisible(c * widen_factor, 8)
            blocks = []
            for j in range(n):
                blocks.append(RefBlock(self.in_channels, out_channels, s if j == 0 else 1, t))
                self.in_channels = out_channels
            self.add_module("layer%d" % (i + 1), nn.Sequential(*blocks))
            self.layers.append("layer%d" % (i + 1))
        self.out_channel = int(1280 * widen_factor) if widen_factor > 1.0 else 1280
        self.add_module("conv2", StubConvModule(self.in_channels, self.out_channel, 1, norm_cfg=bn, act_cfg=relu6))
        self.layers.append("conv2")

    def forward(self, x):
        x = self.conv1(x)
        for name in self.layers:
            x = getattr(self, name)(x)
        return (x,)


class RefImageClassifier(nn.Module):
    """backbone -> GlobalAveragePooling neck -> LinearClsHead (``head.fc``) -> softmax."""

    def __init__(self, backbone, feat_channels, num_classes):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Module()
        self.head.fc = nn.Linear(feat_channels, num_classes)

    def forward(self, x):
        feats = self.backbone(x)
        x = feats[-1]
        x = F.adaptive_avg_pool2d(x, (1, 1)).view(x.size(0), -1)
        return F.softmax(self.head.fc(x), dim=1)


def reference_mobilenet_v2(num_classes, widen_factor=1.0):
    backbone = RefMobileNetV2Backbone(widen_factor)
    return RefImageClassifier(backbone, backbone.out_channel, num_classes)


def randomize_(model, seed):
    """Seeded random weights and BN statistics (different from exporter's scheme on purpose)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            elif name.endswith("weight"):
                p.copy_(torch.rand(p.shape, generator=g) * 0.8 + 0.6)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
                m.num_batches_tracked.fill_(100)
    return model.eval()


# ----------------------------------------------------------------------------------------------------------
# mmcls's own code, when a wheel is at hand
# ----------------------------------------------------------------------------------------------------------

def _mmcls_source(wheel):
    """The text of mmcls/models/backbones/mobilenet_v2.py from a wheel file or an unpacked folder."""
    inner = "mmcls/models/backbones/mobilenet_v2.py"
    if os.path.isdir(wheel):
        with open(os.path.join(wheel, inner), encoding="utf-8") as f:
            return f.read()
    with zipfile.ZipFile(wheel) as z:
        return z.read(inner).decode("utf-8")


def real_mmcls_mobilenet_v2(num_classes, widen_factor=1.0, wheel=None):
    """MobileNetV2 built by mmcls's own module (with stubbed mmcv), wrapped like RefImageClassifier."""
    wheel = wheel or os.environ.get("TINYRT_MMCLS_WHEEL")
    if not wheel or not os.path.exists(wheel):
        return None
    source = _mmcls_source(wheel)
    stubs = {}

    class BaseModule(nn.Module):
        def __init__(self, init_cfg=None):
            super().__init__()

    class Registry:
        def register_module(self, *a, **k):
            return lambda cls: cls

    mods = {
        "mmcv": types.ModuleType("mmcv"), "mmcv.cnn": types.ModuleType("mmcv.cnn"),
        "mmcv.runner": types.ModuleType("mmcv.runner"), "mmcls": types.ModuleType("mmcls"),
        "mmcls.models": types.ModuleType("mmcls.models"), "mmcls.models.utils": types.ModuleType("mmcls.models.utils"),
        "mmcls.models.builder": types.ModuleType("mmcls.models.builder"),
        "mmcls.models.backbones": types.ModuleType("mmcls.models.backbones"),
        "mmcls.models.backbones.base_backbone": types.ModuleType("mmcls.models.backbones.base_backbone"),
    }
    mods["mmcv.cnn"].ConvModule = StubConvModule
    mods["mmcv.runner"].BaseModule = BaseModule
    mods["mmcls.models.utils"].make_divisible = mmcls_make_divisible
    mods["mmcls.models.builder"].BACKBONES = Registry()
    mods["mmcls.models.backbones.base_backbone"].BaseBackbone = BaseModule
    mods["mmcls.models.backbones"].__path__ = []
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        module = types.ModuleType("mmcls.models.backbones.mobilenet_v2")
        module.__package__ = "mmcls.models.backbones"
        exec(compile(source, "mmcls/models/backbones/mobilenet_v2.py", "exec"), module.__dict__)
        backbone = module.MobileNetV2(widen_factor=widen_factor)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    stubs["backbone"] = backbone
    return RefImageClassifier(backbone, backbone.out_channel, num_classes)
