"""Indexing ops: read (gather) or write (scatter) elements picked by an index tensor.

    Gather(x, i, axis):          y[a.., j.., b..]   = x[a.., i[j..], b..]                (np.take)
    GatherElements(x, i, axis):  y[p] = x[p with p[axis] replaced by i[p]]              (take_along_axis)
    GatherND(x, i, batch_dims):  y[B.., j..]        = x[B.., *i[B.., j.., :]]           (index tuples)
    ScatterElements / Scatter:   y = copy(x); y[p with p[axis] = i[p]] (op)= u[p]
    ScatterND:                   y = copy(x); y[*i[j.., :]] (op)= u[j..]
    OneHot(i, depth, [off, on]): y = on where the new axis' position == i, else off
    Compress(x, c, axis):        keep the slices along axis where c is true (all of x flattened if no axis)
    Trilu(x, k, upper):          keep the upper (j - i >= k) or lower (j - i <= k) triangle of the last 2 axes

Indices may be negative (count from the end); out-of-range indices raise InputError. Scatter reductions
(add, mul, max, min) use numpy's unbuffered ufunc.at, so repeated indices all contribute.
"""
import numpy as np

from .. import limits
from ..errors import InputError, UnsupportedError
from .registry import TINYRT_DOMAIN, infers, op, prepared
from ._infer_types import first


def _axis(axis, rank, op_name):
    a = int(axis)
    if not -rank <= a < rank:
        raise InputError("%s: axis %d is out of range for a tensor of rank %d" % (op_name, a, rank))
    return a + rank if a < 0 else a


def _indices(indices, dim, op_name):
    """intp indices with negatives wrapped once, checked against [0, dim).

    Checked on the file's own integers first (two reductions; the common case, no negative index, copies
    nothing): only then cast to intp, which np.take wants where intp is int32 (armv7: safe casting only)."""
    i = np.asarray(indices)
    if i.size:
        low, high = int(i.min()), int(i.max())
        if low < -dim or high >= dim:
            raise InputError("%s: an index is out of range for an axis of size %d" % (op_name, dim))
        if low < 0:
            i = i.astype(np.int64)
            i = np.where(i < 0, i + dim, i)
    return i.astype(np.intp, copy=False)


# -------------------------------------------------------------------------------------------- Gather


@op("Gather", 1, 11, 13)  # 11: negative indices allowed; 13: bfloat16
def gather_1(data, indices, *, axis=0):
    a = _axis(axis, data.ndim, "Gather")
    i = indices if type(indices) is np.ndarray else np.asarray(indices)
    shape = data.shape[:a] + i.shape + data.shape[a + 1:]
    if len(shape) > limits.MAX_RANK:
        limits.check_shape(shape, data.dtype, "Gather")  # (raises: a rank numpy does not have)
    limits.check_count(limits.nominal_count(shape), data.itemsize, "Gather")  # (an array's dims: none negative)
    if i.dtype == np.intp:  # (int64 indices on a 64-bit machine) np.take checks the range itself, as Gather
        try:                # wants it: [-size, size), negatives from the end; without a pass of our own
            return data.take(i, axis=a)
        except IndexError:
            raise InputError("Gather: an index is out of range for an axis of size %d" % data.shape[a]) from None
    return data.take(_indices(i, data.shape[a], "Gather"), axis=a)


@prepared(gather_1)
def _prepare_gather(fn, args, fixed, attrs):
    """For the compiled program, with constant indices: the axis and the indices checked once."""
    data, indices = args
    if type(data) is not np.ndarray or not fixed[1]:
        return None
    a = _axis(attrs.get("axis", 0), data.ndim, "Gather")
    checked = _indices(indices, data.shape[a], "Gather")
    if checked.ndim == 0 and data.ndim > 1:  # one index: a slice of data, copied (twice np.take's speed on
        key = (slice(None),) * a + (int(checked),)  # a column: a detector's scores of one class)

        def gather_prepared(data, indices):
            return data[key].copy()
        return gather_prepared
    if checked.ndim == 0:  # one element of a vector (a length from a Shape): a 0-d array, where np.take
        key = (int(checked), Ellipsis)  # gives a numpy scalar the program would have to turn into one

        def gather_prepared(data, indices):
            return data[key].copy()
        return gather_prepared

    def gather_prepared(data, indices):
        return data.take(checked, axis=a)
    return gather_prepared


@op("GatherElements", 11, 13)  # 13: bfloat16
def gatherelements_11(data, indices, *, axis=0):
    a = _axis(axis, data.ndim, "GatherElements")
    if indices.ndim != data.ndim:
        raise InputError("GatherElements: indices must have the rank of data (%d), got %d"
                         % (data.ndim, indices.ndim))
    if any(i != a and n > d for i, (n, d) in enumerate(zip(indices.shape, data.shape))):
        raise InputError("GatherElements: indices %s are larger than data %s outside axis %d"
                         % (indices.shape, data.shape, a))
    # indices may be smaller than data on the other axes: only that corner of data is read
    corner = data[tuple(slice(None) if i == a else slice(0, n) for i, n in enumerate(indices.shape))]
    return np.take_along_axis(corner, _indices(indices, data.shape[a], "GatherElements"), axis=a)


