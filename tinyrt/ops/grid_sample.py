"""GridSample: Y[n, c, p] = X[n, c] sampled at the normalised position grid[n, p] (x, y[, z] order, -1..1).

Each grid coordinate is mapped to pixels (align_corners: -1 and 1 are the centres of the corner pixels;
otherwise their outer edges), nearest rounds half to even (like PyTorch), out-of-range coordinates are
clamped (border) or reflected (reflection) first, and every interpolation tap that still falls outside
reads 0 (zeros), the edge (border) or its mirror image (reflection). The taps of all spatial axes combine
as a tensor product: 2**r taps for linear, 4**r for cubic; one vectorised gather per tap. The cubic
weights are Resize's (Keys' kernel, _resize_interp.py) with a = -0.75.
"""
import itertools

import numpy as np

from .. import limits
from ..errors import InputError, UnsupportedError
from ._resize_interp import cubic_kernel
from .registry import op
from .resize import refuse_value, text

_GRID_PADDING = ("zeros", "border", "reflection")


def _check_grid_sample(modes):
    def check(**attrs):
        refuse_value("GridSample", "mode", attrs.get("mode", modes[0]), modes)
        refuse_value("GridSample", "padding_mode", attrs.get("padding_mode", "zeros"), _GRID_PADDING)
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
            w = cubic_kernel(j - x[..., None], -0.75)
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
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(text(mode), text(mode))
    return _grid_sample(X, grid, mode, text(padding_mode), align_corners, 16)


# 20: N-D inputs, modes renamed linear / nearest / cubic. 22: adds bfloat16 only.
@op("GridSample", 20, 22, check=_check_grid_sample(("linear", "nearest", "cubic")))
def grid_sample_20(X, grid, *, align_corners=0, mode="linear", padding_mode="zeros"):
    return _grid_sample(X, grid, text(mode), text(padding_mode), align_corners, 20)
