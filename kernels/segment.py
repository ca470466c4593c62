"""A segment: a run of convs executed by one compiled call, so the trunk of a small CNN does not go back
through Python (and numba's dispatcher, and the argument unboxing of a 15-argument kernel) for each layer.
What lies between the convs runs there too: a squeeze-excite block's GlobalAveragePool and scaling Mul,
a QDQ model's roundings, a ShuffleNet's channel shuffles and the channel slices that split its units.

tinyrt/kernel_wrappers/segment.py finds the runs and writes each layer as one row of a table::

    layers[l]  int64:   KIND; where its input, output and residual are (SOURCE and offset into one of
                        the flat arrays below) and their dims; its packed weights' and bias's addresses
                        and dims; the activation code and the kernel's integer arguments
    params[l]  float32: the activation's a and b and the QDQ scale qs

and ``run`` calls, row by row, the very kernel (kernels/conv.py) with the very arguments that the layer's
own call would pass: the same numbers. On several threads the pool runs ``run`` on each, and they meet at
every layer (a threaded layer's blocks shared as its own call would share them, a serial one run by the
caller; they enter a layer in turn, so that each takes the rows it wrote: _sync.in_turn), never going
back to Python in between. Values live in flat float32 arrays: the segment's
input ``xin``, its output ``yout``, and ``arena`` for everything in between (offsets planned in Python, a
dead value's room reused). The layers' packed weights stay where their own calls have them: the table holds
their addresses (the Segment keeps the arrays alive), and ``carray`` makes each an array again.
"""
import numpy as np
from numba import carray, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._jit import kernel
from ._sync import CHUNK, CLOSED, DONE, FAILED, PATIENCE, STOPPED, WIDTH, in_turn, load, pause, start, swap
from .channels import channel_shuffle, channel_slice
from .conv import depthwise, im2col, pointwise
from .eltwise import channel_scale, quantize_dequantize
from .pool import global_avg_pool

# the table's columns
KIND, THREADED, X_SRC, X_OFF, XN, XH, XW, XC, Y_SRC, Y_OFF, YN, YH, YW, YC, Z_SRC, Z_OFF, W_ADDR, W0, W1, W2, \
    W3, B_ADDR, B0, B1, ACT, I0 = range(26)
N_ARGS = 9  # integer arguments of a kernel after the activation (im2col's kh .. pl, rows)
COLUMNS = I0 + N_ARGS
# KIND. ROUND: a QDQ model's rounding (params lo, hi, s); GAP: GlobalAveragePool; SCALE: a squeeze-excite
# block's y = x * s, s (N, C) read at Z (pool.py and eltwise.py's kernels); SHUFFLE: y = the channels of x
# and z (both of x's dims) interleaved; SLICE: y = x's channels from the first integer argument on
# (channels.py's kernels)
POINTWISE, DEPTHWISE, IM2COL, ROUND, GAP, SCALE, SHUFFLE, SLICE = 0, 1, 2, 3, 4, 5, 6, 7
ARENA, XIN, YOUT, NONE = 0, 1, 2, 3     # X_SRC, Y_SRC, Z_SRC


@intrinsic
def _pointer(typingctx, address):
    """An integer address as the pointer ``carray`` takes."""
    if not isinstance(address, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)
    return types.voidptr(address), codegen


@njit(nogil=True, cache=True)
def _abandoned(ctr):
    """The task failed (a kernel raised on another thread: the pool then stops it, see _pool.run): a thread
    waiting for the others at a layer stops waiting, and the pool reports the error."""
    return load(ctr, FAILED) != 0 or load(ctr, CHUNK) >= STOPPED


