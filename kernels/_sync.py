"""Atomic counters for compiled code: what the thread pool (``_pool.py``) and the kernels share.

numba has no atomics of its own; these intrinsics emit LLVM's, on one slot of an int64 array:

    fetch_add(a, i, v)   a[i] += v as one atomic step; returns the old value (sequentially consistent)
    swap(a, i, v)        a[i] = v as one atomic step; returns the old value
    load(a, i)           a[i], read atomically
    pause()              a spin-wait hint to the core (x86 ``pause``, Arm ``yield``; else nothing)

All sequentially consistent: the handshake between the pool's caller and its workers (below) relies on
a store followed by a load of another slot not being reordered, on both sides.

A kernel hands out its blocks of work with them (``start`` / ``finished``, below): every thread of the
pool runs the kernel, and each claim returns a block nobody has taken, until none is left.
"""
import platform

import numpy as np

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._target import llvm_function

# The spin-wait hint as an LLVM intrinsic (numba's JIT takes no inline assembly): (name, argument or None).
_MACHINE = platform.machine().lower()
if _MACHINE in ("x86_64", "amd64", "i386", "i686"):
    _PAUSE = ("llvm.x86.sse2.pause", None)
elif _MACHINE in ("aarch64", "arm64"):
    _PAUSE = ("llvm.aarch64.hint", 1)  # 1: YIELD
elif _MACHINE.startswith("arm"):
    _PAUSE = ("llvm.arm.hint", 1)
else:
    _PAUSE = None


def _slot(context, builder, sig, args):
    """Pointer to a[i] for an int64 array a and an integer index i."""
    arr_t, idx_t = sig.args[0], sig.args[1]
    arr = context.make_array(arr_t)(context, builder, args[0])
    idx = context.cast(builder, args[1], idx_t, types.intp)
    return cgutils.get_item_pointer(context, builder, arr_t, arr, [idx])


def _int64_slot(a, i):
    return isinstance(a, types.Array) and a.dtype == types.int64 and isinstance(i, types.Integer)


def _rmw(op):
    def typer(typingctx, a, i, v):
        if not (_int64_slot(a, i) and isinstance(v, types.Integer)):
            return None

        def codegen(context, builder, sig, args):
            val = context.cast(builder, args[2], sig.args[2], types.int64)
            return builder.atomic_rmw(op, _slot(context, builder, sig, args), val, "seq_cst")

        return types.int64(a, i, v), codegen
    return typer


fetch_add = intrinsic(_rmw("add"))
fetch_add.__name__ = "fetch_add"
swap = intrinsic(_rmw("xchg"))
swap.__name__ = "swap"


@intrinsic
def load(typingctx, a, i):
    if not _int64_slot(a, i):
        return None

    def codegen(context, builder, sig, args):
        return builder.load_atomic(_slot(context, builder, sig, args), "seq_cst", 8)

    return types.int64(a, i), codegen


@intrinsic
def pause(typingctx):
    def codegen(context, builder, sig, args):
        if _PAUSE:
            name, arg = _PAUSE
            i32 = ir.IntType(32)
            fnty = ir.FunctionType(ir.VoidType(), [] if arg is None else [i32])
            fn = llvm_function(builder.module, fnty, name)
            builder.call(fn, [] if arg is None else [ir.Constant(i32, arg)])
        return context.get_dummy_value()

    return types.void(), codegen


# The pool's control block (one int64 array; see _pool.py), also every kernel's ``ctr`` argument:
#   TASK     the number of the task posted last              RUNNING  1 while a session run is in progress
#   WIDTH    threads the task is split for                   TICKETS  threads that have entered its kernel
#   DONE     its blocks finished                             FAILED   set when a worker's kernel raised
#   OPEN     TASK, written by the caller's kernel on entry: the caller has let go of the GIL
#   CLOSED   TASK, written once all its blocks are done: too late to join
#   JOINED, LEFT   workers that joined a task / left it again (never reset: only their difference counts)
#   PATIENCE turns of ``in_turn``'s wait that take about 20 us on this machine (set by the pool)
#   CHUNK + j      blocks taken from chunk j (one chunk per thread, WIDTH of them)
TASK, RUNNING, WIDTH, TICKETS, DONE, FAILED, OPEN, CLOSED, JOINED, LEFT, PATIENCE, CHUNK = range(12)


def counters(width):
    """A control block for tasks split ``width`` ways (``width`` = 1: private to one thread)."""
    ctr = np.zeros(CHUNK + width, np.int64)
    ctr[WIDTH] = width
    return ctr


# How a kernel takes its blocks:
#
#     me, t = start(ctr, total)
#     while t < total:
#         ... block t ...
#         t = finished(ctr, me, total)
#
# The blocks 0..total-1 are cut into WIDTH contiguous chunks, one per thread: the thread that entered
# first (the caller) takes chunk 0 front to back, the next chunk 1, and so on; a thread whose chunk is
# used up takes blocks from the others'. Contiguous chunks keep a thread on the rows it wrote in the
# previous layer (measured: handing out blocks round-robin made both threads of a depthwise conv about
# twice as slow per block, reading rows the other core had just written), and taking from others
# balances a worker that joined late.

