"""Shared helpers for the sliding-window ops (Conv, ConvTranspose, the pools).

Notation, per spatial axis i: input size ``n``, kernel ``k``, stride ``s``, dilation ``d``, pads
``pb`` (begin) and ``pe`` (end). The kernel spans ``dk = (k - 1) * d + 1`` input pixels, and

    out = floor((n + pb + pe - dk) / s) + 1                    (ceil_mode=0)
    out = ceil((n + pb + pe - dk) / s) + 1, minus one if the    (ceil_mode=1)
          last window would start inside the right padding

``auto_pad`` (all versions; ONNX calls it deprecated but exporters still emit it):
    VALID                    no padding, the formula above with pb = pe = 0
    SAME_UPPER / SAME_LOWER  out = ceil(n / s); the total pad
                             max(0, (out - 1) * s + dk - n) is split in two halves, the odd
                             pixel at the end (UPPER) or at the start (LOWER).
    NOTSET                   explicit ``pads`` = [x1_begin, x2_begin, ..., x1_end, x2_end, ...].

Windows are taken as strided views (``np.lib.stride_tricks.as_strided``) of a padded copy of the
input: no data is copied until a reduction or a reshape needs it.
"""
import numpy as np

from ..errors import InputError, ModelError, UnsupportedError
from ._bordered import in_zero_border

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def check_auto_pad(op_type, auto_pad):
    """Load-time check for the ``auto_pad`` attribute (used in ``check=`` functions)."""
    if auto_pad is not None and auto_pad not in AUTO_PADS:
        raise UnsupportedError("%s: auto_pad=%r is not one of %s" % (op_type, auto_pad, ", ".join(AUTO_PADS)))


def per_axis(op_type, name, value, rank, default):
    """An attribute list of one int per spatial axis, with ``default`` where absent."""
    if value is None:
        return [default] * rank
    value = [int(v) for v in value]
    if len(value) != rank:
        raise ModelError("%s: %s=%s has %d values but the input has %d spatial axes"
                         % (op_type, name, value, len(value), rank))
    return value


