"""The elementwise tails left after fusion, over numba's threads.

* ``channel_scale``: y = x * s with x (N, C, H, W) and s (N, C, 1, 1): the gating Mul of a
  squeeze-excite block (s is the sigmoid / hard-sigmoid of the excitation, already fused into its conv),
  on channels-last memory (x and y as (N, H * W, C)), the layout the convs write.
* ``add``: y = a + b for two float32 arrays of one shape (a residual Add that could not be fused).
"""
from numba import prange

from ._jit import kernel


@kernel
def channel_scale(x, s, y):
    """x, y (N, P, C) channels-last, s (N, C)."""
    N, P, C = x.shape
    for t in prange(N * P):
        n = t // P
        p = t % P
        for c in range(C):
            y[n, p, c] = x[n, p, c] * s[n, c]


@kernel
def add(a, b, y):
    n = a.shape[0]
    block = 16384
    for t in prange((n + block - 1) // block):
        for i in range(t * block, min(n, (t + 1) * block)):
            y[i] = a[i] + b[i]
