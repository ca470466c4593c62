"""Slice and Pad.

Slice takes x[starts[i] : ends[i] : steps[i]] along axes[i] (all axes by default, step 1 by default).
Negative starts/ends count from the end (add the dimension once); then they are clamped: to [0, dim] for
positive steps and to [-1, dim - 1] for negative steps, where -1 means "before the first element". That
last case is why Python slices cannot be used directly: for them -1 means the last element.

Pad adds pads[i] elements before and pads[i + r] after axis i (negative pads crop):
    constant: the value (0 by default)    edge: repeat the border element
    reflect:  mirror without repeating the border (like numpy 'reflect')
    wrap:     continue from the other side, as on a torus (opset 19)
"""
import numpy as np

from .. import limits
from ..errors import InputError, UnsupportedError
from .registry import fixed_after, infers, op, prepared
from ._infer_types import same_rank


def _ints(a):
    return limits.shape_list(a, "starts/ends/axes/steps/pads input")


def _axes(axes, rank, op_name):
    out = []
    for a in axes:
        if not -rank <= a < rank:
            raise InputError("%s: axis %d is out of range for a tensor of rank %d" % (op_name, a, rank))
        out.append(a + rank if a < 0 else a)
    if len(set(out)) != len(out):
        raise InputError("%s: axes %s repeat an axis" % (op_name, list(axes)))
    return out


# --------------------------------------------------------------------------------------------- Slice


def _python_slice(start, end, step, dim):
    """ONNX's (start, end, step) on an axis of size dim, as a Python slice."""
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        start = min(max(start, 0), dim)
        end = min(max(end, 0), dim)
        return slice(start, end, step)
    start = min(max(start, -1), dim - 1)
    end = min(max(end, -1), dim - 1)
    if start < 0:  # starting before the first element: nothing to take
        return slice(0, 0, step)
    return slice(start, None if end < 0 else end, step)


def _slice(data, starts, ends, axes, steps):
    return data[_slice_index(data, starts, ends, axes, steps)]


def _slice_index(data, starts, ends, axes, steps):
    r = data.ndim
    starts, ends = _ints(starts), _ints(ends)
    if len(starts) != len(ends):
        raise InputError("Slice: %d starts but %d ends" % (len(starts), len(ends)))
    axes = list(range(len(starts))) if axes is None else _ints(axes)
    steps = [1] * len(starts) if steps is None else _ints(steps)
    if not len(axes) == len(steps) == len(starts):
        raise InputError("Slice: starts, ends, axes and steps must have the same length (%d, %d, %d, %d)"
                         % (len(starts), len(ends), len(axes), len(steps)))
    index = [slice(None)] * r
    for a, s, e, st in zip(_axes(axes, r, "Slice"), starts, ends, steps):
        if st == 0:
            raise InputError("Slice: step 0 on axis %d" % a)
        index[a] = _python_slice(s, e, st, data.shape[a])
    return tuple(index)


@op("Slice", 1)
def slice_1(data, *, starts, ends, axes=None):
    return _slice(data, starts, ends, axes, None)


@op("Slice", 10, 11, 13)  # 10: inputs and steps; 11: negative axes; 13: bfloat16
def slice_10(data, starts, ends, axes=None, steps=None):
    return _slice(data, starts, ends, axes, steps)


@prepared(slice_10)
def _prepare_slice(fn, args, fixed, attrs):
    """For the compiled program, with constant starts, ends, axes and steps: the index worked out once."""
    if type(args[0]) is not np.ndarray or not fixed_after(args, fixed):
        return None
    index = _slice_index(*(list(args) + [None] * (5 - len(args))))

    def slice_prepared(data, *constants):
        return data[index]
    return slice_prepared


# ----------------------------------------------------------------------------------------------- Pad


_NUMPY_MODE = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}


def _check_modes(modes):
    def check(**attrs):
        mode = attrs.get("mode", "constant")
        if mode not in modes:
            raise UnsupportedError("Pad: mode %r is not supported at this opset (one of %s)"
                                   % (mode, ", ".join(modes)))
    return check


def _pad(data, pads, mode, value, axes=None):
    r = data.ndim
    pads = _ints(pads)
    axes = list(range(r)) if axes is None else _axes(_ints(axes), r, "Pad")
    n = len(axes)
    if len(pads) != 2 * n:
        raise InputError("Pad: %d pads given for %d axes (need 2 per axis: all begins, then all ends)"
                         % (len(pads), n))
    before, after = [0] * r, [0] * r
    for i, a in enumerate(axes):
        before[a], after[a] = pads[i], pads[n + i]

    # Negative pads remove elements: crop first, then pad with what is left (all >= 0).
    if min(before + after) < 0:
        data = data[tuple(slice(max(0, -b), d - max(0, -e)) for b, e, d in zip(before, after, data.shape))]
        before = [max(0, b) for b in before]
        after = [max(0, e) for e in after]
    if not any(before) and not any(after):
        return data
    limits.check_shape([d + b + e for d, b, e in zip(data.shape, before, after)], data.dtype, "Pad")

    if mode == "constant":
        # Filling a new array and copying the interior is much faster than np.pad.
        shape = [d + b + e for d, b, e in zip(data.shape, before, after)]
        out = np.full(shape, value, dtype=data.dtype)
        out[tuple(slice(b, b + d) for b, d in zip(before, data.shape))] = data
        return out
    for a in range(r):
        if (before[a] or after[a]) and data.shape[a] == 0:
            raise InputError("Pad: cannot pad an empty axis %d in %s mode" % (a, mode))
        if mode == "reflect" and max(before[a], after[a]) >= data.shape[a] and data.shape[a] > 0:
            # onnxruntime refuses this too: a reflection cannot be longer than the axis minus its border
            raise InputError("Pad: reflect pads %d/%d on axis %d need an axis longer than that (size %d)"
                             % (before[a], after[a], a, data.shape[a]))
    return np.pad(data, list(zip(before, after)), mode=_NUMPY_MODE[mode])


def _scalar(v, dtype):
    """The constant to pad with: absent means 0 (False for bool)."""
    if v is None:
        return np.zeros((), dtype=dtype)
    v = np.asarray(v).reshape(-1)
    if v.size == 0:
        return np.zeros((), dtype=dtype)
    return v[0].astype(dtype)


@op("Pad", 2, check=_check_modes(("constant", "reflect", "edge")))  # 2: `paddings` renamed `pads`
def pad_2(data, *, pads, mode="constant", value=0.0):
    return _pad(data, pads, mode, np.array(value).astype(data.dtype))


@op("Pad", 11, 13, check=_check_modes(("constant", "reflect", "edge")))  # 11: pads/value inputs; 13: types
def pad_11(data, pads, constant_value=None, *, mode="constant"):
    return _pad(data, pads, mode, _scalar(constant_value, data.dtype))


# 18 added the axes input; 19 added mode "wrap"; later versions only add types.
@op("Pad", 18, check=_check_modes(("constant", "reflect", "edge")))
@op("Pad", 19, 21, 23, 24, 25, check=_check_modes(("constant", "reflect", "edge", "wrap")))
def pad_18(data, pads, constant_value=None, axes=None, *, mode="constant"):
    return _pad(data, pads, mode, _scalar(constant_value, data.dtype), axes)


infers(slice_1, slice_10, pad_2, pad_11, pad_18)(same_rank)
