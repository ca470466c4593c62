"""The numpy path's kernel choice for an inverted residual block that halves its map, as a visible rewrite:

    Conv/FusedConv 1x1 -> Conv/FusedConv depthwise, stride 2 across   PointwiseDepthwise (ops/pointwise_depthwise.py)
    (the depthwise conv its only reader)

Only the numpy path runs this pass (passes/__init__.py): its prepared PointwiseDepthwise writes the 1x1
conv's result as the column phases the depthwise conv reads (kernel_wrappers/numpy_pointwise_depthwise.py),
which saves it the slowest einsum it runs (SSDlite320's 160x160 layer, 64 channels: 1324 -> 934 us, the 1x1
conv costing the same). The numba path's kernels read the strided pixels themselves and keep the two convs.

Fused only where that kernel runs: constant float weights, the 1x1 conv plain (stride 1, no pads, one
group, no residual, no rounding of its input), the depthwise conv (one input channel per group, as many
groups as channels) with explicit pads, no dilation, a column stride of 2 and fewer than ``WIDE`` channels
(from there its per-pixel einsum is as fast: 240 channels at 40x40, 179 against 212 us), and no residual.
"""
import numpy as np

from ..graph import Node
from ..ops.registry import TINYRT_DOMAIN
from .fuse_batchnorm import input_at, is_conv, producers, readers

WIDE = 240


def _plain(attrs, name, default):
    value = attrs.get(name)
    return list(value) if value is not None else default


def _pointwise(node, consts):
    """True for a 1x1 conv that PointwiseDepthwise can take as its first half."""
    w = consts.get(input_at(node, 1))
    b = input_at(node, 2)
    if w is None or w.ndim != 4 or w.shape[2:] != (1, 1) or w.dtype != np.float32 or (b and b not in consts):
        return False
    a = node.attrs
    return int(a.get("group", 1)) == 1 and a.get("auto_pad", "NOTSET") in ("NOTSET", b"NOTSET") and \
        not any(_plain(a, "pads", [0])) and set(_plain(a, "strides", [1])) == {1} and \
        set(_plain(a, "dilations", [1])) == {1} and not input_at(node, 3) and a.get("input_rounding") is None


def _depthwise(node, consts, channels):
    """True for a depthwise conv over ``channels`` channels that PointwiseDepthwise can take as its second half."""
    w = consts.get(input_at(node, 1))
    b = input_at(node, 2)
    if w is None or w.ndim != 4 or w.shape[:2] != (channels, 1) or w.dtype != np.float32 or (b and b not in consts):
        return False
    a = node.attrs
    pads, strides = _plain(a, "pads", [0, 0, 0, 0]), _plain(a, "strides", [1, 1])
    return int(a.get("group", 1)) == channels < WIDE and a.get("auto_pad", "NOTSET") in ("NOTSET", b"NOTSET") \
        and len(pads) == 4 and min(pads) >= 0 and len(strides) == 2 and int(strides[1]) == 2 and \
        set(_plain(a, "dilations", [1, 1])) == {1} and not input_at(node, 3) and a.get("input_rounding") is None


def fuse_pointwise_depthwise(graph):
    """Replace each such pair by one PointwiseDepthwise in the depthwise conv's place. True when something
    changed."""
    consts = graph.initializers
    if not any(is_conv(n) for n in graph.nodes):
        return False
    made_by, reads = producers(graph), readers(graph)
    outputs = {spec.name for spec in graph.outputs}
    gone, changed = set(), False
    for k, node in enumerate(graph.nodes):
        if not is_conv(node) or not node.inputs:
            continue
        first = made_by.get(node.inputs[0])
        if first is None or not is_conv(first) or id(first) in gone or first.outputs[0] in outputs or \
                reads.get(first.outputs[0], 0) != 1 or not _pointwise(first, consts):
            continue
        if not _depthwise(node, consts, consts[first.inputs[1]].shape[0]):
            continue
        attrs = {key: value for key, value in node.attrs.items() if key != "input_rounding"}
        attrs["pointwise_activation"] = first.attrs.get("activation", "")
        attrs["pointwise_activation_params"] = list(first.attrs.get("activation_params") or [])
        graph.nodes[k] = Node("PointwiseDepthwise", (first.inputs[0], first.inputs[1], input_at(first, 2),
                                                     node.inputs[1], input_at(node, 2)),
                              node.outputs, attrs, name=node.name, domain=TINYRT_DOMAIN, opset=1)
        gone.add(id(first))
        changed = True
    if changed:
        graph.nodes = [n for n in graph.nodes if id(n) not in gone]
    return changed
