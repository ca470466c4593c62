"""Concat and Split: join tensors along an axis, or cut one into consecutive pieces.

    Concat(x_1..x_n, axis): y.shape[axis] = sum(x_i.shape[axis]), all other dims equal
    Split(x, split, axis):  output i = x[..., o_i : o_i + split[i], ...] with o_i = sum(split[:i])

Without explicit sizes Split cuts equal parts, one per declared output; from opset 18 the number of parts
can also be given as num_outputs, and then the parts are ceil(n / parts) long with a shorter last one.
Split's outputs are views of its input (no copy).
"""
import numpy as np

from .. import limits
from ..errors import InputError, ModelError
from .registry import TINYRT_DOMAIN, fixed_after, infers, op, prepared, static_shape
from .shape import _reshape, _reshape_dims, transpose_1
from ._infer_types import first, same_rank


def _axis(axis, rank, op_name):
    a = int(axis)
    if not -rank <= a < rank:
        raise InputError("%s: axis %d is out of range for tensors of rank %d" % (op_name, a, rank))
    return a + rank if a < 0 else a


@op("Concat", 4, 11, 13)  # 4 made axis required; 11: negative axis; 13: bfloat16
def concat_4(*inputs, axis):
    if not inputs:
        raise ModelError("Concat: needs at least one input")
    first = inputs[0].shape
    r = len(first)
    a = _axis(axis, r, "Concat")
    outside = first[:a] + first[a + 1:]
    along = 0  # the inputs' sizes along the axis, each counted as at least 1 (limits.nominal_count)
    for i, x in enumerate(inputs):  # (one loop: torchvision's detectors concatenate 90 classes' boxes)
        s = x.shape
        if len(s) != r or s[:a] + s[a + 1:] != outside:
            raise InputError("Concat: input %d has shape %s, which does not match input 0 %s outside axis %d"
                             % (i, s, first, a))
        along += s[a] if s[a] > 1 else 1
    if len(inputs) == 1:
        return inputs[0]
    # one input may be listed many times: the result can be far bigger than any input
    limits.check_count(limits.nominal_count(outside) * along, inputs[0].itemsize, "Concat")
    return np.concatenate(inputs, axis=a)


@prepared(concat_4)
def _prepare_concat(fn, args, fixed, attrs):
    """For the compiled program: the axis and the shapes, checked on the first run, are those of every
    run."""
    if len(args) < 2 or not all(type(x) is np.ndarray for x in args):
        return None
    a = _axis(attrs["axis"], args[0].ndim, "Concat")

    def concat_prepared(*inputs):
        return np.concatenate(inputs, axis=a)
    return concat_prepared


def _split(x, sizes, axis, op_name="Split"):
    a = _axis(axis, x.ndim, op_name)
    if sum(sizes) != x.shape[a] or min(sizes) < 0:
        raise InputError("%s: split sizes %s do not add up to %d, the size of axis %d of the input %s"
                         % (op_name, sizes, x.shape[a], a, x.shape))
    outs = []
    index = [slice(None)] * x.ndim
    start = 0
    for s in sizes:
        index[a] = slice(start, start + s)
        outs.append(x[tuple(index)])
        start += s
    return tuple(outs)


