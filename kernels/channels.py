"""Channel copies on channels-last memory: ShuffleNet's channel shuffle and the channel slices that split
its units in two (tinyrt's ConcatShuffle, and Slice on the channel axis). As layers of a segment
(segment.py) they keep a ShuffleNet's trunk in one compiled call, as a MobileNet's is, where each unit
would otherwise go back through Python three times (the shuffle, two slices) and start a segment anew.

Both are plain copies (the same numbers as numpy's), by blocks of 64 pixels.
"""
from ._jit import finished, kernel, start

ROWS = 64  # pixels a block


@kernel
def channel_shuffle(x, z, y, ctr):
    """y (P, 2C) = the channels of x and z (P, C) interleaved: y[p, 2i] = x[p, i], y[p, 2i + 1] = z[p, i]
    (ConcatShuffle of two inputs: channel i of input j at channel 2i + j)."""
    P, C = x.shape
    total = (P + ROWS - 1) // ROWS
    me, t = start(ctr, total)
    while t < total:
        for p in range(t * ROWS, min(P, (t + 1) * ROWS)):
            for i in range(C):
                y[p, 2 * i] = x[p, i]
                y[p, 2 * i + 1] = z[p, i]
        t = finished(ctr, me, total)
    return total


@kernel
def channel_slice(x, y, c0, ctr):
    """y (P, K) = x (P, C)[:, c0:c0 + K]."""
    P, K = y.shape
    total = (P + ROWS - 1) // ROWS
    me, t = start(ctr, total)
    while t < total:
        for p in range(t * ROWS, min(P, (t + 1) * ROWS)):
            for i in range(K):
                y[p, i] = x[p, c0 + i]
        t = finished(ctr, me, total)
    return total
