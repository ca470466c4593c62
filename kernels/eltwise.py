"""The elementwise tails left after fusion, over numba's threads.

* ``channel_scale``: y = x * s with x (N, C, H, W) and s (N, C, 1, 1): the gating Mul of a
  squeeze-excite block (s is the sigmoid / hard-sigmoid of the excitation, already fused into its conv).
* ``add``: y = a + b for two float32 arrays of one shape (a residual Add that could not be fused).
"""
from numba import prange

from ._jit import kernel


@kernel
def channel_scale(x, s, y):
    N, C, L = x.shape
    for t in prange(N * C):
        n = t // C
        c = t % C
        g = s[n, c]
        for i in range(L):
            y[n, c, i] = x[n, c, i] * g


@kernel
def add(a, b, y):
    n = a.shape[0]
    block = 16384
    for t in prange((n + block - 1) // block):
        for i in range(t * block, min(n, (t + 1) * block)):
            y[i] = a[i] + b[i]