def _equal_sizes(x, axis, parts):
    """Equal parts before opset 18: the axis must divide evenly."""
    n = x.shape[_axis(axis, x.ndim, "Split")]
    if parts < 1 or n % parts:
        raise InputError("Split: axis %d of size %d cannot be split into %d equal parts" % (axis, n, parts))
    return [n // parts] * parts


def _sizes(split):
    return [int(s) for s in np.asarray(split).reshape(-1)]


@op("Split", 2, 11)  # 2: split sizes as an attribute; 11: negative axis
def split_2(input, *, axis=0, split=None, _num_outputs=1):
    sizes = _sizes(split) if split is not None else _equal_sizes(input, axis, _num_outputs)
    return _split(input, sizes, axis)


@op("Split", 13)  # 13: split sizes became an optional input
def split_13(input, split=None, *, axis=0, _num_outputs=1):
    sizes = _sizes(split) if split is not None else _equal_sizes(input, axis, _num_outputs)
    return _split(input, sizes, axis)


@op("Split", 18)  # 18 added num_outputs, which allows a shorter last part
def split_18(input, split=None, *, axis=0, num_outputs=None, _num_outputs=1):
    if split is not None:
        if num_outputs is not None:
            raise ModelError("Split: give either the split input or num_outputs, not both")
        return _split(input, _sizes(split), axis)
    parts = _num_outputs if num_outputs is None else int(num_outputs)
    if parts != _num_outputs:
        raise ModelError("Split: num_outputs=%d but the node declares %d outputs" % (parts, _num_outputs))
    n = input.shape[_axis(axis, input.ndim, "Split")]
    chunk = -(-n // parts)  # ceil(n / parts)
    # parts of `chunk` until the axis runs out: the last one is shorter (or empty)
    sizes = [max(0, min(chunk, n - i * chunk)) for i in range(parts)]
    return _split(input, sizes, axis)


@static_shape(concat_4)
def _concat_shape(node, shapes, constants):
    if None in shapes:
        return None
    x, axis = shapes[0], node.attrs["axis"] % len(shapes[0])
    return x[:axis] + (sum(s[axis] for s in shapes),) + x[axis + 1:]


infers(split_2, split_13, split_18)(same_rank)


@infers(concat_4)
def _concat_types(node, ins, constants):
    shapes = [s for _, s in ins]
    if any(s is None for s in shapes):
        return [(first(ins)[0], None)]
    axis = node.attrs.get("axis", 0) % len(shapes[0])
    out = list(shapes[0])
    sizes = [s[axis] for s in shapes]
    out[axis] = sum(sizes) if all(isinstance(d, int) for d in sizes) else None
    return [(first(ins)[0], out)]


# -------------------------------------------------------------------------- ConcatShuffle (tinyrt's own)


@op("ConcatShuffle", 1, domain=TINYRT_DOMAIN)
def concat_shuffle(*args, axis, perm, allowzero=0, allowzero_after=0):
    """Reshape(Transpose(Reshape(Concat(x_1 .. x_n, axis), shape, allowzero), perm), shape_after,
    allowzero_after); ``args`` are x_1 .. x_n, then shape and shape_after. ShuffleNet's channel shuffle as
    torch's exporter writes it, one node instead of four (passes/channel_shuffle.py).

    The channel shuffle itself - n inputs of the same shape (N, Cg, H, W), their concatenation cut into
    n groups, (N, n, Cg, H, W), the two group axes swapped and flattened back - puts channel i of input j
    at channel i * n + j: each input is copied once, straight to its places (channels-last memory, as the
    convs around it read and write). Anything else runs the four ops one after the other."""
    xs, shape, shape_after = args[:-2], args[-2], args[-1]
    if _is_channel_shuffle(xs, shape, shape_after, axis, perm, allowzero, allowzero_after):
        # one input may be listed many times: the result can be far bigger than any input
        limits.check_count(len(xs) * limits.nominal_count(xs[0].shape), xs[0].itemsize, "ConcatShuffle")
        return _channel_shuffle(xs)
    y = transpose_1(_reshape(concat_4(*xs, axis=axis), shape, allowzero), perm=perm)
    return _reshape(y, shape_after, allowzero_after)


def _is_channel_shuffle(xs, shape, shape_after, axis, perm, allowzero, allowzero_after):
    """Whether ConcatShuffle's arguments are the channel shuffle of ``_channel_shuffle``."""
    n = len(xs)
    if n < 2:
        return False
    x = xs[0]
    if x.ndim != 4 or axis not in (1, -3) or list(perm) != [0, 2, 1, 3, 4] or \
            not all(type(xj) is np.ndarray and xj.shape == x.shape and xj.dtype == x.dtype for xj in xs):
        return False
    N, Cg, H, W = x.shape
    return _reshape_dims((N, n * Cg, H, W), shape, allowzero) == [N, n, Cg, H, W] and \
        _reshape_dims((N, Cg, n, H, W), shape_after, allowzero_after) == [N, n * Cg, H, W]


def _channel_shuffle(xs):
    """Channel i of input j at channel i * n + j, in channels-last memory: y[n, h, w, i, j] = x_j[n, i, h, w]."""
    N, Cg, H, W = xs[0].shape
    y = np.empty((N, H, W, Cg, len(xs)), xs[0].dtype)
    for j, xj in enumerate(xs):
        y[..., j] = xj.transpose(0, 2, 3, 1)
    return y.reshape(N, H, W, Cg * len(xs)).transpose(0, 3, 1, 2)


@prepared(concat_shuffle)
def _prepare_concat_shuffle(fn, args, fixed, attrs):
    """For the compiled program, with constant shapes: whether the inputs are a channel shuffle is known
    from the first run."""
    xs = args[:-2]
    if not fixed_after(args, fixed, len(xs)) or not _is_channel_shuffle(
            xs, args[-2], args[-1], attrs["axis"], attrs["perm"], attrs.get("allowzero", 0),
            attrs.get("allowzero_after", 0)):
        return None
    n = len(xs)

    def concat_shuffle_prepared(*args):
        return _channel_shuffle(args[:n])
    return concat_shuffle_prepared
