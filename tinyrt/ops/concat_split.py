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
from .registry import infers, op, prepared, static_shape
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
    a = _axis(axis, inputs[0].ndim, "Concat")
    rest = [(i, x.shape) for i, x in enumerate(inputs) if x.ndim != inputs[0].ndim or
            x.shape[:a] + x.shape[a + 1:] != inputs[0].shape[:a] + inputs[0].shape[a + 1:]]
    if rest:
        raise InputError("Concat: input %d has shape %s, which does not match input 0 %s outside axis %d"
                         % (rest[0][0], rest[0][1], inputs[0].shape, a))
    if len(inputs) == 1:
        return inputs[0]
    # one input may be listed many times: the result can be far bigger than any input
    limits.check_count(sum(limits.nominal_count(x.shape) for x in inputs), inputs[0].itemsize, "Concat")
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
