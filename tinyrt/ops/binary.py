"""Elementwise binary and variadic ops with numpy-style (multidirectional) broadcasting.

    Add, Sub, Mul, Div       C = A op B                 (same dtype T in and out)
    Pow                      Z = X ** Y                 (Z has X's dtype; Y may have another type)
    Mod                      C = A mod B                (fmod=0: sign of B, like Python; fmod=1: sign of A)
    Sum, Max, Min, Mean      fold over any number of inputs
    Equal, Less, ...         C = A cmp B                (bool)
    And, Or, Xor             logical, on bool
    BitShift                 Z = X << Y or X >> Y
    BitwiseAnd/Or/Xor        bitwise, on integers
    Where                    out = X where condition else Y

Where numpy and ONNX disagree, ONNX wins:
- integer Div truncates toward zero (-7 / 2 = -3); numpy's // floors (-4) and / gives float64;
- integer Pow with a negative exponent is computed in float64 and truncated (numpy raises);
- shifts by a count outside [0, bits) give 0 (or -1 for a negative number shifted right).
Since opset 7 all of these broadcast like numpy; the older `broadcast`/`axis` attribute forms (opset <= 6)
are not registered, as tinyrt starts at opset 7.
"""
import numpy as np

from .. import limits
from ..errors import InputError, UnsupportedError
from .registry import infers, op, prepared, static_shape
from ._static_shape import broadcast
from ._infer_types import broadcast as broadcast_types, broadcast_dims, compare


def _quiet():
    """Silence numpy's warnings for 1/0, 0/0, overflow: the IEEE results are what ONNX specifies."""
    return np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore")


def _broadcast_error(name, a, b):
    return InputError("%s: input shapes %s and %s do not broadcast" % (name, a.shape, b.shape))


# --- arithmetic (13 added bfloat16, 14 added the 8- and 16-bit integer types)

@op("Add", 7, 13, 14)
def add(a, b):
    limits.check_broadcast("Add", a, b)
    try:
        return np.add(a, b)
    except ValueError:
        raise _broadcast_error("Add", a, b)


@op("Sub", 7, 13, 14)
def sub(a, b):
    limits.check_broadcast("Sub", a, b)
    try:
        return np.subtract(a, b)
    except ValueError:
        raise _broadcast_error("Sub", a, b)


@op("Mul", 7, 13, 14)
def mul(a, b):
    limits.check_broadcast("Mul", a, b)
    try:
        return np.multiply(a, b)
    except ValueError:
        raise _broadcast_error("Mul", a, b)


@op("Div", 7, 13, 14)
def div(a, b):
    limits.check_broadcast("Div", a, b)
    try:
        with _quiet():
            if a.dtype.kind in "iu":
                return _int_div_trunc(a, b)
            return np.true_divide(a, b)
    except ValueError:
        raise _broadcast_error("Div", a, b)


def _int_div_trunc(a, b):
    """Integer division rounding toward zero, as C does (numpy's floor_divide rounds down)."""
    q = np.floor_divide(a, b)
    if a.dtype.kind == "i":
        # floor and trunc differ when the quotient is negative and inexact: then add one back.
        inexact = (q * b) != a
        q += (inexact & ((a < 0) != (b < 0))).astype(q.dtype)
    return q


# Pow-12 let Y have its own type T1; 13 added bfloat16; 15 bfloat16 for Y. Pow-7 has Y of type T.
@op("Pow", 7, 12, 13, 15)
def pow_(x, y):
    limits.check_broadcast("Pow", x, y)
    with _quiet():
        try:
            if x.dtype.kind in "iu":
                if y.dtype.kind in "iu" and not (y < 0).any():
                    return np.power(x, y.astype(x.dtype, copy=False))
                # Negative or fractional exponents of an integer: compute in float64, truncate like C.
                return np.power(x.astype(np.float64), y.astype(np.float64)).astype(x.dtype)
            if y.size == 1 and y.ndim <= x.ndim and x.dtype.kind == "f":
                # Pow(x, 2) and Pow(x, 0.5) are common in exported normalisations: use the direct ufuncs.
                e = float(y.reshape(-1)[0])
                if e == 2.0:
                    return np.square(x)
                if e == 0.5:
                    return np.sqrt(x)
                if e == 1.0:
                    return x.copy()
            if y.dtype == x.dtype:
                return np.power(x, y)
            # Mixed types: compute in the wider type, then return X's type (ONNX: Z has X's type).
            wide = np.result_type(x.dtype, y.dtype, np.float32)
            return np.power(x.astype(wide, copy=False), y.astype(wide, copy=False)).astype(x.dtype)
        except ValueError:
            raise _broadcast_error("Pow", x, y)


def _check_mod(fmod=0, **_):
    if fmod not in (0, 1):
        raise UnsupportedError("Mod: attribute fmod must be 0 or 1, got %r" % (fmod,))


# Mod-13 added bfloat16; Mod-28 only spelled out the float special cases (which numpy's mod/fmod follow).
@op("Mod", 10, 13, 28, check=_check_mod)
def mod(a, b, *, fmod=0):
    limits.check_broadcast("Mod", a, b)
    try:
        with _quiet():
            # fmod=0: a - floor(a/b) * b, the sign of b (numpy's mod, Python's %).
            # fmod=1: a - trunc(a/b) * b, the sign of a (C's fmod).
            return np.fmod(a, b) if fmod else np.mod(a, b)
    except ValueError:
        raise _broadcast_error("Mod", a, b)


# --- variadic folds (6: same shapes; 8: broadcasting, a superset; Max/Min-12 integers; 13 bfloat16)

