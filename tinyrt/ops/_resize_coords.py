"""Resize's geometry: the output shape, and where in the input each output sample comes from.

The output shape comes from the ``scales`` input (``floor(float32(scale) * in_len)``, onnxruntime's
float32 product) or from ``sizes`` (with ``keep_aspect_ratio_policy``: stretch each axis to its size, or
one common scale, the smallest (not_larger) or the largest (not_smaller), rounded half up).

Then every output coordinate ``x`` on a resized axis is mapped back to a (fractional) source coordinate
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

Where the spec leaves numerics open we follow onnxruntime: coordinates in float32 in its order of
operations, so nearest ties fall the same way. What is done at ``x_original`` (pick one sample, or weigh
several) is in _resize_nearest.py, _resize_interp.py and _resize_antialias.py.
"""
import numpy as np

from ..errors import InputError

F32 = np.float32


def output_plan(shape, scales, sizes, axes, policy, op_type):
    """Return (output shape, float32 scale of every axis) from the ``scales`` or ``sizes`` input."""
    rank = len(shape)
    n = len(axes)
    out = list(shape)
    axis_scales = [F32(1.0)] * rank
    if scales is not None:
        scales = np.asarray(scales).astype(np.float32).reshape(-1)
        if scales.size != n:
            raise InputError("%s: scales has %d values but %d axes are resized" % (op_type, scales.size, n))
        if np.any(~(scales > 0)):
            raise InputError("%s: scales must be > 0, got %s" % (op_type, scales.tolist()))
        for a, s in zip(axes, scales):
            axis_scales[a] = F32(s)
            # float32 product, truncated: what onnxruntime computes for floor(in * scale)
            out[a] = int(np.floor(F32(s) * F32(shape[a])))
        return out, axis_scales

    sizes = np.asarray(sizes).astype(np.int64).reshape(-1)
    if sizes.size != n:
        raise InputError("%s: sizes has %d values but %d axes are resized" % (op_type, sizes.size, n))
    if np.any(sizes < 0):
        raise InputError("%s: sizes must be >= 0, got %s" % (op_type, sizes.tolist()))
    for a in axes:
        if shape[a] == 0:
            raise InputError("%s: cannot resize axis %d of length 0 to a given size" % (op_type, a))
    ratios = [F32(s) / F32(shape[a]) for a, s in zip(axes, sizes)]
    if policy == "stretch":
        for a, s, r in zip(axes, sizes, ratios):
            out[a] = int(s)
            axis_scales[a] = r
    else:
        # one common scale keeps the aspect ratio; sizes are rounded half up from it
        scale = min(ratios) if policy == "not_larger" else max(ratios)
        for a in axes:
            out[a] = int(np.floor(float(scale * F32(shape[a])) + 0.5))
            axis_scales[a] = scale
    return out, axis_scales


def source_coords(ctm, out_len, in_len, scale, roi_start, roi_end):
    """x_original of every output coordinate, in float32 and in onnxruntime's order of operations."""
    x = np.arange(out_len, dtype=np.float32)
    half, one = F32(0.5), F32(1.0)
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
        return x * F32(in_len - 1) / F32(out_len - 1)
    if ctm == "half_pixel_symmetric":
        adjustment = F32(out_len) / (scale * F32(in_len))
        offset = (F32(in_len) / F32(2.0)) * (one - adjustment)
        # onnxruntime does this last step in double precision
        xd = x.astype(np.float64)
        return ((float(offset) + (xd + 0.5) / float(scale)) - 0.5).astype(np.float32)
    # tf_crop_and_resize
    start, end = F32(roi_start), F32(roi_end)
    if out_len > 1:
        return start * F32(in_len - 1) + (x * (end - start) * F32(in_len - 1)) / F32(out_len - 1)
    return np.full(out_len, 0.5 * (float(start) + float(end)) * (in_len - 1), np.float32)
