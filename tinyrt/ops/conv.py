"""Conv and ConvTranspose, N-D (1-D, 2-D, 3-D, ...), with groups, dilations, strides and padding.

Conv: X (N, C, *in), W (M, C/group, *k), optional B (M,) -> Y (N, M, *out) with

    Y[n, m, o] = B[m] + sum_{c in group(m), j} W[m, c, j] * Xpad[n, c, o * stride + j * dilation]

2-D convs compute in channels-last memory: the input is read as (N, H, W, C) (free when it already is
channels-last memory, one copy when it is NCHW) and the result is written as y (N, OH, OW, M) and returned
as ``y.transpose(0, 3, 1, 2)``, an array of the ONNX shape (N, M, OH, OW) whose memory is NHWC. Every other
op works on it unchanged (numpy follows strides), the next conv reads it channels-last for free, and the
session makes its outputs contiguous. Three 2-D paths, picked by shape (all give the same numbers):
  * depthwise (group == C, M a multiple of C): y = sum over taps (i, j) of a strided slice of the padded
    input times that tap's weights. Viewed as (N, rows, W * C), the pixels a tap reads at stride 1 are
    rows of OW * C contiguous floats; with the weights tiled over a few pixels of a row (about 1024 values
    per tap: ops/_depthwise.py), one einsum multiplies and sums all taps in long SIMD loops (one pass over
    the output, not one per tap).
    With a column stride sw, the padded input is first split into its sw column phases (columns
    b, b + sw, ...; one copy), which brings each tap's pixels back to contiguous rows: one einsum per phase.
    No copy at all where the input lies inside a zero border as wide as the pads: the numpy path's prepared
    conv that made it wrote it there for this reader (ops/_bordered.py); one einsum then reads all taps
    where they lie (``depthwise_conv`` says which way runs).
  * 1x1, stride 1, no pads: Y[n] (P, M) = X[n] (P, C) @ W.T, one BLAS matmul per image (X[n] is a view of
    channels-last memory, or the transpose of an NCHW image: BLAS reads either).
  * everything else (the stem, grouped, dilated, strided 1x1): im2col and one matmul per group: from the
    padded channels-last input (a strided view, one row of kh * kw * C/group values per output pixel), or,
    for NCHW memory (the model's input), from the NCHW windows (C/group * kh * kw, P), transposed.
Other ranks (1-D, 3-D, ...) stay in NCHW memory: depthwise as one multiply-add per tap over the whole
tensor, 1x1 as a subsample then a matmul, the rest as im2col (N, C/group * prod(k), L) and a matmul.

ConvTranspose is the adjoint (gradient) of Conv: X (N, C, *in), W (C, M/group, *k) -> Y (N, M, *out).
Each input pixel scatters W * x into the output at o = i * stride + j * dilation - pad_begin. Computed as
one matmul per group (col = W^T X) followed by col2im: one strided add per kernel tap.

Versions: 1, 11 and 22 have the same semantics (11 only spelled out the defaults of strides/dilations and
the auto_pad split, 22 added bfloat16, which tinyrt does not support).
float16 is accumulated in float32 and rounded back once.
"""
import itertools

import numpy as np

from .. import limits
from ..errors import InputError, ModelError, UnsupportedError
from .registry import counts_macs, infers, op, static_shape
from ._static_shape import window_out
from ._infer_types import first, spatial
from ._depthwise import depthwise_conv, depthwise_phases, tile_depthwise
from . import _window as win


# N-D depthwise outputs of at most this many pixels per channel run channels-last (see _conv_nd())
_CHANNELS_LAST_MAX = 3136
# one BLAS call per output row (a matmul whose rows are not one matrix: read from or written into a zero
# border, ops/_bordered.py) only for rows of at least this many pixels and multiply-adds: it is slower than
# a copy and one call on small rows (measured: 20x20 with 112 -> 672 channels, 726 against 480 us; 10x10
# with 480 -> 256, 539 against 250; 40x40 with 8 -> 48, 133 against 79) and faster than one call on long
# ones (SSDlite320's 40x40 to 160x160 layers with 16 -> 64 channels and more: at 160x160, 554 against 881)
ROWS_MIN_WIDTH = 32
ROWS_MIN_MACS = 65536


