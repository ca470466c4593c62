"""Output types and shapes rules shared by many ops (see ``registry.infers``), for what ``get_outputs()``
reports: dimensions are ints, symbolic names ('N') or None (unknown), element types ONNX codes or None."""
import numpy as np

from .. import dtypes

FLOAT, INT64, BOOL = 1, 7, 9


def first(ins):
    """The first input's (element type, shape), unknown when the node has none."""
    return ins[0] if ins else (None, None)


def same(node, ins, constants):
    """Elementwise ops of one tensor (and normalisations, softmaxes): the first input's type and shape; any
    further output unknown."""
    return [first(ins)] + [(None, None)] * (len(node.outputs) - 1)


def broadcast(node, ins, constants):
    """Elementwise ops of several tensors: the first input's type, the inputs' broadcast shape."""
    return [(first(ins)[0], broadcast_dims([s for _, s in ins]))]


def compare(node, ins, constants):
    """Comparisons: bool, of the inputs' broadcast shape."""
    return [(BOOL, broadcast_dims([s for _, s in ins]))]


def to_bool(node, ins, constants):
    """IsNaN, IsInf: bool, of the input's shape."""
    return [(BOOL, first(ins)[1])]


def same_rank(node, ins, constants):
    """Ops whose sizes depend on values (Resize, Slice, Pad, Tile, Split): the first input's type and rank,
    the dimensions unknown, for every output."""
    elem, x = first(ins)
    return [(elem, None if x is None else [None] * len(x))] * len(node.outputs)


def reduce(node, ins, constants):
    """The Reduce ops: axes from the attribute or a constant input, keepdims, noop_with_empty_axes."""
    elem, x = first(ins)
    if x is None:
        return [(elem, None)]
    axes = axes_of(node, constants, 1)
    if axes is None and len(ins) > 1 and node.inputs[1]:
        return [(elem, None)]        # axes given at run time
    if not axes:
        if node.attrs.get("noop_with_empty_axes", 0):
            return [(elem, x)]
        axes = list(range(len(x)))
    return [(elem, reduced(node, x, axes))]


def arg_reduce(node, ins, constants):
    """ArgMax, ArgMin: int64, the input's shape reduced over ``axis``."""
    x = first(ins)[1]
    return [(INT64, None if x is None else reduced(node, x, [node.attrs.get("axis", 0)]))]


def reduced(node, x, axes):
    axes = [v % len(x) for v in axes]
    if node.attrs.get("keepdims", 1):
        return [1 if i in axes else d for i, d in enumerate(x)]
    return [d for i, d in enumerate(x) if i not in axes]


def code(dtype):
    """The ONNX element type code of a numpy dtype, None if it has none."""
    try:
        return dtypes.from_numpy(dtype)
    except KeyError:
        return None


def ints(a):
    return None if a is None else [int(v) for v in np.asarray(a).reshape(-1)]


def axes_of(node, constants, position):
    """Axes from the attribute (older opsets) or from a constant input."""
    if "axes" in node.attrs:
        return list(node.attrs["axes"])
    if len(constants) > position and constants[position] is not None:
        return ints(constants[position])
    return None


def broadcast_dims(shapes):
    """Broadcast of shapes with symbolic dimensions: a fixed size other than 1 wins, equal names stay."""
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


def spatial(node, x, kernel):
    """Output spatial sizes of Conv / pooling over the input shape ``x``."""
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


def _window(size, kernel, pad, stride, dilation, ceil_mode=0):
    if not isinstance(size, int):
        return None
    span = (kernel - 1) * dilation + 1
    if ceil_mode:
        return -(-(size + pad - span) // stride) + 1
    return (size + pad - span) // stride + 1


def product(dims):
    """The size of ``dims`` as one dimension: a single one as it is, symbolic or not; else ints or None."""
    if len(dims) == 1:
        return dims[0]
    total = 1
    for d in dims:
        if not isinstance(d, int):
            return None
        total *= d
    return total


def reshaped(x, shape, allowzero):
    """Reshape's output dimensions from the input's ``x`` and the constant ``shape`` (0 copies, -1 infers)."""
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
