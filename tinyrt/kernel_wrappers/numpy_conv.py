"""The numpy path's prepared Conv (the numpy path has no compiled kernels, but a conv's geometry,
checks and tiled weights are worked out once per input shape, not on every call).

A conv whose result depthwise convs read (``border_for_readers``, at bind) writes it inside a zero border as
wide as their pads (ops/_bordered.py): they then read it where it lies, with no padded copy."""
import numpy as np

from .. import limits


class _NumpyConv:
    """The numpy path's 2-D float32 Conv / FusedConv with constant weights, prepared once per input shape:
    its geometry, size checks and work, the depthwise weights and the bias tiled over an output row (the
    numpy op computes all of those on every call, which costs more than the math of a small conv). The
    math is the numpy op's own (ops/conv.py ``_conv2d``, ops/fused.py ``apply_activation``)."""

    step_attrs = {}  # the node's attributes (set by bind)

    def __init__(self, step, W, B):
        from ..ops import conv, fused, _depthwise, _window
        from ..ops._bordered import bordered, rows_view
        self.conv, self.fused, self.win, self.bordered, self.rows_view = conv, fused, _window, bordered, rows_view
        self.dw = _depthwise
        self.ref = step.fn
        a = step.attrs
        self.rounding = a.get("input_rounding")  # X rounded first (ops/fused.py)
        # the tail, part of it in the weights where its record folds (a QDQ rounding's 1/scale, HardSwish's
        # 1/sqrt(6); not with a residual)
        has_z = len(step.inputs) > 3 and bool(step.inputs[3])
        W, B, self.tail = fused.prepared_tail(W, B, a.get("activation", ""), a.get("activation_params"),
                                              fold=not has_z)
        self.W = W
        self.B = B
        self.M, self.cg = W.shape[:2]
        self.group = int(a.get("group", 1))
        self.kernel_shape = a.get("kernel_shape")
        self.geometry_attrs = dict(strides=a.get("strides"), dilations=a.get("dilations"), pads=a.get("pads"),
                                   auto_pad=a.get("auto_pad", "NOTSET"))
        # the matmuls' weights, made once (one input channel a group: _conv2d's depthwise branch, no matmul)
        self.mats = None if self.cg == 1 or self.M % self.group else conv.matmul_weights(W, self.group)
        self.border = None  # (top, bottom, left, right): the zero border its readers want (set by bind)
        self.border_from = None  # the prepared conv whose bordered result this depthwise conv reads (bind)
        self._prepared = {}

    @property
    def kernel_name(self):
        """What tinyrt profile / trace / code show: whether it writes its result inside a zero border, or
        reads its input in place in one (once a run has prepared it for its shape)."""
        label = "numpy conv, prepared"
        if self._bordered():
            label += ", into a zero border"
        if self.border_from is not None and self.border_from._bordered():
            label += ", input read in place"
        return label

    def _bordered(self):
        return any(p is not None and p[-1] is not None for p in self._prepared.values())

    def reads_in_place(self, attrs):
        """Whether this conv, a depthwise one, reads an input that lies in a zero border where it lies
        (ops/_depthwise.py ``depthwise_conv``)."""
        if self.cg != 1 or self.group != self.M or self.rounding is not None or self.W.ndim != 4:
            return False
        strides = attrs.get("strides") or [1, 1]
        return len(strides) == 2 and self.dw.reads_border_in_place(self.M, self.W.shape[2:], strides)

    def prepare(self, shape, limit):
        key = (shape, limit)
        p = self._prepared.get(key)
        if p is None:
            N, C, H, Wd = shape
            M, cg, g = self.M, self.cg, self.group
            kernel = list(self.W.shape[2:])
            if C != cg * g or M % g or (self.kernel_shape is not None and list(self.kernel_shape) != kernel):
                return None  # the numpy op reports it
            kernel, strides, dilations, begin, end, out = self.win.geometry(
                "Conv", [H, Wd], kernel, **self.geometry_attrs)
            # what the numpy op checks before allocating (see ops/conv.py), once per shape and limit
            K = kernel[0] * kernel[1]
            padded = [n + max(0, b) + max(0, e) for n, b, e in zip([H, Wd], begin, end)]
            limits.check_shape((N, max(C, M)) + tuple(padded), np.float32, "Conv (padded input)")
            limits.check_shape((N, M, out[0] * out[1]), np.float32, "Conv (output)")
            depthwise = g == C and cg == 1
            if K > 1 and not depthwise:
                limits.check_shape((N, C * K, out[0] * out[1]), np.float32, "Conv (im2col columns)")
            tiled = None
            if depthwise:
                limits.check_shape((K, out[1] * M), np.float32, "Conv (tiled depthwise weights)")
                tiled = self.dw.tile_depthwise(self.W, out[1])
            bias = None if self.B is None else np.tile(self.B, out[1])
            work = int(N * M * out[0] * out[1] * cg * K * limits.MAC_COST) + K * limits.LOOP_COST
            row_macs = out[1] * M * cg * K  # one BLAS call's multiply-adds when the rows go one by one
            # (a conv writes into a border one output row at a time: only where that is fast, and there is
            # nothing to gain by writing its result there in a sweep of its own: measured)
            border = self.border if self.border is not None and self.conv.rows_pay(out[1], row_macs) else None
            if border is not None:
                t, b, l, r = border
                limits.check_shape((N, out[0] + t + b, out[1] + l + r, M), np.float32, "Conv (bordered output)")
            p = (kernel, strides, dilations, begin, end, out, tiled, bias, work, border)
            if len(self._prepared) > 16:
                self._prepared.clear()
            self._prepared[key] = p
        return p

    def __call__(self, X, W, B=None, Z=None, **attrs):
        attrs = attrs or self.step_attrs
        p = None
        if X.dtype == np.float32 and X.ndim == 4:
            p = self.prepare(X.shape, limits.current().tensor_bytes)
        if p is None:
            return self.ref(X, W, B, Z, **attrs) if Z is not None else self.ref(X, W, B, **attrs)
        kernel, strides, dilations, begin, end, out, tiled, bias, work, border = p
        limits.spend(work, "Conv")
        if self.rounding is not None:
            X = self.fused.round_input(X, self.rounding)
        into = None if border is None else self.bordered((X.shape[0], out[0], out[1], self.M), border)
        y = self.conv._conv2d(X, self.W, self.group, kernel, strides, dilations, begin, end, out, tiled,
                              self.mats, into)
        N, OH, OW, M = y.shape
        if Z is not None and Z.shape != (N, M, OH, OW):
            return self.ref(X, W, B, Z, **attrs)
        return self._finish(y, bias, Z)

    def _finish(self, y, bias, Z):
        """y (N, OH, OW, M) from ``_conv2d`` plus the bias (tiled over a row), the residual Z and the
        activation, in place; returns its (N, M, OH, OW) view."""
        if bias is not None:
            N, OH, OW, M = y.shape
            # (N, OH, OW * M): a view, also of a bordered interior (whose rows are not one block)
            rows = y.reshape(N, OH, OW * M) if y.flags.c_contiguous else self.rows_view(y)
            rows += bias
        y = y.transpose(0, 3, 1, 2)
        if Z is not None:
            y += Z
        if self.tail is not None:
            self.tail(y)
        return y

    def specialize(self, args, fixed):
        """This conv for one signature of the compiled program (tinyrt/program.py): what ``__call__`` works
        out per call (the geometry, the depthwise conv's phases and their tiled weights, the checks and the
        work) done once. Returns (call, work), or None where every call must go through ``__call__``."""
        X = args[0]
        Z = args[3] if len(args) > 3 else None
        if type(X) is not np.ndarray or X.dtype != np.float32 or X.ndim != 4:
            return None
        p = self.prepare(X.shape, limits.current().tensor_bytes)
        if p is None:
            return None
        kernel, strides, dilations, begin, end, out, tiled, bias, work, border = p
        N, C = X.shape[:2]
        M, OH, OW = self.M, out[0], out[1]
        if Z is not None and (type(Z) is not np.ndarray or Z.shape != (N, M, OH, OW)):
            return None
        conv, dw, finish, rounding, round_input = self.conv, self.dw, self._finish, self.rounding, \
            self.fused.round_input
        bordered, shape = self.bordered, (N, OH, OW, M)
        if tiled is not None and M == C:  # depthwise: its phases and their weights, once
            phases = [(b, view, np.ascontiguousarray(tiled[:, js])) for b, js, view in
                      dw.depthwise_phases(X.shape, 4, kernel, strides, dilations, begin, end, out)]

            def y_nhwc(X, into):
                return dw.depthwise_conv(X, phases, tiled, kernel, strides, dilations, begin, end, out, into)
        else:
            W, group, mats = self.W, self.group, self.mats

            def y_nhwc(X, into):
                return conv._conv2d(X, W, group, kernel, strides, dilations, begin, end, out, tiled, mats, into)

        def call(X, W=None, B=None, Z=None, **attrs):
            into = None if border is None else bordered(shape, border)
            return finish(y_nhwc(X if rounding is None else round_input(X, rounding), into), bias, Z)
        return call, work