def _fold(name, ufunc, inputs):
    if not inputs:
        raise InputError("%s needs at least one input" % name)
    result = inputs[0]
    if len(inputs) == 1:
        return result.copy()
    try:
        for x in inputs[1:]:
            limits.check_broadcast(name, result, x)
            result = ufunc(result, x)
    except ValueError:
        raise InputError("%s: input shapes %s do not broadcast" % (name, [x.shape for x in inputs]))
    return result


@op("Sum", 6, 8, 13)
def sum_(*data):
    return _fold("Sum", np.add, data)


@op("Max", 6, 8, 12, 13)
def max_(*data):
    return _fold("Max", np.maximum, data)


@op("Min", 6, 8, 12, 13)
def min_(*data):
    return _fold("Min", np.minimum, data)


@op("Mean", 6, 8, 13)
def mean(*data):
    total = _fold("Mean", np.add, data)
    return total / total.dtype.type(len(data))  # a scalar of T keeps float16/float32


# --- comparisons: bool out (later versions added types: bool/int for Equal-11, bfloat16 at 13, string 19)

@op("Equal", 7, 11, 13, 19)
def equal(a, b):
    limits.check_broadcast("Equal", a, b)
    return np.equal(a, b)


@op("Less", 7, 9, 13)
def less(a, b):
    limits.check_broadcast("Less", a, b)
    return np.less(a, b)


@op("LessOrEqual", 12, 16)
def less_or_equal(a, b):
    limits.check_broadcast("LessOrEqual", a, b)
    return np.less_equal(a, b)


@op("Greater", 7, 9, 13)
def greater(a, b):
    limits.check_broadcast("Greater", a, b)
    return np.greater(a, b)


@op("GreaterOrEqual", 12, 16)
def greater_or_equal(a, b):
    limits.check_broadcast("GreaterOrEqual", a, b)
    return np.greater_equal(a, b)


# --- logic on bool

@op("And", 7)
def and_(a, b):
    limits.check_broadcast("And", a, b)
    return np.logical_and(a, b)


@op("Or", 7)
def or_(a, b):
    limits.check_broadcast("Or", a, b)
    return np.logical_or(a, b)


# A static step of these ops, with two array inputs, runs in the compiled program as the ufunc itself: the
# op adds only the broadcast check (and a variadic one its loop), which the first run of the signature made
# for these shapes (a detector's min(k, boxes) and score > threshold, once a class).
_UFUNC = {add: np.add, sub: np.subtract, mul: np.multiply, sum_: np.add, max_: np.maximum, min_: np.minimum,
          equal: np.equal, less: np.less, less_or_equal: np.less_equal, greater: np.greater,
          greater_or_equal: np.greater_equal, and_: np.logical_and, or_: np.logical_or}


@prepared(*_UFUNC)
def _prepare_ufunc(fn, args, fixed, attrs):
    if len(args) == 2 and all(type(x) is np.ndarray for x in args):
        return _UFUNC[fn]
    return None


@op("Xor", 7)
def xor(a, b):
    limits.check_broadcast("Xor", a, b)
    return np.logical_xor(a, b)


# --- bits

def _check_bitshift(direction=None, **_):
    if direction not in ("LEFT", "RIGHT"):
        raise UnsupportedError("BitShift: attribute direction must be 'LEFT' or 'RIGHT', got %r"
                               % (direction,))


# BitShift-11 is for unsigned types; 28 added signed ones, with an arithmetic right shift.
@op("BitShift", 11, 28, check=_check_bitshift)
def bit_shift(x, y, *, direction):
    limits.check_broadcast("BitShift", x, y)
    bits = x.dtype.itemsize * 8
    # numpy (like C) leaves shifts by >= bits undefined; ONNX says they shift everything out.
    out_of_range = (y < 0) | (y >= bits)
    count = np.where(out_of_range, 0, y).astype(x.dtype)
    if direction == "LEFT":
        z = np.left_shift(x, count)
        fill = x.dtype.type(0)
    else:
        z = np.right_shift(x, count)
        # Sign extension alone: -1 for a negative x, 0 otherwise (right_shift is arithmetic on signed).
        fill = np.where(x < 0, x.dtype.type(-1), x.dtype.type(0)) if x.dtype.kind == "i" else x.dtype.type(0)
    if out_of_range.any():
        z = np.where(out_of_range, fill, z)
    return z


@op("BitwiseAnd", 18)
def bitwise_and(a, b):
    limits.check_broadcast("BitwiseAnd", a, b)
    return np.bitwise_and(a, b)


@op("BitwiseOr", 18)
def bitwise_or(a, b):
    limits.check_broadcast("BitwiseOr", a, b)
    return np.bitwise_or(a, b)


@op("BitwiseXor", 18)
def bitwise_xor(a, b):
    limits.check_broadcast("BitwiseXor", a, b)
    return np.bitwise_xor(a, b)


# --- selection (Where-16 added bfloat16)

@op("Where", 9, 16)
def where(condition, x, y):
    limits.check_broadcast("Where", condition, x, y)
    try:
        return np.where(condition, x, y)
    except ValueError:
        raise InputError("Where: shapes %s, %s, %s do not broadcast" % (condition.shape, x.shape, y.shape))


static_shape(add, and_, div, equal, greater, greater_or_equal, less, less_or_equal, max_, mean, min_, mod, mul, or_,
             pow_, sub, sum_, where, xor)(broadcast)
infers(add, and_, bit_shift, bitwise_and, bitwise_or, bitwise_xor, div, max_, mean, min_, mod, mul, or_, pow_, sub,
       sum_, xor)(broadcast_types)
infers(equal, greater, greater_or_equal, less, less_or_equal)(compare)


@infers(where)
def _where_types(node, ins, constants):
    return [(ins[1][0], broadcast_dims([s for _, s in ins]))]
