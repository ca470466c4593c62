"""Activation functions: elementwise y = f(x), with y of x's dtype.

    Relu(x)            = max(x, 0)
    LeakyRelu(x)       = x if x >= 0 else alpha * x
    PRelu(x, slope)    = x if x >= 0 else slope * x          (slope broadcasts to x)
    Sigmoid(x)         = 1 / (1 + exp(-x))
    HardSigmoid(x)     = clip(alpha * x + beta, 0, 1)
    HardSwish(x)       = x * clip(x / 6 + 1/2, 0, 1)
    Tanh(x)            = tanh(x)
    Softplus(x)        = log(1 + exp(x))
    Softsign(x)        = x / (1 + |x|)
    Elu(x)             = x if x > 0 else alpha * (exp(x) - 1)
    Selu(x)            = gamma * (x if x > 0 else alpha * (exp(x) - 1))
    Celu(x)            = max(0, x) + min(0, alpha * (exp(x / alpha) - 1))
    Gelu(x)            = x/2 * (1 + erf(x / sqrt 2))   or, approximate="tanh",
                         x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
    Mish(x)            = x * tanh(softplus(x))
    ThresholdedRelu(x) = x if x > alpha else 0
    Shrink(x)          = x + bias if x < -lambd, x - bias if x > lambd, else 0
    Erf(x)             = 2/sqrt(pi) * integral_0^x exp(-t^2) dt
    Clip(x, min, max)  = min(max(x, min), max)

Attributes are Python floats. Mixing one into numpy arithmetic must not promote float16/float32 arrays to
float64, so every constant is first made a 0-d array of x's dtype: ``_const(x, alpha)``.

Relu, Clip, LeakyRelu, HardSigmoid, HardSwish and Sigmoid also run as a conv's tail (``tail(...)`` beside
each, see ops/tails.py): the same function applied in place to the conv's result, in one sweep.
"""
import math

import numpy as np

from .. import limits
from ..errors import InputError, UnsupportedError
from .registry import fixed_after, infers, op, prepared, static_shape
from ._static_shape import broadcast, same_shape
from ._infer_types import broadcast as broadcast_types, same
from .tails import clip as _clip, pieces, tail


_CONSTANTS = {}  # (dtype, value) -> a read-only 0-d array (see _const)


def _const(x, value):
    """``value`` as a 0-d array of x's dtype, so arithmetic with it keeps x's dtype.

    Made once per dtype and value: making a numpy scalar costs as much as a small op itself, and numpy
    resolves a 0-d array operand faster than a scalar. NaN and -0.0 are not kept (as dict keys they miss
    or collide with 0.0), nor more than a few thousand values (alphas read from a file)."""
    key = (x.dtype, value)
    c = _CONSTANTS.get(key)
    if c is None:
        c = np.array(value, x.dtype)
        if value == value and (value != 0 or math.copysign(1.0, value) > 0) and len(_CONSTANTS) < 4096:
            c.flags.writeable = False
            _CONSTANTS[key] = c
    return c


def _new(x):
    """A fresh array like x, to pass as ``out=`` to the first ufunc of an in-place chain (a ufunc on a
    0-d array without ``out=`` returns a numpy scalar, which later ``out=`` calls cannot write to)."""
    return np.empty_like(x)


# Relu-13 added bfloat16, Relu-14 added the signed integer types: same math.
@op("Relu", 6, 13, 14)
def relu(x):
    return np.maximum(x, _const(x, 0))


def _relu_tail(y):
    # clip with two bounds, not maximum against a scalar or where=: 4-12x faster in numpy 2.x (measured
    # on a (1, 144, 56, 56) channels-last view), same results (NaN stays NaN)
    return _clip(y, y.dtype.type(0), y.dtype.type(np.inf), out=y)


tail("Relu", _relu_tail, params=(), clip=lambda: (0.0, float("inf")))


# LeakyRelu-16 added bfloat16.
@op("LeakyRelu", 6, 16)
def leaky_relu(x, *, alpha=0.01):
    y = np.multiply(x, _const(x, alpha), out=_new(x))
    if 0.0 <= alpha <= 1.0:
        return np.maximum(x, y, out=y)  # max(x, alpha*x) is x for x >= 0 and alpha*x below: one fast pass
    return np.where(x >= 0, x, y)


def _leaky_relu_tail(y, alpha):
    neg = np.clip(y, -np.inf, 0)  # max(y, 0) + alpha * min(y, 0): one term is 0 for every y
    neg *= y.dtype.type(alpha)
    np.clip(y, 0, np.inf, out=y)
    y += neg
    return y


tail("LeakyRelu", _leaky_relu_tail, params=("alpha",))


