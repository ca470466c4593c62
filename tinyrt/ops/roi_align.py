"""RoiAlign: a fixed-size feature map (output_height x output_width) for each region of interest.

    X (N, C, H, W), rois (R, 4) = [x1, y1, x2, y2] in input-image pixels, batch_indices (R,) -> Y (R, C, oh, ow)

Each roi is scaled by ``spatial_scale`` (shifted by -0.5 with coordinate_transformation_mode="half_pixel")
and cut into oh x ow bins. A bin takes sampling_ratio x sampling_ratio points (sampling_ratio=0: as many
as the bin is pixels high/wide, ceil(roi size / bins)), evenly placed inside it, and reads each point of
X by bilinear interpolation. ``mode="avg"`` averages the samples; ``mode="max"`` takes, per bin, the largest
of the four weighted corner values w * X[corner] over its samples (onnxruntime's definition).

Details as in onnxruntime (from detectron's kernel): a point more than one pixel outside the map counts
as 0 (and still counts in the average); a point in [-1, 0) reads the border; with
"output_half_pixel" (opset 10's only behaviour, and what torchvision's aligned=False exports) no shift is
applied and rois smaller than one pixel are enlarged to one.

For "avg" the interpolation separates into rows and columns: for one roi, Y[c] = Ay @ X[c] @ Ax.T with Ay
(oh, H) and Ax (ow, W) holding the summed interpolation weights of the rows and columns its samples touch,
so a roi costs two small matrix products over the few rows and columns it covers.
"""
import math

import numpy as np

from .. import limits
from ..errors import InputError, UnsupportedError
from .registry import op

MODES = ("avg", "max")
TRANSFORMS = ("half_pixel", "output_half_pixel")


def _check(**attrs):
    if attrs.get("mode", "avg") not in MODES:
        raise UnsupportedError("RoiAlign: mode=%r is not one of %s" % (attrs.get("mode"), MODES))
    ctm = attrs.get("coordinate_transformation_mode", "half_pixel")
    if ctm not in TRANSFORMS:
        raise UnsupportedError("RoiAlign: coordinate_transformation_mode=%r is not one of %s" % (ctm, TRANSFORMS))


def _samples(start, size, bins, grid, n, dtype):
    """Sample positions of one roi along one axis: low/high pixel and their weights, (bins, grid) each."""
    bin_size = size / dtype.type(bins)
    p = np.arange(bins, dtype=dtype)[:, None]
    i = np.arange(grid, dtype=dtype)[None, :]
    pos = start + p * bin_size + (i + dtype.type(0.5)) * bin_size / dtype.type(grid)
    valid = (pos >= -1) & (pos <= n)
    pos = np.maximum(pos, 0)
    low = np.floor(pos).astype(np.int64)
    at_end = low >= n - 1
    low = np.where(at_end, n - 1, low)
    high = np.where(at_end, n - 1, low + 1)
    frac = np.where(at_end, 0, pos - low).astype(dtype)
    w_low = np.where(valid, 1 - frac, 0).astype(dtype)
    w_high = np.where(valid, frac, 0).astype(dtype)
    return low, high, w_low, w_high


def _weights(low, high, w_low, w_high, n):
    """The (bins, n) matrix of summed interpolation weights of one axis."""
    bins = low.shape[0]
    A = np.zeros((bins, n), w_low.dtype)
    rows = np.repeat(np.arange(bins), low.shape[1])
    np.add.at(A, (rows, low.reshape(-1)), w_low.reshape(-1))
    np.add.at(A, (rows, high.reshape(-1)), w_high.reshape(-1))
    return A


