"""Resize and Upsample: resample an N-D tensor onto a new grid.

Every output coordinate on a resized axis is mapped back to a (fractional) source coordinate in the input
by the ``coordinate_transformation_mode``, and the output is then a weighted sum of input samples around
it. Resizing is separable: an N-D resize is a 1-D resize along each resized axis in turn. Each step has
its file, with its formulas:

    _resize_coords.py     the output shape (scales or sizes, keep_aspect_ratio_policy) and the source
                          coordinate of every output sample (the seven coordinate modes, roi)
    _resize_nearest.py    mode nearest: the one sample ``nearest_mode`` picks
    _resize_interp.py     modes linear and cubic: 2 or 4 taps, Keys' cubic kernel, exclude_outside;
                          integer tensors
    _resize_antialias.py  antialias (opset 18+): the kernel stretched when downsampling (Pillow's way)

This file checks the attributes at load time and runs those steps (``_resize``); GridSample, which
samples at arbitrary positions with the same kernels, is in grid_sample.py.

Resize-10 and Upsample (7, 9) predate the attributes: ``asymmetric`` coordinates, and nearest rounds
down when upsampling and up when downsampling (onnxruntime's behaviour; onnx's reference evaluator gets
Resize-10 wrong, as it does align_corners downsampling, where it uses the fractional output size).
Where the spec leaves numerics open we follow onnxruntime: coordinates in float32 in its order of
operations (so nearest ties fall the same way), output sizes ``floor(float32(scale) * in_len)``, integer
tensors truncated after linear/cubic interpolation, an axis whose scale is exactly 1 left alone (roi
included), and the input returned unchanged when the output shape equals the input shape.
"""
import numpy as np

from .. import limits
from ..errors import InputError, ModelError, UnsupportedError
from ._resize_antialias import taps_antialias
from ._resize_coords import output_plan, source_coords
from ._resize_interp import (apply_taps, bilinear_integer, compute_dtype, ort_bilinear_axes, taps_cubic,
                             taps_linear, to_dtype)
from ._resize_nearest import nearest, nearest_index
from .registry import infers, op
from ._infer_types import same_rank

_MODES = ("nearest", "linear", "cubic")
_COORD_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                "tf_half_pixel_for_nn", "tf_crop_and_resize")
_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
_POLICIES = ("stretch", "not_larger", "not_smaller")


# ---------------------------------------------------------------------------------------------------------
# load-time checks