def border_for_readers(plan):
    """Each prepared conv whose result prepared depthwise convs read (as their X) writes it inside the zero
    border their pads want (the widest on each side), so that they read it in place (ops/_bordered.py)."""
    wants, readers = {}, []
    for step in plan.steps:
        fn = step.fn
        if isinstance(fn, _NumpyConv) and fn.reads_in_place(step.attrs):
            pads = _explicit_pads(step.attrs)
            if pads is not None and any(pads):
                want = wants.setdefault(step.inputs[0], [0, 0, 0, 0])
                want[:] = [max(a, b) for a, b in zip(want, pads)]
                readers.append((fn, step.inputs[0]))
    makers = {}
    for step in plan.steps:
        if isinstance(step.fn, _NumpyConv) and step.outputs and step.outputs[0] in wants:
            step.fn.border = tuple(wants[step.outputs[0]])
            makers[step.outputs[0]] = step.fn
    for fn, value in readers:
        fn.border_from = makers.get(value)


def _explicit_pads(attrs):
    """A 2-D conv's (top, bottom, left, right) pads when its attributes spell them out (no auto_pad) and
    they are small (a border wider than this is no common model's), else None."""
    if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", b"NOTSET"):
        return None
    pads = attrs.get("pads") or [0, 0, 0, 0]
    if len(pads) != 4 or not all(0 <= int(p) <= _MAX_BORDER for p in pads):
        return None
    return int(pads[0]), int(pads[2]), int(pads[1]), int(pads[3])


_MAX_BORDER = 8


def _numpy_conv(step, constants):
    names = list(step.inputs) + ["", ""]
    W = constants.get(names[1]) if names[1] else None
    B = constants.get(names[2]) if names[2] else None
    if W is None or W.dtype != np.float32 or W.ndim != 4 or (names[2] and B is None):
        return None
    if B is not None and (B.dtype != np.float32 or B.shape != (W.shape[0],)):
        return None
    return _NumpyConv(step, W, B)
