"""Bilinear resizing of uint8 pictures, the way Pillow does it, in numpy.

``resize(img, (height, width))`` uses Pillow when it is installed (fast, in C) and this module's numpy
version otherwise. The numpy version is Pillow's algorithm (``Resample.c``) restated, so both give the same
bytes (the tests compare them):

* Each output pixel ``i`` of an axis has a centre ``(i + 0.5) * scale`` in input coordinates
  (``scale = in / out``). Its value is a weighted sum of the input pixels around that centre.
* The weights come from the triangle ("bilinear") filter ``max(0, 1 - |d|)``. When shrinking, the
  triangle is stretched by ``scale`` (support ``scale`` pixels each side), so every input pixel
  contributes: this is an *antialiased* bilinear, not the 4-pixel bilinear of OpenCV's ``cv2.resize``,
  which skips pixels when shrinking a lot (so tinyrt, like BaseDT/Pillow, can differ from cv2 there).
* The weights of a pixel are normalised to sum to 1, then turned into integers with 22 fractional bits;
  sums are rounded (add half, shift right by 22) and clipped to 0..255.
* The width is resized first (rows of uint8), then the height.
"""
import numpy as np

PRECISION_BITS = 32 - 8 - 2      # Pillow's fixed point for 8-bit images


def _coefficients(in_size, out_size):
    """(first input index, integer weights [out, taps]) of one axis, as Pillow's precompute_coeffs."""
    scale = in_size / float(out_size)
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale                        # the bilinear filter's support is 1
    centers = (np.arange(out_size) + 0.5) * scale
    xmin = np.maximum((centers - support + 0.5).astype(np.int64), 0)   # int(): truncation, as in C
    xmax = np.minimum((centers + support + 0.5).astype(np.int64), in_size) - xmin
    taps = int(np.ceil(support)) * 2 + 1
    t = np.arange(taps)
    d = (t[None, :] + xmin[:, None] - centers[:, None] + 0.5) / filterscale
    w = np.maximum(0.0, 1.0 - np.abs(d))
    w[t[None, :] >= xmax[:, None]] = 0.0               # past this pixel's window
    total = w.sum(axis=1, keepdims=True)
    w = np.where(total != 0, w / np.where(total != 0, total, 1.0), 0.0)
    one = float(1 << PRECISION_BITS)
    k = np.where(w < 0, np.trunc(-0.5 + w * one), np.trunc(0.5 + w * one)).astype(np.int64)
    return xmin, k


def _resize_axis(a, out_size, axis):
    """Resize uint8 array ``a`` along ``axis`` (0 or 1 of H, W, C)."""
    in_size = a.shape[axis]
    xmin, k = _coefficients(in_size, out_size)
    acc = np.full((out_size,) + tuple(s for i, s in enumerate(a.shape) if i != axis),
                  1 << (PRECISION_BITS - 1), dtype=np.int64)       # + one half: round, not truncate
    src = np.moveaxis(a, axis, 0).astype(np.int64)
    extra = (1,) * (src.ndim - 1)
    for t in range(k.shape[1]):                                       # a few taps; each is one numpy op
        idx = np.minimum(xmin + t, in_size - 1)                       # weight 0 where past the edge
        acc += src[idx] * k[:, t].reshape((-1,) + extra)
    out = np.clip(acc >> PRECISION_BITS, 0, 255).astype(np.uint8)
    return np.moveaxis(out, 0, axis)


def resize_numpy(img, size):
    """Pillow-identical bilinear resize of a uint8 HxW or HxWxC array to ``size`` = (height, width)."""
    h, w = int(size[0]), int(size[1])
    out = np.asarray(img, dtype=np.uint8)
    if out.shape[1] != w:
        out = _resize_axis(out, w, 1)
    if out.shape[0] != h:
        out = _resize_axis(out, h, 0)
    return np.ascontiguousarray(out)


def resize(img, size, use_pillow=None):
    """Bilinear resize of a uint8 HxW or HxWxC array to ``size`` = (height, width).

    ``use_pillow``: None = Pillow when it imports, else numpy (the same result); True/False to force.
    """
    img = np.asarray(img)
    if img.shape[0] == size[0] and img.shape[1] == size[1]:
        return img
    if use_pillow is not False:
        from .image import pillow
        Image = pillow(required=bool(use_pillow))
        if Image is not None and (img.ndim == 2 or img.shape[2] in (1, 3, 4)):
            squeeze = img.ndim == 3 and img.shape[2] == 1
            im = Image.fromarray(np.ascontiguousarray(img[:, :, 0] if squeeze else img))
            out = np.asarray(im.resize((int(size[1]), int(size[0])), _bilinear(Image)))
            return out[:, :, None] if squeeze else out
    return resize_numpy(img, size)


def _bilinear(Image):
    return getattr(Image, "Resampling", Image).BILINEAR
