"""Softmax, LogSoftmax and Hardmax.

    Softmax(x)    = exp(x - max) / sum(exp(x - max))
    LogSoftmax(x) = (x - max) - log(sum(exp(x - max)))
    Hardmax(x)    = 1 at the first maximum, 0 elsewhere

What "along axis" means changed at opset 13, and getting it wrong is a classic runtime bug:
- versions 1 and 11 view the input as a 2-D matrix [prod(shape[:axis]), prod(shape[axis:])] and work on
  each row, i.e. over *all* axes from `axis` to the end at once (default axis=1);
- version 13 works along the single axis `axis` (default -1), like torch.softmax.
Subtracting the maximum first keeps exp from overflowing. float16 is computed in float32 (as
onnxruntime does) and rounded back.
"""
import numpy as np

from ..errors import InputError
from .reduce import nan_arg
from .registry import infers, op, static_shape
from ._static_shape import same_shape
from ._infer_types import same


def _normalize_axis(name, axis, ndim):
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        raise InputError("%s: axis %d is out of range for a %d-D input" % (name, axis, ndim))
    return axis + ndim if axis < 0 else axis


def _axes(name, x, axis, flatten):
    """The axes the op reduces over: all trailing axes from `axis` (pre-13) or just `axis` (13+)."""
    a = _normalize_axis(name, axis, x.ndim)
    if x.ndim == 0:
        return ()
    return tuple(range(a, x.ndim)) if flatten else (a,)


def _work_dtype(x):
    return np.float32 if x.dtype == np.float16 else x.dtype


def _softmax(x, axes):
    xw = x.astype(_work_dtype(x), copy=False)
    if axes and axes[-1] == x.ndim - 1 and xw.flags.c_contiguous and xw.size and xw.dtype.kind == "f":
        y = _softmax_rows(xw.reshape(-1, int(np.prod(x.shape[axes[0]:]))))
        if y is not None:
            return y.reshape(x.shape).astype(x.dtype, copy=False)
    e = np.exp(xw - np.max(xw, axis=axes, keepdims=True))
    e /= np.sum(e, axis=axes, keepdims=True)
    return e.astype(x.dtype, copy=False)


def _softmax_rows(rows):
    """Softmax of each row of ``rows`` (R, L), or None where this way overflows (the caller then shifts by the
    max). Any shift c of a row gives the same softmax, exp(x - c) / sum(exp(x - c)); the usual one, the
    row's max, is numpy's slowest step on short rows (a detector's 3234 x 91 scores: 230 us of 650). Where
    every value lies within +-60, exp of each is a normal float (1e-26 to 1e26: nothing overflows or loses
    precision) and no shift is needed at all (490 -> 300 us). Else the row's mean is taken, as a matmul
    with ones like the sums. The max is never below the mean, so each sum is at least 1 (nothing underflows
    away); a row whose spread overflows exp (or holds an inf or NaN) has a sum that is not finite, and then
    the whole input takes the max's way. The results are those of the max's shift up to float rounding (a
    couple of ulps)."""
    ones = np.ones(rows.shape[1], rows.dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        if rows.min() >= -_NO_SHIFT and rows.max() <= _NO_SHIFT:  # (False for a NaN)
            e = np.exp(rows)
        else:
            e = np.subtract(rows, (rows @ ones / rows.dtype.type(rows.shape[1]))[:, None])
            np.exp(e, out=e)
        sums = e @ ones
        if not (np.isfinite(sums).all() and (sums > 0).all()):
            return None
    e /= sums[:, None]
    return e


_NO_SHIFT = 60.0  # (float32 exp overflows above 88.7 and leaves the normal floats below -87.3)


def _log_softmax(x, axes):
    xw = x.astype(_work_dtype(x), copy=False)
    shifted = xw - np.max(xw, axis=axes, keepdims=True)
    shifted -= np.log(np.sum(np.exp(shifted), axis=axes, keepdims=True))
    return shifted.astype(x.dtype, copy=False)


def _hardmax(x, axes):
    if not axes or x.size == 0:
        return np.ones_like(x) if x.size else np.zeros_like(x)
    # Move the reduced axes to the end and merge them, so one argmax finds the first maximum
    # in row-major order of those axes (what the 2-D view of versions < 13 means).
    first = axes[0]
    lead = x.shape[:first]
    rows = x.reshape(lead + (-1,)) if len(axes) > 1 else np.moveaxis(x, first, -1)
    idx = nan_arg(np.argmax, rows, -1)[..., None]  # NaN as onnxruntime treats it (see reduce.nan_arg)
    y = np.zeros(rows.shape, dtype=x.dtype)
    np.put_along_axis(y, idx, x.dtype.type(1), axis=-1)
    if x.dtype.kind == "f":
        y[np.isnan(rows[..., 0])] = 0  # onnxruntime: the max is NaN then, and no element equals it
    return y.reshape(x.shape) if len(axes) > 1 else np.moveaxis(y, -1, first)


# Version 11 only widened the allowed axis range to negatives; same meaning as version 1.
@op("Softmax", 1, 11)
def softmax_1(x, *, axis=1):
    return _softmax(x, _axes("Softmax", x, axis, flatten=True))


@op("Softmax", 13)
def softmax_13(x, *, axis=-1):
    return _softmax(x, _axes("Softmax", x, axis, flatten=False))


@op("LogSoftmax", 1, 11)
def log_softmax_1(x, *, axis=1):
    return _log_softmax(x, _axes("LogSoftmax", x, axis, flatten=True))


@op("LogSoftmax", 13)
def log_softmax_13(x, *, axis=-1):
    return _log_softmax(x, _axes("LogSoftmax", x, axis, flatten=False))


@op("Hardmax", 1, 11)
def hardmax_1(x, *, axis=1):
    return _hardmax(x, _axes("Hardmax", x, axis, flatten=True))


@op("Hardmax", 13)
def hardmax_13(x, *, axis=-1):
    return _hardmax(x, _axes("Hardmax", x, axis, flatten=False))


static_shape(hardmax_1, hardmax_13, log_softmax_1, log_softmax_13, softmax_1, softmax_13)(same_shape)
infers(hardmax_1, hardmax_13, log_softmax_1, log_softmax_13, softmax_1, softmax_13)(same)