def _gather_nd(data, indices, batch_dims):
    b = int(batch_dims)
    m = indices.shape[-1] if indices.ndim else 0
    if indices.ndim < 1 or b < 0 or b >= min(data.ndim, indices.ndim) or b + m > data.ndim:
        raise InputError("GatherND: indices %s with batch_dims=%d do not fit data %s"
                         % (indices.shape, b, data.shape))
    if data.shape[:b] != indices.shape[:b]:
        raise InputError("GatherND: the first %d (batch) dims of data %s and indices %s differ"
                         % (b, data.shape, indices.shape))
    limits.check_shape(indices.shape[:-1] + data.shape[b + m:], data.dtype, "GatherND")
    if b == 0 and m:  # (the usual case) one index array per indexed axis: advanced indexing does the rest
        idx = indices.reshape(-1, m)
        out = data[tuple(_indices(idx[:, j], data.shape[j], "GatherND") for j in range(m))]
        return out.reshape(indices.shape[:-1] + data.shape[m:])
    batch = limits.product(data.shape[:b])
    inner = data.shape[b:]
    n = limits.product(indices.shape[b:-1])
    d = data.reshape((batch,) + inner)
    idx = indices.reshape(batch, n, m)
    # one index array per indexed axis, plus the batch number
    parts = [np.arange(batch).reshape(batch, 1)]
    for j in range(m):
        parts.append(_indices(idx[:, :, j], inner[j], "GatherND"))
    out = d[tuple(parts)]  # (batch, n) + data.shape[b + m:]
    return out.reshape(indices.shape[:-1] + data.shape[b + m:])


@op("GatherND", 11)
def gathernd_11(data, indices):
    return _gather_nd(data, indices, 0)


@op("GatherND", 12, 13)  # 12 added batch_dims; 13: bfloat16
def gathernd_12(data, indices, *, batch_dims=0):
    return _gather_nd(data, indices, batch_dims)


# ------------------------------------------------------------------------- GatherNonZero (tinyrt's own)


@op("GatherNonZero", 1, domain=TINYRT_DOMAIN)
def gather_nonzero(data, mask):
    """GatherND(data, Transpose(NonZero(mask))): the elements (or slices) of data where mask is true, in
    row-major order of mask; torch's ``data[mask]`` as its exporter writes it, one node instead of three
    (passes/mask_select.py). A scalar mask is one element of a 1-D mask, as in NonZero."""
    mask = np.asarray(mask)
    if mask.ndim == 0:
        mask = mask.reshape(1)
    r = mask.ndim
    if r > data.ndim:
        raise InputError("GatherND: indices [n, %d] (the NonZero of a mask %s) do not fit data %s"
                         % (r, mask.shape, data.shape))
    if mask.shape == data.shape[:r]:  # the usual case: a mask over data's leading axes
        if r == 1 and data.ndim > 1:  # rows of a matrix (a detector's boxes of one class): numpy's boolean
            return data.take(mask.nonzero()[0], axis=0)  # index of rows costs 8 times this
        return data[mask.astype(bool, copy=False)]
    where = np.nonzero(mask)
    for axis, idx in enumerate(where):
        if idx.size and int(idx[-1] if axis == 0 else idx.max()) >= data.shape[axis]:
            raise InputError("GatherND: an index is out of range for an axis of size %d" % data.shape[axis])
    return data[where]


# ------------------------------------------------------------------------------------------- Scatter


_REDUCE = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def _check_reduction(allowed, op_name):
    def check(**attrs):
        r = attrs.get("reduction", "none")
        if r not in allowed:
            raise UnsupportedError("%s: reduction %r is not supported at this opset (one of %s)"
                                   % (op_name, r, ", ".join(allowed)))
    return check


def _write(out, index, updates, reduction):
    if reduction == "none":
        out[index] = updates  # with repeated indices the last write wins (ONNX leaves it undefined)
    else:
        _REDUCE[reduction].at(out, index, updates)
    return out


def _scatter_elements(data, indices, updates, axis, reduction, op_name):
    a = _axis(axis, data.ndim, op_name)
    if indices.shape != updates.shape or indices.ndim != data.ndim:
        raise InputError("%s: indices %s and updates %s must have the same shape and the rank of data %s"
                         % (op_name, indices.shape, updates.shape, data.shape))
    # index of every update element: its own position, except along `axis` where indices says
    grid = list(np.ix_(*[np.arange(s) for s in indices.shape])) if indices.ndim else []
    grid[a] = _indices(indices, data.shape[a], op_name)
    return _write(data.copy(), tuple(grid), updates.astype(data.dtype), reduction)


