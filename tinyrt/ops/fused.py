"""FusedConv (domain ``ai.tinyrt``): a Conv with its bias, a residual input and an activation in one op.

tinyrt's graph passes (``tinyrt/passes/fuse_*.py``) write it; files never need to. It computes

    Y = act(Conv(X, W, B) + Z)

where Z (optional) has the shape of Conv's output (or broadcasts to it, as Add would) and ``act`` is named
by ``activation`` with its parameters in ``activation_params`` (the convention of onnxruntime's
com.microsoft FusedConv): "" (none) or one of the tails of ops/tails.py, each defined beside its op (the
activations in activation.py, a QDQ model's rounding in quantize.py). With ``input_rounding`` [scale,
low, high], X is rounded first, as QuantizeDequantize(X, scale) with those bounds rounds it: a QDQ
model's rounding of its input, which the first conv alone reads (passes/quantization.py
``fuse_input_rounding``; the numba path's stem kernel rounds the rows it reads as it goes).

One conv then one in-place pass for the tail: the tail costs one sweep over Y instead of one op (and one
new array) per node. The numba path (``kernels/``) applies the same tail inside its conv loops.
"""
import numpy as np

from ..errors import InputError, UnsupportedError
from .registry import TINYRT_DOMAIN, counts_macs, op
from .conv import conv, conv_macs, _check_conv
from .tails import TAILS



def _check(**attrs):
    _check_conv("FusedConv")(**attrs)
    name = attrs.get("activation", "")
    tail = TAILS.get(name)
    if tail is None:
        raise UnsupportedError("FusedConv: activation=%r is not one of %s" % (name, sorted(TAILS)))
    params = attrs.get("activation_params") or []
    rounding = attrs.get("input_rounding")
    if rounding is not None and len(rounding) != 3:
        raise UnsupportedError("FusedConv: input_rounding takes [scale, low, high], got %r" % (rounding,))
    if len(params) != tail.count:
        raise UnsupportedError("FusedConv: activation %r takes %d activation_params, got %d"
                               % (name, tail.count, len(params)))


def apply_activation(y, activation, params):
    """``y = act(y)`` in place on a float array; returns y."""
    tail = TAILS.get(activation)
    if tail is None:  # _check refuses these at load
        raise UnsupportedError("FusedConv: activation %r" % activation)
    return tail.apply(y, *params)


@op("FusedConv", 1, domain=TINYRT_DOMAIN, check=_check)
def fused_conv(X, W, B=None, Z=None, *, activation="", activation_params=None, auto_pad="NOTSET",
               dilations=None, group=1, kernel_shape=None, pads=None, strides=None, input_rounding=None):
    if input_rounding is not None:
        X = round_input(X, input_rounding)
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


def prepared_tail(W, B, activation, params, fold=True):
    """(W, B, apply) for the numpy path's prepared convs: W and B with the part of the tail its record takes
    into them (``Tail.fold``; not where a residual comes between, ``fold`` False), and ``apply(y)``, the rest
    of the tail in place on the conv's sums; None where there is nothing to apply (no activation)."""
    params = list(params or [])
    tail = TAILS.get(activation)
    folded = tail.fold(W, B, *params) if fold and tail is not None and tail.fold is not None else None
    if folded is not None:
        return folded
    return W, B, (lambda y: apply_activation(y, activation, params)) if activation else None


def round_input(X, rounding):
    """X rounded as ``input_rounding`` [scale, low, high] says: the QuantizeDequantize it replaces."""
    from .quantize import quantize_dequantize  # (quantize.py imports the conv ops)
    scale, low, high = rounding
    return quantize_dequantize(X, np.array(scale, np.float32), low=low, high=high)


counts_macs(fused_conv)(conv_macs)  # the conv's products; the residual and the tail are no multiply-adds
