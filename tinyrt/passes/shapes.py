"""Static shape inference, just enough for constant folding.

Starting from inputs with fixed dimensions and from the initializers, shapes flow through the ops whose
output shape depends only on their input shapes (and on constant inputs). Any op not listed here, or any
symbolic dimension, stops the flow: those values simply stay unknown and their Shape nodes run normally.
"""
import numpy as np

_SAME_SHAPE = {
    "Abs", "BatchNormalization", "Cast", "CastLike", "Ceil", "Celu", "Clip", "Dropout", "Elu", "Erf", "Exp",
    "Floor", "Gelu", "HardSigmoid", "HardSwish", "Hardmax", "Identity", "InstanceNormalization",
    "LayerNormalization", "LeakyRelu", "Log", "LogSoftmax", "LRN", "Mish", "Neg", "Not", "Reciprocal",
    "Relu", "Round", "Selu", "Sigmoid", "Sign", "Softmax", "Softplus", "Softsign", "Sqrt", "Tanh",
}
_BROADCAST = {"Add", "And", "Div", "Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "Max",
              "Mean", "Min", "Mod", "Mul", "Or", "Pow", "PRelu", "Sub", "Sum", "Where", "Xor"}


def infer(graph):
    """{value name: tuple of ints} for every value whose shape is known before running."""
    known = {name: tuple(a.shape) for name, a in graph.initializers.items()}
    for spec in graph.inputs:
        if spec.shape is not None and all(isinstance(d, int) for d in spec.shape):
            known[spec.name] = tuple(spec.shape)
    for node in graph.nodes:
        if node.domain != "" or not node.outputs:
            continue
        shapes = [known.get(x) if x else None for x in node.inputs]
        try:
            out = _infer_node(node, shapes, graph.initializers)
        except (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError):
            out = None  # a malformed node: leave it to fail, with a clear error, when it runs
        if out is not None and all(isinstance(d, (int, np.integer)) and d >= 0 for d in out):
            known[node.outputs[0]] = tuple(int(d) for d in out)
    return known


def _infer_node(node, shapes, constants):
    op, a = node.op_type, node.attrs
    x = shapes[0] if shapes else None
    if op in _SAME_SHAPE:
        return x
    if op in _BROADCAST:
        return None if any(s is None for s in shapes) else broadcast_shapes(shapes)
    if x is None:
        return None
    if op in ("GlobalAveragePool", "GlobalMaxPool"):
        return x[:2] + (1,) * (len(x) - 2)
    if op in ("Conv", "MaxPool", "AveragePool"):
        if op == "Conv":
            if shapes[1] is None:
                return None
            kernel = a.get("kernel_shape") or list(shapes[1][2:])
            channels = shapes[1][0]
        else:
            kernel = a["kernel_shape"]
            channels = x[1]
        return (x[0], channels) + tuple(_window_out(x[2:], kernel, a, op != "Conv" and a.get("ceil_mode", 0)))
    if op == "Flatten":
        axis = a.get("axis", 1) % (len(x) + 1) if len(x) else 0
        return (int(np.prod(x[:axis])), int(np.prod(x[axis:])))
    if op == "Transpose":
        perm = a.get("perm") or list(range(len(x)))[::-1]
        return tuple(x[p] for p in perm)
    if op == "Reshape" and len(node.inputs) > 1 and node.inputs[1] in constants:
        target = [int(d) for d in constants[node.inputs[1]]]
        if not a.get("allowzero", 0):
            target = [x[i] if d == 0 else d for i, d in enumerate(target)]
        if target.count(-1) == 1:
            rest = int(np.prod([d for d in target if d != -1]))
            target[target.index(-1)] = int(np.prod(x)) // rest if rest else 0
        return tuple(target) if int(np.prod(target)) == int(np.prod(x)) else None
    if op == "Concat" and all(s is not None for s in shapes if s is not None) and None not in shapes:
        axis = a["axis"] % len(x)
        return x[:axis] + (sum(s[axis] for s in shapes),) + x[axis + 1:]
    if op == "Gemm" and shapes[1] is not None:
        m = x[1] if a.get("transA", 0) else x[0]
        n = shapes[1][0] if a.get("transB", 0) else shapes[1][1]
        return (m, n)
    if op == "Unsqueeze":
        axes = a.get("axes")
        if axes is None:
            if len(node.inputs) < 2 or node.inputs[1] not in constants:
                return None
            axes = [int(v) for v in constants[node.inputs[1]]]
        rank = len(x) + len(axes)
        axes = sorted(ax % rank for ax in axes)
        out = list(x)
        for ax in axes:
            out.insert(ax, 1)
        return tuple(out)
    if op == "Shape":
        rank = len(x)
        start, end = a.get("start", 0), a.get("end", rank)
        start, end = [min(max(v + rank if v < 0 else v, 0), rank) for v in (start, end)]
        return (max(end - start, 0),)
    return None


def broadcast_shapes(shapes):
    """numpy's broadcasting rule (np.broadcast_shapes needs numpy 1.20): align right, 1 stretches."""
    rank = max(len(s) for s in shapes)
    out = []
    for axis in range(rank):
        dims = {s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0} - {1}
        if len(dims) > 1:
            raise ValueError("shapes %s do not broadcast" % (shapes,))
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def _window_out(spatial, kernel, a, ceil_mode):
    """Output sizes of a sliding window (conv or pool) over ``spatial``."""
    n = len(spatial)
    strides = a.get("strides") or [1] * n
    dilations = a.get("dilations") or [1] * n
    pads = a.get("pads") or [0] * (2 * n)
    auto_pad = a.get("auto_pad", "NOTSET")
    out = []
    for i in range(n):
        span = (kernel[i] - 1) * dilations[i] + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out.append(-(-spatial[i] // strides[i]))
        elif auto_pad == "VALID":
            out.append((spatial[i] - span) // strides[i] + 1)
        else:
            total = spatial[i] + pads[i] + pads[i + n] - span
            if ceil_mode:
                size = -(-total // strides[i]) + 1
                if (size - 1) * strides[i] >= spatial[i] + pads[i]:
                    size -= 1  # a window may not start in the right padding
            else:
                size = total // strides[i] + 1
            out.append(size)
    return out
