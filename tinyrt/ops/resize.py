"""Resize and Upsample: resample an N-D tensor onto a new grid.

Every output coordinate ``x`` on a resized axis is mapped back to a (fractional) source coordinate
``x_original`` by the ``coordinate_transformation_mode``, with ``scale = out_len / in_len`` (or the
``scales`` value as given)::

    half_pixel            (x + 0.5) / scale - 0.5
    half_pixel_symmetric  offset + (x + 0.5) / scale - 0.5,
                          offset = in_len / 2 * (1 - out_len / (scale * in_len))
    pytorch_half_pixel    (x + 0.5) / scale - 0.5, or 0 when out_len == 1
    align_corners         x * (in_len - 1) / (out_len - 1), or 0 when out_len == 1
    asymmetric            x / scale
    tf_half_pixel_for_nn  (x + 0.5) / scale            (Resize-11 only in the spec; onnxruntime keeps it)
    tf_crop_and_resize    start * (in_len - 1) + x * (end - start) * (in_len - 1) / (out_len - 1),
                          with (start, end) from ``roi``; a source outside [0, in_len - 1] gives
                          ``extrapolation_value``

and then the output is a weighted sum of input samples around ``x_original``:

- nearest: the one sample picked by ``nearest_mode`` (round_prefer_floor, round_prefer_ceil, floor, ceil);
- linear: two samples, weights ``1 - f`` and ``f`` where ``f = x_original - floor(x_original)``;
- cubic: four samples ``floor - 1 .. floor + 2``, weights from Keys' cubic kernel with ``cubic_coeff_a``;
- ``antialias`` (linear and cubic, opset 18+): when downsampling the kernel is stretched by ``1 / scale``
  so every input sample contributes (Pillow's resampling, as onnxruntime implements it).

Samples beyond the border repeat the edge sample; with ``exclude_outside`` they get weight 0 instead
and the remaining weights are renormalised to sum 1.

Resizing is separable: an N-D resize is a 1-D resize along each resized axis in turn. So for each axis
we compute, once, the source indices and weights of every output coordinate (small ``(out_len, taps)``
arrays), then do one gather (``np.take``) per tap and a weighted sum. No Python loop ever runs over
pixels; nearest upsampling by integer factors is a single broadcast copy.

Resize-10 and Upsample (7, 9) predate the attributes: ``asymmetric`` coordinates, and nearest rounds
down when upsampling and up when downsampling (onnxruntime's behaviour; onnx's reference evaluator gets
Resize-10 wrong, as it does align_corners downsampling, where it uses the fractional output size).
Where the spec leaves numerics open we follow onnxruntime: coordinates in float32 in its order of
operations (so nearest ties fall the same way), output sizes ``floor(float32(scale) * in_len)``, integer
tensors truncated after linear/cubic interpolation, an axis whose scale is exactly 1 left alone (roi
included), and the input returned unchanged when the output shape equals the input shape.

GridSample (at the end of this file) samples X at arbitrary normalised positions with the same kernels.
"""
import itertools

import numpy as np

from .. import limits
from ..errors import InputError, ModelError, UnsupportedError
from .registry import op

_MODES = ("nearest", "linear", "cubic")
_COORD_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                "tf_half_pixel_for_nn", "tf_crop_and_resize")
_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
_POLICIES = ("stretch", "not_larger", "not_smaller")

_F32 = np.float32


# ---------------------------------------------------------------------------------------------------------
# load-time checks

def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _refuse_value(op_type, name, value, allowed):
    if _text(value) not in allowed:
        raise UnsupportedError("%s: %s=%r is not supported (tinyrt implements %s)"
                               % (op_type, name, value, ", ".join(allowed)))