# PRelu-7 made slope broadcast unidirectionally, 9 added integer types, 16 bfloat16.
@op("PRelu", 7, 9, 16)
def prelu(x, slope):
    try:
        shape = limits.broadcast_shape(x.shape, slope.shape)
    except ValueError:
        raise InputError("PRelu: slope of shape %s does not broadcast to X of shape %s"
                         % (slope.shape, x.shape))
    if shape != x.shape:  # checked before computing: an outer broadcast would be huge
        raise InputError("PRelu: slope of shape %s must broadcast to X's shape %s, not enlarge it"
                         % (slope.shape, x.shape))
    return np.where(x >= 0, x, x * slope.astype(x.dtype, copy=False))


# Sigmoid-13 added bfloat16.
@op("Sigmoid", 6, 13)
def sigmoid(x):
    # The same function as (1 + tanh(x / 2)) / 2, which never overflows: exp(-x) does for x < -88 in
    # float32, and silencing numpy's warning for it (errstate) cost more than the op on small tensors.
    half = _const(x, 0.5)
    y = np.multiply(x, half, out=_new(x))
    np.tanh(y, out=y)
    y *= half
    y += half
    return y


def _sigmoid_tail(y):
    # 1 / (1 + exp(-y)) without overflow warnings: exp of a large positive argument is inf, 1/inf is 0
    with np.errstate(over="ignore"):
        np.negative(y, out=y)
        np.exp(y, out=y)
        y += 1
        np.reciprocal(y, out=y)
    return y


tail("Sigmoid", _sigmoid_tail, params=())


# HardSigmoid-22 added bfloat16.
@op("HardSigmoid", 6, 22)
def hard_sigmoid(x, *, alpha=0.2, beta=0.5):
    y = np.multiply(x, _const(x, alpha), out=_new(x))
    y += _const(x, beta)
    np.maximum(y, _const(x, 0), out=y)
    np.minimum(y, _const(x, 1), out=y)
    return y


def _hard_sigmoid_tail(y, alpha, beta):
    y *= y.dtype.type(alpha)
    y += y.dtype.type(beta)
    return np.clip(y, 0, 1, out=y)


tail("HardSigmoid", _hard_sigmoid_tail, params=("alpha", "beta"))


# HardSwish-22 added bfloat16.
@op("HardSwish", 14, 22)
def hard_swish(x):
    # ONNX defines it with alpha = 1/6, beta = 0.5, i.e. x * HardSigmoid(x) with those constants.
    return x * hard_sigmoid(x, alpha=1.0 / 6.0, beta=0.5)


def _pieces_and_scratch(y, chunk):
    """tails.pieces(y, chunk), each piece with a temporary of its shape: views of one small array (a
    temporary as big as y cost more than the math: SSDlite's first [1, 16, 160, 160], 401 -> 273 us a
    HardSwish)."""
    scratch = np.empty(min(chunk, y.size), y.dtype)
    for part, _ in pieces(y, chunk):
        yield part, scratch[:part.size].reshape(part.shape) if part.size <= scratch.size else np.empty_like(part)


def _hard_swish_tail(y, chunk=65536):
    # over cache-sized pieces of y's memory, with one small temporary (the same numbers as at once)
    t = y.dtype.type
    for part, g in _pieces_and_scratch(y, chunk):
        np.multiply(part, t(1.0 / 6), out=g)
        g += t(0.5)
        _clip(g, t(0), t(1), out=g)
        part *= g
    return y


def _hard_swish_folded(W, B, chunk=65536):
    """The numpy path's conv with its HardSwish (Tail.fold): W and B divided by sqrt(6) once, so that the
    conv's sums are u = y / sqrt(6), and then

        HardSwish(y) = y * clip(y + 3, 0, 6) / 6 = u * clip(u + 3 / sqrt(6), 0, sqrt(6))

    three sweeps over each piece instead of four (the 1/6 is spent by the two factors' sqrt(6)s). A float
    rounding away from y, as folding a BatchNormalization is. None where W / sqrt(6) is not finite."""
    root = np.float32(math.sqrt(6.0))
    with np.errstate(under="ignore"):
        W = (W / root).astype(np.float32, copy=False)
        B = None if B is None else (B / root).astype(np.float32, copy=False)
    if not np.isfinite(W).all() or (B is not None and not np.isfinite(B).all()):
        return None
    shift, top, zero = np.float32(3.0 / math.sqrt(6.0)), root, np.float32(0)

    def apply(u):
        for part, g in _pieces_and_scratch(u, chunk):
            np.add(part, shift, out=g)
            _clip(g, zero, top, out=g)
            part *= g
        return u
    return W, B, apply


tail("HardSwish", _hard_swish_tail, params=(), fold=_hard_swish_folded)


# Tanh-13 added bfloat16.
@op("Tanh", 6, 13)
def tanh(x):
    return np.tanh(x)


