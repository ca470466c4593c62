"""Normalisation ops (inference only).

All of them compute ``y = scale * (x - mean) / sqrt(var + epsilon) + bias``; they differ in where mean and
var come from and in the shape of scale and bias:

  BatchNormalization         mean, var are inputs (running statistics), per channel. In inference this
                             is an affine map per channel: y = x * a + b with a = scale / sqrt(var + eps),
                             b = B - mean * a. Training mode (batch statistics) is refused.
  InstanceNormalization      mean, var over the spatial axes of each (n, c); scale, B per channel.
  LayerNormalization         mean, var over axes [axis, rank); Scale, B broadcast to X.shape[axis:].
  GroupNormalization         mean, var over each group of C/num_groups channels (and all spatial axes).
  MeanVarianceNormalization  y = (x - mean) / (sqrt(var) + 1e-9) over ``axes``; no scale or bias.
  LRN                        y = x / (bias + alpha / size * sum of x^2 over `size` neighbouring channels)^beta

float16 is computed in float32 and rounded back once; other floats in their own precision.
"""
import numpy as np

from .. import limits
from ..errors import InputError, UnsupportedError
from .registry import infers, op, static_shape
from ._static_shape import same_shape
from ._infer_types import same
from ._window import compute_dtype, require_float


def _per_channel(op_type, name, a, C, ndim, ct):
    """A (C,) parameter, reshaped to broadcast against (N, C, D1, ...)."""
    a = np.asarray(a)
    if a.size != C or (a.ndim != 1 and a.shape != (C,) + (1,) * (a.ndim - 1)):
        raise InputError("%s: %s has shape %s, expected (%d,)" % (op_type, name, a.shape, C))
    return a.astype(ct, copy=False).reshape((C,) + (1,) * (ndim - 2))


# ---- BatchNormalization ----

def _batch_norm(op_type, X, scale, B, mean, var, epsilon, spatial=1):
    require_float(op_type, X)
    if X.ndim < 2:
        raise InputError("%s: input must be (N, C, ...), got shape %s" % (op_type, X.shape))
    ct = compute_dtype(X.dtype)
    C = X.shape[1]
    if spatial:
        s, b, m, v = [_per_channel(op_type, n, a, C, X.ndim, ct)
                      for n, a in (("scale", scale), ("B", B), ("mean", mean), ("var", var))]
    else:
        # BatchNormalization-7 spatial=0: one statistic per (c, d1, ...) element, shape X.shape[1:].
        s, b, m, v = [np.asarray(a).astype(ct, copy=False) for a in (scale, B, mean, var)]
        for name, a in zip(("scale", "B", "mean", "var"), (s, b, m, v)):
            if a.shape != X.shape[1:]:
                raise InputError("%s: with spatial=0, %s must have shape %s, got %s"
                                 % (op_type, name, X.shape[1:], a.shape))
    a = s / np.sqrt(v + ct.type(epsilon))
    shift = b - m * a
    y = X.astype(ct, copy=False) * a
    y += shift
    return y.astype(X.dtype, copy=False)


def _training_outputs_refused(op_type, version, n):
    raise UnsupportedError("%s-%d with %d outputs is training mode (batch statistics); tinyrt only runs "
                           "inference (one output Y). Re-export the model in eval mode." % (op_type, version, n))


def _check_bn7(_num_outputs=1, **attrs):
    if attrs.get("spatial", 1) not in (0, 1):
        raise UnsupportedError("BatchNormalization: spatial=%r must be 0 or 1" % (attrs["spatial"],))
    if _num_outputs > 1:
        _training_outputs_refused("BatchNormalization", 7, _num_outputs)


def _check_bn9(_num_outputs=1, **attrs):
    if _num_outputs > 1:  # before 14, asking for the statistics outputs means training mode
        _training_outputs_refused("BatchNormalization", 9, _num_outputs)


@op("BatchNormalization", 7, check=_check_bn7)
def batch_normalization_7(X, scale, B, mean, var, *, epsilon=1e-5, momentum=0.9, spatial=1, _num_outputs=1):
    # momentum only updates running statistics in training mode: it has no effect in inference.
    if _num_outputs > 1:
        _training_outputs_refused("BatchNormalization", 7, _num_outputs)
    return _batch_norm("BatchNormalization", X, scale, B, mean, var, epsilon, spatial)


