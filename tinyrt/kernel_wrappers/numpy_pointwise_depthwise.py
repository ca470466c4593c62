"""The numpy path's PointwiseDepthwise (ops/pointwise_depthwise.py): a 1x1 conv and the depthwise conv striding
over columns that reads it, with the 1x1 conv's result H written straight into the column phases that
depthwise conv reads.

A depthwise conv striding by 2 over columns reads every other pixel. Read where it lies, numpy's einsum
then runs over one pixel's channels at a time (ops/_depthwise.py ``depthwise_in_border``): on SSDlite320's
first such layer (64 channels, 160x160 -> 80x80) that is 2.2 multiply-adds a nanosecond, a third of its
speed over whole rows. In column phase b of the padded H (its columns b, b + 2, ...; ``padded_last`` makes
such copies) every tap reads whole rows again (``depthwise_phases``); and the 1x1 conv is a matmul per row
of pixels, which BLAS reads with any row stride, so it takes X's columns first_b, first_b + 2, ... and
writes phase b's interior directly, inside its zero pads:

    phase b (N, pt + H + pb, cols_b, M): zero pads; interior [pt:pt + H, q0:q0 + n_b] = act1(X[..., first_b::2] @ W + B)
    Y = act(sum over phases b of einsum(phase b's taps, their tiled weights) + DB)

H is never made whole, nor copied. Measured in SSDlite320's runs: that layer's pair 2980 -> 2389 us, the 80x80
one's (72 channels, 5x5) 1239 -> 872; the whole detector 0.977x. Where the rows are too short for one BLAS
call each to pay (ops/conv.py ``rows_pay``: small maps, few channels) the 1x1 conv makes H in one call and
the phases are copied from it (ops/_depthwise.py ``depthwise``), as the two convs apart would run.
"""
import numpy as np

from .. import limits


