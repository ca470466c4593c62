"""The 2-D depthwise conv of the numpy path (ops/conv.py), channels last: the column phases of a padded copy,
or the input read where it lies inside a zero border (ops/_bordered.py).

    y[n, oh, ow, m] = sum_{i, j} w[m, 0, i, j] * xp[n, oh * sh + i * dh, ow * sw + j * dw, m]

with xp the zero-padded input. ``depthwise_conv`` picks the way (all give the same numbers up to the order
of the sums); the kernel weights come tiled over a few output pixels (``tile_depthwise``), made once by a
prepared conv.

Where each tap's pixels lie in rows (stride 1 across, or a column phase), one einsum multiplies and sums all
taps over tiles of T pixels: taps[n, i, j, oh, q, e] = xp[n, oh * sh + i * dh, (q * T + j) * M + e] (a view,
e < T * M), times the tap's weights tiled over T pixels (T * M values). T makes about ``INNER`` values a tile
(``tile_pixels``): each of the einsum's inner loops is that long, and the weights it reads beside the pixels
stay in the cache. Tiled over a whole row, they streamed through memory with the pixels; tiled over one pixel
(M values), the loops were short (measured, one thread: 72 channels at 80x80, 736 -> 530 us; 120 at 40x40,
5x5, 695 -> 506; 672 at 20x20, 337 -> 297).
"""
from math import log

import numpy as np

from ._bordered import border_of, rows_view
from ._window import column_phase, padded_last

INNER = 1024  # values a tile of pixels holds, about (see the module docstring; 768 to 1920 measured best)
# a depthwise conv of at least this many channels whose input lies in no zero border copies it once with
# its pads and reads that in place (``depthwise_conv``), instead of copying its column phases (measured:
# 240 channels at 40x40, stride 2: 324 against 367 us; 672 at 20x20: 543 against 596; 192 at 14x14,
# stride 2: slower)
_COPY_WIDE = 240