def geometry(op_type, spatial, kernel, strides=None, dilations=None, pads=None, auto_pad="NOTSET",
             ceil_mode=0):
    """Resolve the window geometry of one node for input spatial shape ``spatial``.

    Returns ``(kernel, strides, dilations, pads_begin, pads_end, out_shape)`` as lists of ints. ``pads_end``
    here are the model's pads; ceil mode may need more (see ``ceil_extra``).
    """
    rank = len(spatial)
    kernel = per_axis(op_type, "kernel_shape", kernel, rank, 1)
    strides = per_axis(op_type, "strides", strides, rank, 1)
    dilations = per_axis(op_type, "dilations", dilations, rank, 1)
    if min(strides) < 1 or min(dilations) < 1 or min(kernel) < 1:
        raise ModelError("%s: kernel_shape, strides and dilations must be >= 1 (got %s, %s, %s)"
                         % (op_type, kernel, strides, dilations))
    begin, end, out = [], [], []
    for i, n in enumerate(spatial):
        k, s, d = kernel[i], strides[i], dilations[i]
        dk = (k - 1) * d + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            o = -(-n // s)  # ceil(n / s)
            total = max(0, (o - 1) * s + dk - n)
            small, big = total // 2, total - total // 2
            pb, pe = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
        else:
            if auto_pad == "VALID" or pads is None:
                pb = pe = 0
            else:
                if len(pads) != 2 * rank:
                    raise ModelError("%s: pads=%s needs %d values (begin and end per spatial axis)"
                                     % (op_type, list(pads), 2 * rank))
                pb, pe = int(pads[i]), int(pads[i + rank])
            span = n + pb + pe - dk
            if span < 0:
                raise InputError("%s: spatial axis %d of size %d (padded %d) is smaller than the "
                                 "kernel extent %d" % (op_type, i, n, n + pb + pe, dk))
            if ceil_mode:
                o = -(-span // s) + 1
                if (o - 1) * s >= n + pb:  # the last window would start in the right padding
                    o -= 1
            else:
                o = span // s + 1
        begin.append(pb)
        end.append(pe)
        out.append(o)
    return kernel, strides, dilations, begin, end, out


def ceil_extra(spatial, kernel, strides, dilations, begin, end, out):
    """Extra end padding so that every one of ``out`` windows fits (ceil mode, or SAME pads)."""
    extra = []
    for n, k, s, d, pb, pe, o in zip(spatial, kernel, strides, dilations, begin, end, out):
        need = (o - 1) * s + (k - 1) * d + 1
        extra.append(max(0, need - (n + pb + pe)))
    return extra


def pad_spatial(x, begin, end, value=0):
    """Pad the spatial axes (2:) of ``x`` with a constant; negative pads crop."""
    if not any(begin) and not any(end):
        return x
    if min(begin) < 0 or min(end) < 0:  # ONNX allows negative pads: crop first
        sl = [slice(None), slice(None)]
        for b, e, n in zip(begin, end, x.shape[2:]):
            sl.append(slice(max(0, -b), n - max(0, -e)))
        x = x[tuple(sl)]
        begin = [max(0, b) for b in begin]
        end = [max(0, e) for e in end]
    # one copy into an empty array and its borders filled (np.pad's own bookkeeping took as long again as
    # the copy: SSDlite320's [1, 3, 320, 320] input 168 -> 105 us)
    y = np.empty(x.shape[:2] + tuple(n + b + e for n, b, e in zip(x.shape[2:], begin, end)), x.dtype)
    y[(Ellipsis,) + tuple(slice(b, b + n) for b, n in zip(begin, x.shape[2:]))] = x
    for axis, (b, e) in enumerate(zip(begin, end), start=2):
        for border in ([slice(0, b)] if b else []) + ([slice(y.shape[axis] - e, None)] if e else []):
            y[(slice(None),) * axis + (border,)] = value
    return y


def windows(xp, kernel, strides, dilations, out, kernel_first=False):
    """Strided view of padded ``xp`` (N, C, *spatial).

    Shape (N, C, *out, *kernel), or (N, C, *kernel, *out) with ``kernel_first``. Element
    [n, c, o..., j...] is xp[n, c, o * s + j * d ...]. A view: do not write into it.
    """
    st = xp.strides
    out_strides = tuple(st[2 + i] * strides[i] for i in range(len(out)))
    k_strides = tuple(st[2 + i] * dilations[i] for i in range(len(kernel)))
    if kernel_first:
        shape = xp.shape[:2] + tuple(kernel) + tuple(out)
        strides_ = st[:2] + k_strides + out_strides
    else:
        shape = xp.shape[:2] + tuple(out) + tuple(kernel)
        strides_ = st[:2] + out_strides + k_strides
    return np.lib.stride_tricks.as_strided(xp, shape=shape, strides=strides_, writeable=False)


def tap_slices(offsets, strides, out):
    """Index tuple selecting, for one kernel tap at ``offsets``, the strided input pixels it meets."""
    return (slice(None), slice(None)) + tuple(
        slice(o, o + s * (n - 1) + 1, s) for o, s, n in zip(offsets, strides, out))


def compute_dtype(dtype):
    """Accumulate float16 in float32 (numpy's float16 matmul is slow and imprecise)."""
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def require_float(op_type, x):
    if x.dtype.kind != "f":
        raise InputError("%s: expects a float tensor, got %s" % (op_type, x.dtype))


def require_rank(op_type, x, minimum=3):
    if x.ndim < minimum:
        raise InputError("%s: input must be (N, C, D1, ...) with at least %d dims, got shape %s"
                         % (op_type, minimum, x.shape))


def windows_last(xp, kernel, strides, dilations, out):
    """Strided view of padded channels-last ``xp`` (N, H, W, C): shape (N, OH, OW, kh, kw, C).

    Element [n, oh, ow, i, j, c] is xp[n, oh * sh + i * dh, ow * sw + j * dw, c]. A view: do not write
    into it; ``reshape(N * OH * OW, kh * kw * C)`` makes the im2col matrix, one row per output pixel.
    """
    sn, sh, sw, sc = xp.strides
    shape = (xp.shape[0], out[0], out[1], kernel[0], kernel[1], xp.shape[3])
    strides_ = (sn, sh * strides[0], sw * strides[1], sh * dilations[0], sw * dilations[1], sc)
    return np.lib.stride_tricks.as_strided(xp, shape=shape, strides=strides_, writeable=False)


def channels_last_means(x):
    """The means over the pixels of x (N, C, H, W) float32 in channels-last memory (what the convs write),
    as an (N, C) array; None for any other x. The pixels are summed as ones (1, P) @ x (P, C): one BLAS
    pass over whole rows of channels, where numpy's mean over the two outer axes strides through them,
    2-7x slower (a squeeze-excite block's 20x20x672 map: 27.7 us against 12.9)."""
    if x.dtype != np.float32 or x.ndim != 4 or not x.size or not x.transpose(0, 2, 3, 1).flags.c_contiguous:
        return None
    N, C, H, W = x.shape
    sums = np.matmul(np.ones((1, H * W), np.float32), x.transpose(0, 2, 3, 1).reshape(N, H * W, C))
    return (sums / np.float32(H * W)).reshape(N, C)


def padded_last(x, begin, end, col=0, col_step=1):
    """Zero-padded channels-last copy of x (N, C, H, W), any memory layout: xp (N, H + pads, W + pads, C).

    With ``col_step`` > 1, only the column phase xp[:, :, col::col_step]. C-contiguous, one copy of x
    (none when x is channels-last memory and there is nothing to pad or pick); negative pads crop.
    """
    N, C, H, W = x.shape
    x = x[:, :, max(0, -begin[0]):H - max(0, -end[0]), max(0, -begin[1]):W - max(0, -end[1])]
    (pt, pl), (pb, pr) = [max(0, b) for b in begin], [max(0, e) for e in end]
    xl = x.transpose(0, 2, 3, 1)
    N, H, W, C = xl.shape
    if not (pt or pl or pb or pr) and col_step == 1:
        return np.ascontiguousarray(xl)
    cols, q0, first, n = column_phase(W, pl, pr, col, col_step)
    xp, interior = in_zero_border((N, H, n, C), (pt, pb, q0, cols - q0 - n), x.dtype)
    interior[...] = xl[:, :, first::col_step]
    return xp


def column_phase(W, pl, pr, col, col_step):
    """Column phase ``col`` (padded columns col, col + col_step, ...) of a row of W columns padded by pl and
    pr: (its columns, q0 its first column inside the row, ``first`` that column's in the row, n how many lie
    inside). Column q of the phase is padded column col + q * col_step, the row's column col + q * col_step - pl."""
    q0 = max(0, -(-(pl - col) // col_step))
    first = col + q0 * col_step - pl
    return len(range(col, pl + W + pr, col_step)), q0, first, len(range(first, W, col_step))
