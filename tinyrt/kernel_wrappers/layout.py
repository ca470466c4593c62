"""The memory layout the kernels write: (N, H, W, C) memory handed out as an (N, C, H, W) view.

A conv or pool kernel writes channels-last memory and returns ``y.transpose(0, 3, 1, 2)``, so a chain of
convs never transposes anything; every other op sees an ordinary array of the ONNX shape (numpy follows the
strides). These helpers tell that layout apart and make it where a kernel needs it.
"""
import numpy as np

EMPTY4 = np.zeros((1, 1, 1, 1), np.float32)  # a kernel argument for "no residual input"


def channels_last_memory(a):
    """True when the (N, C, H, W) array ``a`` is a view of contiguous (N, H, W, C) memory."""
    return a.ndim == 4 and a.transpose(0, 2, 3, 1).flags.c_contiguous


def to_channels_last(a):
    """(N, C, H, W) -> contiguous (N, H, W, C): free for a view of such memory, else one copy."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))
