"""Cast and CastLike: convert a tensor's element type.

    Cast(x, to=T)          x as element type T (an ONNX TensorProto.DataType code)
    CastLike(x, target)    x as target's element type

Strings (numpy object arrays of str) convert as onnxruntime converts them: see _to_strings, _from_strings.
Between numbers, numpy's astype follows C's conversions, which is what ONNX specifies and onnxruntime does:
float -> integer truncates toward zero, integer -> narrower integer wraps (two's complement),
anything -> bool is `x != 0` (NaN is true), bool -> number is 0/1, float64 -> float32 rounds to nearest
and overflows to +-inf. NaN/inf -> integer is undefined in ONNX; numpy, like onnxruntime on x86, gives
the integer type's "indefinite" value.

`saturate` (opset 19+) and `round_mode` (24+) only change conversions *to* the float8 types, which
tinyrt does not support (a model casting to them is refused at load), so every value of them
gives the same results here.
"""
import numpy as np

from ..dtypes import ONNX_TYPES, is_string, type_name
from ..errors import InputError, UnsupportedError
from .registry import infers, op, static_shape
from ._static_shape import same_shape
from ._infer_types import first


def _dtype(to):
    # The loader already refuses a `to` naming a type tinyrt lacks (bfloat16, float8, int4 ...),
    # for every op with a `to` attribute; this only guards direct calls.
    if to not in ONNX_TYPES:
        raise UnsupportedError("Cast: to=%s (%s) is a type tinyrt does not support" % (to, type_name(to)))
    return ONNX_TYPES[to][1]


def _convert(x, dtype):
    if is_string(dtype):
        return _to_strings(x)
    if is_string(x.dtype):
        return _from_strings(x, dtype)
    # NaN/inf -> int is undefined behaviour anyway: do not warn about it.
    with np.errstate(invalid="ignore", over="ignore"):
        return x.astype(dtype)  # always a fresh array, never an alias of the input


def _to_strings(x):
    """Numbers as onnxruntime writes them: floats with 8 significant digits ('0.1', '1e+10', 'NaN', 'INF',
    '-INF'), integers in full, bools as '1' / '0'."""
    out = np.empty(x.shape, dtype=object)
    flat = out.reshape(-1)
    if x.dtype.kind == "f":
        for i, v in enumerate(x.reshape(-1).tolist()):
            flat[i] = "NaN" if v != v else ("INF" if v > 0 else "-INF") if v in (np.inf, -np.inf) else "%.8g" % v
    elif x.dtype.kind == "b":
        for i, v in enumerate(x.reshape(-1).tolist()):
            flat[i] = "1" if v else "0"
    else:  # integers, or strings (a copy)
        for i, v in enumerate(x.reshape(-1).tolist()):
            flat[i] = str(v)
    return out


def _from_strings(x, dtype):
    """Strings parsed as numbers ('1.5', ' 2', '1e3', '-inf', 'NaN'; integers may be written '7' or '7.0')."""
    def number(text):
        try:
            return int(text) if dtype.kind in "iu" else float(text)
        except ValueError:
            try:
                return int(float(text)) if dtype.kind in "iu" else float(text)
            except ValueError:
                raise InputError("Cast: %r is not a number" % (text,)) from None

    values = [number(v) for v in x.reshape(-1).tolist()]
    if dtype.kind == "b":
        return np.array([v != 0 for v in values], dtype=np.bool_).reshape(x.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        try:
            return np.array(values, dtype=np.float64 if dtype.kind == "f" else None).astype(dtype).reshape(x.shape)
        except OverflowError:
            raise InputError("Cast: a value of %s does not fit %s" % (x.reshape(-1)[:5].tolist(), dtype)) from None


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


static_shape(cast_6, cast_19, cast_24, cast_like_15, cast_like_19, cast_like_24)(same_shape)


@infers(cast_6, cast_19, cast_24)
def _cast_types(node, ins, constants):
    return [(node.attrs.get("to"), first(ins)[1])]


@infers(cast_like_15, cast_like_19, cast_like_24)
def _cast_like_types(node, ins, constants):
    return [(ins[1][0], first(ins)[1])]