def run(xin, yout, arena, layers, params, ctrs, ctr):
    """Every layer of ``layers`` in order. On the pool's threads (``ctr``, the task's control block; the
    pool runs this on every thread of the task): each layer has its own control block (``ctrs[l]``, fresh
    for each call), the threads share a threaded layer's blocks and the caller alone runs a serial one,
    and no thread starts a layer before every block of the one before is done (it reads their output)."""
    me, _ = start(ctr, 0)  # joins the task (the caller is thread 0); the layers are the work, not blocks
    patience = load(ctr, PATIENCE)
    for l in range(layers.shape[0]):
        row, c = layers[l], ctrs[l]
        if row[THREADED] == 0 and me != 0:
            while load(c, CLOSED) == 0:  # the caller's serial layer
                if _abandoned(ctr):
                    return 0
                pause()
            continue
        N, H, W, C = row[XN], row[XH], row[XW], row[XC]
        src = xin if row[X_SRC] == XIN else arena
        x = src[row[X_OFF]:row[X_OFF] + N * H * W * C]
        N, OH, OW, M = row[YN], row[YH], row[YW], row[YC]
        dst = yout if row[Y_SRC] == YOUT else arena
        y = dst[row[Y_OFF]:row[Y_OFF] + N * OH * OW * M].reshape((N, OH, OW, M))
        has_z = row[Z_SRC] != NONE
        zsrc = xin if row[Z_SRC] == XIN else arena
        if row[KIND] == SCALE:  # z: the scales, one per image and channel
            one = np.int64(1)  # (not a literal 1: numba 0.52 types no reshape of mixed int kinds)
            z = zsrc[row[Z_OFF]:row[Z_OFF] + N * M].reshape((N, one, one, M))
        elif row[KIND] == SHUFFLE:  # z: the second input, shaped as x
            z = zsrc[row[Z_OFF]:row[Z_OFF] + N * H * W * C].reshape((N, H, W, C))
        elif has_z:
            z = zsrc[row[Z_OFF]:row[Z_OFF] + N * OH * OW * M].reshape((N, OH, OW, M))
        else:
            z = np.empty((0, 0, 0, 0), np.float32)
        w, bias, act = _pointer(row[W_ADDR]), _pointer(row[B_ADDR]), row[ACT]
        if me != 0 and row[THREADED] != 0 and patience > 0 and not in_turn(c, me, patience):
            patience = 0  # a thread before this one is late (descheduled?): no more waiting this run
        a, b, qs = params[l, 0], params[l, 1], params[l, 2]
        k = row[I0:]
        nchw = row[KIND] < 0  # False, but not a literal one: the kernels are called with the types their
        # own calls have, so the machine code compiled for those is the code that runs here
        if row[KIND] == POINTWISE:
            wp, bp = carray(w, (row[W0], row[W1], row[W2]), np.float32), carray(bias, (row[B0],), np.float32)
            total = pointwise(x.reshape((N, H * W, C)), wp, bp, z, has_z, y, act, a, b, qs, k[0], k[1], nchw, c)
        elif row[KIND] == DEPTHWISE:
            wt, b1 = carray(w, (row[W0], row[W1]), np.float32), carray(bias, (row[B0],), np.float32)
            total = depthwise(x.reshape((N, H, W, C)), wt, b1, z, has_z, y, k[0], k[1], k[2], k[3], k[4], k[5],
                              k[6], k[7], act, a, b, qs, c)
        elif row[KIND] == ROUND:  # y = round(x [+ z]) (eltwise.quantize_dequantize; a, b, qs: low, high, scale)
            total = quantize_dequantize(x, z.reshape(-1) if has_z else x, has_z, y.reshape(-1), qs, a, b, c)
        elif row[KIND] == GAP:
            total = global_avg_pool(x.reshape((N, H * W, C)), y.reshape((N, M)), c)
        elif row[KIND] == SCALE:
            total = channel_scale(x.reshape((N, H * W, C)), z.reshape((N, M)), y.reshape((N, OH * OW, M)), c)
        elif row[KIND] == SHUFFLE:
            P = N * H * W
            total = channel_shuffle(x.reshape((P, C)), z.reshape((P, C)), y.reshape((P, M)), c)
        elif row[KIND] == SLICE:
            total = channel_slice(x.reshape((N * H * W, C)), y.reshape((N * OH * OW, M)), k[0], c)
        else:
            wt = carray(w, (row[W0], row[W1], row[W2], row[W3]), np.float32)
            b2 = carray(bias, (row[B0], row[B1]), np.float32)
            total = im2col(x.reshape((N, H, W, C)), wt, b2, z, has_z, y, k[0], k[1], k[2], k[3], k[4], k[5],
                           k[6], k[7], act, a, b, qs, k[8], c)
        while load(c, DONE) < total:  # the blocks other threads took
            if _abandoned(ctr):
                return 0
            pause()
        swap(c, CLOSED, 1)
    return 0


run = kernel(run, calls_kernels=True)


def control_blocks(threaded, width):
    """A fresh control block per layer: ``width`` threads share a threaded layer's blocks, one runs the rest."""
    ctrs = np.zeros((len(threaded), CHUNK + width), np.int64)
    for l, t in enumerate(threaded):
        ctrs[l, WIDTH] = width if t else 1
    return ctrs


def compile_now(ctr):
    """Compile ``run`` (or load it from the cache) by calling it on a table of no layers: numba compiles
    every branch at once, so this is the code every segment runs (``tinyrt warmup``)."""
    nothing = np.zeros(1, np.float32)
    run(nothing, nothing, nothing, np.zeros((0, COLUMNS), np.int64), np.zeros((0, 3), np.float32),
        control_blocks([], 1), ctr)
