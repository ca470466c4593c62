"""Reductions over axes, ArgMax/ArgMin and CumSum.

    ReduceSum        sum(x)                  ReduceL1          sum(|x|)
    ReduceMean       sum(x) / n              ReduceL2          sqrt(sum(x^2))
    ReduceMax/Min    max(x) / min(x)         ReduceSumSquare   sum(x^2)
    ReduceProd       prod(x)                 ReduceLogSum      log(sum(x))
                                             ReduceLogSumExp   log(sum(exp(x)))

Where the axes come from changed over time: an attribute `axes` until ReduceSum-11 and the others' -13,
then an optional second input (ReduceSum-13, the others from 18) together with `noop_with_empty_axes`.
Absent or empty axes mean "all axes", unless noop_with_empty_axes=1: then nothing is reduced (though
the elementwise part, e.g. the square of ReduceSumSquare, still applies, as in onnxruntime).
`keepdims=1` keeps each reduced axis with length 1. Reducing an empty set gives the identity of the
reduction (0 for sums, 1 for products, -inf for max and log-sums, +inf for min), as onnxruntime does.
The output keeps the input's dtype; float16 is accumulated in float32.

ArgMax/ArgMin return int64 indices (the first extreme, or the last with select_last_index=1).
CumSum: running sums along one axis, optionally `exclusive` (start at 0) and/or `reverse`.
"""
import numpy as np

from .. import limits
from ..errors import InputError
from .registry import infers, op
from ._infer_types import arg_reduce, reduce, same
from ._window import channels_last_means


# --- shared machinery

def _normalize_axes(name, axes, ndim):
    out = []
    for a in axes:
        a = int(a)
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise InputError("%s: axis %d is out of range for a %d-D input" % (name, a, ndim))
        out.append(a + ndim if a < 0 else a)
    if len(set(out)) != len(out):
        raise InputError("%s: axes %s repeat an axis" % (name, list(axes)))
    return tuple(out) if ndim else ()


def _axes_input(axes):
    """The optional `axes` input (int64 1-D tensor) as a list; None when absent."""
    return None if axes is None else limits.shape_list(axes, "axes input")


def _reduce(name, fn, data, axes, keepdims, noop_with_empty_axes=0):
    if not axes:  # None (absent) or empty
        # noop: reduce over no axis at all. That is not quite "return the input": like onnxruntime (and
        # onnx's reference), the elementwise part still applies, e.g. ReduceSumSquare gives x^2.
        axes = () if noop_with_empty_axes else range(data.ndim)
    axes = _normalize_axes(name, axes, data.ndim) if axes else ()
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        y = fn(data, axes, bool(keepdims))
    # numpy gives a scalar, not an array, when everything is reduced away.
    return np.asarray(y)


def _acc(x):
    """Accumulator dtype: float16 sums drift badly, so float16 is summed in float32 and rounded back."""
    return np.float32 if x.dtype == np.float16 else x.dtype


def _sum(x, axes, keepdims):
    return np.sum(x, axis=axes, keepdims=keepdims, dtype=_acc(x)).astype(x.dtype, copy=False)


def _mean(x, axes, keepdims):
    if x.dtype.kind in "iu":
        # integer mean as C would compute it: integer sum divided by the count, truncated toward zero
        n = int(np.prod([x.shape[a] for a in axes]))
        s = np.sum(x, axis=axes, keepdims=keepdims, dtype=np.float64)
        return np.trunc(s / n).astype(x.dtype)
    if sorted(axes) == [2, 3]:  # a global pooling written as ReduceMean (ShuffleNet's head)
        means = channels_last_means(x)  # (the convs' results: a matmul, faster than numpy's strided mean)
        if means is not None:
            return means.reshape(x.shape[:2] + (1, 1)) if keepdims else means
    return np.mean(x, axis=axes, keepdims=keepdims, dtype=_acc(x)).astype(x.dtype, copy=False)