def _check_resize(**attrs):
    """Resize-11 and later: every value of every attribute we know; refuse anything else."""
    mode = _text(attrs.get("mode", "nearest"))
    _refuse_value("Resize", "mode", mode, _MODES)
    _refuse_value("Resize", "coordinate_transformation_mode",
                  attrs.get("coordinate_transformation_mode", "half_pixel"), _COORD_MODES)
    _refuse_value("Resize", "nearest_mode", attrs.get("nearest_mode", "round_prefer_floor"), _NEAREST_MODES)
    _refuse_value("Resize", "keep_aspect_ratio_policy", attrs.get("keep_aspect_ratio_policy", "stretch"),
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
        _refuse_value(op_type, "mode", attrs.get("mode", "nearest"), ("nearest", "linear"))
        scales = attrs.get("scales")
        if scales is not None and any(float(s) < 1 for s in scales):
            raise ModelError("Upsample: scales %r must all be >= 1" % (list(scales),))
    return check


def _check_deprecated(**attrs):
    raise UnsupportedError("Upsample is deprecated since opset 10 (onnxruntime refuses it too): "
                           "export the model with Resize instead")


# ---------------------------------------------------------------------------------------------------------
# output shape and per-axis scales

def _output_plan(shape, scales, sizes, axes, policy, op_type):
    """Return (output shape, float32 scale of every axis) from the ``scales`` or ``sizes`` input."""
    rank = len(shape)
    n = len(axes)
    out = list(shape)
    axis_scales = [_F32(1.0)] * rank
    if scales is not None:
        scales = np.asarray(scales).astype(np.float32).reshape(-1)
        if scales.size != n:
            raise InputError("%s: scales has %d values but %d axes are resized" % (op_type, scales.size, n))
        if np.any(~(scales > 0)):
            raise InputError("%s: scales must be > 0, got %s" % (op_type, scales.tolist()))
        for a, s in zip(axes, scales):
            axis_scales[a] = _F32(s)
            # float32 product, truncated: what onnxruntime computes for floor(in * scale)
            out[a] = int(np.floor(_F32(s) * _F32(shape[a])))
        return out, axis_scales

    sizes = np.asarray(sizes).astype(np.int64).reshape(-1)
    if sizes.size != n:
        raise InputError("%s: sizes has %d values but %d axes are resized" % (op_type, sizes.size, n))
    if np.any(sizes < 0):
        raise InputError("%s: sizes must be >= 0, got %s" % (op_type, sizes.tolist()))
    for a in axes:
        if shape[a] == 0:
            raise InputError("%s: cannot resize axis %d of length 0 to a given size" % (op_type, a))
    ratios = [_F32(s) / _F32(shape[a]) for a, s in zip(axes, sizes)]
    if policy == "stretch":
        for a, s, r in zip(axes, sizes, ratios):
            out[a] = int(s)
            axis_scales[a] = r
    else:
        # one common scale keeps the aspect ratio; sizes are rounded half up from it
        scale = min(ratios) if policy == "not_larger" else max(ratios)
        for a in axes:
            out[a] = int(np.floor(float(scale * _F32(shape[a])) + 0.5))
            axis_scales[a] = scale
    return out, axis_scales


# ---------------------------------------------------------------------------------------------------------
# per-axis source coordinates, indices and weights

def _source_coords(ctm, out_len, in_len, scale, roi_start, roi_end):
    """x_original of every output coordinate, in float32 and in onnxruntime's order of operations."""
    x = np.arange(out_len, dtype=np.float32)
    half, one = _F32(0.5), _F32(1.0)
    if ctm == "asymmetric":
        return x / scale
    if ctm == "half_pixel":
        return (x + half) / scale - half
    if ctm == "pytorch_half_pixel":
        return (x + half) / scale - half if out_len > 1 else np.zeros(out_len, np.float32)
    if ctm == "tf_half_pixel_for_nn":
        return (x + half) / scale
    if ctm == "align_corners":
        if out_len == 1:
            return np.zeros(out_len, np.float32)
        return x * _F32(in_len - 1) / _F32(out_len - 1)
    if ctm == "half_pixel_symmetric":
        adjustment = _F32(out_len) / (scale * _F32(in_len))
        offset = (_F32(in_len) / _F32(2.0)) * (one - adjustment)
        # onnxruntime does this last step in double precision
        xd = x.astype(np.float64)
        return ((float(offset) + (xd + 0.5) / float(scale)) - 0.5).astype(np.float32)
    # tf_crop_and_resize
    start, end = _F32(roi_start), _F32(roi_end)
    if out_len > 1:
        return start * _F32(in_len - 1) + (x * (end - start) * _F32(in_len - 1)) / _F32(out_len - 1)
    return np.full(out_len, 0.5 * (float(start) + float(end)) * (in_len - 1), np.float32)


def _nearest_index(x_orig, in_len, nearest_mode, downsampling):
    """Index of the one input sample an output coordinate copies."""
    x = x_orig.astype(np.float64)          # exact, so x + 0.5 cannot round in float32
    if nearest_mode == "round_prefer_floor":
        idx = np.ceil(x - 0.5)
    elif nearest_mode == "round_prefer_ceil":
        idx = np.floor(x + 0.5)
    elif nearest_mode == "floor":
        idx = np.floor(x)
    elif nearest_mode == "ceil":
        idx = np.ceil(x)
    else:  # "simple": Resize-10 and Upsample
        idx = np.ceil(x) if downsampling else np.trunc(x)
    return np.clip(idx, 0, in_len - 1).astype(np.intp)


def _cubic_kernel(d, a):
    """Keys' cubic convolution kernel with parameter ``a`` (-0.75 like TensorFlow, -0.5 like Pillow)."""
    d = np.abs(d)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def _linear_kernel(d, a=None):
    return np.clip(1.0 - np.abs(d), 0.0, None)


def _taps_linear(x_orig, in_len):
    """Two taps; the coordinate is clamped into the input first, which repeats the edge samples."""
    x = np.clip(x_orig.astype(np.float64), 0, in_len - 1)
    i0 = np.floor(x).astype(np.intp)
    i1 = np.minimum(i0 + 1, in_len - 1)
    f = x - i0
    return np.stack([i0, i1], axis=1), np.stack([1.0 - f, f], axis=1)


def _taps_cubic(x_orig, in_len, a, exclude_outside):
    """Four taps floor-1 .. floor+2 around the coordinate."""
    x = x_orig.astype(np.float64)
    base = np.floor(x)
    j = base[:, None] + np.arange(-1, 3)[None, :]
    w = _cubic_kernel(j - x[:, None], a)
    return _finish_taps(j, w, in_len, exclude_outside, normalise=bool(exclude_outside))


def _taps_antialias(x_orig, in_len, scale, kernel, support, a, exclude_outside):
    """Pillow-style taps: the kernel stretched by 1/scale when downsampling, weights normalised to 1.

    The window is ``[floor(c - support + 0.5), floor(c + support + 0.5))`` around the sample centre
    ``c = x_original + 0.5``, as onnxruntime computes it.
    """
    scale = float(scale)
    stretch = 1.0 / scale if scale < 1.0 else 1.0
    support = support * stretch
    taps = int(np.ceil(support)) * 2 + 1
    center = x_orig.astype(np.float64) + 0.5
    lo = np.floor(center - support + 0.5)
    hi = np.floor(center + support + 0.5)
    count = np.clip(hi - lo, 0, taps)
    k = np.arange(taps)
    j = lo[:, None] + k[None, :]
    w = kernel((j - center[:, None] + 0.5) / stretch, a) * (k[None, :] < count[:, None])
    return _finish_taps(j, w, in_len, exclude_outside, normalise=True)


def _finish_taps(j, w, in_len, exclude_outside, normalise):
    """Drop or clamp taps outside the input, renormalise, and return (int indices, float weights)."""
    if exclude_outside:
        w = w * ((j >= 0) & (j < in_len))
    if normalise:
        total = w.sum(axis=1, keepdims=True)
        w = w / np.where(total == 0, 1.0, total)
    return np.clip(j, 0, in_len - 1).astype(np.intp), w


# ---------------------------------------------------------------------------------------------------------
# the resize itself

def _compute_dtype(dtype):
    if dtype == np.float64 or (dtype.kind in "iu" and dtype.itemsize >= 4):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def _apply_taps(x, axis, idx, w, linear=False):
    """Along ``axis``: out[..., i, ...] = sum_k w[i, k] * x[..., idx[i, k], ...]."""
    shape = [1] * x.ndim
    shape[axis] = -1
    w = w.astype(x.dtype)
    if linear:
        # two taps with weights 1 - f and f: a + (b - a) * f needs one multiply instead of two
        a = np.take(x, idx[:, 0], axis=axis)
        b = np.take(x, idx[:, 1], axis=axis)
        b -= a
        b *= w[:, 1].reshape(shape)
        a += b
        return a
    out = None
    for k in range(idx.shape[1]):
        if not w[:, k].any():
            continue                        # a tap that is zero for every output (window slack)
        term = np.take(x, idx[:, k], axis=axis)
        term *= w[:, k].reshape(shape)
        if out is None:
            out = term
        else:
            out += term
    if out is None:
        out_shape = list(x.shape)
        out_shape[axis] = idx.shape[0]
        out = np.zeros(out_shape, x.dtype)
    return out


def _nearest(X, plans):
    """Gather along each resized axis; integer upsampling factors become one broadcast copy."""
    repeats = {}
    for axis, in_len, out_len, idx in plans:
        k = out_len // in_len if in_len else 0
        if k < 1 or out_len != k * in_len or not np.array_equal(idx, np.arange(out_len) // k):
            break
        repeats[axis] = k
    else:
        view, target = [], []
        for axis, n in enumerate(X.shape):
            view += [n, 1]
            target += [n, repeats.get(axis, 1)]
        out_shape = [n * repeats.get(axis, 1) for axis, n in enumerate(X.shape)]
        return np.broadcast_to(X.reshape(view), target).reshape(out_shape)
    Y = X
    for axis, in_len, out_len, idx in plans:
        Y = np.take(Y, idx, axis=axis)
    return Y


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
    out_shape, axis_scales = _output_plan(X.shape, scales, sizes, axes, policy, op_type)
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
        x_orig = _source_coords(ctm, out_len, in_len, scale, starts[a], ends[a])
        if ctm == "tf_crop_and_resize":
            mask = (x_orig < 0) | (x_orig > in_len - 1)
            if mask.any():
                shape = [1] * rank
                shape[a] = out_len
                outside.append(mask.reshape(shape))
        plans.append((a, in_len, out_len, scale, x_orig))

    pair = _ort_bilinear_axes(X, axis_scales)
    if mode == "linear" and not antialias and X.dtype.kind in "iu" and pair is not None:
        Y = _bilinear_integer(X, pair, out_shape, axis_scales, ctm, starts, ends)
    elif mode == "nearest":
        Y = _nearest(X, [(a, n_in, n_out, _nearest_index(xo, n_in, nearest_mode, scale < 1))
                         for a, n_in, n_out, scale, xo in plans])
    else:
        if X.dtype == np.bool_ or X.dtype.kind not in "iuf":
            raise InputError("%s: mode '%s' cannot interpolate %s tensors" % (op_type, mode, X.dtype))
        Y = X.astype(_compute_dtype(X.dtype))
        for a, n_in, n_out, scale, xo in plans:
            if antialias:
                kernel, support = (_linear_kernel, 1.0) if mode == "linear" else (_cubic_kernel, 2.0)
                idx, w = _taps_antialias(xo, n_in, scale, kernel, support, cubic_coeff_a, exclude_outside)
            elif mode == "linear":
                idx, w = _taps_linear(xo, n_in)
            else:
                idx, w = _taps_cubic(xo, n_in, cubic_coeff_a, exclude_outside)
            Y = _apply_taps(Y, a, idx, w, linear=(mode == "linear" and not antialias))
        Y = _to_dtype(Y, X.dtype, antialias)

    if outside:
        mask = outside[0]
        for m in outside[1:]:
            mask = mask | m
        Y = np.where(mask, np.asarray(extrapolation_value).astype(X.dtype), Y)
    return np.ascontiguousarray(Y, dtype=X.dtype)


def _ort_bilinear_axes(X, axis_scales):
    """The (H, W) axes onnxruntime's bilinear kernel uses, or None when it has no such kernel."""
    def others(axes):
        return all(axis_scales[a] == 1 for a in range(X.ndim) if a not in axes)
    if X.ndim == 2:
        return (0, 1)
    if X.ndim == 4 and others((2, 3)):
        return (2, 3)
    if X.ndim == 4 and others((1, 2)):
        return (1, 2)
    return None


def _bilinear_integer(X, pair, out_shape, axis_scales, ctm, starts, ends):
    """Bilinear resize of an integer tensor, summed in float32 in onnxruntime's order, then truncated.

    Interpolated values are truncated to integers, so a different rounding of the float sum can move
    a result by one; this path repeats onnxruntime's arithmetic so integer outputs match exactly.
    """
    corners, weights = [], []
    for a in pair:
        n_in, n_out, scale = X.shape[a], out_shape[a], axis_scales[a]
        if scale == 1:
            x = np.arange(n_out, dtype=np.float32)
        else:
            x = _source_coords(ctm, n_out, n_in, scale, starts[a], ends[a])
        x = np.clip(x, _F32(0), _F32(n_in - 1))
        i1 = np.minimum(x.astype(np.intp), n_in - 1)
        i2 = np.minimum(i1 + 1, n_in - 1)
        d1 = np.abs(x - i1.astype(np.float32))
        d2 = np.abs(x - i2.astype(np.float32))
        same = i1 == i2
        d1[same] = 0.5
        d2[same] = 0.5
        shape = [1] * X.ndim
        shape[a] = -1
        corners.append((i1, i2))
        weights.append((d1.reshape(shape), d2.reshape(shape)))
    (ay, ax), ((y1, y2), (x1, x2)), ((dy1, dy2), (dx1, dx2)) = pair, corners, weights
    Xf = X.astype(np.float32)
    rows1, rows2 = np.take(Xf, y1, axis=ay), np.take(Xf, y2, axis=ay)
    Y = (dx2 * dy2) * np.take(rows1, x1, axis=ax)
    Y += (dx1 * dy2) * np.take(rows1, x2, axis=ax)
    Y += (dx2 * dy1) * np.take(rows2, x1, axis=ax)
    Y += (dx1 * dy1) * np.take(rows2, x2, axis=ax)
    return _to_dtype(Y, X.dtype, 0)


def _to_dtype(Y, dtype, antialias):
    """Back to the input's type; integers are truncated (rounded with antialias), like onnxruntime."""
    if dtype.kind in "iu":
        if not antialias:
            Y = np.trunc(Y)
        elif dtype.itemsize == 1:
            Y = np.floor(Y + 0.5)
        else:
            Y = np.trunc(Y + np.copysign(0.5, Y))
        info = np.iinfo(dtype)
        Y = np.clip(Y, info.min, info.max)
    return Y.astype(dtype)


# ---------------------------------------------------------------------------------------------------------
# the registered ops

@op("Resize", 10, check=_check_legacy("Resize"))
def resize_10(X, scales, *, mode="nearest"):
    """Resize-10: scales only, asymmetric coordinates; nearest truncates when upsampling and rounds up
    when downsampling (onnxruntime's rule for the opsets before nearest_mode existed)."""
    return _resize(X, None, scales, None, op_type="Resize", mode=_text(mode), ctm="asymmetric",
                   nearest_mode="simple")


# 11: attributes and the roi/sizes inputs. 13: roi and scales become optional, tf_half_pixel_for_nn is
# dropped from the spec (onnxruntime still runs it, so do we), bfloat16 added (tinyrt has no bfloat16).
@op("Resize", 11, 13, check=_check_resize)
def resize_11(X, roi=None, scales=None, sizes=None, *, coordinate_transformation_mode="half_pixel",
              cubic_coeff_a=-0.75, exclude_outside=0, extrapolation_value=0.0, mode="nearest",
              nearest_mode="round_prefer_floor"):
    return _resize(X, roi, scales, sizes, op_type="Resize", mode=_text(mode),
                   ctm=_text(coordinate_transformation_mode), nearest_mode=_text(nearest_mode),
                   cubic_coeff_a=cubic_coeff_a, exclude_outside=exclude_outside,
                   extrapolation_value=extrapolation_value)


# 18: antialias, axes, keep_aspect_ratio_policy. 19: coordinate mode half_pixel_symmetric (onnxruntime
# accepts it at 18 too, so do we).
@op("Resize", 18, 19, check=_check_resize)
def resize_18(X, roi=None, scales=None, sizes=None, *, antialias=0, axes=None,
              coordinate_transformation_mode="half_pixel", cubic_coeff_a=-0.75, exclude_outside=0,
              extrapolation_value=0.0, keep_aspect_ratio_policy="stretch", mode="nearest",
              nearest_mode="round_prefer_floor"):
    return _resize(X, roi, scales, sizes, op_type="Resize", axes=axes, mode=_text(mode),
                   ctm=_text(coordinate_transformation_mode), nearest_mode=_text(nearest_mode),
                   cubic_coeff_a=cubic_coeff_a, exclude_outside=exclude_outside,
                   extrapolation_value=extrapolation_value, antialias=antialias,
                   policy=_text(keep_aspect_ratio_policy))


def _upsample(X, scales, mode):
    scales = np.asarray(scales, dtype=np.float32).reshape(-1)
    if scales.size != np.ndim(X):
        raise InputError("Upsample: %d scales for a rank-%d input" % (scales.size, np.ndim(X)))
    if np.any(~(scales >= 1)):
        raise InputError("Upsample: scales must all be >= 1, got %s" % scales.tolist())
    return _resize(X, None, scales, None, op_type="Upsample", mode=_text(mode), ctm="asymmetric",
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


# ---------------------------------------------------------------------------------------------------------
# GridSample: Y[n, c, p] = X[n, c] sampled at the normalised position grid[n, p] (x, y[, z] order, -1..1)
#
# Each grid coordinate is mapped to pixels (align_corners: -1 and 1 are the centres of the corner pixels;
# otherwise their outer edges), nearest rounds half to even (like PyTorch), out-of-range coordinates are
# clamped (border) or reflected (reflection) first, and every interpolation tap that still falls outside
# reads 0 (zeros), the edge (border) or its mirror image (reflection). The taps of all spatial axes combine
# as a tensor product: 2**r taps for linear, 4**r for cubic; one vectorised gather per tap.

_GRID_PADDING = ("zeros", "border", "reflection")


def _check_grid_sample(modes):
    def check(**attrs):
        _refuse_value("GridSample", "mode", attrs.get("mode", modes[0]), modes)
        _refuse_value("GridSample", "padding_mode", attrs.get("padding_mode", "zeros"), _GRID_PADDING)
        if attrs.get("align_corners", 0) not in (0, 1):
            raise UnsupportedError("GridSample: align_corners=%r is not supported (must be 0 or 1)"
                                   % (attrs["align_corners"],))
    return check


def _reflect(x, lo, hi):
    """Mirror x into [lo, hi] by repeated reflection at the borders."""
    span = hi - lo
    if span <= 0:
        return np.full_like(x, lo)
    d = np.abs(x - lo)                     # distance from lo, folded with period 2 * span
    n = np.floor(d / span)
    r = d - n * span
    return np.where(n % 2 == 0, lo + r, hi - r)


def _grid_axis_taps(coord, size, mode, padding_mode, align_corners, dtype):
    """Indices (N, M, K), weights (N, M, K) for one spatial axis of the grid."""
    if align_corners:
        x = (coord + 1) / 2 * (size - 1)
        lo, hi = 0.0, size - 1.0
    else:
        x = ((coord + 1) * size - 1) / 2
        lo, hi = -0.5, size - 0.5
    if mode == "nearest":
        x = np.rint(x)
    if padding_mode == "border" and mode != "cubic":
        # (cubic clamps each tap instead, as PyTorch and onnxruntime do: taps beyond the edge repeat it)
        x = np.clip(x, 0, size - 1)
    elif padding_mode == "reflection":
        x = np.where((x < lo) | (x > hi), _reflect(x, lo, hi), x)

    if mode == "nearest":
        j = x[..., None]
        w = np.ones(j.shape, dtype)
    else:
        base = np.floor(x)
        f = (x - base)[..., None]
        if mode == "linear":
            j = base[..., None] + np.arange(2)
            w = np.concatenate([1 - f, f], axis=-1)
        else:
            j = base[..., None] + np.arange(-1, 3)
            w = _cubic_kernel(j - x[..., None], -0.75)
    # taps that still fall outside the input
    if padding_mode == "zeros":
        w = w * ((j >= 0) & (j <= size - 1))
    elif padding_mode == "reflection":
        j = np.where((j < lo) | (j > hi), _reflect(j, lo, hi), j)
    j = np.clip(j, 0, size - 1).astype(np.intp)
    return j, w.astype(dtype)


def _grid_sample(X, grid, mode, padding_mode, align_corners, op_version):
    X = np.asarray(X)
    grid = np.asarray(grid)
    r = X.ndim - 2
    if r < 1 or grid.ndim != X.ndim or grid.shape[0] != X.shape[0] or grid.shape[-1] != r:
        raise InputError("GridSample: X %s and grid %s do not fit (grid must be (N, *out, %d))"
                         % (X.shape, grid.shape, max(r, 0)))
    if op_version == 16 and r != 2:
        raise InputError("GridSample-16 takes 4-D inputs only, got rank %d" % X.ndim)
    if X.dtype.kind not in "f":
        raise InputError("GridSample: X must be a float tensor, got %s" % X.dtype)
    n, c = X.shape[:2]
    out_spatial = grid.shape[1:-1]
    dtype = np.float64 if X.dtype == np.float64 else np.float32
    # sizes from the data (an 8-D grid from ConstantOfShape, 16k channels): checked before computing
    taps = {"nearest": 1, "linear": 2}.get(mode, 4)
    points = limits.product(out_spatial)
    limits.check_shape((n, c, points), dtype, "GridSample (output)")
    limits.check_shape((n, points, taps), np.float64, "GridSample (taps of one axis)")
    # each combination of one tap per axis (taps ** r of them) is a pass over the whole output
    limits.spend(taps ** r * (limits.LOOP_COST + 4 * n * (c + 2) * points * np.dtype(dtype).itemsize), "GridSample")
    g = grid.reshape(n, -1, r).astype(dtype)
    size_total = int(np.prod(X.shape[2:]))
    Xf = X.reshape(n, c, size_total).astype(dtype)

    # per spatial axis (X's order): tap indices scaled by the axis stride, and weights
    strides = np.cumprod((X.shape[2:] + (1,))[::-1])[::-1][1:]
    axis_taps = []
    for i in range(r):
        coord = g[..., r - 1 - i]         # grid's last axis lists x (the last spatial axis) first
        j, w = _grid_axis_taps(coord, X.shape[2 + i], mode, padding_mode, align_corners, dtype)
        axis_taps.append((j * int(strides[i]), w))

    Y = np.zeros((n, c, g.shape[1]), dtype)
    # one tap of each axis at a time (taps ** r of them), never all their index arrays at once
    for combo in itertools.product(*[range(j.shape[-1]) for j, _ in axis_taps]):
        idx, wt = axis_taps[0][0][..., combo[0]], axis_taps[0][1][..., combo[0]]
        for (j, w), k in zip(axis_taps[1:], combo[1:]):
            idx, wt = idx + j[..., k], wt * w[..., k]
        if not wt.any():
            continue
        Y += np.take_along_axis(Xf, idx[:, None, :], axis=2) * wt[:, None, :]
    return Y.reshape((n, c) + tuple(out_spatial)).astype(X.dtype)


@op("GridSample", 16, check=_check_grid_sample(("bilinear", "nearest", "bicubic")))
def grid_sample_16(X, grid, *, align_corners=0, mode="bilinear", padding_mode="zeros"):
    """GridSample-16: 4-D only; modes are called bilinear / nearest / bicubic."""
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(_text(mode), _text(mode))
    return _grid_sample(X, grid, mode, _text(padding_mode), align_corners, 16)


# 20: N-D inputs, modes renamed linear / nearest / cubic. 22: adds bfloat16 only.
@op("GridSample", 20, 22, check=_check_grid_sample(("linear", "nearest", "cubic")))
def grid_sample_20(X, grid, *, align_corners=0, mode="linear", padding_mode="zeros"):
    return _grid_sample(X, grid, _text(mode), _text(padding_mode), align_corners, 20)