@op("BatchNormalization", 9, check=_check_bn9)
def batch_normalization_9(X, scale, B, mean, var, *, epsilon=1e-5, momentum=0.9, _num_outputs=1):
    # 9 dropped `spatial` (always per channel). Training mode is still "more than one output".
    if _num_outputs > 1:
        _training_outputs_refused("BatchNormalization", 9, _num_outputs)
    return _batch_norm("BatchNormalization", X, scale, B, mean, var, epsilon)


def _check_bn14(**attrs):
    if attrs.get("training_mode", 0) != 0:
        raise UnsupportedError("BatchNormalization: training_mode=%r is not supported (tinyrt runs inference "
                               "only); re-export the model in eval mode" % (attrs["training_mode"],))


@op("BatchNormalization", 14, 15, check=_check_bn14)
def batch_normalization_14(X, scale, B, input_mean, input_var, *, epsilon=1e-5, momentum=0.9,
                           training_mode=0, _num_outputs=1):
    # 14 made training explicit (training_mode); 15 only let scale/B and mean/var have their own float types.
    y = _batch_norm("BatchNormalization", X, scale, B, input_mean, input_var, epsilon)
    if _num_outputs > 1:
        # Outside training the running statistics pass through unchanged.
        return (y, input_mean, input_var)[:_num_outputs]
    return y


# ---- InstanceNormalization ----

