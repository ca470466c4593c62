"""PointwiseDepthwise (domain ``ai.tinyrt``): a 1x1 conv and the depthwise conv that alone reads it, as one op.

The numpy path's graph pass ``passes/fuse_pointwise_depthwise.py`` writes it where a depthwise conv strides
over columns (an inverted residual block that halves its map: a 1x1 conv widens the channels, a stride-2
depthwise conv reads them). It computes

    H = act1(Conv1x1(X, W, B))                              (pointwise_activation, pointwise_activation_params)
    Y = act(Conv(H, DW, DB; group, kernel, pads, strides))  (activation, activation_params; DW: (M, 1, kh, kw))

the two FusedConvs it replaces, with H never handed on. Why one op: a depthwise conv striding over columns
reads every other pixel, and numpy's einsum then runs over one pixel's channels at a time (slow); reading
the column phases of H (its even columns, then its odd ones) it runs over whole rows again, and the 1x1
conv can write those phases as it makes H, for free (kernel_wrappers/numpy_pointwise_depthwise.py). This
function is the math, the two convs one after the other.
"""
from ..errors import UnsupportedError
from .fused import _check as _check_fused, fused_conv
from .conv import conv_macs
from .registry import TINYRT_DOMAIN, counts_macs, op
from .tails import TAILS


def _check(**attrs):
    _check_fused(**{k: v for k, v in attrs.items() if not k.startswith("pointwise_")})
    name = attrs.get("pointwise_activation", "")
    tail = TAILS.get(name)
    if tail is None:
        raise UnsupportedError("PointwiseDepthwise: pointwise_activation=%r is not one of %s" % (name, sorted(TAILS)))
    params = attrs.get("pointwise_activation_params") or []
    if len(params) != tail.count:
        raise UnsupportedError("PointwiseDepthwise: pointwise_activation %r takes %d params, got %d"
                               % (name, tail.count, len(params)))


@op("PointwiseDepthwise", 1, domain=TINYRT_DOMAIN, check=_check)
def pointwise_depthwise(X, W, B=None, DW=None, DB=None, *, pointwise_activation="",
                        pointwise_activation_params=None, activation="", activation_params=None,
                        auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None, strides=None):
    H = fused_conv(X, W, B, activation=pointwise_activation, activation_params=pointwise_activation_params)
    return fused_conv(H, DW, DB, activation=activation, activation_params=activation_params, auto_pad=auto_pad,
                      dilations=dilations, group=group, kernel_shape=kernel_shape, pads=pads, strides=strides)


@counts_macs(pointwise_depthwise)
def _macs(args, out, attrs):
    """The 1x1 conv's products (C per value of H, which has the depthwise conv's input size) and the
    depthwise conv's."""
    X, W, DW = args[0], args[1], args[3]
    pointwise = int(X.size) // max(int(X.shape[1]), 1) * int(W.shape[0]) * int(W.shape[1])
    return pointwise + conv_macs([out, DW], out, attrs)
