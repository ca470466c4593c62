"""Resize's linear and cubic modes: an output sample is a weighted sum of the input samples around its
source coordinate ``x`` (from _resize_coords.py).

- linear: two taps ``floor(x)`` and ``floor(x) + 1``, weights ``1 - f`` and ``f`` with ``f = x - floor(x)``;
- cubic: four taps ``floor(x) - 1 .. floor(x) + 2``, weights from Keys' cubic kernel with ``cubic_coeff_a``.

Samples beyond the border repeat the edge sample; with ``exclude_outside`` they get weight 0 instead and
the remaining weights are renormalised to sum 1.

Resizing is separable: an N-D resize is a 1-D resize along each resized axis in turn. So for each axis we
compute, once, the source indices and weights of every output coordinate (small ``(out_len, taps)``
arrays), then do one gather (``np.take``) per tap and a weighted sum (``apply_taps``). No Python loop ever
runs over pixels. Integer tensors are interpolated in float and truncated back (``to_dtype``); for
bilinear on integers onnxruntime's own summation order is repeated (``bilinear_integer``) so a rounding
difference cannot move a result by one.
"""
import numpy as np

from ._resize_coords import F32, source_coords


def cubic_kernel(d, a):
    """Keys' cubic convolution kernel with parameter ``a`` (-0.75 like TensorFlow, -0.5 like Pillow)."""
    d = np.abs(d)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def linear_kernel(d, a=None):
    return np.clip(1.0 - np.abs(d), 0.0, None)


def taps_linear(x_orig, in_len):
    """Two taps; the coordinate is clamped into the input first, which repeats the edge samples."""
    x = np.clip(x_orig.astype(np.float64), 0, in_len - 1)
    i0 = np.floor(x).astype(np.intp)
    i1 = np.minimum(i0 + 1, in_len - 1)
    f = x - i0
    return np.stack([i0, i1], axis=1), np.stack([1.0 - f, f], axis=1)


def taps_cubic(x_orig, in_len, a, exclude_outside):
    """Four taps floor-1 .. floor+2 around the coordinate."""
    x = x_orig.astype(np.float64)
    base = np.floor(x)
    j = base[:, None] + np.arange(-1, 3)[None, :]
    w = cubic_kernel(j - x[:, None], a)
    return finish_taps(j, w, in_len, exclude_outside, normalise=bool(exclude_outside))



def finish_taps(j, w, in_len, exclude_outside, normalise):
    """Drop or clamp taps outside the input, renormalise, and return (int indices, float weights)."""
    if exclude_outside:
        w = w * ((j >= 0) & (j < in_len))
    if normalise:
        total = w.sum(axis=1, keepdims=True)
        w = w / np.where(total == 0, 1.0, total)
    return np.clip(j, 0, in_len - 1).astype(np.intp), w



def compute_dtype(dtype):
    """Interpolate in float64 for float64 and 32/64-bit integers (exact for them), else in float32."""
    if dtype == np.float64 or (dtype.kind in "iu" and dtype.itemsize >= 4):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def apply_taps(x, axis, idx, w, linear=False):
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



def ort_bilinear_axes(X, axis_scales):
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


def bilinear_integer(X, pair, out_shape, axis_scales, ctm, starts, ends):
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
            x = source_coords(ctm, n_out, n_in, scale, starts[a], ends[a])
        x = np.clip(x, F32(0), F32(n_in - 1))
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
    return to_dtype(Y, X.dtype, 0)


def to_dtype(Y, dtype, antialias):
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