def _extreme_identity(x, largest):
    """What max/min of nothing is: -inf / +inf for floats, the type's bounds for integers."""
    if x.dtype == np.bool_:
        return not largest
    if x.dtype.kind == "f":
        return -np.inf if largest else np.inf
    info = np.iinfo(x.dtype)
    return info.min if largest else info.max


def _max(x, axes, keepdims):
    if x.size == 0:
        return np.max(x, axis=axes, keepdims=keepdims, initial=_extreme_identity(x, True))
    if x.dtype.kind == "f" and np.isnan(x).any():
        return _running(np.fmax, x, axes, keepdims)
    return np.max(x, axis=axes, keepdims=keepdims)


def _min(x, axes, keepdims):
    if x.size == 0:
        return np.min(x, axis=axes, keepdims=keepdims, initial=_extreme_identity(x, False))
    if x.dtype.kind == "f" and np.isnan(x).any():
        return _running(np.fmin, x, axes, keepdims)
    return np.min(x, axis=axes, keepdims=keepdims)


def _first(x, axes, keepdims):
    """The first element of each reduced block (index 0 on every reduced axis), shaped like the result."""
    first = x[tuple(slice(0, 1) if a in axes else slice(None) for a in range(x.ndim))]
    return first if keepdims else first.reshape([d for a, d in enumerate(x.shape) if a not in axes])


def _running(fn, x, axes, keepdims):
    """Max/min with NaN as onnxruntime computes it: a running comparison from the first element, so a NaN
    in first place is the result and later NaNs are skipped (``fn`` = np.fmax / np.fmin skips them all).
    onnxruntime's vectorised ReduceMin sometimes differs on NaN; see docs/limits.md."""
    axes = tuple(axes)
    y = fn.reduce(x, axis=axes, keepdims=keepdims)
    first = _first(x, axes, keepdims)
    return np.where(np.isnan(first), first, y)


def nan_arg(fn, data, axis):
    """np.argmax / np.argmin along ``axis`` with onnxruntime's NaN rule (see ``_running``): index 0 when
    the first element is NaN, otherwise the extreme of the other elements."""
    if data.dtype.kind != "f" or not np.isnan(data).any():
        return fn(data, axis=axis)
    nan = np.isnan(data)
    filled = np.where(nan, -np.inf if fn is np.argmax else np.inf, data)
    idx = fn(filled, axis=axis)
    first_nan = np.take(nan, 0, axis=axis)
    return np.where(first_nan, 0, idx)


def _prod(x, axes, keepdims):
    return np.prod(x, axis=axes, keepdims=keepdims, dtype=_acc(x)).astype(x.dtype, copy=False)


def _l1(x, axes, keepdims):
    return _sum(np.abs(x), axes, keepdims)


def _sum_square(x, axes, keepdims):
    xw = x.astype(_acc(x), copy=False)
    return np.sum(xw * xw, axis=axes, keepdims=keepdims).astype(x.dtype, copy=False)


def _l2(x, axes, keepdims):
    xw = x.astype(np.float64 if x.dtype.kind in "iu" else _acc(x), copy=False)
    return np.sqrt(np.sum(xw * xw, axis=axes, keepdims=keepdims)).astype(x.dtype)


def _log_sum(x, axes, keepdims):
    s = np.sum(x, axis=axes, keepdims=keepdims, dtype=_acc(x))
    return np.log(s).astype(x.dtype, copy=False)


def _log_sum_exp(x, axes, keepdims):
    xw = x.astype(_acc(x), copy=False)
    # Shift by the maximum so exp cannot overflow; an infinite or empty maximum shifts by 0 instead.
    m = np.max(xw, axis=axes, keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, xw.dtype.type(0))
    y = np.log(np.sum(np.exp(xw - m), axis=axes, keepdims=True)) + m
    if not keepdims:
        y = np.squeeze(y, axis=axes)
    return y.astype(x.dtype, copy=False)


# --- ReduceSum: axes attribute until 11, input from 13

@op("ReduceSum", 1, 11)
def reduce_sum_1(data, *, axes=None, keepdims=1):
    return _reduce("ReduceSum", _sum, data, axes, keepdims)


