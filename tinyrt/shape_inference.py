"""Element types and shapes of graph outputs the file leaves undeclared, for ``get_outputs()``.

onnxruntime runs ONNX's shape inference at load, so its NodeArg for an output the file gives no shape (or
no type) still says e.g. ``tensor(float)`` and ``['N', 3]``. tinyrt does not need shapes to run, so this
is only for what the session reports: dimensions flow from the inputs' declarations and the initializers
through the common ops, as ints, symbolic names ('N') or None (unknown); an op not covered here leaves
its outputs unknown (None, as before). Nothing here changes how the model runs.
"""
import numpy as np

from . import dtypes

FLOAT, INT64, BOOL = 1, 7, 9

_SAME = {
    "Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "BatchNormalization", "Ceil", "Celu", "Clip",
    "Cos", "Cosh", "CumSum", "Dropout", "Elu", "Erf", "Exp", "Floor", "Gelu", "HardSigmoid", "HardSwish",
    "Hardmax", "Identity", "InstanceNormalization", "LayerNormalization", "LeakyRelu", "Log", "LogSoftmax",
    "LpNormalization", "LRN", "MeanVarianceNormalization", "Mish", "Neg", "Not", "Reciprocal", "Relu", "Round",
    "Selu", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Softmax", "Softplus", "Softsign", "Sqrt", "Tan", "Tanh",
    "ThresholdedRelu",
}
_BROADCAST = {"Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean", "PRelu", "BitShift",
              "BitwiseAnd", "BitwiseOr", "BitwiseXor", "And", "Or", "Xor"}
_COMPARE = {"Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"}
_TO_BOOL = {"IsNaN", "IsInf"}
_REDUCE = {"ReduceMax", "ReduceMin", "ReduceMean", "ReduceSum", "ReduceProd", "ReduceL1", "ReduceL2",
           "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"}


def infer(graph):
    """{value name: (element type code or None, shape list or None)} for the values of ``graph``."""
    known = {}
    constants = dict(graph.initializers)
    for name, a in graph.initializers.items():
        known[name] = (_code(a.dtype), list(a.shape))
    for spec in graph.inputs:
        if spec.kind == "tensor":
            known[spec.name] = (spec.elem_type or None, None if spec.shape is None else list(spec.shape))
    for node in graph.nodes:
        if node.domain not in ("", "ai.onnx"):
            continue
        ins = [known.get(x, (None, None)) if x else (None, None) for x in node.inputs]
        try:
            outs = _infer_node(node, ins, [constants.get(x) for x in node.inputs])
        except (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError, OverflowError):
            outs = None  # a malformed node: leave it unknown, running it will say what is wrong
        for name, value in zip(node.outputs, outs or ()):
            if name and value is not None:
                known[name] = value
        if node.op_type == "Constant" and node.outputs and isinstance(node.attrs.get("value"), np.ndarray):
            constants[node.outputs[0]] = node.attrs["value"]
    return known


def _code(dtype):
    try:
        return dtypes.from_numpy(dtype)
    except KeyError:
        return None


def _ints(a):
    return None if a is None else [int(v) for v in np.asarray(a).reshape(-1)]


def _broadcast(shapes):
    if any(s is None for s in shapes):
        return None
    rank = max(len(s) for s in shapes)
    out = []
    for i in range(rank):
        dims = [s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0]
        fixed = [d for d in dims if isinstance(d, int) and d != 1]
        others = [d for d in dims if not isinstance(d, int)]
        if fixed:
            out.append(fixed[0])
        elif others and all(d == others[0] for d in others) and others[0] is not None:
            out.append(others[0])
        elif not others:
            out.append(1)
        else:
            out.append(None)
    return out