def _roi_align(X, rois, batch_indices, mode, output_height, output_width, sampling_ratio, spatial_scale,
               half_pixel):
    if X.ndim != 4:
        raise InputError("RoiAlign: X must be 4-D (N, C, H, W), got shape %s" % (X.shape,))
    if rois.ndim != 2 or rois.shape[1] != 4:
        raise InputError("RoiAlign: rois must be (R, 4), got shape %s" % (rois.shape,))
    batch_indices = np.asarray(batch_indices).astype(np.int64).reshape(-1)
    R = rois.shape[0]
    if batch_indices.shape != (R,):
        raise InputError("RoiAlign: batch_indices has shape %s, expected (%d,)" % (batch_indices.shape, R))
    N, C, H, W = X.shape
    if R and (batch_indices.min() < 0 or batch_indices.max() >= N):
        raise InputError("RoiAlign: batch_indices %s out of range for a batch of %d" % (batch_indices.tolist(), N))
    oh, ow = int(output_height), int(output_width)
    if oh < 1 or ow < 1:
        raise InputError("RoiAlign: output_height and output_width must be >= 1, got %d, %d" % (oh, ow))
    dtype = np.dtype(np.float32) if X.dtype == np.float16 else X.dtype
    limits.check_shape((R, C, oh, ow), dtype, "RoiAlign (output)")
    Y = np.zeros((R, C, oh, ow), dtype)
    if not R or not H or not W:
        return Y.astype(X.dtype, copy=False)
    x = X.astype(dtype, copy=False)
    boxes = rois.astype(dtype) * dtype.type(spatial_scale) - dtype.type(0.5 if half_pixel else 0.0)
    for r in range(R):
        x1, y1, x2, y2 = boxes[r]
        rh, rw = y2 - y1, x2 - x1
        if not half_pixel:  # legacy: malformed rois become 1x1
            rh, rw = max(rh, dtype.type(1)), max(rw, dtype.type(1))
        gh = sampling_ratio if sampling_ratio > 0 else int(math.ceil(rh / oh))
        gw = sampling_ratio if sampling_ratio > 0 else int(math.ceil(rw / ow))
        limits.spend(C * oh * ow * max(gh, 1) * max(gw, 1) * 4, "RoiAlign")
        count = max(gh * gw, 1)
        if gh <= 0 or gw <= 0:
            continue  # an empty roi under half_pixel: no samples, zeros
        ys = _samples(y1, rh, oh, gh, H, dtype)
        xs = _samples(x1, rw, ow, gw, W, dtype)
        fmap = x[batch_indices[r]]
        if mode == "avg":
            # only the rows and columns the samples touch
            r0, r1 = int(ys[0].min()), int(ys[1].max()) + 1
            c0, c1 = int(xs[0].min()), int(xs[1].max()) + 1
            Ay = _weights(ys[0] - r0, ys[1] - r0, ys[2], ys[3], r1 - r0)
            Ax = _weights(xs[0] - c0, xs[1] - c0, xs[2], xs[3], c1 - c0)
            Y[r] = np.matmul(np.matmul(Ay, fmap[:, r0:r1, c0:c1]), Ax.T) / dtype.type(count)
        else:
            Y[r] = _max_bins(fmap, ys, xs)
    return Y.astype(X.dtype, copy=False)


def _max_bins(fmap, ys, xs):
    """Per bin, the max over samples of the largest weighted corner value (C, oh, ow)."""
    y_low, y_high, wy_low, wy_high = ys   # (oh, gh)
    x_low, x_high, wx_low, wx_high = xs   # (ow, gw)
    best = None
    for yi, wy in ((y_low, wy_low), (y_high, wy_high)):
        for xi, wx in ((x_low, wx_low), (x_high, wx_high)):
            v = fmap[:, yi[:, :, None, None], xi[None, None, :, :]]          # (C, oh, gh, ow, gw)
            v = v * (wy[:, :, None, None] * wx[None, None, :, :])
            best = v if best is None else np.maximum(best, v)
    return best.max(axis=(2, 4))


@op("RoiAlign", 10, check=_check)
def roi_align_10(X, rois, batch_indices, *, mode="avg", output_height=1, output_width=1, sampling_ratio=0,
                 spatial_scale=1.0):
    return _roi_align(X, rois, batch_indices, mode, output_height, output_width, sampling_ratio, spatial_scale,
                      half_pixel=False)


# 16 added coordinate_transformation_mode (default half_pixel, a change from 10); 22 added bfloat16
@op("RoiAlign", 16, 22, check=_check)
def roi_align_16(X, rois, batch_indices, *, coordinate_transformation_mode="half_pixel", mode="avg",
                 output_height=1, output_width=1, sampling_ratio=0, spatial_scale=1.0):
    return _roi_align(X, rois, batch_indices, mode, output_height, output_width, sampling_ratio, spatial_scale,
                      half_pixel=coordinate_transformation_mode == "half_pixel")
