"""FusedConv (domain ``ai.tinyrt``): a Conv with its bias, a residual input and an activation in one op.

tinyrt's graph passes (``tinyrt/passes/fuse_*.py``) write it; files never need to. It computes

    Y = act(Conv(X, W, B) + Z)

where Z (optional) has the shape of Conv's output (or broadcasts to it, as Add would) and ``act`` is named
by ``activation`` with its parameters in ``activation_params`` (the convention of onnxruntime's
com.microsoft FusedConv):

    ""            identity                                    (no params)
    Relu          max(x, 0)                                   (no params)
    Clip          min(max(x, lo), hi)                         [lo, hi]      (ReLU6 is Clip [0, 6])
    LeakyRelu     x if x >= 0 else alpha * x                  [alpha]
    HardSigmoid   max(0, min(1, alpha * x + beta))            [alpha, beta]
    HardSwish     x * max(0, min(1, x / 6 + 1 / 2))           (no params)
    Sigmoid       1 / (1 + exp(-x))                           (no params)
    QuantizeDequantize  clip(round_half_even(x / s), lo, hi) * s    [s, lo, hi]   a QDQ model's rounding
                  (passes/quantization.py; lo, hi are integers: qmin - zp, qmax - zp)

One conv then one in-place pass for the tail: the tail costs one sweep over Y instead of one op (and one
new array) per node. The numba path (``kernels/``) applies the same tail inside its conv loops.
"""
import numpy as np

from ..errors import InputError, UnsupportedError

try:  # np.clip's ufunc itself: np.clip is a Python wrapper that costs more than the clip on small tensors
    from numpy._core.umath import clip as _clip
except ImportError:  # numpy < 2
    from numpy.core.umath import clip as _clip
from .registry import op
from .conv import conv, _check_conv

DOMAIN = "ai.tinyrt"
# activation name -> number of activation_params it takes
ACTIVATIONS = {"": 0, "Relu": 0, "Clip": 2, "LeakyRelu": 1, "HardSigmoid": 2, "HardSwish": 0, "Sigmoid": 0,
               "QuantizeDequantize": 3}


def _check(**attrs):
    _check_conv("FusedConv")(**attrs)
    name = attrs.get("activation", "")
    if name not in ACTIVATIONS:
        raise UnsupportedError("FusedConv: activation=%r is not one of %s" % (name, sorted(ACTIVATIONS)))
    params = attrs.get("activation_params") or []
    if len(params) != ACTIVATIONS[name]:
        raise UnsupportedError("FusedConv: activation %r takes %d activation_params, got %d"
                               % (name, ACTIVATIONS[name], len(params)))


def apply_activation(y, activation, params):
    """``y = act(y)`` in place on a float array; returns y."""
    if activation == "":
        return y
    # clip with two bounds, not maximum/minimum against a scalar or where=: 4-12x faster in numpy 2.x
    # (measured on a (1, 144, 56, 56) channels-last view), same results (NaN stays NaN)
    if activation == "Relu":
        _clip(y, y.dtype.type(0), y.dtype.type(np.inf), out=y)
    elif activation == "Clip":
        _clip(y, y.dtype.type(params[0]), y.dtype.type(params[1]), out=y)
    elif activation == "LeakyRelu":  # max(y, 0) + alpha * min(y, 0): one term is 0 for every y
        neg = np.clip(y, -np.inf, 0)
        neg *= y.dtype.type(params[0])
        np.clip(y, 0, np.inf, out=y)
        y += neg
    elif activation == "HardSigmoid":
        y *= y.dtype.type(params[0])
        y += y.dtype.type(params[1])
        np.clip(y, 0, 1, out=y)
    elif activation == "HardSwish":
        g = y * y.dtype.type(1.0 / 6)
        g += y.dtype.type(0.5)
        np.clip(g, 0, 1, out=g)
        y *= g
    elif activation == "Sigmoid":
        # 1 / (1 + exp(-y)) without overflow warnings: exp of a large positive argument is inf, 1/inf is 0
        with np.errstate(over="ignore"):
            np.negative(y, out=y)
            np.exp(y, out=y)
            y += 1
            np.reciprocal(y, out=y)
    elif activation == "QuantizeDequantize":
        quantize_dequantize(y, *params)
    else:  # _check refuses these at load
        raise UnsupportedError("FusedConv: activation %r" % activation)
    return y


def quantize_dequantize(y, scale, low, high, chunk=65536):
    """y = clip(round_half_even(y / scale), low, high) * scale in place, as ops/quantize.py's
    QuantizeDequantize computes it. Clipping at low * scale and high * scale first is the same (rounding
    is monotonic and the bounds are integers). The four sweeps run over cache-sized chunks of y's memory:
    one trip to memory instead of four."""
    s = y.dtype.type(scale)
    lo, hi = y.dtype.type(low * s), y.dtype.type(high * s)
    flat = _flat(y)
    if flat is None:  # memory numpy cannot flatten without a copy: whole-array sweeps
        flat, chunk = y, max(y.size, 1)
    for start in range(0, max(flat.size, 1), chunk):
        part = flat[start:start + chunk] if flat.ndim == 1 else flat
        _clip(part, lo, hi, out=part)
        np.divide(part, s, out=part)
        np.rint(part, out=part)
        np.multiply(part, s, out=part)
    return y


def _flat(y):
    """A 1-D view of y's memory (C order, or the channels-last memory of an NCHW view), or None."""
    if y.flags.c_contiguous:
        return y.reshape(-1)
    if y.ndim == 4 and y.transpose(0, 2, 3, 1).flags.c_contiguous:
        return y.transpose(0, 2, 3, 1).reshape(-1)
    return None


@op("FusedConv", 1, domain=DOMAIN, check=_check)
def fused_conv(X, W, B=None, Z=None, *, activation="", activation_params=None, auto_pad="NOTSET",
               dilations=None, group=1, kernel_shape=None, pads=None, strides=None):
    y = conv(X, W, B, auto_pad=auto_pad, dilations=dilations, group=group, kernel_shape=kernel_shape,
             pads=pads, strides=strides)
    if Z is not None:
        if Z.shape == y.shape:
            y += Z
        else:  # Add's broadcasting, which may even grow Y
            try:
                y = y + Z
            except ValueError:
                raise InputError("FusedConv: residual input of shape %s does not broadcast to %s"
                                 % (Z.shape, y.shape)) from None
            y = y.astype(X.dtype, copy=False)
    return apply_activation(y, activation, activation_params or [])
