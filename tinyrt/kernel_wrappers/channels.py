"""ShuffleNet's channel shuffle (ConcatShuffle) and the channel Slices that split its units in two, on the
numba path (kernels/channels.py): compiled copies that a segment can run as layers (segment.py), so that a
ShuffleNet's trunk is one compiled call instead of three trips through Python a unit."""
import numpy as np

from .. import limits
from ..ops import concat_split
from ..ops.registry import fixed_after, prepare
from ..ops.slice import _slice_index
from .base import KernelWrapper
from .layout import channels_last_memory
from .segment import NO_WEIGHTS, Layer


class _ConcatShuffleKernel(KernelWrapper):
    """The channel shuffle of two inputs (ops/concat_split.py ``concat_shuffle``: channel i of input j at
    channel 2i + j) as one compiled copy into channels-last memory; any other ConcatShuffle runs the op."""

    kernel_name = "numba channels.channel_shuffle"

    def __call__(self, *args, **attrs):
        attrs = attrs or self.step_attrs  # the program calls a wrapper without them (bound here)
        if not self._shuffles(args, attrs):
            return self.ref(*args, **attrs)
        limits.check_count(2 * limits.nominal_count(args[0].shape), 4, "ConcatShuffle")
        return self._shuffle(args[0], args[1], self.k.channels.channel_shuffle)

    def _shuffle(self, X1, X2, kernel):
        """The shuffle by ``kernel`` where both inputs are channels-last memory (a conv's, a segment's
        result); else by numpy's copies from the inputs as they lie (a view of some channels of a value
        would first have to be copied whole for the kernel)."""
        if not (channels_last_memory(X1) and channels_last_memory(X2)):
            return concat_split._channel_shuffle((X1, X2))
        N, C, H, W = X1.shape
        y = np.empty((N, H, W, 2 * C), np.float32)
        self.backend.pool.run(kernel, (X1.transpose(0, 2, 3, 1).reshape(N * H * W, C),
                                       X2.transpose(0, 2, 3, 1).reshape(N * H * W, C),
                                       y.reshape(N * H * W, 2 * C)), False)
        return y.transpose(0, 3, 1, 2)

    @staticmethod
    def _shuffles(args, attrs):
        xs = args[:-2]
        return len(xs) == 2 and type(xs[0]) is np.ndarray and xs[0].dtype == np.float32 and \
            concat_split._is_channel_shuffle(xs, args[-2], args[-1], attrs["axis"], attrs["perm"],
                                             attrs.get("allowzero", 0), attrs.get("allowzero_after", 0))

    def specialize(self, args, fixed):
        """This shuffle for one signature of the compiled program (see _ConvKernel.specialize), and the layer
        a segment runs it as."""
        if not (fixed_after(args, fixed, len(args) - 2) and self._shuffles(args, self.step_attrs)):
            return None
        N, C, H, W = args[0].shape
        limits.check_count(2 * limits.nominal_count(args[0].shape), 4, "ConcatShuffle")
        some = np.zeros((N * H * W, C), np.float32)  # (arrays of the kernel's argument types)
        entry = self.backend.pool.entry_point(self.k.channels.channel_shuffle, (
            some, some, np.empty((N * H * W, 2 * C), np.float32)))
        shuffle = self._shuffle

        def call(X1, X2, *shapes):
            return shuffle(X1, X2, entry)
        call.layer = Layer("shuffle", (), 0, (0, 0, 0), NO_WEIGHTS, NO_WEIGHTS, (N, H, W, C), (N, H, W, 2 * C),
                           True, False, self.backend.threads, z_at=1, x_at=0)
        return call, 0


class _ChannelSliceKernel(KernelWrapper):
    """A Slice of a 4-D float32 value's channels (a ShuffleNet unit's input cut in two). Alone it is the numpy
    op's view of its input (nothing to copy); inside a segment, whose values are whole arrays of
    channels-last memory, a compiled copy of those channels (kernels/channels.py ``channel_slice``)."""

    kernel_name = "numpy view; in a segment numba channels.channel_slice"

    def __call__(self, *args, **attrs):
        return self.ref(*args, **(attrs or self.step_attrs))

    def specialize(self, args, fixed):
        """The numpy op's prepared call, which a segment may take as a layer when it slices channels only."""
        made = prepare(self.ref, args, fixed, self.step_attrs)
        X = args[0]
        if made is None or X.dtype != np.float32 or X.ndim != 4:
            return made
        channels = _slice_index(*(list(args) + [None] * (5 - len(args))))[1]  # (the only axis: see _channel_slice)
        if channels.step != 1 or not channels.start < channels.stop:
            return made
        N, C, H, W = X.shape
        made[0].layer = Layer("slice", (channels.start,), 0, (0, 0, 0), NO_WEIGHTS, NO_WEIGHTS, (N, H, W, C),
                              (N, H, W, channels.stop - channels.start), False, False, self.backend.threads)
        return made


def _concat_shuffle(backend, step, constants):
    return _ConcatShuffleKernel(backend, step)


def _channel_slice(backend, step, constants):
    """A wrapper for a Slice (opset 10 on: inputs) along axis 1 alone, with step 1; None for any other."""
    if len(step.inputs) < 4:  # (Slice-1: its data input alone, the bounds attributes; or no axes input)
        return None
    names = list(step.inputs) + [""]
    axes, steps = constants.get(names[3]) if names[3] else None, constants.get(names[4]) if names[4] else None
    if axes is None or [int(a) for a in np.ravel(axes)] not in ([1], [-3]) or \
            (names[4] and (steps is None or [int(s) for s in np.ravel(steps)] != [1])):
        return None
    return _ChannelSliceKernel(backend, step)