def rows_pay(width, macs):
    """Whether a matmul goes one output row at a time: rows of ``width`` pixels, ``macs`` multiply-adds."""
    return width >= ROWS_MIN_WIDTH and macs >= ROWS_MIN_MACS


def _check_conv(op_type):
    def check(**attrs):
        win.check_auto_pad(op_type, attrs.get("auto_pad"))
        group = attrs.get("group", 1)
        if group is not None and group < 1:
            raise UnsupportedError("%s: group=%r must be >= 1" % (op_type, group))
    return check


def _grouped_matmul(w, cols):
    """(g, A, K) x (N, g, K, L) -> (N, g, A, L), as one 2-D matmul per (image, group).

    Explicit 2-D products always reach BLAS; numpy's broadcasting matmul over stacks of 3-D/4-D arrays
    can fall back to a slow non-BLAS loop (measured: 50x slower on a 32x27 by 27x12544 product).
    """
    N, g, _, L = cols.shape
    y = np.empty((N, g, w.shape[1], L), dtype=np.result_type(w, cols))
    for n in range(N):
        for i in range(g):
            np.matmul(w[i], cols[n, i], out=y[n, i])
    return y


def _kernel(op_type, W, kernel_shape):
    """The kernel shape, from W; the attribute, if given, must agree."""
    kernel = list(W.shape[2:])
    if kernel_shape is not None and [int(k) for k in kernel_shape] != kernel:
        raise ModelError("%s: kernel_shape=%s does not match the weight shape %s"
                         % (op_type, list(kernel_shape), W.shape))
    return kernel


@op("Conv", 1, 11, 22, check=_check_conv("Conv"))
def conv(X, W, B=None, *, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None,
         strides=None):
    win.require_float("Conv", X)
    win.require_rank("Conv", X)
    if W.ndim != X.ndim:
        raise InputError("Conv: weight shape %s does not fit input shape %s" % (W.shape, X.shape))
    N, C = X.shape[:2]
    M, Cg = W.shape[:2]
    if C != Cg * group or M % group:
        raise InputError("Conv: input has %d channels and weight shape %s; with group=%d the weight must "
                         "be (M, C/group, ...) with M divisible by group" % (C, W.shape, group))
    kernel = _kernel("Conv", W, kernel_shape)
    spatial = list(X.shape[2:])
    kernel, strides, dilations, begin, end, out = win.geometry(
        "Conv", spatial, kernel, strides, dilations, pads, auto_pad)

    dtype = X.dtype
    ct = win.compute_dtype(dtype)
    L = limits.product(out)  # Python ints: huge pads must not wrap around
    K = limits.product(kernel)
    # sizes come from attributes and weights: check them before allocating (see tinyrt/limits.py)
    padded = [n + max(0, b) + max(0, e) for n, b, e in zip(spatial, begin, end)]
    limits.check_shape((N, max(C, M)) + tuple(padded), ct, "Conv (padded input)")
    limits.check_shape((N, M, L), ct, "Conv (output)")
    if K > 1 and not (group == C and Cg == 1):
        limits.check_shape((N, C * K, L), ct, "Conv (im2col columns)")
    limits.spend_macs(N * M * L * Cg * K, "Conv")
    limits.spend(K * limits.LOOP_COST, "Conv")  # the depthwise path loops over the kernel taps
    if B is not None and B.shape != (M,):
        raise InputError("Conv: bias shape %s, expected (%d,)" % (B.shape, M))
    x = X.astype(ct, copy=False)
    w = W.astype(ct, copy=False)
    if len(out) == 2:
        if group == C and Cg == 1:
            # the tiled weights (below) are at most kh * kw * OW * M values: from the file's sizes, so check them
            limits.check_shape((K, out[1] * M), ct, "Conv (tiled depthwise weights)")
        y = _conv2d(x, w, group, kernel, strides, dilations, begin, end, out)  # (N, OH, OW, M)
        if B is not None:  # tiled over a row, like the depthwise weights: OW * M-long loops, not M-long
            rows = y.reshape(N * out[0], out[1] * M)
            rows += np.tile(B.astype(ct, copy=False), out[1])
        return y.astype(dtype, copy=False).transpose(0, 3, 1, 2)
    y = _conv_nd(x, w, group, kernel, strides, dilations, begin, end, out)
    if B is not None:
        y += B.astype(ct, copy=False).reshape((M,) + (1,) * len(out))
    return y.astype(dtype, copy=False)