# Softplus-22 added bfloat16.
@op("Softplus", 1, 22)
def softplus(x):
    # log(1 + exp(x)) = max(x, 0) + log(1 + exp(-|x|)): exp never overflows, log1p keeps small terms.
    y = np.abs(x, out=_new(x))
    np.negative(y, out=y)
    np.exp(y, out=y)
    np.log1p(y, out=y)
    y += np.maximum(x, _const(x, 0))
    return y


# Softsign-22 added bfloat16.
@op("Softsign", 1, 22)
def softsign(x):
    return x / (_const(x, 1) + np.abs(x))


def _elu(x, alpha):
    """max(x, 0) + alpha * expm1(min(x, 0)): the two terms never both differ from 0, and this
    runs in place without where(). expm1 is accurate near 0 and min() keeps exp from overflowing."""
    zero = _const(x, 0)
    y = np.minimum(x, zero, out=_new(x))
    np.expm1(y, out=y)
    y *= _const(x, alpha)
    y += np.maximum(x, zero)
    return y


# Elu-22 added bfloat16.
@op("Elu", 6, 22)
def elu(x, *, alpha=1.0):
    return _elu(x, alpha)


# Selu-22 added bfloat16.
@op("Selu", 6, 22)
def selu(x, *, alpha=1.67326319217681884765625, gamma=1.05070102214813232421875):
    y = _elu(x, alpha)
    y *= _const(x, gamma)
    return y


# Celu-28 added float16, double and bfloat16 (12 was float only).
@op("Celu", 12, 28)
def celu(x, *, alpha=1.0):
    a = _const(x, alpha)
    zero = _const(x, 0)
    return np.maximum(x, zero) + np.minimum(zero, a * np.expm1(np.minimum(x, zero) / a))


def _check_gelu(approximate="none", **_):
    if approximate not in ("none", "tanh"):
        raise UnsupportedError("Gelu: approximate=%r is not defined (use 'none' or 'tanh')" % (approximate,))


@op("Gelu", 20, check=_check_gelu)
def gelu(x, *, approximate="none"):
    half = _const(x, 0.5)
    if approximate == "tanh":
        inner = _const(x, np.sqrt(2.0 / np.pi)) * (x + _const(x, 0.044715) * x * x * x)
        return half * x * (_const(x, 1) + np.tanh(inner))
    return half * x * (_const(x, 1) + erf(x * _const(x, 1.0 / np.sqrt(2.0))))


# Mish-22 added bfloat16.
@op("Mish", 18, 22)
def mish(x):
    return x * np.tanh(softplus(x))


# ThresholdedRelu-22 added bfloat16.
@op("ThresholdedRelu", 10, 22)
def thresholded_relu(x, *, alpha=1.0):
    return np.where(x > alpha, x, _const(x, 0))


@op("Shrink", 9)
def shrink(x, *, bias=0.0, lambd=0.5):
    # Comparisons against the Python floats are exact for every dtype (no result dtype to keep);
    # the shifted values must keep x's dtype, so bias becomes x's scalar type.
    b = _const(x, bias)
    return np.where(x < -lambd, x + b, np.where(x > lambd, x - b, _const(x, 0)))


# --- erf: Cephes' rational approximations (S. L. Moshier, public domain), evaluated in float64.
# |x| < 1:      erf(x)  = x * T(x^2) / U(x^2)                  (relative error < 4e-16)
# 1 <= |x| < 8: erfc(x) = exp(-x^2) * P(|x|) / Q(|x|), erf = 1 - erfc
# |x| >= 8:     erf(x)  = +-1 exactly in double precision.
_ERF_T = (9.60497373987051638749E0, 9.00260197203842689217E1, 2.23200534594684319226E3,
          7.00332514112805075473E3, 5.55923013010394962768E4)
_ERF_U = (1.0, 3.35617141647503099647E1, 5.21357949780152679795E2, 4.59432382970980127987E3,
          2.26290000613890934246E4, 4.92673942608635921086E4)
_ERFC_P = (2.46196981473530512524E-10, 5.64189564831068821977E-1, 7.46321056442269912687E0,
           4.86371970985681366614E1, 1.96520832956077098242E2, 5.26445194995477358631E2,
           9.34528527171957607540E2, 1.02755188689515710272E3, 5.57535335369399327526E2)
_ERFC_Q = (1.0, 1.32281951154744992508E1, 8.67072140885989742329E1, 3.54937778887819891062E2,
           9.75708501743205489753E2, 1.82390916687909736289E3, 2.24633760818710981792E3,
           1.65666309194161350182E3, 5.57535340817727675546E2)


def _polyval(coefs, z):
    """Horner's rule, highest power first."""
    acc = np.full_like(z, coefs[0])
    for c in coefs[1:]:
        acc *= z
        acc += c
    return acc