@op("InstanceNormalization", 6, 22)
def instance_normalization(input, scale, B, *, epsilon=1e-5):
    # 22 added bfloat16 only.
    X = input
    require_float("InstanceNormalization", X)
    if X.ndim < 3:
        raise InputError("InstanceNormalization: input must be (N, C, D1, ...), got shape %s" % (X.shape,))
    ct = compute_dtype(X.dtype)
    x = X.astype(ct, copy=False)
    axes = tuple(range(2, X.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    d = x - mean
    var = (d * d).mean(axis=axes, keepdims=True)
    s = _per_channel("InstanceNormalization", "scale", scale, X.shape[1], X.ndim, ct)
    b = _per_channel("InstanceNormalization", "B", B, X.shape[1], X.ndim, ct)
    y = d * (s / np.sqrt(var + ct.type(epsilon)))
    y += b
    return y.astype(X.dtype, copy=False)


# ---- LayerNormalization ----

def _check_stash(op_type):
    def check(**attrs):
        if attrs.get("stash_type", 1) != 1:
            raise UnsupportedError("%s: stash_type=%r is not supported (only 1 = float)"
                                   % (op_type, attrs["stash_type"]))
    return check


@op("LayerNormalization", 17, check=_check_stash("LayerNormalization"))
def layer_normalization(X, Scale, B=None, *, axis=-1, epsilon=1e-5, stash_type=1, _num_outputs=1):
    require_float("LayerNormalization", X)
    r = X.ndim
    if not -r <= axis < r:
        raise InputError("LayerNormalization: axis=%d out of range for rank %d" % (axis, r))
    axis = axis % r
    for name, t in (("Scale", Scale), ("B", B)):  # before computing: an outer broadcast would be huge
        try:
            fits = t is None or limits.broadcast_shape(X.shape, t.shape) == X.shape
        except ValueError:
            fits = False
        if not fits:
            raise InputError("LayerNormalization: %s %s does not broadcast to X's shape %s"
                             % (name, t.shape, X.shape))
    # stash_type=1: statistics in float32 at least (float64 inputs keep their precision).
    ct = np.promote_types(X.dtype, np.float32)
    x = X.astype(ct, copy=False)
    axes = tuple(range(axis, r))
    mean = x.mean(axis=axes, keepdims=True)
    d = x - mean
    var = (d * d).mean(axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + ct.type(epsilon))
    try:
        y = d * inv_std * Scale.astype(ct, copy=False)
        if B is not None:
            y += B.astype(ct, copy=False)
    except ValueError:
        raise InputError("LayerNormalization: Scale %s / B %s do not broadcast to the normalised shape %s"
                         % (Scale.shape, None if B is None else B.shape, X.shape[axis:]))
    y = y.astype(X.dtype, copy=False)
    if _num_outputs == 1:
        return y
    # Mean and InvStdDev have type U = float (stash_type 1), shape X.shape[:axis] + [1] * (r - axis).
    return (y, mean.astype(np.float32), inv_std.astype(np.float32))[:_num_outputs]


# ---- GroupNormalization ----

def _group_norm(X, scale, bias, num_groups, epsilon, per_group):
    require_float("GroupNormalization", X)
    if X.ndim < 2:
        raise InputError("GroupNormalization: input must be (N, C, ...), got shape %s" % (X.shape,))
    N, C = X.shape[:2]
    G = num_groups
    if G < 1 or C % G:
        raise InputError("GroupNormalization: %d channels cannot be split into num_groups=%d" % (C, G))
    ct = np.promote_types(X.dtype, np.float32)
    x = X.astype(ct, copy=False).reshape(N, G, -1)
    mean = x.mean(axis=2, keepdims=True)
    d = x - mean
    var = (d * d).mean(axis=2, keepdims=True)
    y = (d / np.sqrt(var + ct.type(epsilon))).reshape(X.shape)
    if per_group:  # version 18: one scale and bias per group, shared by its C/G channels
        scale = np.repeat(np.asarray(scale).reshape(-1), C // G) if np.size(scale) == G else scale
        bias = np.repeat(np.asarray(bias).reshape(-1), C // G) if np.size(bias) == G else bias
    s = _per_channel("GroupNormalization", "scale", scale, C, X.ndim, ct)
    b = _per_channel("GroupNormalization", "bias", bias, C, X.ndim, ct)
    y = y * s
    y += b
    return y.astype(X.dtype, copy=False)


@op("GroupNormalization", 18)
def group_normalization_18(X, scale, bias, *, num_groups, epsilon=1e-5):
    # Version 18 (deprecated by 21): scale and bias have shape (num_groups,).
    if np.size(scale) != num_groups or np.size(bias) != num_groups:
        raise InputError("GroupNormalization-18: scale and bias must have num_groups=%d values, got %s, %s"
                         % (num_groups, np.shape(scale), np.shape(bias)))
    return _group_norm(X, scale, bias, num_groups, epsilon, per_group=True)


@op("GroupNormalization", 21, check=_check_stash("GroupNormalization"))
def group_normalization_21(X, scale, bias, *, num_groups, epsilon=1e-5, stash_type=1):
    # Version 21: scale and bias are per channel (C,); stash_type sets the statistics' precision.
    return _group_norm(X, scale, bias, num_groups, epsilon, per_group=False)


# ---- MeanVarianceNormalization ----

@op("MeanVarianceNormalization", 9, 13)
def mean_variance_normalization(X, *, axes=[0, 2, 3]):  # noqa: B006 (never mutated)
    # 13 added bfloat16 only. Spec (function body): (X - E[X]) / (sqrt(E[X^2] - E[X]^2) + 1e-9);
    # the variance is computed as E[(X - E[X])^2], the same value without cancellation.
    require_float("MeanVarianceNormalization", X)
    r = X.ndim
    if any(not -r <= int(a) < r for a in axes):
        raise InputError("MeanVarianceNormalization: axes=%s out of range for rank %d" % (list(axes), r))
    axes = tuple(sorted(set(int(a) % r for a in axes)))
    ct = compute_dtype(X.dtype)
    x = X.astype(ct, copy=False)
    mean = x.mean(axis=axes, keepdims=True)
    d = x - mean
    std = np.sqrt((d * d).mean(axis=axes, keepdims=True))
    return (d / (std + ct.type(1e-9))).astype(X.dtype, copy=False)


# ---- LRN ----

@op("LRN", 1, 13)
def lrn(X, *, size, alpha=0.0001, beta=0.75, bias=1.0):
    # 13 added bfloat16 only. The window over channels c - floor((size-1)/2) .. c + ceil((size-1)/2).
    require_float("LRN", X)
    if X.ndim < 2:
        raise InputError("LRN: input must be (N, C, ...), got shape %s" % (X.shape,))
    if size < 1:
        raise InputError("LRN: size=%d must be >= 1" % size)
    ct = compute_dtype(X.dtype)
    x = X.astype(ct, copy=False)
    C = X.shape[1]
    before, after = (size - 1) // 2, size - 1 - (size - 1) // 2
    # a window reaching past the channels only adds zeros: pad (and loop) no further than C
    before, after = min(before, C), min(after, C)
    sq = np.pad(x * x, [(0, 0), (before, after)] + [(0, 0)] * (X.ndim - 2), mode="constant")
    s = sq[:, 0:C].copy()
    for j in range(1, before + after + 1):
        s += sq[:, j:j + C]
    y = x / (ct.type(bias) + ct.type(alpha / size) * s) ** ct.type(beta)
    return y.astype(X.dtype, copy=False)


static_shape(batch_normalization_7, batch_normalization_9, batch_normalization_14, instance_normalization,
             layer_normalization, lrn)(same_shape)
infers(batch_normalization_7, batch_normalization_9, batch_normalization_14, instance_normalization,
       layer_normalization, lrn, mean_variance_normalization)(same)
