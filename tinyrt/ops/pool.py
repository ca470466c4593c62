"""Pooling: MaxPool, AveragePool, LpPool, their Global* forms, and MaxUnpool.

A pool slides a window of ``kernel_shape`` taps (spaced ``dilations`` apart) over the padded input with
``strides`` and reduces each window (geometry and auto_pad rules: see ``_window``):

    MaxPool      max over the window; pads never win (they are -inf)
    AveragePool  sum / count, count = taps inside the input (count_include_pad=0) or inside input + pads
                 (count_include_pad=1); taps beyond the pads, added by ceil_mode, never count
    LpPool       (sum |x|^p) ^ (1/p), pads are zeros

The reductions run as one vectorised step per kernel tap over the whole strided input (few taps, big
arrays), which is faster than reducing a windows view over its small trailing axes.

MaxPool's optional second output Indices holds, for each output, the flat index of the winning element in
the unpadded input tensor, counting across N and C too: ((n * C + c) * prod(spatial) + offset) where
offset is row-major (storage_order=0) or column-major (storage_order=1) over the spatial axes.
MaxUnpool scatters values back to those flat indices in a zero tensor.

Version notes:
  MaxPool      1: base; 8: storage_order and Indices; 10: dilations, ceil_mode; 11: doc only (defaults);
               12: int8/uint8; 22: bfloat16 (not in tinyrt).
  AveragePool  7: count_include_pad; 10: ceil_mode; 11: doc only; 19: dilations; 22: bfloat16.
  LpPool       2: p became an int; 11: doc only; 18: ceil_mode, dilations; 22: bfloat16.
  Global*      22: bfloat16 only.   MaxUnpool 11: doc only; 22: bfloat16.
"""
import itertools

import numpy as np

from .. import limits
from ..errors import InputError, ModelError, UnsupportedError
from .registry import infers, op, static_shape
from ._static_shape import window_out
from ._infer_types import INT64, first, spatial
from . import _window as win


def _check_pool(op_type):
    def check(**attrs):
        win.check_auto_pad(op_type, attrs.get("auto_pad"))
        if attrs.get("storage_order", 0) not in (0, 1):
            raise UnsupportedError("%s: storage_order=%r must be 0 or 1" % (op_type, attrs["storage_order"]))
        if attrs.get("ceil_mode", 0) not in (0, 1):
            raise UnsupportedError("%s: ceil_mode=%r must be 0 or 1" % (op_type, attrs["ceil_mode"]))
        if attrs.get("count_include_pad", 0) not in (0, 1):
            raise UnsupportedError("%s: count_include_pad=%r must be 0 or 1"
                                   % (op_type, attrs["count_include_pad"]))
        p = attrs.get("p", 2)
        if p is not None and p < 1:
            raise UnsupportedError("%s: p=%r must be >= 1" % (op_type, p))
    return check


class _Geometry(object):
    """Everything a pool needs to know about its windows, for one input shape."""

    def __init__(self, op_type, X, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode):
        win.require_rank(op_type, X)
        self.spatial = list(X.shape[2:])
        (self.kernel, self.strides, self.dilations, self.begin, self.end,
         self.out) = win.geometry(op_type, self.spatial, kernel_shape, strides, dilations, pads, auto_pad,
                                  ceil_mode)
        # ceil_mode may need taps past the model's end pads; they are padded too but never counted.
        extra = win.ceil_extra(self.spatial, self.kernel, self.strides, self.dilations, self.begin,
                               self.end, self.out)
        self.end_padded = [e + x for e, x in zip(self.end, extra)]
        # pads and kernel come from attributes: check the padded input and the work before allocating
        padded = [n + max(0, b) + max(0, e) for n, b, e in zip(self.spatial, self.begin, self.end_padded)]
        limits.check_shape(X.shape[:2] + tuple(padded), np.float64, "%s (padded input)" % op_type)
        outputs = limits.product(X.shape[:2] + tuple(self.out))
        limits.check_count(outputs, 8, "%s (output)" % op_type)
        taps = limits.product(self.kernel)  # a Python loop runs over them
        limits.spend(taps * (outputs * X.dtype.itemsize + limits.LOOP_COST), op_type)

    def pad(self, x, value):
        return win.pad_spatial(x, self.begin, self.end_padded, value)

    def taps(self):
        """For each kernel tap, the index of its strided input pixels in the padded input."""
        for tap in itertools.product(*[range(k) for k in self.kernel]):
            offsets = [j * d for j, d in zip(tap, self.dilations)]
            yield win.tap_slices(offsets, self.strides, self.out)

    def counts(self, include_pad):
        """How many taps of each window fall inside the input (or input + model pads): shape (*out).

        Separable: the count of a window is the product of per-axis counts.
        """
        total = np.ones((), dtype=np.int64)
        for n, k, s, d, pb, pe, o in zip(self.spatial, self.kernel, self.strides, self.dilations,
                                         self.begin, self.end, self.out):
            pos = np.arange(o)[:, None] * s - pb + np.arange(k)[None, :] * d  # input coordinate of taps
            lo, hi = (-pb, n + pe) if include_pad else (0, n)
            c = ((pos >= lo) & (pos < hi)).sum(axis=1)
            total = total[..., None] * c
        return total