def _window(size, kernel, pad, stride, dilation, ceil_mode=0):
    if not isinstance(size, int):
        return None
    span = (kernel - 1) * dilation + 1
    if ceil_mode:
        return -(-(size + pad - span) // stride) + 1
    return (size + pad - span) // stride + 1


def _spatial(node, x, kernel):
    """Output spatial sizes of Conv / pooling."""
    a = node.attrs
    n = len(kernel)
    strides = a.get("strides") or [1] * n
    dilations = a.get("dilations") or [1] * n
    auto_pad = a.get("auto_pad", "NOTSET")
    sizes = x[2:]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return [-(-d // s) if isinstance(d, int) else None for d, s in zip(sizes, strides)]
    pads = a.get("pads") or [0] * (2 * n)
    if auto_pad == "VALID":
        pads = [0] * (2 * n)
    return [_window(d, k, pads[i] + pads[i + n], strides[i], dilations[i], a.get("ceil_mode", 0))
            for i, (d, k) in enumerate(zip(sizes, kernel))]


def _axes(node, consts, position):
    """Axes from the attribute (older opsets) or from a constant input."""
    if "axes" in node.attrs:
        return list(node.attrs["axes"])
    if len(consts) > position and consts[position] is not None:
        return _ints(consts[position])
    return None


def _infer_node(node, ins, consts):
    op, a = node.op_type, node.attrs
    elem, x = ins[0] if ins else (None, None)
    if op in _SAME:
        return [(elem, x)] + [(None, None)] * (len(node.outputs) - 1)
    if op in _BROADCAST:
        return [(elem, _broadcast([s for _, s in ins]))]
    if op in _COMPARE:
        return [(BOOL, _broadcast([s for _, s in ins]))]
    if op in _TO_BOOL:
        return [(BOOL, x)]
    if op == "Where":
        return [(ins[1][0], _broadcast([s for _, s in ins]))]
    if op == "Cast":
        return [(a.get("to"), x)]
    if op == "CastLike":
        return [(ins[1][0], x)]
    if op == "Shape":
        if x is None:
            return [(INT64, [None])]
        start, end = a.get("start", 0), a.get("end", len(x))
        return [(INT64, [len(x[slice(start, end)])])]
    if op == "Size":
        return [(INT64, [])]
    if op == "Transpose" and x is not None:
        perm = a.get("perm") or list(range(len(x)))[::-1]
        return [(elem, [x[p] for p in perm])]
    if op == "Flatten" and x is not None:
        axis = a.get("axis", 1)
        axis = axis + len(x) if axis < 0 else axis
        return [(elem, [_product(x[:axis]), _product(x[axis:])])]
    if op == "Reshape":
        shape = _ints(consts[1]) if len(consts) > 1 else None
        return [(elem, _reshape(x, shape, a.get("allowzero", 0)))]
    if op in ("Squeeze", "Unsqueeze") and x is not None:
        axes = _axes(node, consts, 1)
        if op == "Squeeze":
            if axes is None:
                return [(elem, [d for d in x if d != 1]) if all(isinstance(d, int) for d in x) else (elem, None)]
            axes = [v % len(x) for v in axes]
            return [(elem, [d for i, d in enumerate(x) if i not in axes])]
        if axes is None:
            return [(elem, None)]
        rank = len(x) + len(axes)
        axes = sorted(v % rank for v in axes)
        out, rest = [], iter(x)
        for i in range(rank):
            out.append(1 if i in axes else next(rest))
        return [(elem, out)]
    if op == "Concat":
        shapes = [s for _, s in ins]
        if any(s is None for s in shapes):
            return [(elem, None)]
        axis = a.get("axis", 0) % len(shapes[0])
        out = list(shapes[0])
        sizes = [s[axis] for s in shapes]
        out[axis] = sum(sizes) if all(isinstance(d, int) for d in sizes) else None
        return [(elem, out)]
    if op == "MatMul":
        y = ins[1][1]
        if x is None or y is None or len(x) < 1 or len(y) < 1:
            return [(elem, None)]
        xs, ys = (x if len(x) > 1 else [1] + x), (y if len(y) > 1 else y + [1])
        batch = _broadcast([xs[:-2], ys[:-2]])
        out = batch + [xs[-2], ys[-1]]
        if len(x) == 1:
            out.pop(-2)
        if len(y) == 1:
            out.pop(-1)
        return [(elem, out)]
    if op == "Gemm":
        y = ins[1][1]
        if x is None or y is None:
            return [(elem, None)]
        m = x[1] if a.get("transA", 0) else x[0]
        n = y[0] if a.get("transB", 0) else y[1]
        return [(elem, [m, n])]
    if op in ("Conv", "ConvInteger"):
        w = ins[1][1]
        if x is None or w is None:
            return [(elem, None)]
        kernel = a.get("kernel_shape") or w[2:]
        return [(elem, [x[0], w[0]] + _spatial(node, x, kernel))]
    if op in ("MaxPool", "AveragePool", "LpPool") and x is not None:
        outs = [(elem, x[:2] + _spatial(node, x, a["kernel_shape"]))]
        return outs + [(INT64, outs[0][1])] * (len(node.outputs) - 1)
    if op in ("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool") and x is not None:
        return [(elem, x[:2] + [1] * (len(x) - 2))]
    if op in _REDUCE or op in ("ArgMax", "ArgMin"):
        out_elem = INT64 if op in ("ArgMax", "ArgMin") else elem
        if x is None:
            return [(out_elem, None)]
        if op in ("ArgMax", "ArgMin"):
            axes = [a.get("axis", 0)]
        else:
            axes = _axes(node, consts, 1)
            if axes is None and len(ins) > 1 and node.inputs[1]:
                return [(out_elem, None)]        # axes given at run time
            if not axes:
                if a.get("noop_with_empty_axes", 0):
                    return [(out_elem, x)]
                axes = list(range(len(x)))
        axes = [v % len(x) for v in axes]
        if a.get("keepdims", 1):
            return [(out_elem, [1 if i in axes else d for i, d in enumerate(x)])]
        return [(out_elem, [d for i, d in enumerate(x) if i not in axes])]
    if op == "Gather":
        idx = ins[1][1]
        if x is None or idx is None:
            return [(elem, None)]
        axis = a.get("axis", 0) % len(x)
        return [(elem, x[:axis] + idx + x[axis + 1:])]
    if op == "Constant":
        value = a.get("value")
        if isinstance(value, np.ndarray):
            return [(_code(value.dtype), list(value.shape))]
        return None
    if op == "ConstantOfShape":
        value = a.get("value")
        shape = _ints(consts[0]) if consts and consts[0] is not None else None
        return [(_code(value.dtype) if isinstance(value, np.ndarray) else FLOAT, shape)]
    if op == "Expand":
        shape = _ints(consts[1]) if len(consts) > 1 else None
        return [(elem, _broadcast([x, shape]) if shape is not None else None)]
    if op in ("Resize", "Upsample", "Slice", "Pad", "Tile", "TopK", "Split", "NonZero", "NonMaxSuppression"):
        return _runtime_sized(op, elem, x, node)
    return None


def _runtime_sized(op, elem, x, node):
    """Ops whose sizes depend on values: the rank is known, the dimensions are left unknown."""
    if op == "NonMaxSuppression":
        return [(INT64, [None, 3])]
    if op == "NonZero":
        return [(INT64, [None if x is None else len(x), None])]
    rank = None if x is None else [None] * len(x)
    if op == "TopK":
        return [(elem, rank), (INT64, rank)]
    return [(elem, rank)] * len(node.outputs)


def _product(dims):
    if len(dims) == 1:
        return dims[0]     # a single dimension, symbolic or not
    total = 1
    for d in dims:
        if not isinstance(d, int):
            return None
        total *= d
    return total


def _reshape(x, shape, allowzero):
    if shape is None:
        return None
    out = []
    for i, d in enumerate(shape):
        if d == 0 and not allowzero:
            out.append(x[i] if x is not None and i < len(x) else None)
        else:
            out.append(d)
    if -1 in out:
        out[out.index(-1)] = _inferred_dimension(x, [d for d in out if d != -1])
    return out


def _inferred_dimension(x, others):
    """Reshape's -1: the input's size over the other dimensions' (symbolic ones cancel by name, so
    ['N', 8, 8] -> [0, -1] gives ['N', 64])."""
    if x is None or any(d is None for d in others) or None in x:
        return None
    left = list(x)
    right = []
    for d in others:
        if not isinstance(d, int) and d in left:
            left.remove(d)
        else:
            right.append(d)
    if not all(isinstance(d, int) for d in left + right):
        return None
    numerator, denominator = 1, 1
    for d in left:
        numerator *= d
    for d in right:
        denominator *= d
    return numerator // denominator if denominator else None
