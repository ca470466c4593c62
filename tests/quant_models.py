"""Quantized models made the way users make them: a small torch CNN exported to ONNX, then quantized by
onnxruntime's own tool (``onnxruntime.quantization``), in every format it offers.

int8 weights are quantized with ``reduce_range=True`` (7-bit weights), as onnxruntime's documentation asks
for on x86 machines without VNNI: there its uint8 x int8 kernels add products in pairs saturated to int16
(vpmaddubsw), so with full-range weights onnxruntime's own results are off the exact integer sums by many
quantization steps (measured here: 52 steps on one stem-conv output; tinyrt computes the exact sums, as
onnxruntime does on ARM and on VNNI machines and as the ONNX spec defines).

Used by tests/test_quantized_models.py and tests/test_quantized_cnns.py (and handy from a shell: ``python tests/quant_models.py DIR``).
"""
import os
import sys

import numpy as np

CONFIGS = {
    # name: (format, per_channel, activation type, weight type)
    "qdq_perchannel_u8": ("QDQ", True, "QUInt8", "QInt8"),
    "qdq_pertensor_s8": ("QDQ", False, "QInt8", "QInt8"),
    "qdq_pertensor_u8u8": ("QDQ", False, "QUInt8", "QUInt8"),
    "qop_pertensor_u8": ("QOperator", False, "QUInt8", "QInt8"),
    "qop_perchannel_s8": ("QOperator", True, "QInt8", "QInt8"),
    "qop_pertensor_u8u8": ("QOperator", False, "QUInt8", "QUInt8"),
    "dynamic_u8": ("dynamic", False, None, "QUInt8"),
    "dynamic_s8_perchannel": ("dynamic", True, None, "QInt8"),
}

INPUT_SHAPE = (1, 3, 32, 32)


def small_cnn():
    """A CNN with the layers onnxruntime's quantizer has special ops for: Conv (+BN, ReLU, ReLU6), a
    depthwise conv, a residual Add, LeakyReLU, Sigmoid gating (Mul), Concat, MaxPool, AveragePool,
    GlobalAveragePool, a Linear layer and Softmax."""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU())
            self.dw = nn.Sequential(nn.Conv2d(16, 16, 3, 1, 1, groups=16), nn.BatchNorm2d(16), nn.ReLU6())
            self.pw = nn.Sequential(nn.Conv2d(16, 16, 1), nn.BatchNorm2d(16))
            self.conv2 = nn.Sequential(nn.Conv2d(16, 12, 3, 1, 1), nn.LeakyReLU(0.1))
            self.conv3 = nn.Conv2d(16, 12, 1)
            self.pool = nn.MaxPool2d(2)
            self.avg = nn.AvgPool2d(2)
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(24, 10)

        def forward(self, x):
            x = self.stem(x)
            x = x + self.pw(self.dw(x))
            a = self.conv2(x)
            b = self.conv3(x)
            b = b * torch.sigmoid(b)
            x = torch.cat([a, b], 1)
            x = self.avg(self.pool(x))
            x = torch.flatten(self.gap(x), 1)
            return torch.softmax(self.fc(x) * 4, 1)

    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():  # BN statistics that are not the identity
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return net


def calibration_batches(n=8, shape=INPUT_SHAPE, seed=1):
    rs = np.random.RandomState(seed)
    return [rs.standard_normal(shape).astype(np.float32) for _ in range(n)]


def export_float(path, net=None, shape=INPUT_SHAPE, opset=13):
    import torch
    net = net if net is not None else small_cnn()
    torch.onnx.export(net, torch.zeros(shape), path, input_names=["input"], output_names=["output"],
                      opset_version=opset, dynamo=False)
    return path


class _Reader:
    def __init__(self, name, batches):
        self.items = iter([{name: b} for b in batches])

    def get_next(self):
        return next(self.items, None)


def quantize(float_path, out_path, config, batches=None, reduce_range=None):
    """Quantize ``float_path`` with onnxruntime's tool into ``out_path`` as CONFIGS[config] says (a name, or
    a (format, per_channel, activation type, weight type) tuple). ``reduce_range`` defaults to 7-bit int8
    weights (see the module's docstring)."""
    from onnxruntime import quantization as q
    fmt, per_channel, act, weight = CONFIGS[config] if isinstance(config, str) else config
    if reduce_range is None:
        reduce_range = weight == "QInt8"
    if fmt == "dynamic":
        q.quantize_dynamic(float_path, out_path, per_channel=per_channel, weight_type=getattr(q.QuantType, weight),
                           reduce_range=reduce_range)
        return out_path
    batches = batches if batches is not None else calibration_batches()
    name = _input_name(float_path)
    q.quantize_static(float_path, out_path, _Reader(name, batches),
                      quant_format=getattr(q.QuantFormat, fmt), per_channel=per_channel,
                      activation_type=getattr(q.QuantType, act), weight_type=getattr(q.QuantType, weight),
                      reduce_range=reduce_range)
    return out_path


def _input_name(path):
    import onnx
    return onnx.load(path).graph.input[0].name


def as_uint8(path, out_path):
    """The same model with every int8 constant (weights and zero points) stored as uint8 + 128.

    (q + 128) - (zp + 128) = q - zp: every value the model stands for is unchanged, and a QuantizeLinear
    whose zero point moved to uint8 produces the shifted integers, clamped to the shifted range. What
    changes is which of onnxruntime's kernels run: uint8 x uint8 ones, whose sums are exact on every
    machine, instead of the uint8 x int8 ones that saturate on x86 without VNNI (see
    tests/test_quantized_cnns.py). With graph optimizations off (no QDQ fusion) onnxruntime then computes
    the model as the ONNX spec writes it: the exact oracle."""
    import onnx
    from onnx import numpy_helper
    model = onnx.load(path)
    for t in model.graph.initializer:
        if t.data_type == onnx.TensorProto.INT8:
            shifted = (numpy_helper.to_array(t).astype(np.int16) + 128).astype(np.uint8)
            t.CopyFrom(numpy_helper.from_array(shifted, t.name))
    onnx.save(model, out_path)
    return out_path


def output_step(path, output_name):
    """The quantization step of a model output: the scale of the DequantizeLinear that produces it."""
    import onnx
    from onnx import numpy_helper
    model = onnx.load(path)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if output_name in node.output and node.op_type == "DequantizeLinear":
            return float(np.max(inits[node.input[1]]))
    return None


if __name__ == "__main__":
    folder = sys.argv[1] if len(sys.argv) > 1 else "."
    fp = export_float(os.path.join(folder, "small_cnn.onnx"))
    for name in CONFIGS:
        print(quantize(fp, os.path.join(folder, "small_cnn_%s.onnx" % name), name))