def _lowest(dtype):
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _max_pool(X, g):
    low = _lowest(X.dtype)
    if X.ndim == 4 and not X.flags.c_contiguous and X.transpose(0, 2, 3, 1).flags.c_contiguous \
            and min(g.begin + g.end_padded) >= 0:
        # Channels-last memory (a conv's result): pool it as (N, H, W, C), channels innermost (padding
        # the (N, C, H, W) view would first copy it into that layout, which took longer than the pool).
        (N, C, H, W), (top, left), (bottom, right) = X.shape, g.begin, g.end_padded
        xp = np.full((N, top + H + bottom, left + W + right, C), low, X.dtype)
        xp[:, top:top + H, left:left + W] = X.transpose(0, 2, 3, 1)
        taps = [sl[:1] + sl[2:] + (slice(None),) for sl in g.taps()]
        return _running_max(xp, taps).transpose(0, 3, 1, 2)
    return _running_max(g.pad(X, low), list(g.taps()))


def _running_max(xp, taps):
    """The max over the taps (index tuples into the padded input ``xp``), with onnxruntime's NaN rule."""
    y = xp[taps[0]].copy()
    for sl in taps[1:]:
        np.maximum(xp[sl], y, out=y)
    if y.dtype.kind == "f" and np.isnan(y).any():
        # A window holds a NaN (np.maximum made it NaN). onnxruntime's running max, m = (x < m) ? m : x,
        # tap by tap: a NaN tap replaces m, and a later tap replaces the NaN. Without NaN both are the
        # maximum; the masked copy is ten times slower than np.maximum, so only this case pays it.
        y = xp[taps[0]].copy()
        for sl in taps[1:]:
            t = xp[sl]
            np.copyto(y, t, where=~(t < y))
    return y


def _max_pool_indices(X, g, storage_order):
    """Values and flat indices of the window maxima (first one wins ties, like onnxruntime)."""
    # Pads must lose every tie with a real element: integers are widened so the pad can be below any
    # value (a uint8 0 would otherwise tie with a 0 pad and point outside the input).
    x = X.astype(np.int64) if X.dtype.kind in "iu" else X
    xp = g.pad(x, _lowest(x.dtype))
    rank = len(g.out)
    w = win.windows(xp, g.kernel, g.strides, g.dilations, g.out)
    limits.check_shape(w.shape, w.dtype, "MaxPool (windows)")  # the reshape below copies them
    w = w.reshape(X.shape[:2] + tuple(g.out) + (-1,))
    t = np.argmax(w, axis=-1)
    y = np.take_along_axis(w, t[..., None], axis=-1)[..., 0].astype(X.dtype, copy=False)
    taps = np.unravel_index(t, g.kernel)
    # input coordinate of the winner along each spatial axis
    pos = []
    for i in range(rank):
        o = np.arange(g.out[i]).reshape((g.out[i],) + (1,) * (rank - 1 - i))
        p = o * g.strides[i] - g.begin[i] + taps[i] * g.dilations[i]
        # only a window of -inf only can pick a pad; keep its index inside the input
        pos.append(np.clip(p, 0, g.spatial[i] - 1))
    order = "F" if storage_order == 1 else "C"
    offset = np.ravel_multi_index(pos, g.spatial, order=order)
    nc = np.arange(X.shape[0] * X.shape[1]).reshape(X.shape[:2] + (1,) * rank)
    indices = nc * int(np.prod(g.spatial)) + offset
    return y, indices.astype(np.int64)


