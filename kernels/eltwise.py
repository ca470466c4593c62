"""The elementwise tails left after fusion, in blocks for the thread pool.

* ``channel_scale``: y = x * s with x (N, C, H, W) and s (N, C, 1, 1): the gating Mul of a
  squeeze-excite block (s is the sigmoid / hard-sigmoid of the excitation, already fused into its conv),
  on channels-last memory (x and y as (N, H * W, C)), the layout the convs write.
* ``add``: y = a + b for two float32 arrays of one shape (a residual Add that could not be fused).
"""
from ._jit import kernel, start, finished


@kernel
def channel_scale(x, s, y, ctr):
    """x, y (N, P, C) channels-last, s (N, C); blocks of 64 pixels."""
    N, P, C = x.shape
    rows = 64
    nblk = (P + rows - 1) // rows
    total = N * nblk
    me, t = start(ctr, total)
    while t < total:
        n = t // nblk
        p0 = t % nblk * rows
        for p in range(p0, min(P, p0 + rows)):
            for c in range(C):
                y[n, p, c] = x[n, p, c] * s[n, c]
        t = finished(ctr, me, total)
    return total


@kernel
def add(a, b, y, ctr):
    """a, b, y flat, blocks of 16K floats."""
    n = a.shape[0]
    block = 16384
    total = (n + block - 1) // block
    me, t = start(ctr, total)
    while t < total:
        for i in range(t * block, min(n, (t + 1) * block)):
            y[i] = a[i] + b[i]
        t = finished(ctr, me, total)
    return total