class _NumpyPointwiseDepthwise:
    """A PointwiseDepthwise node with constant float32 weights, prepared per input shape (geometry, checks,
    phases, tiled weights and biases); anything else runs the op itself (``ref``)."""

    step_attrs = {}  # the node's attributes (set by bind)
    kernel_name = "numpy 1x1 conv into column phases, depthwise conv over them"

    def __init__(self, step, W, B, DW, DB):
        from ..ops import _depthwise, _window, conv, fused
        from ..ops._bordered import in_zero_border, rows_view
        self.dw, self.win, self.rows_view, self.rows_pay = _depthwise, _window, rows_view, conv.rows_pay
        self.in_zero_border = in_zero_border
        self.ref = step.fn
        a = step.attrs
        W, B, self.pointwise_tail = fused.prepared_tail(W, B, a.get("pointwise_activation", ""),
                                                        a.get("pointwise_activation_params"))
        DW, DB, self.tail = fused.prepared_tail(DW, DB, a.get("activation", ""), a.get("activation_params"))
        self.M, self.C = W.shape[:2]
        self.group, self.kernel_shape = int(a.get("group", 1)), a.get("kernel_shape")
        self.mats = conv.matmul_weights(W, 1)[0][0]  # (C, M), C-contiguous
        self.B, self.DW, self.DB = B, DW, DB
        self.geometry_attrs = dict(strides=a.get("strides"), dilations=a.get("dilations"), pads=a.get("pads"),
                                   auto_pad=a.get("auto_pad", "NOTSET"))
        self._prepared = {}

    def prepare(self, shape, limit):
        """Everything that follows from X's shape (and the tensor limit), or None where the op runs as it is."""
        key = (shape, limit)
        if key in self._prepared:
            return self._prepared[key]
        N, C, H, Wd = shape
        M, (kh, kw) = self.M, self.DW.shape[2:]
        p = None
        if C == self.C and self.DW.shape[0] == M == self.group and \
                (self.kernel_shape is None or list(self.kernel_shape) == [kh, kw]):
            kernel, strides, dilations, begin, end, out = self.win.geometry("Conv", [H, Wd], [kh, kw],
                                                                             **self.geometry_attrs)
            if strides[1] == 2 and dilations == [1, 1] and min(begin + end) >= 0:
                p = self._plan(N, H, Wd, kernel, strides, dilations, begin, end, out)
        if len(self._prepared) > 16:
            self._prepared.clear()
        self._prepared[key] = p
        return p

    def _plan(self, N, H, Wd, kernel, strides, dilations, begin, end, out):
        M, C = self.M, self.C
        (pt, pl), (pb, pr), sw = begin, end, strides[1]
        OH, OW = out
        limits.check_shape((N, M, OH * OW), np.float32, "PointwiseDepthwise (output)")
        tiled = self.dw.tile_depthwise(self.DW, OW)
        phases = []
        for b, js, view in self.dw.depthwise_phases((N, M, H, Wd), 4, kernel, strides, dilations, begin, end, out):
            # the phase as ``padded_last`` copies it: its columns q0 ... q0 + n - 1 are X's first, first + 2, ...
            cols, q0, first, n = self.win.column_phase(Wd, pl, pr, b, sw)
            limits.check_shape((N, pt + H + pb, cols, M), np.float32, "PointwiseDepthwise (column phase)")
            bias = None if self.B is None else np.tile(self.B, n)
            phases.append((b, view, np.ascontiguousarray(tiled[:, js]), (pt, pb, q0, cols - q0 - n), first, n, bias))
        bias = None if self.DB is None else np.tile(self.DB, OW)
        # the 1x1 conv writes the phases one BLAS call a row where that is as fast as one call (ops/conv.py
        # ``rows_pay``); on smaller rows it makes H in one call and the phases are copied from it, as the two
        # convs would run apart (ops/_depthwise.py ``depthwise``)
        by_rows = all(self.rows_pay(n, n * C * M) for *_, n, _ in phases)
        whole_bias = None  # the 1x1 conv's bias over a row of H, where H is made whole
        if not by_rows:
            limits.check_shape((N, H, Wd, M), np.float32, "PointwiseDepthwise (1x1 conv's result)")
            whole_bias = None if self.B is None else np.tile(self.B, Wd)
        macs = N * H * Wd * C * M + N * M * OH * OW * kernel[0] * kernel[1]
        work = int(macs * limits.MAC_COST) + kernel[0] * kernel[1] * limits.LOOP_COST
        return (by_rows, N, H, Wd, begin, end, out, phases, whole_bias, bias), work

    def __call__(self, X, W, B=None, DW=None, DB=None, **attrs):
        attrs = attrs or self.step_attrs
        p = None
        if X.__class__ is np.ndarray and X.dtype == np.float32 and X.ndim == 4:
            p = self.prepare(X.shape, limits.current().tensor_bytes)
        if p is None:
            return self.ref(X, W, B, DW, DB, **attrs)
        plan, work = p
        limits.spend(work, "PointwiseDepthwise")
        return self._run(X, plan)

    def _run(self, X, plan):
        by_rows, N, H, Wd, begin, end, (OH, OW), phases, whole_bias, bias = plan
        M, mats = self.M, self.mats
        xl = X.transpose(0, 2, 3, 1)  # (N, H, W, C): a view of channels-last memory (a conv's result)
        if not xl.flags.c_contiguous:
            xl = np.ascontiguousarray(xl)  # (NCHW memory: one copy)
        if by_rows:
            rows = self._phases_by_rows(xl, (OH, OW), phases)
        else:
            h = np.matmul(xl.reshape(N * H * Wd, -1), mats)
            if whole_bias is not None:
                h = h.reshape(N * H, Wd * M)
                h += whole_bias
            h = h.reshape(N, H, Wd, M).transpose(0, 3, 1, 2)
            if self.pointwise_tail is not None:
                self.pointwise_tail(h)
            y = self.dw.depthwise(h, [p[:3] for p in phases], begin, end, 2, (OH, OW))  # (copies its phases)
            rows = y.reshape(N, OH, OW * M)
        if bias is not None:
            rows += bias
        y = rows.reshape(N, OH, OW, M).transpose(0, 3, 1, 2)
        if self.tail is not None:
            self.tail(y)
        return y

    def _phases_by_rows(self, xl, out, phases):
        """The depthwise conv's sums (N, OH, OW * M), from the column phases the 1x1 conv writes a row at a
        time, each inside its zero pads."""
        N, H = xl.shape[:2]
        M, mats = self.M, self.mats
        rows = np.empty((N, out[0], out[1] * M), np.float32)
        for k, (b, view, wt, border, first, n, pointwise_bias) in enumerate(phases):
            phase, inner = self.in_zero_border((N, H, n, M), border)  # inner: rows of n * M values
            for i in range(N):  # X's every other column (the stride is 2: prepare), one BLAS call a row
                np.matmul(xl[i, :, first::2], mats, out=inner[i])
            if pointwise_bias is not None:
                interior_rows = self.rows_view(inner)
                interior_rows += pointwise_bias
            if self.pointwise_tail is not None:  # (the pads stay zero: act(0) need not be 0)
                self.pointwise_tail(inner.transpose(0, 3, 1, 2))
            self.dw.phase_sums(phase, view, wt, rows, k > 0)
        return rows

    def specialize(self, args, fixed):
        """This node for one signature of the compiled program (tinyrt/program.py): its plan made once.
        Returns (call, work), or None where every call must go through ``__call__``."""
        X = args[0]
        if X.__class__ is not np.ndarray or X.dtype != np.float32 or X.ndim != 4:
            return None
        p = self.prepare(X.shape, limits.current().tensor_bytes)
        if p is None:
            return None
        plan, work = p
        run = self._run

        def call(X, W=None, B=None, DW=None, DB=None, **attrs):
            return run(X, plan)
        return call, work


def _numpy_pointwise_depthwise(step, constants):
    names = list(step.inputs) + [""] * 5
    W, DW = constants.get(names[1]), constants.get(names[3])
    B = constants.get(names[2]) if names[2] else None
    DB = constants.get(names[4]) if names[4] else None
    for w, b in ((W, B), (DW, DB)):
        if w is None or w.dtype != np.float32 or w.ndim != 4:
            return None
        if b is not None and (b.dtype != np.float32 or b.shape != (w.shape[0],)):
            return None
    if (names[2] and B is None) or (names[4] and DB is None) or W.shape[2:] != (1, 1) or DW.shape[1] != 1:
        return None
    return _NumpyPointwiseDepthwise(step, W, B, DW, DB)