def _avg_pool(X, g, count_include_pad):
    win.require_float("AveragePool", X)
    ct = win.compute_dtype(X.dtype)
    xp = g.pad(X.astype(ct, copy=False), 0)
    s = None
    for sl in g.taps():
        if s is None:
            s = xp[sl].copy()
        else:
            s += xp[sl]
    count = np.maximum(g.counts(count_include_pad), 1)  # a window wholly in padding gives 0, not NaN
    return (s / count.astype(ct)).astype(X.dtype, copy=False)


def _lp_pool(X, g, p):
    win.require_float("LpPool", X)
    ct = win.compute_dtype(X.dtype)
    xp = np.abs(g.pad(X.astype(ct, copy=False), 0))
    if p != 1:
        xp = xp * xp if p == 2 else xp ** p
    s = None
    for sl in g.taps():
        if s is None:
            s = xp[sl].copy()
        else:
            s += xp[sl]
    y = np.sqrt(s) if p == 2 else (s if p == 1 else s ** (1.0 / p))
    return y.astype(X.dtype, copy=False)


# ---- MaxPool ----

@op("MaxPool", 1, check=_check_pool("MaxPool"))
def max_pool_1(X, *, kernel_shape, auto_pad="NOTSET", pads=None, strides=None):
    return _max_pool(X, _Geometry("MaxPool", X, kernel_shape, strides, None, pads, auto_pad, 0))


@op("MaxPool", 8, check=_check_pool("MaxPool"))
def max_pool_8(X, *, kernel_shape, auto_pad="NOTSET", pads=None, storage_order=0, strides=None,
               _num_outputs=1):
    g = _Geometry("MaxPool", X, kernel_shape, strides, None, pads, auto_pad, 0)
    if _num_outputs > 1:
        return _max_pool_indices(X, g, storage_order)
    return _max_pool(X, g)


@op("MaxPool", 10, 11, 12, 22, check=_check_pool("MaxPool"))
def max_pool_10(X, *, kernel_shape, auto_pad="NOTSET", ceil_mode=0, dilations=None, pads=None,
                storage_order=0, strides=None, _num_outputs=1):
    g = _Geometry("MaxPool", X, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode)
    if _num_outputs > 1:
        return _max_pool_indices(X, g, storage_order)
    return _max_pool(X, g)


# ---- AveragePool ----

@op("AveragePool", 7, check=_check_pool("AveragePool"))
def average_pool_7(X, *, kernel_shape, auto_pad="NOTSET", count_include_pad=0, pads=None, strides=None):
    g = _Geometry("AveragePool", X, kernel_shape, strides, None, pads, auto_pad, 0)
    return _avg_pool(X, g, count_include_pad)


@op("AveragePool", 10, 11, check=_check_pool("AveragePool"))
def average_pool_10(X, *, kernel_shape, auto_pad="NOTSET", ceil_mode=0, count_include_pad=0, pads=None,
                    strides=None):
    g = _Geometry("AveragePool", X, kernel_shape, strides, None, pads, auto_pad, ceil_mode)
    return _avg_pool(X, g, count_include_pad)


@op("AveragePool", 19, 22, check=_check_pool("AveragePool"))
def average_pool_19(X, *, kernel_shape, auto_pad="NOTSET", ceil_mode=0, count_include_pad=0, dilations=None,
                    pads=None, strides=None):
    g = _Geometry("AveragePool", X, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode)
    return _avg_pool(X, g, count_include_pad)


# ---- LpPool ----

@op("LpPool", 2, 11, check=_check_pool("LpPool"))
def lp_pool_2(X, *, kernel_shape, auto_pad="NOTSET", p=2, pads=None, strides=None):
    g = _Geometry("LpPool", X, kernel_shape, strides, None, pads, auto_pad, 0)
    return _lp_pool(X, g, p)


@op("LpPool", 18, 22, check=_check_pool("LpPool"))
def lp_pool_18(X, *, kernel_shape, auto_pad="NOTSET", ceil_mode=0, dilations=None, p=2, pads=None,
               strides=None):
    g = _Geometry("LpPool", X, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode)
    return _lp_pool(X, g, p)


# ---- Global pools: reduce every spatial axis, keep them as size 1 ----

def _spatial_axes(op_type, X):
    win.require_rank(op_type, X)
    return tuple(range(2, X.ndim))