@op("ReduceSum", 13)
def reduce_sum_13(data, axes=None, *, keepdims=1, noop_with_empty_axes=0):
    return _reduce("ReduceSum", _sum, data, _axes_input(axes), keepdims, noop_with_empty_axes)


# --- the others: axes attribute until 13 (11 allowed negative axes, 13 added bfloat16), input from 18

@op("ReduceMean", 1, 11, 13)
def reduce_mean_1(data, *, axes=None, keepdims=1):
    return _reduce("ReduceMean", _mean, data, axes, keepdims)


@op("ReduceMean", 18)
def reduce_mean_18(data, axes=None, *, keepdims=1, noop_with_empty_axes=0):
    return _reduce("ReduceMean", _mean, data, _axes_input(axes), keepdims, noop_with_empty_axes)


# ReduceMax/Min-12 added int8/uint8, 20 added bool.
@op("ReduceMax", 1, 11, 12, 13)
def reduce_max_1(data, *, axes=None, keepdims=1):
    return _reduce("ReduceMax", _max, data, axes, keepdims)


@op("ReduceMax", 18, 20)
def reduce_max_18(data, axes=None, *, keepdims=1, noop_with_empty_axes=0):
    return _reduce("ReduceMax", _max, data, _axes_input(axes), keepdims, noop_with_empty_axes)


@op("ReduceMin", 1, 11, 12, 13)
def reduce_min_1(data, *, axes=None, keepdims=1):
    return _reduce("ReduceMin", _min, data, axes, keepdims)


@op("ReduceMin", 18, 20)
def reduce_min_18(data, axes=None, *, keepdims=1, noop_with_empty_axes=0):
    return _reduce("ReduceMin", _min, data, _axes_input(axes), keepdims, noop_with_empty_axes)


@op("ReduceProd", 1, 11, 13)
def reduce_prod_1(data, *, axes=None, keepdims=1):
    return _reduce("ReduceProd", _prod, data, axes, keepdims)


@op("ReduceProd", 18)
def reduce_prod_18(data, axes=None, *, keepdims=1, noop_with_empty_axes=0):
    return _reduce("ReduceProd", _prod, data, _axes_input(axes), keepdims, noop_with_empty_axes)


@op("ReduceL1", 1, 11, 13)
def reduce_l1_1(data, *, axes=None, keepdims=1):
    return _reduce("ReduceL1", _l1, data, axes, keepdims)


@op("ReduceL1", 18)
def reduce_l1_18(data, axes=None, *, keepdims=1, noop_with_empty_axes=0):
    return _reduce("ReduceL1", _l1, data, _axes_input(axes), keepdims, noop_with_empty_axes)


@op("ReduceL2", 1, 11, 13)
def reduce_l2_1(data, *, axes=None, keepdims=1):
    return _reduce("ReduceL2", _l2, data, axes, keepdims)


@op("ReduceL2", 18)
def reduce_l2_18(data, axes=None, *, keepdims=1, noop_with_empty_axes=0):
    return _reduce("ReduceL2", _l2, data, _axes_input(axes), keepdims, noop_with_empty_axes)


@op("ReduceSumSquare", 1, 11, 13)
def reduce_sum_square_1(data, *, axes=None, keepdims=1):
    return _reduce("ReduceSumSquare", _sum_square, data, axes, keepdims)


@op("ReduceSumSquare", 18)
def reduce_sum_square_18(data, axes=None, *, keepdims=1, noop_with_empty_axes=0):
    return _reduce("ReduceSumSquare", _sum_square, data, _axes_input(axes), keepdims, noop_with_empty_axes)


# ReduceLogSum/LogSumExp-28 narrowed the types to floating point only.
@op("ReduceLogSum", 1, 11, 13)
def reduce_log_sum_1(data, *, axes=None, keepdims=1):
    return _reduce("ReduceLogSum", _log_sum, data, axes, keepdims)


@op("ReduceLogSum", 18, 28)
def reduce_log_sum_18(data, axes=None, *, keepdims=1, noop_with_empty_axes=0):
    return _reduce("ReduceLogSum", _log_sum, data, _axes_input(axes), keepdims, noop_with_empty_axes)