@static_shape(conv)
def _conv_shape(node, shapes, constants):
    x, w, a = shapes[0], shapes[1], node.attrs
    if w is None:
        return None
    kernel = a.get("kernel_shape") or list(w[2:])
    return (x[0], w[0]) + tuple(window_out(x[2:], kernel, a, False))


@counts_macs(conv)
def conv_macs(args, out, attrs):
    """Each output value is C/group * kernel products (FusedConv counts the same, see fused.py)."""
    if len(args) > 1 and isinstance(args[1], np.ndarray):
        return int(out.size) * int(np.prod(args[1].shape[1:]))
    return 0


def matmul_weights(w, group):
    """w (M, C/group, kh, kw) as the right-hand matrices of ``_conv2d``'s matmuls, made once by a prepared
    conv: (by_channel, by_tap), each (group, C/group * kh * kw, M/group) and C-contiguous, rows in the order
    of the im2col columns: (c, i, j) for NCHW memory, (i, j, c) for channels-last memory (the same for 1x1).

    Why not the transposed views of w: OpenBLAS runs a C-contiguous right-hand matrix much faster on the
    few rows of a small feature map (4 x 256 @ 256 x 546: 10 us against 57 us; 25 x 512 @ 512 x 546: 122
    against 205 us, one thread)."""
    M, Cg, kh, kw = w.shape
    Mg = M // group
    by_channel = np.ascontiguousarray(w.reshape(group, Mg, Cg * kh * kw).transpose(0, 2, 1))
    if kh * kw == 1:
        return by_channel, by_channel
    by_tap = np.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(group, Mg, kh * kw * Cg).transpose(0, 2, 1))
    return by_channel, by_tap


