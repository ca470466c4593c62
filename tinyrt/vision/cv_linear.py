"""OpenCV's ``cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)`` restated in numpy.

MMEdu's deployment tools (BaseDT's ``ImageData``, XEduHub) resize with OpenCV, so to give their answers on a
board without OpenCV tinyrt needs the same arithmetic. It is not Pillow's bilinear (resize.py): OpenCV looks
at only the 2 nearest pixels of each axis, whatever the scale (no antialiasing when shrinking).

One axis, output pixel ``d`` (``scale = in / out``):

* its centre in input coordinates is ``f = (d + 0.5) * scale - 0.5`` (computed in float32), the left/top
  neighbour ``s = floor(f)`` and the weights ``(1 - (f - s), f - s)`` on pixels ``s`` and ``s + 1``;
* horizontally, past the edges (``s < 0`` or ``s >= in - 1``) the weights become ``(1, 0)`` on the edge
  pixel; vertically the weights stay and the two row indices are clamped to the picture (OpenCV's
  ``resizeGeneric``; on a uint8 picture the rounding differs between the two);
* the width is interpolated first (every needed row), then the height.

float32 pictures are computed in float32. uint8 pictures use OpenCV's fixed point: weights are integers with
``INTER_RESIZE_COEF_BITS = 11`` fractional bits (``round(w * 2048)``), the horizontal sums are exact
integers, and the vertical step is ``((b0 * (r0 >> 4)) >> 16) + ((b1 * (r1 >> 4)) >> 16) + 2) >> 2``
(its ``VResizeLinear<uchar>``), so the bytes match OpenCV's.

One special case, as in OpenCV: shrinking by exactly 2 on both axes is done as INTER_AREA, the mean of each
2x2 block (uint8: ``(a + b + c + d + 2) >> 2``).
"""
import numpy as np

COEF_BITS = 11
COEF_SCALE = 1 << COEF_BITS


def _axis(in_size, out_size):
    """(first index, fraction) per output pixel of one axis, before any edge handling (float32, as OpenCV)."""
    scale = 1.0 / (out_size / float(in_size))     # as OpenCV: 1 / (out / in), in double
    f = ((np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    s = np.floor(f).astype(np.int64)
    frac = (f - s.astype(np.float32)).astype(np.float32)
    return s, frac


def _horizontal_table(in_w, out_w):
    s, fx = _axis(in_w, out_w)
    edge = (s < 0) | (s >= in_w - 1)
    s = np.clip(s, 0, in_w - 1)
    fx = np.where(edge, np.float32(0), fx).astype(np.float32)
    s1 = np.minimum(s + 1, in_w - 1)              # weight 0 there when s is the last pixel
    return s, s1, (np.float32(1) - fx).astype(np.float32), fx


def _vertical_table(in_h, out_h):
    s, fy = _axis(in_h, out_h)
    r0 = np.clip(s, 0, in_h - 1)
    r1 = np.clip(s + 1, 0, in_h - 1)
    return r0, r1, (np.float32(1) - fy).astype(np.float32), fy


def _fixed(w):
    """OpenCV's saturate_cast<short>(w * 2048): round half to even."""
    return np.rint(w.astype(np.float32) * np.float32(COEF_SCALE)).astype(np.int64)


def _area2(img):
    """Exact 2x shrink: the mean of each 2x2 block."""
    h, w = img.shape[0] // 2, img.shape[1] // 2
    a = img[0:2 * h:2, 0:2 * w:2]
    b = img[0:2 * h:2, 1:2 * w:2]
    c = img[1:2 * h:2, 0:2 * w:2]
    d = img[1:2 * h:2, 1:2 * w:2]
    if img.dtype == np.uint8:
        total = a.astype(np.int32) + b + c + d
        return ((total + 2) >> 2).astype(np.uint8)
    return ((a + b) + (c + d)) * np.float32(0.25)


def resize_linear(img, size, convert=None):
    """``cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)`` for a uint8 or float32 HxW or
    HxWxC array; ``size`` = (height, width).

    ``convert``: an element-wise function to float32 (BaseDT's normalisation) applied first, to the rows the
    resize reads only: the same numbers as ``resize_linear(convert(img), size)`` without converting every row
    of a large photo (a 12-megapixel picture would be 144 MB of float32)."""
    img = np.asarray(img)
    if convert is None and img.dtype not in (np.uint8, np.float32):
        raise TypeError("resize_linear takes uint8 or float32 pictures, got %s" % img.dtype)
    out_h, out_w = int(size[0]), int(size[1])
    in_h, in_w = img.shape[:2]
    if (out_h, out_w) == (in_h, in_w):
        return img.copy() if convert is None else convert(img)
    if in_h == 2 * out_h and in_w == 2 * out_w:
        return _area2(img if convert is None else convert(img))
    x0, x1, ax0, ax1 = _horizontal_table(in_w, out_w)
    r0, r1, by0, by1 = _vertical_table(in_h, out_h)
    rows = np.unique(np.concatenate([r0, r1]))       # only the rows the vertical step reads
    extra = (1,) * (img.ndim - 2)
    if convert is not None:
        src = np.asarray(convert(img[rows]), dtype=np.float32)
        return _float_rows(src, rows, x0, x1, ax0, ax1, r0, r1, by0, by1, extra)
    if img.dtype == np.uint8:
        ia0, ia1 = _fixed(ax0).reshape((1, -1) + extra), _fixed(ax1).reshape((1, -1) + extra)
        src = img[rows].astype(np.int64)
        hsum = src[:, x0] * ia0 + src[:, x1] * ia1           # exact, at most 255 * 2048
        lookup = np.searchsorted(rows, [r0, r1])
        top, bottom = hsum[lookup[0]] >> 4, hsum[lookup[1]] >> 4
        ib0, ib1 = _fixed(by0).reshape((-1, 1) + extra), _fixed(by1).reshape((-1, 1) + extra)
        out = (((ib0 * top) >> 16) + ((ib1 * bottom) >> 16) + 2) >> 2
        return np.clip(out, 0, 255).astype(np.uint8)
    return _float_rows(img[rows], rows, x0, x1, ax0, ax1, r0, r1, by0, by1, extra)


def _float_rows(src, rows, x0, x1, ax0, ax1, r0, r1, by0, by1, extra):
    """The float32 passes on ``src`` = the picture's rows ``rows``: across each row, then between rows."""
    hsum = src[:, x0] * ax0.reshape((1, -1) + extra) + src[:, x1] * ax1.reshape((1, -1) + extra)
    lookup = np.searchsorted(rows, [r0, r1])
    out = hsum[lookup[0]] * by0.reshape((-1, 1) + extra) + hsum[lookup[1]] * by1.reshape((-1, 1) + extra)
    return out.astype(np.float32)