@njit(nogil=True, cache=True, inline="always")
def _take(ctr, me, total):
    width = ctr[WIDTH]
    for k in range(width):
        j = (me + k) % width
        lo = j * total // width
        t = lo + fetch_add(ctr, CHUNK + j, 1)
        if t < (j + 1) * total // width:
            return t
    return total


@njit(nogil=True, cache=True, inline="always")
def start(ctr, total):
    """Enter a kernel: (this thread's number in the task, its first block or ``total`` if none is left)."""
    me = fetch_add(ctr, TICKETS, 1) % ctr[WIDTH]
    swap(ctr, OPEN, ctr[TASK])
    return me, _take(ctr, me, total)


@njit(nogil=True, cache=True, inline="always")
def finished(ctr, me, total):
    """Count one block as done (after its results are written) and take the next."""
    fetch_add(ctr, DONE, 1)
    return _take(ctr, me, total)


@njit(nogil=True, cache=True)
def in_turn(ctr, me, patience):
    """Wait until the threads numbered below ``me`` have entered the kernel of control block ``ctr``, for
    at most ``patience`` turns: True when they have (``start`` then gives this thread number ``me``).

    Why: ``start`` numbers threads in the order they arrive, and a thread takes the chunk of its number.
    Threads that meet at every layer of a segment (segment.py) arrive in any order, so a thread would
    take, one layer in two, the rows the other core has just written. Entering in turn, each keeps its
    rows (measured: MobileNetV2-224's segment at 2 threads 1.66x -> 1.76x as fast as at 1). A thread that
    is not there in time (descheduled) is not waited for longer: the chunks stay shared as before."""
    for _ in range(patience):
        if load(ctr, TICKETS) >= me:
            return True
        pause()
    return load(ctr, TICKETS) >= me


STOPPED = 1 << 40  # added to every chunk's count by ``stop``


@njit(nogil=True, cache=True)
def stop(ctr):
    """Leave no block to take: the threads still in a failed task stop at their next claim."""
    for j in range(ctr[WIDTH]):
        fetch_add(ctr, CHUNK + j, STOPPED)


@njit(nogil=True, cache=True)
def add(a, i, v):
    """``fetch_add`` callable from Python."""
    return fetch_add(a, i, v)


@njit(nogil=True, cache=True)
def swap_running(ctr, running):
    swap(ctr, RUNNING, running)


@njit(nogil=True, cache=True)
def post(ctr, task, width):
    """Publish task number ``task`` for ``width`` threads: its counters start at zero, then the workers
    see the new number."""
    ctr[WIDTH] = width
    ctr[TICKETS] = 0
    ctr[DONE] = 0
    ctr[FAILED] = 0
    for j in range(width):
        ctr[CHUNK + j] = 0
    swap(ctr, TASK, task)


@njit(nogil=True, cache=True)
def wait_done(ctr, total):
    """The caller's end of a task: wait until its ``total`` blocks are done (or a worker failed), close
    it, and wait until every worker that joined has left. Returns False when a worker failed.

    Waiting for the workers to be back in ``wait_task`` matters: a worker returning from a kernel needs
    the GIL for a moment, and gets it now, while this thread waits without it, instead of later, when
    this thread would have to hand it over (measured: that made 2 threads slower than 1)."""
    ok = True
    while load(ctr, DONE) < total:
        if load(ctr, FAILED) != 0:
            stop(ctr)
            ok = False
            break
        pause()
    swap(ctr, CLOSED, load(ctr, TASK))
    joined = load(ctr, JOINED)  # a worker joining after this sees CLOSED and leaves untouched
    while load(ctr, LEFT) < joined:
        pause()
    return ok and load(ctr, FAILED) == 0  # (a task of no blocks, a segment, fails only here)


@njit(nogil=True, cache=True)
def wait_task(ctr, seen, leaving, index):
    """A worker's wait, without the GIL: leave the task it ran (``leaving``), then wait for a task after
    number ``seen`` whose caller has entered its kernel, and join it if it is split wide enough for
    worker ``index`` (0, 1, ...). Returns the task's number (>= 1), or, when the run ends first, minus
    the last task number seen (<= 0).

    Joining only once the caller's kernel has started (OPEN) means the GIL is free when this worker
    returns to Python to call the kernel too (measured: 4 us to join instead of 20). A worker that
    joined is waited for (``wait_done``), so the task it then reads is the one it joined."""
    if leaving:
        fetch_add(ctr, LEFT, 1)
    while load(ctr, RUNNING) != 0:
        task = load(ctr, TASK)
        if task != seen and index >= load(ctr, WIDTH) - 1:
            seen = task  # a run with fewer threads: not this worker's
        elif task != seen and load(ctr, OPEN) == task:
            fetch_add(ctr, JOINED, 1)
            if load(ctr, CLOSED) != task and load(ctr, TASK) == task:
                return task
            fetch_add(ctr, LEFT, 1)  # too late: all its blocks are done
            seen = task
        pause()
    return -seen