def _erf64(x):
    """erf of a float64 array, accurate to a few units in the last place."""
    a = np.abs(x)
    # Each branch sees only inputs in its own range (others clamped), so nothing overflows.
    small = np.minimum(a, 1.0)
    z = small * small
    y_small = small * _polyval(_ERF_T, z) / _polyval(_ERF_U, z)
    big = np.clip(a, 1.0, 8.0)
    y_big = 1.0 - np.exp(-big * big) * _polyval(_ERFC_P, big) / _polyval(_ERFC_Q, big)
    y = np.where(a < 1.0, y_small, y_big)
    return np.copysign(y, x)  # erf is odd; NaN stays NaN through np.where/copysign


# Erf-13 added bfloat16. The spec lists integer types too; erf of an integer rounds to -1, 0 or 1.
@op("Erf", 9, 13)
def erf(x):
    y = _erf64(x.astype(np.float64))
    if x.dtype.kind in "iu":
        y = np.rint(y)
    return y.astype(x.dtype)


# --- Clip

# Clip-6: bounds are float attributes (defaults: the float32 range).
@op("Clip", 6)
def clip_6(x, *, min=-3.4028234663852886e+38, max=3.4028234663852886e+38):
    with np.errstate(over="ignore"):  # float16 turns the default bounds into -inf/inf, as intended
        lo, hi = _const(x, min), _const(x, max)
    y = np.maximum(x, lo, out=_new(x))
    np.minimum(y, hi, out=y)
    return y


# Clip-11: bounds became optional scalar inputs ("" = absent, arrives as None); 12 added integer types,
# 13 bfloat16. When min > max every value becomes max, which max-then-min gives.
@op("Clip", 11, 12, 13)
def clip_11(x, min=None, max=None):
    y = x
    # An absent bound is the type's lowest / highest finite value (the spec's numeric_limits), so a float
    # inf is clipped to the largest float, as onnxruntime does.
    finite = x.dtype.kind == "f"
    if min is not None or finite:
        y = np.maximum(y, _scalar_bound(min, x, "min") if min is not None else np.finfo(x.dtype).min)
    if max is not None or finite:
        y = np.minimum(y, _scalar_bound(max, x, "max") if max is not None else np.finfo(x.dtype).max)
    if y is x:
        y = x.copy()  # no bounds: still hand back a fresh array, never an alias of the input
    return y


@prepared(clip_11)
def _prepare_clip(fn, args, fixed, attrs):
    """For the compiled program, with constant bounds on floats: the same maximum and minimum, the bounds
    converted once."""
    x = args[0]
    if type(x) is not np.ndarray or x.dtype.kind != "f" or not fixed_after(args, fixed):
        return None
    low, high = (list(args) + [None, None])[1:3]
    low = np.finfo(x.dtype).min if low is None else _scalar_bound(low, x, "min")
    high = np.finfo(x.dtype).max if high is None else _scalar_bound(high, x, "max")

    def clip_prepared(x, min=None, max=None):
        return np.minimum(np.maximum(x, low), high)
    return clip_prepared


def _scalar_bound(bound, x, name):
    if bound.size != 1:
        raise InputError("Clip: input '%s' must be a scalar, got shape %s" % (name, bound.shape))
    return bound.reshape(()).astype(x.dtype)


def _clip_tail(y, lo, hi):
    return _clip(y, y.dtype.type(lo), y.dtype.type(hi), out=y)


def _clip_as_tail(node, constants):
    """Clip's bounds as a tail's params: attributes before opset 11, then inputs, which must be constant
    scalars (absent: unbounded). Clip(0, inf) is Relu."""
    if (node.opset or 0) < 11:
        defaults = clip_6.__kwdefaults__
        lo, hi = node.attrs.get("min", defaults["min"]), node.attrs.get("max", defaults["max"])
    else:
        bounds = []
        for i, default in ((1, -np.inf), (2, np.inf)):
            name = node.inputs[i] if len(node.inputs) > i else ""
            if not name:
                bounds.append(default)
            elif name in constants and constants[name].size == 1:
                bounds.append(float(constants[name].reshape(-1)[0]))
            else:
                return None
        lo, hi = bounds
    if lo == 0 and hi == np.inf:
        return "Relu", []
    return "Clip", [float(lo), float(hi)]


tail("Clip", _clip_tail, params=_clip_as_tail, clip=lambda lo, hi: (lo, hi))


static_shape(celu, clip_6, clip_11, elu, erf, gelu, hard_sigmoid, hard_swish, leaky_relu, mish, relu, selu,
             sigmoid, softplus, softsign, tanh)(same_shape)
static_shape(prelu)(broadcast)
infers(celu, clip_6, clip_11, elu, erf, gelu, hard_sigmoid, hard_swish, leaky_relu, mish, relu, selu, shrink, sigmoid,
       softplus, softsign, tanh, thresholded_relu)(same)
infers(prelu)(broadcast_types)