def _conv2d(x, w, group, kernel, strides, dilations, begin, end, out, tiled=None, mats=None, into=None):
    """2-D Conv without bias: x (N, C, H, W) in any memory layout -> y (N, OH, OW, M), C-contiguous, or
    written into ``into`` (an (N, OH, OW, M) array whose rows of OW * M values are contiguous: the interior
    of a bordered buffer, ops/_bordered.py).

    ``tiled``: the depthwise weights tiled over a few output pixels (``tile_depthwise``), when made already;
    ``mats``: the matmuls' weights (``matmul_weights``), when made already."""
    N, C, H, W = x.shape
    M, Cg = w.shape[:2]
    Mg = M // group
    (kh, kw), (sh, sw), (dh, dw), (OH, OW) = kernel, strides, dilations, out
    if group == C and Cg == 1:
        # depthwise: y[n, oh, ow, m] = sum_{i, j} w[m, 0, i, j] * xp[n, oh * sh + i * dh, ow * sw + j * dw, m],
        # xp the padded input, channels last: read in place when x lies in a zero border wide enough,
        # else copied, one einsum per column phase (``depthwise_phases``)
        if M != C:
            x = np.repeat(x, M // C, axis=1)  # output channel m reads input channel m // (M / C)
        wt = tile_depthwise(w, OW) if tiled is None else tiled
        phases = depthwise_phases(x.shape, x.dtype.itemsize, kernel, strides, dilations, begin, end, out)
        return depthwise_conv(x, [(b, view, wt[:, js]) for b, js, view in phases], wt, kernel, strides,
                              dilations, begin, end, out, into)
    y = np.empty((N, OH, OW, M), dtype=x.dtype) if into is None else into
    # per output row (numpy's matmul loops over the rows, one BLAS call each) where y is not one matrix
    by_rows = into is not None and not into.flags.c_contiguous
    if kh == kw == sh == sw == 1 and group == 1 and not any(begin + end):
        # 1x1: Y[n] (P, M) = X[n] (P, C) @ W.T, P = H * W pixels
        wt = w.reshape(M, C).T if mats is None else mats[0][0]
        for n in range(N):
            xn = x[n].transpose(1, 2, 0)  # (H, W, C)
            if xn.flags.c_contiguous:  # channels-last memory: a (P, C) view
                xn = xn.reshape(H * W, C)
            elif x[n].flags.c_contiguous:  # NCHW memory: the transpose of a (C, P) matrix, BLAS reads it
                xn = x[n].reshape(C, H * W).T
            elif xn.strides[1:] == (C * x.itemsize, x.itemsize) and rows_pay(W, W * C * M):
                np.matmul(xn, wt, out=y[n])  # rows of pixels (a bordered interior): one BLAS call a row
                continue
            else:
                xn = np.ascontiguousarray(xn).reshape(H * W, C)
            _pixels_matmul(xn, wt, y[n], slice(None), by_rows)
        return y
    if x.flags.c_contiguous and not x.transpose(0, 2, 3, 1).flags.c_contiguous:
        # NCHW memory (the model's input): im2col as it lies, cols[n, g] (C/group * kh * kw, P) with rows
        # (c, i, j), and Y[n, :, group g] (P, M/group) = cols[n, g].T @ W[g].T
        xp = win.pad_spatial(x, begin, end)
        cols = win.windows(xp, kernel, strides, dilations, out, kernel_first=True)
        cols = cols.reshape(N, group, Cg * kh * kw, OH * OW)
        wm = w.reshape(group, Mg, Cg * kh * kw).transpose(0, 2, 1) if mats is None else mats[0]
        for n in range(N):
            for g in range(group):
                _pixels_matmul(cols[n, g].T, wm[g], y[n], slice(g * Mg, (g + 1) * Mg), by_rows)
        return y
    # channels-last memory: im2col from the padded channels-last input, one row per output pixel,
    # cols[(n, oh, ow), (i, j, c)] = xp[n, oh * sh + i * dh, ow * sw + j * dw, g * Cg + c], per group g
    xp = win.padded_last(x, begin, end)
    if mats is None:  # W rows ordered (i, j, c) like cols
        wm = w.transpose(0, 2, 3, 1).reshape(group, Mg, kh * kw * Cg).transpose(0, 2, 1)
    else:
        wm = mats[1]
    for g in range(group):
        cols = win.windows_last(xp[..., g * Cg:(g + 1) * Cg], kernel, strides, dilations, out)
        _pixels_matmul(cols.reshape(N * OH * OW, kh * kw * Cg), wm[g], y, slice(g * Mg, (g + 1) * Mg), by_rows)
    return y


def _pixels_matmul(a, w, y, channels, by_rows):
    """y[..., channels] = a @ w, y (..., OH, OW, M) and a (pixels, K) with the pixels in y's order: one BLAS
    call over them all (y fresh, so (pixels, M) is a view of it), or, ``by_rows``, one a row of pixels (y the
    interior of a bordered buffer, ops/_bordered.py, whose rows lie apart)."""
    if by_rows:
        np.matmul(a.reshape(y.shape[:-1] + (a.shape[-1],)), w, out=y[..., channels])
    else:
        np.matmul(a, w, out=y.reshape(a.shape[0], y.shape[-1])[:, channels])  # (a's rows: y's pixels, 0 too)


def _conv_nd(x, w, group, kernel, strides, dilations, begin, end, out):
    """Conv without bias for any rank, in NCHW memory: x (N, C, *in) -> y (N, M, *out)."""
    N, C = x.shape[:2]
    M, Cg = w.shape[:2]
    ct = x.dtype
    L = limits.product(out)
    K = limits.product(kernel)
    xp = win.pad_spatial(x, begin, end)

    if group > 1 and group == C and Cg == 1:
        # depthwise (M = C, or a channel multiplier M = k * C): per kernel tap, multiply the strided input
        # by that tap's weight for every channel and accumulate.
        if M != C:
            xp = np.repeat(xp, M // C, axis=1)  # output channel m reads input channel m // (M / C)
        taps = list(itertools.product(*[range(k) for k in kernel]))
        if L <= _CHANNELS_LAST_MAX:
            # small planes: channels last, so every multiply-add runs over long contiguous rows of M
            # channels instead of many short rows of a few pixels (2-4x faster at 28x28 and below)
            xl = np.ascontiguousarray(np.moveaxis(xp, 1, -1))
            wl = w[:, 0].reshape(M, K).T
            y = np.empty((N,) + tuple(out) + (M,), dtype=ct)
            tmp = np.empty_like(y)
            for i, tap in enumerate(taps):
                sl = win.tap_slices([j * d for j, d in zip(tap, dilations)], strides, out)
                np.multiply(xl[sl[:1] + sl[2:] + (slice(None),)], wl[i], out=y if i == 0 else tmp)
                if i:
                    y += tmp
            y = np.ascontiguousarray(np.moveaxis(y, -1, 1))
        else:
            y = np.empty((N, M) + tuple(out), dtype=ct)
            tmp = np.empty_like(y)
            bshape = (M,) + (1,) * len(out)
            for i, tap in enumerate(taps):
                offsets = [j * d for j, d in zip(tap, dilations)]
                np.multiply(xp[win.tap_slices(offsets, strides, out)],
                            w[(slice(None), 0) + tap].reshape(bshape), out=y if i == 0 else tmp)
                if i:
                    y += tmp
    elif K == 1:
        # 1x1: pick every stride-th pixel, then a plain (grouped) matmul.
        xs = xp[win.tap_slices([0] * len(out), strides, out)]
        y = _grouped_matmul(w.reshape(group, M // group, Cg), xs.reshape(N, group, Cg, L))
    else:
        # im2col: (N, C, *k, *out) view -> (N, group, C/group * K, L) matrix, one matmul per group.
        cols = win.windows(xp, kernel, strides, dilations, out, kernel_first=True)
        cols = cols.reshape(N, group, Cg * K, L)
        y = _grouped_matmul(w.reshape(group, M // group, Cg * K), cols)
    return y.reshape((N, M) + tuple(out))


def _transpose_geometry(spatial, kernel, strides, dilations, pads, auto_pad, output_padding,
                        output_shape):
    """Output size and (begin, end) crop of the full col2im result, per spatial axis.

    The full result of scattering has size ``(n - 1) * s + (k - 1) * d + 1 + output_padding``; the output
    is that minus the pads. With ``output_shape`` or SAME auto_pad, the pads are derived from the wanted
    output size: SAME_UPPER puts the odd pixel of the total at the end, otherwise at the start
    (ONNX spec since version 11, matching onnxruntime).
    """
    rank = len(spatial)
    opad = win.per_axis("ConvTranspose", "output_padding", output_padding, rank, 0)
    if output_shape is not None:
        output_shape = [int(v) for v in output_shape]
        if len(output_shape) == rank + 2:  # some old exporters include N and C
            output_shape = output_shape[2:]
        if len(output_shape) != rank:
            raise ModelError("ConvTranspose: output_shape=%s does not have %d spatial sizes"
                             % (output_shape, rank))
    begin, end, out = [], [], []
    for i, n in enumerate(spatial):
        k, s, d = kernel[i], strides[i], dilations[i]
        full = (n - 1) * s + (k - 1) * d + 1 + opad[i]
        if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            o = output_shape[i] if output_shape is not None else n * s
            total = max(0, full - o)
            small, big = total // 2, total - total // 2
            pb, pe = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
        else:
            if auto_pad == "VALID" or pads is None:
                pb = pe = 0
            else:
                if len(pads) != 2 * rank:
                    raise ModelError("ConvTranspose: pads=%s needs %d values" % (list(pads), 2 * rank))
                pb, pe = int(pads[i]), int(pads[i + rank])
            o = full - pb - pe
        if o <= 0:
            raise InputError("ConvTranspose: output size along spatial axis %d would be %d" % (i, o))
        begin.append(pb)
        end.append(pe)
        out.append(o)
    return begin, out


@op("ConvTranspose", 1, 11, 22, check=_check_conv("ConvTranspose"))
def conv_transpose(X, W, B=None, *, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None,
                   output_padding=None, output_shape=None, pads=None, strides=None):
    win.require_float("ConvTranspose", X)
    win.require_rank("ConvTranspose", X)
    if W.ndim != X.ndim:
        raise InputError("ConvTranspose: weight shape %s does not fit input shape %s" % (W.shape, X.shape))
    N, C = X.shape[:2]
    if W.shape[0] != C or C % group:
        raise InputError("ConvTranspose: input has %d channels, weight shape %s must be (C, M/group, ...) "
                         "with C divisible by group=%d" % (C, W.shape, group))
    Cg, Mg = C // group, W.shape[1]
    M = Mg * group
    kernel = _kernel("ConvTranspose", W, kernel_shape)
    spatial = list(X.shape[2:])
    rank = len(spatial)
    strides = win.per_axis("ConvTranspose", "strides", strides, rank, 1)
    dilations = win.per_axis("ConvTranspose", "dilations", dilations, rank, 1)
    begin, out = _transpose_geometry(spatial, kernel, strides, dilations, pads, auto_pad,
                                     output_padding, output_shape)

    dtype = X.dtype
    ct = win.compute_dtype(dtype)
    K = int(np.prod(kernel))
    L = int(np.prod(spatial))
    # sizes come from attributes (strides, output_shape, pads): check them before allocating
    limits.check_shape((N, M * K, L), ct, "ConvTranspose (columns)")
    full = [max(max(0, -b) + (n - 1) * s + (k - 1) * d + 1, max(0, b) + o)
            for b, n, s, k, d, o in zip(begin, spatial, strides, kernel, dilations, out)]
    limits.check_shape((N, M) + tuple(full), ct, "ConvTranspose (output)")
    limits.spend_macs(N * C * Mg * K * L, "ConvTranspose")
    limits.spend(K * limits.LOOP_COST, "ConvTranspose")  # col2im loops over the kernel taps
    # col[n, g, (m, tap), i] = sum_c W[g*Cg + c, m, tap] * X[n, g*Cg + c, i]
    wg = W.astype(ct, copy=False).reshape(group, Cg, Mg * K).transpose(0, 2, 1)
    col = _grouped_matmul(wg, X.astype(ct, copy=False).reshape(N, group, Cg, L))
    col = col.reshape((N, M) + tuple(kernel) + tuple(spatial))

    # col2im into a buffer big enough for both the full scatter and the requested crop.
    # Negative pads (cropping less than nothing) shift the scatter right instead.
    shift = [max(0, -b) for b in begin]
    begin = [max(0, b) for b in begin]
    size = [max(sh + (n - 1) * s + (k - 1) * d + 1, b + o)
            for sh, n, s, k, d, b, o in zip(shift, spatial, strides, kernel, dilations, begin, out)]
    buf = np.zeros((N, M) + tuple(size), dtype=ct)
    for tap in itertools.product(*[range(k) for k in kernel]):
        offsets = [sh + j * d for sh, j, d in zip(shift, tap, dilations)]
        buf[win.tap_slices(offsets, strides, spatial)] += col[(slice(None), slice(None)) + tap]
    y = buf[(slice(None), slice(None)) + tuple(slice(b, b + o) for b, o in zip(begin, out))]
    if B is not None:
        if B.shape != (M,):
            raise InputError("ConvTranspose: bias shape %s, expected (%d,)" % (B.shape, M))
        y = y + B.astype(ct, copy=False).reshape((M,) + (1,) * rank)
    return np.ascontiguousarray(y).astype(dtype, copy=False)


@counts_macs(conv_transpose)
def _conv_transpose_macs(args, out, attrs):
    """Each input value is scattered through M/group * kernel products."""
    if isinstance(args[0], np.ndarray):
        return int(args[0].size) * int(np.prod(args[1].shape[1:]))
    return 0


@infers(conv)
def conv_types(node, ins, constants):
    """Conv and ConvInteger: (N, M, the windows' output sizes); the first input's type."""
    (elem, x), w = first(ins), ins[1][1]
    if x is None or w is None:
        return [(elem, None)]
    kernel = node.attrs.get("kernel_shape") or w[2:]
    return [(elem, [x[0], w[0]] + spatial(node, x, kernel))]