@op("GlobalAveragePool", 1, 22)
def global_average_pool(X):
    win.require_float("GlobalAveragePool", X)
    axes = _spatial_axes("GlobalAveragePool", X)
    means = win.channels_last_means(X)  # (the convs' results: a matmul, faster than numpy's strided mean)
    if means is not None:
        return means.reshape(X.shape[:2] + (1, 1))
    ct = win.compute_dtype(X.dtype)
    return X.mean(axis=axes, dtype=ct, keepdims=True).astype(X.dtype, copy=False)


@op("GlobalMaxPool", 1, 22)
def global_max_pool(X):
    return X.max(axis=_spatial_axes("GlobalMaxPool", X), keepdims=True)


@op("GlobalLpPool", 2, 22, check=_check_pool("GlobalLpPool"))
def global_lp_pool(X, *, p=2):
    win.require_float("GlobalLpPool", X)
    axes = _spatial_axes("GlobalLpPool", X)
    ct = win.compute_dtype(X.dtype)
    a = np.abs(X.astype(ct, copy=False))
    if p == 2:
        y = np.sqrt((a * a).sum(axis=axes, keepdims=True))
    else:
        y = (a ** p).sum(axis=axes, keepdims=True) ** (1.0 / p)
    return y.astype(X.dtype, copy=False)


# ---- MaxUnpool ----

@op("MaxUnpool", 9, 11, 22)
def max_unpool(X, I, output_shape=None, *, kernel_shape, pads=None, strides=None):
    """Inverse of MaxPool with Indices: zeros everywhere except Y.flat[I] = X.

    Default output size per axis: (in - 1) * stride + kernel - pad_begin - pad_end.
    """
    win.require_rank("MaxUnpool", X)
    if I.shape != X.shape:
        raise InputError("MaxUnpool: indices shape %s differs from input shape %s" % (I.shape, X.shape))
    if output_shape is not None:
        shape = tuple(int(v) for v in np.asarray(output_shape).reshape(-1))
        if len(shape) != X.ndim:
            raise InputError("MaxUnpool: output_shape %s must have rank %d" % (list(shape), X.ndim))
    else:
        spatial = X.shape[2:]
        rank = len(spatial)
        kernel = win.per_axis("MaxUnpool", "kernel_shape", kernel_shape, rank, 1)
        strides = win.per_axis("MaxUnpool", "strides", strides, rank, 1)
        pads = [0] * (2 * rank) if pads is None else [int(v) for v in pads]
        if len(pads) != 2 * rank:
            raise ModelError("MaxUnpool: pads=%s needs %d values" % (pads, 2 * rank))
        shape = X.shape[:2] + tuple((n - 1) * s + k - pads[i] - pads[i + rank]
                                    for i, (n, s, k) in enumerate(zip(spatial, strides, kernel)))
    limits.check_shape(shape, X.dtype, "MaxUnpool (output)")
    y = np.zeros(int(np.prod(shape)), dtype=X.dtype)
    idx = I.reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= y.size):
        raise InputError("MaxUnpool: indices out of range for output shape %s" % (list(shape),))
    y[idx] = X.reshape(-1)
    return y.reshape(shape)


@static_shape(global_average_pool, global_max_pool)
def _global_pool_shape(node, shapes, constants):
    x = shapes[0]
    return x[:2] + (1,) * (len(x) - 2)


@static_shape(max_pool_1, max_pool_8, max_pool_10, average_pool_7, average_pool_10, average_pool_19)
def _pool_shape(node, shapes, constants):
    x, a = shapes[0], node.attrs
    return (x[0], x[1]) + tuple(window_out(x[2:], a["kernel_shape"], a, a.get("ceil_mode", 0)))


@infers(max_pool_1, max_pool_8, max_pool_10, average_pool_7, average_pool_10, average_pool_19, lp_pool_2, lp_pool_18)
def _pool_types(node, ins, constants):
    elem, x = first(ins)
    if x is None:
        return None
    out = x[:2] + spatial(node, x, node.attrs["kernel_shape"])
    return [(elem, out)] + [(INT64, out)] * (len(node.outputs) - 1)


@infers(global_average_pool, global_max_pool, global_lp_pool)
def _global_pool_types(node, ins, constants):
    elem, x = first(ins)
    return None if x is None else [(elem, x[:2] + [1] * (len(x) - 2))]
