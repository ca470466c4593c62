"""Plain-PyTorch CNNs for whole-model tests (no torchvision), with seeded random weights, and an ONNX export helper.

The four nets follow the torchvision architectures closely enough to produce the same ONNX op mix:

* ``mobilenet_v2``: inverted residuals, depthwise convs, ReLU6 (Clip), AdaptiveAvgPool -> Flatten -> Gemm.
* ``mobilenet_v3_small``: squeeze-excite (GlobalAveragePool, 1x1 convs, Mul), HardSwish, HardSigmoid, ReLU.
* ``resnet18``: 7x7 stem, MaxPool, BasicBlocks with Add and 1x1 downsample convs.
* ``shufflenet_v2``: channel shuffle (Reshape/Transpose/Reshape over Shape-derived sizes), chunk (Split),
  Concat, ReduceMean over H, W.

Weights are random but chosen so that the outputs depend on the input and activations stay O(1): after
the default init every BatchNorm's running statistics are *calibrated* by a few training-mode forward
passes on random input (so each BN really normalises its input), then BN weight, bias, running mean and
running variance are perturbed with seeded noise. The default init (mean 0, var 1, weight 1, bias 0)
would make BN nearly the identity and, through many layers, make activations vanish.

``export(model, path, opset, dynamo, ...)`` writes an ONNX file with torch.onnx.export, with either the
TorchScript exporter (``dynamo=False``) or the dynamo exporter (``dynamo=True``; needs onnxscript).
"""
import warnings

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

__all__ = ["MobileNetV2", "MobileNetV3Small", "ResNet18", "ShuffleNetV2", "BUILDERS", "build",
           "mobilenet_v2", "mobilenet_v3_small", "resnet18", "shufflenet_v2", "make_input", "export",
           "batchnorm_count"]


def _make_divisible(v, divisor=8, min_value=None):
    """Round a channel count to a multiple of ``divisor`` without going more than 10% below it (torchvision)."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> optional activation, 'same' padding for odd kernels."""

    def __init__(self, cin, cout, kernel=3, stride=1, groups=1, act=nn.ReLU6, bn_eps=1e-5):
        layers = [nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(cout, eps=bn_eps)]
        if act is not None:
            layers.append(act(inplace=True) if act in (nn.ReLU, nn.ReLU6, nn.Hardswish) else act())
        super().__init__(*layers)


# --------------------------------------------------------------------------------------------------
# MobileNetV2
# --------------------------------------------------------------------------------------------------

class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand_ratio):
        super().__init__()
        hidden = int(round(cin * expand_ratio))
        self.use_res = stride == 1 and cin == cout
        layers = []
        if expand_ratio != 1:
            layers.append(ConvBNAct(cin, hidden, 1))
        layers += [ConvBNAct(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1)]  # (expand t, channels c, repeats n, stride s)

    def __init__(self, num_classes=1000, width_mult=1.0, round_nearest=8, last_channel=1280):
        super().__init__()
        cin = _make_divisible(32 * width_mult, round_nearest)
        self.last_channel = _make_divisible(last_channel * max(1.0, width_mult), round_nearest)
        features = [ConvBNAct(3, cin, 3, 2)]
        for t, c, n, s in self.SETTINGS:
            cout = _make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                features.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        features.append(ConvBNAct(cin, self.last_channel, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(self.last_channel, num_classes))

    def forward(self, x):
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, (1, 1))  # -> GlobalAveragePool
        x = torch.flatten(x, 1)               # -> Flatten
        return self.classifier(x)             # Dropout vanishes in eval; Linear -> Gemm


# --------------------------------------------------------------------------------------------------
# MobileNetV3-Small
# --------------------------------------------------------------------------------------------------

class SqueezeExcite(nn.Module):
    def __init__(self, channels, squeeze):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x):
        s = self.gate(self.fc2(self.relu(self.fc1(self.avgpool(x)))))
        return x * s


