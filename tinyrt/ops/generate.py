"""Ops that make new tensors from attributes or shapes.

    Constant               : the one value_* attribute given (a tensor, or a float/int/string scalar or list)
    ConstantOfShape(s)     : a tensor of shape s filled with `value` (float32 0 by default)
    Range(a, b, d)         : [a, a + d, a + 2d, ...] with max(ceil((b - a) / d), 0) elements
    NonZero(x)             : int64 [rank, count] coordinates of the non-zero elements, row-major order
    EyeLike(x, k)          : ones where column - row == k, shaped like the 2-D x

The random generators (RandomUniform, RandomNormal, their *Like forms, Multinomial, Bernoulli) are not
implemented: their outputs cannot match another runtime, and inference graphs do not need them.
"""
import numpy as np

from .. import dtypes, limits
from ..errors import InputError, ModelError, UnsupportedError
from .registry import infers, op
from ._infer_types import FLOAT, INT64, code, first, ints


# ------------------------------------------------------------------------------------------ Constant


_VALUE_ATTRS = ("value", "value_float", "value_floats", "value_int", "value_ints",
                "value_string", "value_strings", "sparse_value")


def _check_constant(**attrs):
    given = [n for n in _VALUE_ATTRS if attrs.get(n) is not None]
    if len(given) != 1:
        raise ModelError("Constant: exactly one value attribute must be set, got %s" % (given or "none"))
    if given[0] == "sparse_value":
        raise UnsupportedError("Constant: attribute sparse_value is not supported (no sparse tensors); "
                               "store the tensor densely in `value`")


@op("Constant", 1, 9)  # 9: more types
def constant_1(*, value):
    return value


@op("Constant", 11, check=_check_constant)  # 11 added sparse_value
def constant_11(*, sparse_value=None, value=None):
    return value


# 12 added value_float(s)/value_int(s)/value_string(s); later versions only add types
@op("Constant", 12, 13, 19, 21, 23, 24, 25, check=_check_constant)
def constant_12(*, sparse_value=None, value=None, value_float=None, value_floats=None, value_int=None,
                value_ints=None, value_string=None, value_strings=None):
    if value is not None:
        return value
    if value_float is not None:
        return np.array(value_float, dtype=np.float32)
    if value_floats is not None:
        return np.array(value_floats, dtype=np.float32).reshape(-1)
    if value_int is not None:
        return np.array(value_int, dtype=np.int64)
    if value_ints is not None:
        return np.array(value_ints, dtype=np.int64).reshape(-1)
    if value_string is not None:
        return dtypes.as_strings(np.array(value_string, dtype=object))
    if value_strings is not None:
        return dtypes.as_strings(np.array(list(value_strings), dtype=object).reshape(-1))
    raise UnsupportedError("Constant: no supported value attribute")  # the check refuses this at load


@op("ConstantOfShape", 9, 20, 21, 23, 24, 25)  # later versions only add types
def constantofshape_9(input, *, value=None):
    shape = limits.shape_list(input, "ConstantOfShape")
    for d in shape:  # (loops, not min(): a detector's post-processing makes 90 of these a run, each tiny)
        if d < 0:
            raise InputError("ConstantOfShape: negative dimension in shape %s" % shape)
    if value is None:
        v = _ZERO
    else:
        v = (value if type(value) is np.ndarray else np.asarray(value)).reshape(-1)
        if v.size != 1:
            raise ModelError("ConstantOfShape: value must hold exactly one element, got %d" % v.size)
    if len(shape) > limits.MAX_RANK:
        limits.check_shape(shape, v.dtype, "ConstantOfShape")  # (raises)
    limits.check_count(limits.nominal_count(shape), v.itemsize, "ConstantOfShape")
    out = np.empty(shape, dtype=v.dtype)  # (np.full is this, at twice the cost)
    out.fill(v[0])
    return out


_ZERO = np.zeros(1, dtype=np.float32)  # ConstantOfShape's default value


