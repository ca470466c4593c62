"""Softmax, the squeeze-excite Mul, a large Add and a QDQ model's activation rounding on the numba
kernels (kernels/eltwise.py)."""
import numpy as np

from .. import limits
from ..ops import registry
from .base import KernelWrapper
from .layout import channels_last_memory, to_channels_last
from .segment import NO_WEIGHTS, Layer



class _SoftmaxKernel(KernelWrapper):
    """Softmax of float32 over the last axis (opset 13) or over all axes from ``axis`` (older opsets):
    one row at a time, compiled (a numpy op after the convs runs slowly, its code evicted from cache)."""

    kernel_name = 'numba eltwise.softmax'  # what tinyrt profile / trace / code show

    def __init__(self, backend, step):
        super().__init__(backend, step)
        self.flatten = step.impl.version < 13  # before 13: all axes from ``axis`` at once

    def __call__(self, x, **attrs):
        attrs = attrs or self.step_attrs  # the program calls a wrapper without them (bound here)
        axis = attrs.get("axis", 1 if self.flatten else -1)
        if x.dtype != np.float32 or x.ndim == 0 or x.size == 0 or not -x.ndim <= axis < x.ndim:
            return self.ref(x, **attrs)
        axis %= x.ndim
        if not self.flatten and axis != x.ndim - 1:
            return self.ref(x, **attrs)
        rows = limits.product(x.shape[:axis])
        y = np.empty(x.shape, np.float32)
        self.backend.pool.run(self.k.eltwise.softmax, (np.ascontiguousarray(x).reshape(rows, -1), y.reshape(rows, -1)),
                              False)
        return y


class _MulKernel(KernelWrapper):
    """Mul of (N, C, H, W) by (N, C, 1, 1) (squeeze-excite gating), either order, on channels-last memory."""

    kernel_name = 'numba eltwise.channel_scale'  # what tinyrt profile / trace / code show

    def __call__(self, A, B, **attrs):
        attrs = attrs or self.step_attrs  # the program calls a wrapper without them (bound here)
        if A.dtype == np.float32 and B.dtype == np.float32 and A.ndim == 4 and B.ndim == 4:
            if B.shape[2:] == (1, 1) and A.shape[:2] == B.shape[:2] and A.shape[2] * A.shape[3] > 1:
                x, s = A, B
            elif A.shape[2:] == (1, 1) and A.shape[:2] == B.shape[:2] and B.shape[2] * B.shape[3] > 1:
                x, s = B, A
            else:
                return self.ref(A, B, **attrs)
            N, C, H, W = x.shape
            y = np.empty((N, H, W, C), np.float32)
            self.backend.pool.run(self.k.eltwise.channel_scale, (
                to_channels_last(x).reshape(N, H * W, C), np.ascontiguousarray(s.reshape(N, C)), y.reshape(N, H * W, C)))
            return y.transpose(0, 3, 1, 2)
        return self.ref(A, B, **attrs)

    def specialize(self, args, fixed):
        """This Mul for one signature of the compiled program (see _ConvKernel.specialize)."""
        A, B = args[:2]
        if not (type(A) is np.ndarray and type(B) is np.ndarray and A.dtype == np.float32
                and B.dtype == np.float32 and A.ndim == 4 and B.ndim == 4 and A.shape[:2] == B.shape[:2]):
            return _prepared_ref(self.ref, args)
        if B.shape[2:] == (1, 1) and A.shape[2] * A.shape[3] > 1:
            scaled_first = True
        elif A.shape[2:] == (1, 1) and B.shape[2] * B.shape[3] > 1:
            scaled_first = False
        else:
            return _prepared_ref(self.ref, args)
        N, C, H, W = (A if scaled_first else B).shape
        run = self.backend.pool.run
        entry = self.backend.pool.entry_point(self.k.eltwise.channel_scale, (
            np.empty((N, H * W, C), np.float32), np.empty((N, C), np.float32), np.empty((N, H * W, C), np.float32)))

        def call(A, B, **attrs):
            x, s = (A, B) if scaled_first else (B, A)
            y = np.empty((N, H, W, C), np.float32)
            run(entry, (to_channels_last(x).reshape(N, H * W, C), np.ascontiguousarray(s.reshape(N, C)),
                        y.reshape(N, H * W, C)))
            return y.transpose(0, 3, 1, 2)
        if channels_last_memory(A if scaled_first else B):  # a layer a segment may take (kernel_wrappers/segment.py)
            x_at, s_at = (0, 1) if scaled_first else (1, 0)
            call.layer = Layer("scale", (), 0, (0, 0, 0), NO_WEIGHTS, NO_WEIGHTS, (N, H, W, C), (N, H, W, C), True, True,
                               self.backend.threads, s_at, x_at)
        return call, 0


