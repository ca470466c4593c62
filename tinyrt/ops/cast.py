"""Cast and CastLike: convert a tensor's element type.

    Cast(x, to=T)          x as element type T (an ONNX TensorProto.DataType code)
    CastLike(x, target)    x as target's element type

numpy's astype follows C's conversions, which is what ONNX specifies and onnxruntime does:
float -> integer truncates toward zero, integer -> narrower integer wraps (two's complement),
anything -> bool is `x != 0` (NaN is true), bool -> number is 0/1, float64 -> float32 rounds to nearest
and overflows to +-inf. NaN/inf -> integer is undefined in ONNX; numpy, like onnxruntime on x86, gives
the integer type's "indefinite" value.

`saturate` (opset 19+) and `round_mode` (24+) only change conversions *to* the float8 types, which
tinyrt does not support (a model casting to them is refused at load), so every value of them
gives the same results here.
"""
import numpy as np

from ..dtypes import ONNX_TYPES, type_name
from ..errors import UnsupportedError
from .registry import op


def _dtype(to):
    # The loader already refuses a `to` naming a type tinyrt lacks (string, bfloat16, float8, int4 ...),
    # for every op with a `to` attribute; this only guards direct calls.
    if to not in ONNX_TYPES:
        raise UnsupportedError("Cast: to=%s (%s) is a type tinyrt does not support" % (to, type_name(to)))
    return ONNX_TYPES[to][1]


def _convert(x, dtype):
    # NaN/inf -> int is undefined behaviour anyway: do not warn about it.
    with np.errstate(invalid="ignore", over="ignore"):
        return x.astype(dtype)  # always a fresh array, never an alias of the input


# Cast-9 and -13 added types (string, bfloat16); 19 added float8 and `saturate`;
# 21, 23, 25, 28 added int4/uint4, float4, int2/uint2 ...; 24 added float8e8m0 and `round_mode`.
@op("Cast", 6, 9, 13)
def cast_6(x, *, to):
    return _convert(x, _dtype(to))


@op("Cast", 19, 21, 23)
def cast_19(x, *, to, saturate=1):
    return _convert(x, _dtype(to))


@op("Cast", 24, 25, 28)
def cast_24(x, *, to, saturate=1, round_mode="up"):
    return _convert(x, _dtype(to))


# CastLike has the same version history as Cast from 15 on.
@op("CastLike", 15)
def cast_like_15(x, target_type):
    return _convert(x, target_type.dtype)


@op("CastLike", 19, 21, 23)
def cast_like_19(x, target_type, *, saturate=1):
    return _convert(x, target_type.dtype)


@op("CastLike", 24, 25)
def cast_like_24(x, target_type, *, saturate=1, round_mode="up"):
    return _convert(x, target_type.dtype)
