"""The memory layout the kernels write: (N, H, W, C) memory handed out as an (N, C, H, W) view.

A conv or pool kernel writes channels-last memory and returns ``y.transpose(0, 3, 1, 2)``, so a chain of
convs never transposes anything; every other op sees an ordinary array of the ONNX shape (numpy follows the
strides). These helpers tell that layout apart and make it where a kernel needs it.
"""
import numpy as np

EMPTY4 = np.zeros((1, 1, 1, 1), np.float32)  # a kernel argument for "no residual input"
ALIGN = 64  # bytes: a cache line, and an AVX-512 vector


def empty_aligned(shape, dtype=np.float32):
    """np.empty(shape, dtype) starting on a 64-byte boundary. numpy's large arrays start 16 bytes past one
    (the allocator's header): a kernel's every 64-byte vector load or store then straddles two cache
    lines, and a 1x1 conv ran 20-40% slower for it (AVX-512)."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(n + ALIGN, np.uint8)
    skip = -raw.ctypes.data % ALIGN
    return raw[skip:skip + n].view(dtype).reshape(shape)


def aligned(a):
    """``a`` as a C-contiguous array starting on a 64-byte boundary (a copy unless it is one already)."""
    if a.flags.c_contiguous and a.ctypes.data % ALIGN == 0:
        return a
    out = empty_aligned(a.shape, a.dtype)
    out[...] = a
    return out


def channels_last_memory(a):
    """True when the (N, C, H, W) array ``a`` is a view of contiguous (N, H, W, C) memory."""
    return a.ndim == 4 and a.transpose(0, 2, 3, 1).flags.c_contiguous


def to_channels_last(a):
    """(N, C, H, W) -> contiguous (N, H, W, C): free for a view of such memory, else one copy."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))