# --------------------------------------------------------------------------------------------- Range


def _range(start, limit, delta, stash):
    start, limit, delta = (np.asarray(v).reshape(-1)[0] for v in (start, limit, delta))
    dtype = np.asarray(start).dtype
    if delta == 0:
        raise InputError("Range: delta must not be 0")
    if dtype.kind in "iu":
        # exact integer arithmetic: ceil(a / b) == -((-a) // b) for Python ints of either sign
        a, b, d = int(start), int(limit), int(delta)
        n = max(-((a - b) // d), 0)
        limits.check_count(n, 8, "Range")
        return (a + d * np.arange(n, dtype=np.int64)).astype(dtype)
    # floats, as onnxruntime does: the count from (limit - start) in the input type divided in double,
    # the values by repeated addition of delta in the input type (float16 in the stash type)
    work = stash if dtype == np.float16 else dtype
    s, l, d = np.array(start, dtype=work), np.array(limit, dtype=work), np.array(delta, dtype=work)
    count = np.ceil(np.float64(l - s) / np.float64(d))
    if not np.isfinite(count):
        raise InputError("Range: start %s, limit %s, delta %s make no finite count" % (s, l, d))
    n = max(int(count), 0)
    limits.check_count(n, 8, "Range")
    steps = np.full(n, d, dtype=work)
    if n:
        steps[0] = s
    return np.cumsum(steps, dtype=work).astype(dtype)  # cumsum adds sequentially, like the loop


@op("Range", 11)
def range_11(start, limit, delta):
    return _range(start, limit, delta, np.float32)


_STASH = {1: np.float32, 11: np.float64}


def _check_stash(**attrs):
    if int(attrs.get("stash_type", 1)) not in _STASH:
        raise UnsupportedError("Range: stash_type %s is not supported (1 = float or 11 = double)"
                               % attrs.get("stash_type"))


@op("Range", 27, check=_check_stash)  # 27 added stash_type for float16/bfloat16 inputs
def range_27(start, limit, delta, *, stash_type=1):
    return _range(start, limit, delta, _STASH[int(stash_type)])


# ----------------------------------------------------------------------------------- NonZero, EyeLike


@op("NonZero", 9, 13)  # 13: bfloat16
def nonzero_9(X):
    if X.ndim == 0:  # onnxruntime treats a scalar as one element of a 1-D tensor
        return np.zeros((1, 1 if X else 0), dtype=np.int64)
    limits.check_count(X.ndim * np.count_nonzero(X), 8, "NonZero")
    return np.array(np.nonzero(X), dtype=np.int64).reshape(X.ndim, -1)


def _check_eyelike(**attrs):
    dt = attrs.get("dtype")
    if dt is not None and not dtypes.is_supported(int(dt)):
        raise UnsupportedError("EyeLike: dtype %s is not supported" % dtypes.type_name(int(dt)))


@op("EyeLike", 9, 22, check=_check_eyelike)  # 22: bfloat16
def eyelike_9(input, *, dtype=None, k=0):
    if input.ndim != 2:
        raise InputError("EyeLike: input must be 2-D, got shape %s" % (input.shape,))
    out = input.dtype if dtype is None else dtypes.to_numpy(int(dtype))
    return np.eye(input.shape[0], input.shape[1], k=int(k), dtype=out)


@infers(constant_1, constant_11, constant_12)
def _constant_types(node, ins, constants):
    value = node.attrs.get("value")
    return [(code(value.dtype), list(value.shape))] if isinstance(value, np.ndarray) else None


@infers(constantofshape_9)
def _constant_of_shape_types(node, ins, constants):
    value = node.attrs.get("value")
    shape = ints(constants[0]) if constants and constants[0] is not None else None
    return [(code(value.dtype) if isinstance(value, np.ndarray) else FLOAT, shape)]


@infers(nonzero_9)
def _nonzero_types(node, ins, constants):
    x = first(ins)[1]
    return [(INT64, [None if x is None else len(x), None])]
