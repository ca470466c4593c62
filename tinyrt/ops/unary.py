"""Elementwise unary math: y = f(x), y of x's dtype (IsNaN, IsInf: bool).

Each op is one numpy ufunc. Domain errors give NaN/inf silently, as in onnxruntime (numpy would warn,
hence the ``errstate`` blocks). Versions that only added dtypes (bfloat16, integer types) share one function.
"""
import numpy as np

from .registry import infers, op, static_shape
from ._static_shape import same_shape
from ._infer_types import same, to_bool


def _quiet():
    """Suppress numpy's warnings for log(0), sqrt(-1), 1/0 ...: the IEEE results are what ONNX wants."""
    return np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore")


# --- exponentials and roots (13 added bfloat16)

@op("Exp", 6, 13)
def exp(x):
    with _quiet():
        return np.exp(x)


@op("Log", 6, 13)
def log(x):
    with _quiet():
        return np.log(x)


@op("Sqrt", 6, 13)
def sqrt(x):
    with _quiet():
        return np.sqrt(x)


@op("Reciprocal", 6, 13)
def reciprocal(x):
    with _quiet():
        return np.reciprocal(x)


# --- sign and magnitude (6 added integer types, 13 bfloat16)

@op("Neg", 6, 13)
def neg(x):
    return np.negative(x)


@op("Abs", 6, 13)
def abs_(x):
    return np.abs(x)


@op("Sign", 9, 13)
def sign(x):
    return np.sign(x)


# --- rounding (float types only)

@op("Floor", 6, 13)
def floor(x):
    return np.floor(x)


@op("Ceil", 6, 13)
def ceil(x):
    return np.ceil(x)


# Round-22 added bfloat16. Halves round to even (2.5 -> 2), which is exactly numpy's rint.
@op("Round", 11, 22)
def round_(x):
    return np.rint(x)


# --- trigonometric and hyperbolic (22 added bfloat16)

@op("Sin", 7, 22)
def sin(x):
    return np.sin(x)


@op("Cos", 7, 22)
def cos(x):
    return np.cos(x)


@op("Tan", 7, 22)
def tan(x):
    return np.tan(x)


@op("Asin", 7, 22)
def asin(x):
    with _quiet():
        return np.arcsin(x)


@op("Acos", 7, 22)
def acos(x):
    with _quiet():
        return np.arccos(x)


@op("Atan", 7, 22)
def atan(x):
    return np.arctan(x)


@op("Sinh", 9, 22)
def sinh(x):
    with _quiet():
        return np.sinh(x)


@op("Cosh", 9, 22)
def cosh(x):
    with _quiet():
        return np.cosh(x)


@op("Asinh", 9, 22)
def asinh(x):
    return np.arcsinh(x)


@op("Acosh", 9, 22)
def acosh(x):
    with _quiet():
        return np.arccosh(x)


@op("Atanh", 9, 22)
def atanh(x):
    with _quiet():
        return np.arctanh(x)


# --- predicates: output bool (13 and 20 added bfloat16 and float8 inputs)

@op("IsNaN", 9, 13, 20)
def isnan(x):
    return np.isnan(x)


@op("IsInf", 10, 20)
def isinf(x, *, detect_negative=1, detect_positive=1):
    if detect_negative and detect_positive:
        return np.isinf(x)
    if detect_positive:
        return np.isposinf(x)
    if detect_negative:
        return np.isneginf(x)
    return np.zeros(x.shape, dtype=np.bool_)


# --- logic

@op("Not", 1)
def not_(x):
    return np.logical_not(x)


@op("BitwiseNot", 18)
def bitwise_not(x):
    return np.invert(x)


static_shape(abs_, ceil, exp, floor, log, neg, not_, reciprocal, round_, sign, sqrt)(same_shape)
infers(abs_, acos, acosh, asin, asinh, atan, atanh, ceil, cos, cosh, exp, floor, log, neg, not_, reciprocal, round_,
       sign, sin, sinh, sqrt, tan)(same)
infers(isnan, isinf)(to_bool)