@op("Scatter", 9, 11)  # deprecated alias of ScatterElements; 11: negative indices
def scatter_9(data, indices, updates, *, axis=0):
    return _scatter_elements(data, indices, updates, axis, "none", "Scatter")


@op("ScatterElements", 11, 13)  # 13: bfloat16
def scatterelements_11(data, indices, updates, *, axis=0):
    return _scatter_elements(data, indices, updates, axis, "none", "ScatterElements")


# 16 added reduction add/mul, 18 added max/min
@op("ScatterElements", 16, check=_check_reduction(("none", "add", "mul"), "ScatterElements"))
@op("ScatterElements", 18, check=_check_reduction(("none", "add", "mul", "max", "min"), "ScatterElements"))
def scatterelements_16(data, indices, updates, *, axis=0, reduction="none"):
    return _scatter_elements(data, indices, updates, axis, reduction, "ScatterElements")


def _scatter_nd(data, indices, updates, reduction):
    m = indices.shape[-1] if indices.ndim else 0
    if indices.ndim < 1 or m > data.ndim or updates.shape != indices.shape[:-1] + data.shape[m:]:
        raise InputError("ScatterND: updates %s must have shape indices.shape[:-1] + data.shape[%d:] = %s"
                         % (updates.shape, m, indices.shape[:-1] + data.shape[m:]))
    index = tuple(_indices(indices[..., j], data.shape[j], "ScatterND") for j in range(m))
    return _write(data.copy(), index, updates.astype(data.dtype), reduction)


@op("ScatterND", 11, 13)  # 13: bfloat16
def scatternd_11(data, indices, updates):
    return _scatter_nd(data, indices, updates, "none")


@op("ScatterND", 16, check=_check_reduction(("none", "add", "mul"), "ScatterND"))
@op("ScatterND", 18, check=_check_reduction(("none", "add", "mul", "max", "min"), "ScatterND"))
def scatternd_16(data, indices, updates, *, reduction="none"):
    return _scatter_nd(data, indices, updates, reduction)


# ------------------------------------------------------------------------------- OneHot, Compress, Trilu


@op("OneHot", 9, 11, 28)  # 11: negative indices count from depth; 28: types
def onehot_9(indices, depth, values, *, axis=-1):
    d = int(np.asarray(depth).reshape(-1)[0])
    if d < 1:
        raise InputError("OneHot: depth must be positive, got %d" % d)
    values = np.asarray(values).reshape(-1)
    if values.size != 2:
        raise InputError("OneHot: values must be [off_value, on_value], got %d elements" % values.size)
    i = np.asarray(indices).astype(np.int64)  # float indices are truncated, as onnxruntime does
    i = np.where(i < 0, i + d, i)  # still out of range -> matches no position: all off_value
    r = i.ndim
    a = int(axis)
    if not -r - 1 <= a <= r:
        raise InputError("OneHot: axis %d is out of range for indices of rank %d" % (a, r))
    if a < 0:
        a += r + 1
    limits.check_count(limits.nominal_count(i.shape) * d, 8, "OneHot")  # depth comes from data
    positions = np.arange(d, dtype=np.int64).reshape((d,) + (1,) * (r - a))
    hot = np.expand_dims(i, a) == positions
    return np.where(hot, values[1], values[0]).astype(values.dtype)


@op("Compress", 9, 11, 28)  # 11: negative axis; 28: types
def compress_9(input, condition, *, axis=None):
    c = np.asarray(condition).reshape(-1).astype(np.bool_)
    if axis is None:
        x, a = input.reshape(-1), 0
    else:
        x, a = input, _axis(axis, input.ndim, "Compress")
    if c.size > x.shape[a]:
        raise InputError("Compress: condition has %d entries for an axis of size %d" % (c.size, x.shape[a]))
    # a shorter condition means the remaining slices are dropped (as numpy.compress does)
    return np.compress(c, x, axis=a)


@op("Trilu", 14)
def trilu_14(input, k=None, *, upper=1):
    if input.ndim < 2:
        raise InputError("Trilu: input must have rank >= 2, got shape %s" % (input.shape,))
    kk = 0 if k is None else int(np.asarray(k).reshape(-1)[0])
    # beyond the matrix's size every k means the same (all or nothing); numpy wants a C long
    rows, cols = input.shape[-2:]
    kk = min(max(kk, -rows - 1), cols + 1)
    # np.triu / np.tril work on the last two axes and keep the dtype
    return np.triu(input, kk) if int(upper) else np.tril(input, kk)


@infers(gather_1)
def _gather_types(node, ins, constants):
    (elem, x), idx = first(ins), ins[1][1]
    if x is None or idx is None:
        return [(elem, None)]
    axis = node.attrs.get("axis", 0) % len(x)
    return [(elem, x[:axis] + idx + x[axis + 1:])]
