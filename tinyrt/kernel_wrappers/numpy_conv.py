"""The numpy path's prepared Conv (the numpy path has no compiled kernels, but a conv's geometry,
checks and tiled weights are worked out once per input shape, not on every call)."""
import numpy as np

from .. import limits


class _NumpyConv:
    """The numpy path's 2-D float32 Conv / FusedConv with constant weights, prepared once per input shape:
    its geometry, size checks and work, the depthwise weights and the bias tiled over an output row (the
    numpy op computes all of those on every call, which costs more than the math of a small conv). The
    math is the numpy op's own (ops/conv.py ``_conv2d``, ops/fused.py ``apply_activation``)."""

    kernel_name = 'numpy conv, prepared'  # what tinyrt profile / trace / code show
    step_attrs = {}  # the node's attributes (set by bind)

    def __init__(self, step, W, B):
        from ..ops import conv, fused, _window
        self.conv, self.fused, self.win = conv, fused, _window
        self.ref = step.fn
        a = step.attrs
        self.activation = a.get("activation", "")
        self.params = list(a.get("activation_params") or [])
        self.rounding = a.get("input_rounding")  # X rounded first (ops/fused.py)
        # a tail that takes part of itself into the weights (a QDQ rounding's 1/scale; not with a residual)
        fold = getattr(fused.TAILS.get(self.activation), "fold", None)
        has_z = len(step.inputs) > 3 and step.inputs[3]
        folded = fold(W, B, *self.params) if fold is not None and not has_z else None
        W, B, self.tail = folded if folded is not None else (W, B, None)
        self.W = W
        self.B = B
        self.M, self.cg = W.shape[:2]
        self.group = int(a.get("group", 1))
        self.kernel_shape = a.get("kernel_shape")
        self.geometry_attrs = dict(strides=a.get("strides"), dilations=a.get("dilations"), pads=a.get("pads"),
                                   auto_pad=a.get("auto_pad", "NOTSET"))
        # the matmuls' weights, made once (one input channel a group: _conv2d's depthwise branch, no matmul)
        self.mats = None if self.cg == 1 or self.M % self.group else conv.matmul_weights(W, self.group)
        self._prepared = {}

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
                tiled = self.conv.tile_depthwise(self.W, out[1])
            bias = None if self.B is None else np.tile(self.B, out[1])
            work = int(N * M * out[0] * out[1] * cg * K * limits.MAC_COST) + K * limits.LOOP_COST
            p = (kernel, strides, dilations, begin, end, out, tiled, bias, work)
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
        kernel, strides, dilations, begin, end, out, tiled, bias, work = p
        limits.spend(work, "Conv")
        if self.rounding is not None:
            X = self.fused.round_input(X, self.rounding)
        y = self.conv._conv2d(X, self.W, self.group, kernel, strides, dilations, begin, end, out, tiled,
                              self.mats)
        N, OH, OW, M = y.shape
        if Z is not None and Z.shape != (N, M, OH, OW):
            return self.ref(X, W, B, Z, **attrs)
        return self._finish(y, bias, Z)

    def _finish(self, y, bias, Z):
        """y (N, OH, OW, M) from ``_conv2d`` plus the bias (tiled over a row), the residual Z and the
        activation, in place; returns its (N, M, OH, OW) view."""
        if bias is not None:
            N, OH, OW, M = y.shape
            rows = y.reshape(N * OH, OW * M)
            rows += bias
        y = y.transpose(0, 3, 1, 2)
        if Z is not None:
            y += Z
        if self.tail is not None:
            self.tail(y)
        elif self.activation:
            self.fused.apply_activation(y, self.activation, self.params)
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
        kernel, strides, dilations, begin, end, out, tiled, bias, work = p
        N, C = X.shape[:2]
        M, OH, OW = self.M, out[0], out[1]
        if Z is not None and (type(Z) is not np.ndarray or Z.shape != (N, M, OH, OW)):
            return None
        conv, finish, rounding, round_input = self.conv, self._finish, self.rounding, self.fused.round_input
        if tiled is not None and M == C:  # depthwise: its phases and their weights, once
            phases = [(b, view, np.ascontiguousarray(tiled[:, js])) for b, js, view in
                      conv.depthwise_phases(X.shape, 4, kernel, strides, dilations, begin, end, out)]

            def y_nhwc(X):
                return conv.depthwise(X, phases, begin, end, strides[1], out)
        else:
            W, group, mats = self.W, self.group, self.mats

            def y_nhwc(X):
                return conv._conv2d(X, W, group, kernel, strides, dilations, begin, end, out, tiled, mats)

        def call(X, W=None, B=None, Z=None, **attrs):
            return finish(y_nhwc(X if rounding is None else round_input(X, rounding)), bias, Z)
        return call, work


def _numpy_conv(step, constants):
    names = list(step.inputs) + ["", ""]
    W = constants.get(names[1]) if names[1] else None
    B = constants.get(names[2]) if names[2] else None
    if W is None or W.dtype != np.float32 or W.ndim != 4 or (names[2] and B is None):
        return None
    if B is not None and (B.dtype != np.float32 or B.shape != (W.shape[0],)):
        return None
    return _NumpyConv(step, W, B)