def text(value):
    """A string attribute as str (callers may pass bytes). Shared with grid_sample.py."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def refuse_value(op_type, name, value, allowed):
    """Load-time refusal of a string attribute value tinyrt does not implement."""
    if text(value) not in allowed:
        raise UnsupportedError("%s: %s=%r is not supported (tinyrt implements %s)"
                               % (op_type, name, value, ", ".join(allowed)))


def _check_resize(**attrs):
    """Resize-11 and later: every value of every attribute we know; refuse anything else."""
    mode = text(attrs.get("mode", "nearest"))
    refuse_value("Resize", "mode", mode, _MODES)
    refuse_value("Resize", "coordinate_transformation_mode",
                 attrs.get("coordinate_transformation_mode", "half_pixel"), _COORD_MODES)
    refuse_value("Resize", "nearest_mode", attrs.get("nearest_mode", "round_prefer_floor"), _NEAREST_MODES)
    refuse_value("Resize", "keep_aspect_ratio_policy", attrs.get("keep_aspect_ratio_policy", "stretch"),
                 _POLICIES)
    for flag in ("exclude_outside", "antialias"):
        if attrs.get(flag, 0) not in (0, 1):
            raise UnsupportedError("Resize: %s=%r is not supported (must be 0 or 1)" % (flag, attrs[flag]))
    if attrs.get("antialias", 0) and mode == "nearest":
        # onnxruntime refuses this too: antialiasing is defined for the linear and cubic kernels only.
        raise UnsupportedError("Resize: antialias=1 needs mode 'linear' or 'cubic', not 'nearest'")
    axes = attrs.get("axes")
    if axes is not None and len(set(int(a) for a in axes)) != len(axes):
        raise UnsupportedError("Resize: repeated axes %r (ONNX leaves the behaviour undefined)" % (axes,))


def _check_legacy(op_type):
    def check(**attrs):
        # Resize-10 and Upsample know nearest and linear only.
        refuse_value(op_type, "mode", attrs.get("mode", "nearest"), ("nearest", "linear"))
        scales = attrs.get("scales")
        if scales is not None and any(float(s) < 1 for s in scales):
            raise ModelError("Upsample: scales %r must all be >= 1" % (list(scales),))
    return check


def _check_deprecated(**attrs):
    raise UnsupportedError("Upsample is deprecated since opset 10 (onnxruntime refuses it too): "
                           "export the model with Resize instead")


# ---------------------------------------------------------------------------------------------------------
# the resize itself

def _resize(X, roi, scales, sizes, *, op_type, axes=None, mode="nearest", ctm="half_pixel",
            nearest_mode="round_prefer_floor", cubic_coeff_a=-0.75, exclude_outside=0,
            extrapolation_value=0.0, antialias=0, policy="stretch"):
    X = np.asarray(X)
    rank = X.ndim
    # Empty tensors stand for absent inputs (torch exports scales=[] next to sizes, roi=[] everywhere).
    if scales is not None and np.size(scales) == 0:
        scales = None
    if sizes is not None and np.size(sizes) == 0:
        sizes = None
    if roi is not None and np.size(roi) == 0:
        roi = None
    if scales is None and sizes is None:
        raise InputError("%s: one of 'scales' and 'sizes' must be given" % op_type)
    if scales is not None and sizes is not None:
        raise InputError("%s: only one of 'scales' and 'sizes' may be given, not both" % op_type)

    if axes is None:
        axes = list(range(rank))
    else:
        axes = [int(a) for a in axes]
        for a in axes:
            if not -rank <= a < rank:
                raise ModelError("%s: axis %d is out of range for a rank-%d input" % (op_type, a, rank))
        axes = [a % rank for a in axes]
    out_shape, axis_scales = output_plan(X.shape, scales, sizes, axes, policy, op_type)
    limits.check_shape(out_shape, np.float64, op_type)  # scales and sizes come from the file

    # roi: [starts..., ends...] for the resized axes; only tf_crop_and_resize reads it
    starts, ends = [0.0] * rank, [1.0] * rank
    if ctm == "tf_crop_and_resize" and roi is not None:
        roi = np.asarray(roi).astype(np.float32).reshape(-1)
        if roi.size != 2 * len(axes):
            raise InputError("%s: roi has %d values, expected %d (start and end for each resized axis)"
                             % (op_type, roi.size, 2 * len(axes)))
        for i, a in enumerate(axes):
            starts[a], ends[a] = roi[i], roi[len(axes) + i]

    if 0 in out_shape or X.size == 0:
        return np.zeros(out_shape, X.dtype)
    if list(out_shape) == list(X.shape):
        # onnxruntime returns the input unchanged whenever the shape does not change (even if a scale
        # like 1.1 would shift the samples); we do the same so results match the oracle.
        return X.copy()

    # Per axis: the source coordinates, and which outputs fall outside the crop (tf_crop_and_resize).
    # Shrinking axes go first so that later axes work on less data.
    order = sorted(set(axes), key=lambda a: out_shape[a] / X.shape[a])
    plans, outside = [], []
    for a in order:
        in_len, out_len, scale = X.shape[a], out_shape[a], axis_scales[a]
        if scale == 1:
            continue                        # identity along this axis (onnxruntime ignores roi here too)
        if antialias and in_len == out_len:
            continue                        # onnxruntime copies such an axis unchanged when antialiasing
        x_orig = source_coords(ctm, out_len, in_len, scale, starts[a], ends[a])
        if ctm == "tf_crop_and_resize":
            mask = (x_orig < 0) | (x_orig > in_len - 1)
            if mask.any():
                shape = [1] * rank
                shape[a] = out_len
                outside.append(mask.reshape(shape))
        plans.append((a, in_len, out_len, scale, x_orig))

    pair = ort_bilinear_axes(X, axis_scales)
    if mode == "linear" and not antialias and X.dtype.kind in "iu" and pair is not None:
        Y = bilinear_integer(X, pair, out_shape, axis_scales, ctm, starts, ends)
    elif mode == "nearest":
        Y = nearest(X, [(a, n_in, n_out, nearest_index(xo, n_in, nearest_mode, scale < 1))
                        for a, n_in, n_out, scale, xo in plans])
    else:
        if X.dtype == np.bool_ or X.dtype.kind not in "iuf":
            raise InputError("%s: mode '%s' cannot interpolate %s tensors" % (op_type, mode, X.dtype))
        Y = X.astype(compute_dtype(X.dtype))
        for a, n_in, n_out, scale, xo in plans:
            if antialias:
                idx, w = taps_antialias(xo, n_in, scale, mode, cubic_coeff_a, exclude_outside)
            elif mode == "linear":
                idx, w = taps_linear(xo, n_in)
            else:
                idx, w = taps_cubic(xo, n_in, cubic_coeff_a, exclude_outside)
            Y = apply_taps(Y, a, idx, w, linear=(mode == "linear" and not antialias))
        Y = to_dtype(Y, X.dtype, antialias)

    if outside:
        mask = outside[0]
        for m in outside[1:]:
            mask = mask | m
        Y = np.where(mask, np.asarray(extrapolation_value).astype(X.dtype), Y)
    return np.ascontiguousarray(Y, dtype=X.dtype)


# ---------------------------------------------------------------------------------------------------------
# the registered ops

@op("Resize", 10, check=_check_legacy("Resize"))
def resize_10(X, scales, *, mode="nearest"):
    """Resize-10: scales only, asymmetric coordinates; nearest truncates when upsampling and rounds up
    when downsampling (onnxruntime's rule for the opsets before nearest_mode existed)."""
    return _resize(X, None, scales, None, op_type="Resize", mode=text(mode), ctm="asymmetric",
                   nearest_mode="simple")


# 11: attributes and the roi/sizes inputs. 13: roi and scales become optional, tf_half_pixel_for_nn is
# dropped from the spec (onnxruntime still runs it, so do we), bfloat16 added (tinyrt has no bfloat16).
@op("Resize", 11, 13, check=_check_resize)
def resize_11(X, roi=None, scales=None, sizes=None, *, coordinate_transformation_mode="half_pixel",
              cubic_coeff_a=-0.75, exclude_outside=0, extrapolation_value=0.0, mode="nearest",
              nearest_mode="round_prefer_floor"):
    return _resize(X, roi, scales, sizes, op_type="Resize", mode=text(mode),
                   ctm=text(coordinate_transformation_mode), nearest_mode=text(nearest_mode),
                   cubic_coeff_a=cubic_coeff_a, exclude_outside=exclude_outside,
                   extrapolation_value=extrapolation_value)


# 18: antialias, axes, keep_aspect_ratio_policy. 19: coordinate mode half_pixel_symmetric (onnxruntime
# accepts it at 18 too, so do we).
@op("Resize", 18, 19, check=_check_resize)
def resize_18(X, roi=None, scales=None, sizes=None, *, antialias=0, axes=None,
              coordinate_transformation_mode="half_pixel", cubic_coeff_a=-0.75, exclude_outside=0,
              extrapolation_value=0.0, keep_aspect_ratio_policy="stretch", mode="nearest",
              nearest_mode="round_prefer_floor"):
    return _resize(X, roi, scales, sizes, op_type="Resize", axes=axes, mode=text(mode),
                   ctm=text(coordinate_transformation_mode), nearest_mode=text(nearest_mode),
                   cubic_coeff_a=cubic_coeff_a, exclude_outside=exclude_outside,
                   extrapolation_value=extrapolation_value, antialias=antialias,
                   policy=text(keep_aspect_ratio_policy))


def _upsample(X, scales, mode):
    scales = np.asarray(scales, dtype=np.float32).reshape(-1)
    if scales.size != np.ndim(X):
        raise InputError("Upsample: %d scales for a rank-%d input" % (scales.size, np.ndim(X)))
    if np.any(~(scales >= 1)):
        raise InputError("Upsample: scales must all be >= 1, got %s" % scales.tolist())
    return _resize(X, None, scales, None, op_type="Upsample", mode=text(mode), ctm="asymmetric",
                   nearest_mode="simple")


@op("Upsample", 7, check=_check_legacy("Upsample"))
def upsample_7(X, *, mode="nearest", scales):
    """Upsample-7: scales is an attribute."""
    return _upsample(X, scales, mode)


@op("Upsample", 9, check=_check_legacy("Upsample"))
def upsample_9(X, scales, *, mode="nearest"):
    """Upsample-9: scales became an input; same maths."""
    return _upsample(X, scales, mode)


@op("Upsample", 10, check=_check_deprecated)
def upsample_10(X, scales, *, mode="nearest"):
    """Upsample-10 exists in the schema list only to mark the op deprecated; the check refuses it."""
    return _upsample(X, scales, mode)


infers(resize_10, resize_11, resize_18, upsample_7, upsample_9, upsample_10)(same_rank)
