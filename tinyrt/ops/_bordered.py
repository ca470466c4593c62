"""Conv results written inside a zero border, so that the depthwise conv reading them needs no padded copy.

A depthwise conv reads its input zero-padded, and on the numpy path copying the input into a padded array
was a pass over it of its own (in a run, where the input has left the cache, as long as the depthwise
math itself on SSDlite320's 160x160 and 80x80 layers). So the numpy path's prepared conv whose result a
depthwise conv reads (kernel_wrappers/numpy_conv.py) writes it straight into a buffer with a zero border
as wide as that reader's pads:

    y = bordered((N, H, W, C), (top, bottom, left, right))   # y: the interior, an (N, H, W, C) view
    ...                                                         # the conv writes y; anyone reads it
    found = border_of(x)    # x: y or its (N, C, H, W) transpose -> (buffer, (top, bottom, left, right))

The interior is an ordinary channels-last view: every other reader sees an ordinary array. The border stays
zero: only the interior is handed on (``border_of`` gives the buffer to a depthwise conv, which reads it), and
a view of the interior cannot reach past the interior. A buffer no longer alive is forgotten (a weak
reference); one this module does not know is simply not read in place.
"""
import weakref

import numpy as np

_BUFFERS = {}  # id(buffer) -> (weak reference to the buffer, interior shape (N, H, W, C), border)


def in_zero_border(shape, border, dtype=np.float32):
    """(buffer, interior): a new buffer with a zero border (top, bottom, left, right) around each image's
    (N, H, W, C) interior, the interior left for its writer to fill (a padded copy is one too)."""
    N, H, W, C = shape
    top, bottom, left, right = border
    buf = np.empty((N, top + H + bottom, left + W + right, C), dtype)
    buf[:, :top] = 0
    buf[:, top + H:] = 0
    buf[:, top:top + H, :left] = 0
    buf[:, top:top + H, left + W:] = 0
    return buf, buf[:, top:top + H, left:left + W]


def bordered(shape, border, dtype=np.float32):
    """A new (N, H, W, C) array that is the interior of a buffer with a zero border (top, bottom, left,
    right) around each image (see the module docstring)."""
    buf, interior = in_zero_border(shape, border, dtype)
    key = id(buf)
    _BUFFERS[key] = (weakref.ref(buf, lambda _, key=key: _BUFFERS.pop(key, None)), tuple(shape), tuple(border))
    return interior


def border_of(x):
    """(buffer, border) when x, (N, C, H, W), is the channels-last interior ``bordered`` made, else None."""
    buf = x.base
    entry = _BUFFERS.get(id(buf)) if _BUFFERS and buf is not None else None
    if entry is None or entry[0]() is not buf:
        return None
    N, C, H, W = x.shape
    if entry[1] != (N, H, W, C) or x.dtype != buf.dtype:
        return None
    top, _, left, _ = entry[2]
    interior = buf[:, top:top + H, left:left + W].transpose(0, 3, 1, 2)
    if x.strides != interior.strides or x.ctypes.data != interior.ctypes.data:
        return None
    return buf, entry[2]


def rows_view(y):
    """y (N, H, W, C), channels-last, as (N, H, W * C) without a copy: each row's W * C values are contiguous,
    in a bordered interior too. ValueError where they are not (numpy would have to copy)."""
    rows = y.view()
    try:
        rows.shape = (y.shape[0], y.shape[1], y.shape[2] * y.shape[3])  # (raises rather than copy)
    except AttributeError as e:
        raise ValueError(str(e)) from None
    return rows