class _AddKernel(KernelWrapper):
    """Add of two float32 arrays of one shape and one memory layout, over the kernels' threads."""

    kernel_name = 'numba eltwise.add'  # what tinyrt profile / trace / code show

    def __call__(self, A, B, **attrs):
        attrs = attrs or self.step_attrs  # the program calls a wrapper without them (bound here)
        if A.dtype == np.float32 and B.dtype == np.float32 and A.shape == B.shape and A.size >= 65536:
            if A.flags.c_contiguous and B.flags.c_contiguous:
                a, b, back = A, B, None
            elif channels_last_memory(A) and channels_last_memory(B):
                a, b, back = A.transpose(0, 2, 3, 1), B.transpose(0, 2, 3, 1), (0, 3, 1, 2)
            else:
                return self.ref(A, B, **attrs)
            y = np.empty(a.shape, np.float32)
            self.backend.pool.run(self.k.eltwise.add, (a.reshape(-1), b.reshape(-1), y.reshape(-1)))
            return y if back is None else y.transpose(back)
        return self.ref(A, B, **attrs)

    def specialize(self, args, fixed):
        """For the compiled program: adds this kernel would not take go straight to numpy's add (the
        same numbers: an IEEE sum either way); the others keep the general call."""
        A, B = args[:2]
        if type(A) is np.ndarray and type(B) is np.ndarray and A.dtype == np.float32 and B.dtype == np.float32 \
                and A.shape == B.shape and A.size >= 65536:
            return None
        return _prepared_ref(self.ref, args)


class _QuantizeDequantizeKernel(KernelWrapper):
    """A QDQ model's activation rounding (ops/quantize.py's QuantizeDequantize) in one compiled sweep."""

    kernel_name = 'numba eltwise.quantize_dequantize'  # what tinyrt profile / trace / code show

    def __init__(self, backend, step, fixed_scale=False):
        super().__init__(backend, step)
        self.low, self.high = step.attrs["low"], step.attrs["high"]
        self.fixed_scale = fixed_scale  # a constant scale: a segment's table may hold its value

    def __call__(self, x, scale, addend=None, **attrs):  # attributes bound here: the program passes none
        low, high = self.low, self.high
        if x.dtype == np.float32 and scale.dtype == np.float32 and scale.size == 1 and x.size and (
                addend is None or (addend.dtype == np.float32 and addend.shape == x.shape)):
            layout = _rounding_layout(x, addend)
            if layout is None:
                return self.ref(x, scale, addend, low=low, high=high)
            a, b, back = layout
            y = np.empty(a.shape, np.float32)
            self.backend.pool.run(self.k.eltwise.quantize_dequantize, (  # a residual Add: the sum, rounded
                a.reshape(-1), b.reshape(-1), addend is not None, y.reshape(-1), np.float32(scale.reshape(-1)[0]),
                np.float32(low), np.float32(high)), parallel=x.size > 16384)  # one block: this thread alone
            return y if back is None else y.transpose(back)
        return self.ref(x, scale, addend, low=low, high=high)

    def specialize(self, args, fixed):
        """This rounding for one signature of the compiled program (see _ConvKernel.specialize): the kernel
        entered past numba's dispatcher, for the memory layout of ``args`` (C order, or channels-last
        under an NCHW view); arrays laid out otherwise take ``__call__``. The same kernel and arguments:
        the same numbers."""
        x, scale = args[0], args[1]
        addend = args[2] if len(args) > 2 else None
        if not (type(x) is np.ndarray and x.dtype == np.float32 and x.size and type(scale) is np.ndarray
                and scale.dtype == np.float32 and scale.size == 1 and (addend is None or (
                    type(addend) is np.ndarray and addend.dtype == np.float32 and addend.shape == x.shape))):
            return None
        general, run = self.__call__, self.backend.pool.run
        low, high = np.float32(self.low), np.float32(self.high)
        has_b, parallel = addend is not None, x.size > 16384  # one block: this thread alone
        flat = np.empty(x.size, np.float32)
        entry = self.backend.pool.entry_point(self.k.eltwise.quantize_dequantize,
                                              (flat, flat, has_b, flat, low, low, high))

        def call(x, scale, addend=None, **attrs):
            layout = _rounding_layout(x, addend)
            if layout is None:
                return general(x, scale, addend)
            a, b, back = layout
            y = np.empty(a.shape, np.float32)
            run(entry, (a.reshape(-1), b.reshape(-1), has_b, y.reshape(-1), scale.reshape(-1)[0], low, high), parallel)
            return y if back is None else y.transpose(back)
        if self.fixed_scale and channels_last_memory(x) and (addend is None or channels_last_memory(addend)):
            N, C, H, W = x.shape  # a layer a segment may take (kernel_wrappers/segment.py): the same kernel
            call.layer = Layer("round", (), 0, (low, high, scale.reshape(-1)[0]), NO_WEIGHTS, NO_WEIGHTS, (N, H, W, C),
                               (N, H, W, C), has_b, parallel, self.backend.threads, 2)
        return call, 0


def _rounding_layout(x, addend):
    """(x, the addend (x without one), the transpose back to x's view) as the rounding kernel reads them
    flat: C order, or channels-last memory under an (N, C, H, W) view; None for any other layout."""
    b = x if addend is None else addend
    if x.flags.c_contiguous and b.flags.c_contiguous:
        return x, b, None
    if channels_last_memory(x) and channels_last_memory(b):
        return x.transpose(0, 2, 3, 1), b.transpose(0, 2, 3, 1), (0, 3, 1, 2)
    return None


def _prepared_ref(ref, args):
    """The numpy op's own prepared call (ops.registry.prepared) where the kernel is not used, or None."""
    return registry.prepare(ref, args, (False,) * len(args), {})