@op("ReduceLogSumExp", 1, 11, 13)
def reduce_log_sum_exp_1(data, *, axes=None, keepdims=1):
    return _reduce("ReduceLogSumExp", _log_sum_exp, data, axes, keepdims)


@op("ReduceLogSumExp", 18, 28)
def reduce_log_sum_exp_18(data, axes=None, *, keepdims=1, noop_with_empty_axes=0):
    return _reduce("ReduceLogSumExp", _log_sum_exp, data, _axes_input(axes), keepdims,
                   noop_with_empty_axes)


# --- ArgMax / ArgMin

def _arg(name, fn, data, axis, keepdims, select_last_index):
    (axis,) = _normalize_axes(name, [axis], data.ndim) or (0,)
    if data.ndim == 0:
        return np.zeros((), dtype=np.int64)
    if data.shape[axis] == 0:
        raise InputError("%s: axis %d of shape %s is empty, there is no extreme" % (name, axis, data.shape))
    if select_last_index:
        # The first extreme of the reversed axis is the last one of the original axis.
        idx = data.shape[axis] - 1 - nan_arg(fn, np.flip(data, axis), axis)
    else:
        idx = nan_arg(fn, data, axis)
    idx = np.asarray(idx).astype(np.int64, copy=False)  # numpy's intp is int32 on 32-bit boards
    return np.expand_dims(idx, axis) if keepdims else idx


# ArgMax-11 allowed negative axes, 12 added select_last_index, 13 bfloat16.
@op("ArgMax", 1, 11)
def argmax_1(data, *, axis=0, keepdims=1):
    return _arg("ArgMax", np.argmax, data, axis, keepdims, 0)


@op("ArgMax", 12, 13)
def argmax_12(data, *, axis=0, keepdims=1, select_last_index=0):
    return _arg("ArgMax", np.argmax, data, axis, keepdims, select_last_index)


@op("ArgMin", 1, 11)
def argmin_1(data, *, axis=0, keepdims=1):
    return _arg("ArgMin", np.argmin, data, axis, keepdims, 0)


@op("ArgMin", 12, 13)
def argmin_12(data, *, axis=0, keepdims=1, select_last_index=0):
    return _arg("ArgMin", np.argmin, data, axis, keepdims, select_last_index)


# --- CumSum (14 added bfloat16 and more integer types)

@op("CumSum", 11, 14)
def cumsum(x, axis, *, exclusive=0, reverse=0):
    if axis.size != 1:
        raise InputError("CumSum: axis must be a scalar, got shape %s" % (axis.shape,))
    if x.ndim == 0:
        return x.copy()
    (a,) = _normalize_axes("CumSum", [axis.reshape(-1)[0]], x.ndim)
    src = np.flip(x, a) if reverse else x
    y = np.cumsum(src, axis=a, dtype=x.dtype)
    if exclusive:
        # Shift by one along the axis: y[0] = 0, y[i] = sum of the first i values.
        shifted = np.zeros_like(y)
        dst = [slice(None)] * x.ndim
        top = [slice(None)] * x.ndim
        dst[a] = slice(1, None)
        top[a] = slice(None, -1)
        shifted[tuple(dst)] = y[tuple(top)]
        y = shifted
    return np.ascontiguousarray(np.flip(y, a)) if reverse else y


infers(cumsum)(same)
infers(argmax_1, argmax_12, argmin_1, argmin_12)(arg_reduce)
infers(reduce_l1_1, reduce_l1_18, reduce_l2_1, reduce_l2_18, reduce_log_sum_1, reduce_log_sum_18, reduce_log_sum_exp_1,
       reduce_log_sum_exp_18, reduce_max_1, reduce_max_18, reduce_mean_1, reduce_mean_18, reduce_min_1, reduce_min_18,
       reduce_prod_1, reduce_prod_18, reduce_sum_1, reduce_sum_13, reduce_sum_square_1, reduce_sum_square_18)(reduce)