class V3Block(nn.Module):
    def __init__(self, cin, kernel, expanded, cout, use_se, act, stride):
        super().__init__()
        self.use_res = stride == 1 and cin == cout
        layers = []
        if expanded != cin:
            layers.append(ConvBNAct(cin, expanded, 1, act=act, bn_eps=1e-3))
        layers.append(ConvBNAct(expanded, expanded, kernel, stride, groups=expanded, act=act, bn_eps=1e-3))
        if use_se:
            layers.append(SqueezeExcite(expanded, _make_divisible(expanded // 4, 8)))
        layers.append(ConvBNAct(expanded, cout, 1, act=None, bn_eps=1e-3))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_res else y


class MobileNetV3Small(nn.Module):
    # (in, kernel, expanded, out, SE, activation, stride), torchvision's mobilenet_v3_small table
    CONFIG = [(16, 3, 16, 16, True, "RE", 2), (16, 3, 72, 24, False, "RE", 2), (24, 3, 88, 24, False, "RE", 1),
              (24, 5, 96, 40, True, "HS", 2), (40, 5, 240, 40, True, "HS", 1), (40, 5, 240, 40, True, "HS", 1),
              (40, 5, 120, 48, True, "HS", 1), (48, 5, 144, 48, True, "HS", 1), (48, 5, 288, 96, True, "HS", 2),
              (96, 5, 576, 96, True, "HS", 1), (96, 5, 576, 96, True, "HS", 1)]

    def __init__(self, num_classes=1000, width_mult=1.0, last_channel=1024):
        super().__init__()
        adj = lambda c: _make_divisible(c * width_mult, 8)  # noqa: E731
        layers = [ConvBNAct(3, adj(16), 3, 2, act=nn.Hardswish, bn_eps=1e-3)]
        for cin, k, exp, cout, se, act, s in self.CONFIG:
            layers.append(V3Block(adj(cin), k, adj(exp), adj(cout), se,
                                  nn.Hardswish if act == "HS" else nn.ReLU, s))
        last_conv = 6 * adj(96)
        layers.append(ConvBNAct(adj(96), last_conv, 1, act=nn.Hardswish, bn_eps=1e-3))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(last_conv, last_channel), nn.Hardswish(inplace=True),
                                        nn.Dropout(0.2), nn.Linear(last_channel, num_classes))

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


# --------------------------------------------------------------------------------------------------
# ResNet-18
# --------------------------------------------------------------------------------------------------

class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
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
        widths = [max(8, int(64 * width_mult * 2 ** i)) for i in range(4)]
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, cin = [], widths[0]
        for i, w in enumerate(widths):
            layers.append(nn.Sequential(BasicBlock(cin, w, 1 if i == 0 else 2), BasicBlock(w, w, 1)))
            cin = w
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# --------------------------------------------------------------------------------------------------
# ShuffleNet-V2
# --------------------------------------------------------------------------------------------------

def channel_shuffle(x, groups):
    # Sizes from x.size(): the TorchScript exporter turns them into Shape -> Gather -> Unsqueeze -> Concat
    # chains feeding Reshape, which a runtime must fold (static batch) or evaluate (dynamic batch).
    b, c, h, w = x.size()
    x = x.view(b, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(b, -1, h, w)


class ShuffleBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.stride = stride
        branch = cout // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
                nn.Conv2d(cin, branch, 1, bias=False), nn.BatchNorm2d(branch), nn.ReLU(inplace=True))
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(cin if stride > 1 else branch, branch, 1, bias=False), nn.BatchNorm2d(branch),
            nn.ReLU(inplace=True),
            nn.Conv2d(branch, branch, 3, stride, 1, groups=branch, bias=False), nn.BatchNorm2d(branch),
            nn.Conv2d(branch, branch, 1, bias=False), nn.BatchNorm2d(branch), nn.ReLU(inplace=True))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)  # -> Split
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, num_classes=1000, stages_repeats=(4, 8, 4), stages_out=(24, 48, 96, 192, 1024)):
        super().__init__()
        cin = stages_out[0]
        self.conv1 = nn.Sequential(nn.Conv2d(3, cin, 3, 2, 1, bias=False), nn.BatchNorm2d(cin),
                                   nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages = []
        for repeats, cout in zip(stages_repeats, stages_out[1:]):
            blocks = [ShuffleBlock(cin, cout, 2)] + [ShuffleBlock(cout, cout, 1) for _ in range(repeats - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.stage2, self.stage3, self.stage4 = stages
        self.conv5 = nn.Sequential(nn.Conv2d(cin, stages_out[-1], 1, bias=False),
                                   nn.BatchNorm2d(stages_out[-1]), nn.ReLU(inplace=True))
        self.fc = nn.Linear(stages_out[-1], num_classes)

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        x = self.stage4(self.stage3(self.stage2(x)))
        x = self.conv5(x)
        return self.fc(x.mean([2, 3]))  # -> ReduceMean over H, W (axes attribute < 18, input >= 18)


# --------------------------------------------------------------------------------------------------
# seeded builders
# --------------------------------------------------------------------------------------------------

def randomize(model, seed, input_shape=(4, 3, 64, 64), calib_steps=2):
    """Give every BatchNorm seeded, non-trivial statistics and affine parameters; return the model in eval mode.

    First weight ~ U(0.5, 1.5) and bias ~ N(0, 0.25); then the running statistics are calibrated on random
    input (training-mode forward passes with a cumulative average, done after the affine parameters are set
    so every BN sees its final upstream), so each BN normalises what it really sees and activations stay
    O(1) through the whole net; finally the calibrated mean/var are perturbed a little. BN is far from the
    identity and nothing about it is default.
    """
    g = torch.Generator().manual_seed(seed + 1)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for m in bns:
            n = m.num_features
            m.weight.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.copy_(torch.randn(n, generator=g) * 0.25)
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average over the calibration passes
        model.train()
        for _ in range(calib_steps):
            model(torch.randn(*input_shape, generator=g))
        for m in bns:
            n = m.num_features
            m.running_mean.add_(torch.randn(n, generator=g) * 0.05 * m.running_var.sqrt())
            m.running_var.mul_(torch.rand(n, generator=g) * 0.4 + 0.8)
            m.momentum = 0.1
    return model.eval()


def mobilenet_v2(seed=0, num_classes=10, width_mult=0.5, input_size=64):
    torch.manual_seed(seed)
    return randomize(MobileNetV2(num_classes=num_classes, width_mult=width_mult), seed,
                     (4, 3, input_size, input_size))


def mobilenet_v3_small(seed=0, num_classes=10, width_mult=0.75, input_size=64):
    torch.manual_seed(seed)
    return randomize(MobileNetV3Small(num_classes=num_classes, width_mult=width_mult), seed,
                     (4, 3, input_size, input_size))


def resnet18(seed=0, num_classes=10, width_mult=0.25, input_size=64):
    torch.manual_seed(seed)
    return randomize(ResNet18(num_classes=num_classes, width_mult=width_mult), seed,
                     (4, 3, input_size, input_size))


def shufflenet_v2(seed=0, num_classes=10, stages_repeats=(2, 4, 2), stages_out=(24, 48, 96, 192, 512),
                  input_size=64):
    torch.manual_seed(seed)
    return randomize(ShuffleNetV2(num_classes=num_classes, stages_repeats=stages_repeats,
                                  stages_out=stages_out), seed, (4, 3, input_size, input_size))


BUILDERS = {"mobilenet_v2": mobilenet_v2, "mobilenet_v3_small": mobilenet_v3_small, "resnet18": resnet18,
            "shufflenet_v2": shufflenet_v2}


def build(name, seed=0, **kwargs):
    return BUILDERS[name](seed=seed, **kwargs)


def make_input(shape, seed=0):
    """A seeded float32 NCHW input, standard normal (what the BN calibration saw)."""
    return np.random.RandomState(seed).standard_normal(shape).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------------

def export(model, path, opset=None, dynamo=False, dynamic_batch=False, keep_batchnorm=False,
           input_shape=(1, 3, 64, 64), input_name="input", output_name="output", optimize=True, functions=None):
    """Export ``model`` (eval mode) to ONNX at ``path``; return ``path``.

    dynamo=False uses the TorchScript exporter at ``opset``. It folds every BatchNorm that follows a Conv
    into the Conv in eval mode; ``keep_batchnorm=True`` exports with ``TrainingMode.PRESERVE`` (model still in
    eval mode), which skips that fold, so the file keeps BatchNormalization nodes (in inference form).
    dynamo=True uses the torch.export based exporter (onnxscript) at ``opset`` (None -> its default, 20 in
    torch 2.13). Its optimizer folds BN into Conv too; ``keep_batchnorm=True`` (or ``optimize=False``)
    exports unoptimized, which keeps BatchNormalization nodes and leaves Shape/Expand/CastLike chains for
    the runtime to fold. Weights are always stored inside the file (no external data).
    dynamic_batch=True makes the first dimension of input and output symbolic.

    functions (TorchScript exporter, opset >= 15): a set of nn.Module classes exported as model-local ONNX
    functions (domain ``torch_models``), nested when those modules nest; their nodes use attribute
    references (``ref_attr_name``) for the Conv strides/group that differ between instances. This is how
    these tests exercise tinyrt's function inlining: the dynamo exporter of torch 2.13 inlines everything
    (it emits no functions, with or without optimize). Not combinable with keep_batchnorm (torch segfaults).
    """
    model = model.eval()
    if dynamo and dynamic_batch and input_shape[0] == 1:
        input_shape = (2,) + tuple(input_shape[1:])  # torch.export would specialise a size-1 dim
    x = torch.randn(*input_shape)
    path = str(path)
    kwargs = dict(input_names=[input_name], output_names=[output_name], opset_version=opset,
                  external_data=False)
    with torch.no_grad(), warnings.catch_warnings():
        # the TorchScript exporter is deprecated and says so at every call; PRESERVE warns about folding
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        if dynamo:
            if dynamic_batch:
                kwargs["dynamic_shapes"] = {"x": {0: torch.export.Dim("batch", min=1, max=64)}}
            torch.onnx.export(model, (x,), path, dynamo=True, optimize=optimize and not keep_batchnorm, **kwargs)
        else:
            if dynamic_batch:
                kwargs["dynamic_axes"] = {input_name: {0: "batch"}, output_name: {0: "batch"}}
            if keep_batchnorm:
                if functions:
                    raise ValueError("keep_batchnorm with functions crashes torch's TorchScript exporter")
                kwargs["training"] = torch.onnx.TrainingMode.PRESERVE
            if functions:
                kwargs["export_modules_as_functions"] = set(functions)
            torch.onnx.export(model, (x,), path, dynamo=False, **kwargs)
    return path


def batchnorm_count(path_or_model):
    """How many BatchNormalization nodes the main graph of an ONNX file has (needs the onnx package)."""
    import onnx
    m = onnx.load(path_or_model) if isinstance(path_or_model, str) else path_or_model
    count = sum(n.op_type == "BatchNormalization" for n in m.graph.node)
    count += sum(n.op_type == "BatchNormalization" for f in m.functions for n in f.node)
    return count


def reference_files(folder, opset, seed, input_seed, num_classes, width_mult, size):
    """Write ``folder``/model.onnx (a MobileNetV2 from torch), input.npy and onnxruntime's expected.npy.

    For tests that check a tinyrt somewhere else (a subprocess, a fresh venv) against the oracle.
    """
    import onnxruntime as ort
    model = mobilenet_v2(seed=seed, num_classes=num_classes, width_mult=width_mult, input_size=size)
    path = export(model, folder / "model.onnx", opset, dynamo=False, input_shape=(1, 3, size, size))
    x = make_input((1, 3, size, size), seed=input_seed)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    expected = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.save(folder / "input.npy", x)
    np.save(folder / "expected.npy", expected)
    return folder