def tile_pixels(width, channels):
    """T: the output pixels a tile of the einsum holds, a divisor of the row's ``width``, T * ``channels``
    nearest ``INNER`` (by ratio; one pixel for wide channels, the whole row for a narrow one). Looked for
    up to 4x the ideal (a width from the file may be huge: not a loop over all of it), and the whole row."""
    if width < 1 or channels < 1:
        return 1
    near = [t for t in range(1, min(width, 4 * INNER // channels + 1) + 1) if width % t == 0]
    return min(near + [width], key=lambda t: abs(log(t * channels / INNER)))


def depthwise_phases(shape, itemsize, kernel, strides, dilations, begin, end, out):
    """The depthwise conv worked out for an input shape (N, M, H, W): for each column phase b some tap
    reads, (b, the taps j in it, the view of its padded copy that the einsum reads: shape, strides
    and byte offset). Tap j reads column ow + c of column phase b of xp (its columns b, b + sw, ...;
    j * dw = c * sw + b), so in a copy of that phase, viewed as (N, rows, cols * M), each row a tap reads is
    a contiguous run of OW * M values, read in tiles of T pixels (``tile_pixels``):
    taps[n, i, k, oh, q, e] = p[n, oh * sh + i * dh, (step * k + q * T) * M + e], e < T * M."""
    N, M, H, W = shape
    (kh, kw), (sh, sw), (dh, dw), (OH, OW) = kernel, strides, dilations, out
    H -= max(0, -begin[0]) + max(0, -end[0])  # negative pads crop (as padded_last does)
    W -= max(0, -begin[1]) + max(0, -end[1])
    (pt, pl), (pb, pr) = [max(0, b) for b in begin], [max(0, e) for e in end]
    T = tile_pixels(OW, M)
    phases = []
    # only the phases some tap reads (at most kw of them: a stride of 2^40 must not loop 2^40 times)
    for b in sorted({j * dw % sw for j in range(kw)}):
        js = [j for j in range(kw) if j * dw % sw == b]  # the taps in phase b, at columns c0 + k * step
        c0, step = js[0] * dw // sw, (js[1] - js[0]) * dw // sw if len(js) > 1 else 0
        rows, cols = pt + H + pb, column_phase(W, pl, pr, b, sw)[0]  # the phase's padded copy (padded_last)
        se = itemsize
        sr = cols * M * se
        view = ((N, kh, len(js), OH, OW // T, T * M), (rows * sr, sr * dh, se * M * step, sr * sh, se * M * T, se),
                c0 * M * se)
        phases.append((b, js, view))
    return phases


def depthwise(x, phases, begin, end, sw, out, into=None):
    """y (N, OH, OW, M) of the depthwise conv of x (N, M, H, W), ``phases`` as ``depthwise_phases`` gives
    them with each phase's taps' tiled weights (wt[:, js]) in place of js: one einsum per phase multiplies
    and sums all its taps (one pass over the output, long SIMD loops). Written into ``into`` if given."""
    N, M = x.shape[:2]
    OH, OW = out
    rows = np.empty((N, OH, OW * M), dtype=x.dtype) if into is None else rows_view(into)
    for k, (b, view, wt) in enumerate(phases):
        phase_sums(padded_last(x, begin, end, b, sw), view, wt, rows, k > 0)
    return rows.reshape(N, OH, OW, M) if into is None else into


def phase_sums(p, view, wt, rows, add):
    """The taps of one column phase, ``p`` (the phase's zero-padded copy, C-contiguous, as ``padded_last``
    makes it: the view is checked to lie inside it) read through ``view`` (``depthwise_phases``), times their
    tiled weights ``wt``, summed into ``rows`` (N, OH, OW * M): written, or added to it (``add``)."""
    shape, strides, offset = view
    taps = np.ndarray(shape, p.dtype, buffer=p, offset=offset, strides=strides)
    tiles = rows.reshape((shape[0], shape[3], shape[4], shape[5]))  # (a view: rows of OW * M values)
    if add:
        tiles += np.einsum("nikhqe,ike->nhqe", taps, wt)
    else:
        np.einsum("nikhqe,ike->nhqe", taps, wt, out=tiles)


def depthwise_conv(x, phases, tiled, kernel, strides, dilations, begin, end, out, into=None):
    """y (N, OH, OW, M) of the depthwise conv of x (N, M, H, W) (M == C), by whichever way is fastest here:
    read where it lies when x is the interior of a zero border that covers the pads (ops/_bordered.py) and
    ``reads_border_in_place``; else, for many channels, copied once with its pads and read in place the
    same way (at a stride the inner loops run over a pixel's channels, and no column phases are copied); else the
    column phases' copies and einsums (``depthwise``). ``phases``: ``depthwise_phases`` with each phase's
    tiled weights; ``tiled``: ``tile_depthwise``. Measured on SSDlite320's layers, one thread."""
    M = x.shape[1]
    found = bordered_input(x, begin, end)
    if found is not None and reads_border_in_place(M, kernel, strides):
        return depthwise_in_border(found[0], found[1], begin, kernel, strides, dilations, out, tiled, into)
    if found is None and min(begin + end) >= 0 and M >= _COPY_WIDE:
        border = (begin[0], end[0], begin[1], end[1])
        return depthwise_in_border(padded_last(x, begin, end), border, begin, kernel, strides, dilations, out,
                                   tiled, into)
    return depthwise(x, phases, begin, end, strides[1], out, into)


def reads_border_in_place(channels, kernel, strides):
    """Whether a depthwise conv reads an input lying in a wide enough zero border where it lies: always at
    stride 1; striding over columns, where its einsum's inner loops are a pixel's channels, only for enough
    of them: with fewer, the column phases' einsums over tiles of pixels are faster even with their copies
    (measured, stride 2: 3x3, 16 channels at 112x112, 157 against 429 us; 24 at 56x56, 65 against 128; 48 at
    28x28 the same; 5x5, 72 channels at 80x80, 562 against 713; 120 at 56x56 the same)."""
    return strides[1] == 1 or channels >= (48 if kernel[1] <= 3 else 120)


def bordered_input(x, begin, end):
    """(buffer, border) when x (N, M, H, W) is the interior of a buffer whose zero border covers the pads
    (begin, end) of a depthwise conv reading it (ops/_bordered.py), else None."""
    found = border_of(x)
    if found is None:
        return None
    top, bottom, left, right = found[1]
    (pt, pl), (pb, pr) = begin, end
    if min(pt, pl, pb, pr) < 0 or pt > top or pb > bottom or pl > left or pr > right:
        return None
    return found


def depthwise_in_border(buf, border, begin, kernel, strides, dilations, out, tiled, into=None):
    """y (N, OH, OW, M) of the depthwise conv of the interior of ``buf`` (``bordered_input``), read where it
    lies: its zero border is the padding, so there is no padded copy. One einsum over all taps: at stride
    1 over rows of OW * M values in tiles of T pixels, with the weights tiled over T pixels (as ``depthwise``);
    at other strides over the channels of each pixel with the weights as they are (``tiled[:, :, :M]``),
    which also spares the column phases' copies. Written into ``into`` if given."""
    N, Hb, Wb, M = buf.shape
    (kh, kw), (sh, sw), (dh, dw), (OH, OW) = kernel, strides, dilations, out
    top, _, left, _ = border
    se = buf.itemsize
    sc, sr = M * se, Wb * M * se
    origin = ((top - begin[0]) * Wb + left - begin[1]) * sc  # where the reader's padded input starts
    y = np.empty((N, OH, OW, M), dtype=buf.dtype) if into is None else into
    if sw == 1:
        T = tiled.shape[2] // M
        taps = np.ndarray((N, kh, kw, OH, OW // T, T * M), buf.dtype, buffer=buf, offset=origin,
                          strides=(Hb * sr, dh * sr, dw * sc, sh * sr, T * sc, se))
        np.einsum("nikhqe,ike->nhqe", taps, tiled, out=rows_view(y).reshape(N, OH, OW // T, T * M))
    else:
        taps = np.ndarray((N, kh, kw, OH, OW, M), buf.dtype, buffer=buf, offset=origin,
                          strides=(Hb * sr, dh * sr, dw * sc, sh * sr, sw * sc, se))
        np.einsum("nikhwm,ikm->nhwm", taps, tiled[:, :, :M], out=y)
    return y


def tile_depthwise(w, OW):
    """wt[i, j, t * M + m] = w[m, 0, i, j], t < T: each tap's depthwise weights for a tile of T output pixels of
    a row of ``OW`` (``tile_pixels``)."""
    # (contiguous: np.tile of one pixel keeps the transpose's strides, and an einsum over them runs 10x slower)
    return np.ascontiguousarray(np.tile(w[:, 0].transpose(1, 2, 0), (1, 1, tile_pixels(OW, w.shape[0]))))
