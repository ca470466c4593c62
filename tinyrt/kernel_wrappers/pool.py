"""MaxPool, AveragePool and GlobalAveragePool on the numba kernels (kernels/pool.py)."""
import numpy as np

from .base import KernelWrapper
from .layout import channels_last_memory, to_channels_last
from .segment import NO_WEIGHTS, Layer


class _PoolKernel(KernelWrapper):
    @property
    def kernel_name(self):
        return "numba pool." + ("max_pool" if self.op_type == "MaxPool" else "avg_pool")

    def __init__(self, backend, step, op_type):
        from ..ops import pool
        self.pool = pool
        super().__init__(backend, step)
        self.op_type = op_type
        a = step.attrs
        self.args = (a.get("kernel_shape"), a.get("strides"), a.get("dilations"), a.get("pads"),
                     a.get("auto_pad", "NOTSET"), a.get("ceil_mode", 0))
        self.include_pad = bool(a.get("count_include_pad", 0))
        self._geometry = {}

    def __call__(self, X, **attrs):
        attrs = attrs or self.step_attrs  # the program calls a wrapper without them (bound here)
        if X.dtype != np.float32 or X.ndim != 4:
            return self.ref(X, **attrs)
        g = self._geometry.get(X.shape)
        if g is None:
            g = self.pool._Geometry(self.op_type, X, *self.args)
            self._geometry[X.shape] = g
        if min(g.begin + g.end) < 0:
            return self.ref(X, **attrs)
        x = to_channels_last(X)
        y = np.empty((X.shape[0],) + tuple(g.out) + (X.shape[1],), np.float32)
        (kh, kw), (sh, sw), (dh, dw), (pt, pl) = g.kernel, g.strides, g.dilations, g.begin
        geometry = (kh, kw, sh, sw, dh, dw, pt, pl)
        if self.op_type == "MaxPool":
            self.backend.pool.run(self.k.pool.max_pool, (x, y) + geometry)
        else:
            self.backend.pool.run(self.k.pool.avg_pool, (x, y) + geometry + (g.end[0], g.end[1], self.include_pad))
        return y.transpose(0, 3, 1, 2)  # channels-last memory, like the convs' results

    def specialize(self, args, fixed):
        """This pool for one signature of the compiled program (see _ConvKernel.specialize)."""
        X = args[0]
        if type(X) is not np.ndarray or X.dtype != np.float32 or X.ndim != 4:
            return None
        g = self._geometry.get(X.shape)
        if g is None or min(g.begin + g.end) < 0:
            return None
        (kh, kw), (sh, sw), (dh, dw), (pt, pl) = g.kernel, g.strides, g.dilations, g.begin
        rest = (kh, kw, sh, sw, dh, dw, pt, pl)
        kernel = self.k.pool.max_pool
        if self.op_type != "MaxPool":
            kernel, rest = self.k.pool.avg_pool, rest + (g.end[0], g.end[1], self.include_pad)
        yshape = (X.shape[0],) + tuple(g.out) + (X.shape[1],)
        run = self.backend.pool.run
        entry = self.backend.pool.entry_point(kernel, (to_channels_last(X), np.empty(yshape, np.float32)) + rest)

        def call(X, **attrs):
            y = np.empty(yshape, np.float32)
            run(entry, (to_channels_last(X), y) + rest)
            return y.transpose(0, 3, 1, 2)
        return call, 0


class _GlobalAvgPoolKernel(KernelWrapper):
    """GlobalAveragePool of channels-last memory (what the convs write): one pass over the pixels, where
    numpy would reduce across the strides of the (N, C, H, W) view."""

    kernel_name = 'numba pool.global_avg_pool'  # what tinyrt profile / trace / code show

    def __call__(self, X, **attrs):
        attrs = attrs or self.step_attrs  # the program calls a wrapper without them (bound here)
        if X.dtype != np.float32 or not channels_last_memory(X):
            return self.ref(X, **attrs)
        N, C, H, W = X.shape
        y = np.empty((N, C), np.float32)
        self.backend.pool.run(self.k.pool.global_avg_pool, (X.transpose(0, 2, 3, 1).reshape(N, H * W, C), y), False)
        return y.reshape(N, C, 1, 1)

    def specialize(self, args, fixed):
        """This pool for one signature of the compiled program (see _ConvKernel.specialize)."""
        X = args[0]
        if type(X) is not np.ndarray or X.dtype != np.float32 or not channels_last_memory(X):
            return None
        N, C, H, W = X.shape
        run, general = self.backend.pool.run, self.__call__
        entry = self.backend.pool.entry_point(self.k.pool.global_avg_pool, (
            X.transpose(0, 2, 3, 1).reshape(N, H * W, C), np.empty((N, C), np.float32)))

        def call(X, **attrs):
            if not X.transpose(0, 2, 3, 1).flags.c_contiguous:  # this run's input is laid out otherwise
                return general(X, **attrs)
            y = np.empty((N, C), np.float32)
            run(entry, (X.transpose(0, 2, 3, 1).reshape(N, H * W, C), y), False)
            return y.reshape(N, C, 1, 1)
        # a layer a segment may take (kernel_wrappers/segment.py): the same kernel, by this thread alone
        call.layer = Layer("gap", (), 0, (0, 0, 0), NO_WEIGHTS, NO_WEIGHTS, (N, H, W, C), (N, 1, 1, C), False, False,
                           self.backend.threads)
        return call, 0


def _max_pool(backend, step, constants):
    if any(step.outputs[1:]):  # Indices wanted: the numpy op
        return None
    return _PoolKernel(backend, step, "MaxPool")


def _avg_pool(backend, step, constants):
    return _PoolKernel(backend, step, "AveragePool")
