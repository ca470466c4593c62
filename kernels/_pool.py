"""tinyrt's thread pool: the threads that run a kernel's blocks next to the calling thread.

Why not numba's ``prange``: every parallel launch through numba's threading layers costs about 100 us on
the 2-core machine the benchmarks run on (measured: a trivial prange kernel, 100 us against 0.3 us
serial), and a MobileNet makes about sixty of them per run. Here the workers spin while a session run
is in progress, so a launch is a counter they see within a microsecond or two:

    begin(threads)   a run starts: up to threads - 1 workers (started once, then kept) spin for tasks
    run(kernel, args, parallel)
                     post a task, run ``kernel(*args, ctr)`` on this thread, and wait until all its
                     blocks are done; the workers that join run the same call, taking blocks from the
                     same counters ``ctr`` (the pool's control block, see _sync.py)
    end()            the run is over: the workers stop spinning and sleep on an Event

A worker that is slow to wake (or missing: after a fork, say) costs speed, never results: the calling
thread takes every block that nobody else has. A kernel failing on a worker is re-raised by ``run``.
One run at a time (tinyrt/kernels_select.py holds a lock); runs may nest (a Loop body's kernels).
"""
import os
import threading
import time

from . import _sync


def cores():
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class Pool:
    def __init__(self):
        self.patience = 0  # PATIENCE in turns of _sync.in_turn's wait, measured once (begin); kept past a fork
        self._reset()
        if hasattr(os, "register_at_fork"):  # a forked child has none of the parent's threads
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self):
        # room for a chunk per CPU: the cores this process may use can grow after this (sched_setaffinity)
        self.ctr = _sync.counters(max(cores(), os.cpu_count() or 1))
        self.ctr[_sync.PATIENCE] = self.patience
        self.workers = []  # started on demand, then kept
        self.task = None   # (kernel, args) of the task posted last
        self.tasks = 0     # tasks posted so far
        self.width = 1     # threads in the current run, this one included
        self.depth = 0     # nested begin() calls
        self.wake = threading.Event()
        self.error = None

    def begin(self, threads):
        """A run starts at ``threads`` threads (<= 0: all cores; never more than there are). Returns the
        number the run gets."""
        self.depth += 1
        if self.depth > 1:
            return self.width
        threads = int(threads)
        self.width = min(threads, cores()) if threads > 0 else cores()
        if self.width > 1 and not self.patience:
            self.patience = self.ctr[_sync.PATIENCE] = _turns_in(PATIENCE)
        while len(self.workers) < self.width - 1:
            t = threading.Thread(target=self._work, args=(len(self.workers),), name="tinyrt-worker", daemon=True)
            t.start()
            self.workers.append(t)
        if self.width > 1:
            _sync.swap_running(self.ctr, 1)
            self.wake.set()
        return self.width

    def end(self):
        self.depth -= 1
        if self.depth:
            return
        if self.width > 1:
            self.wake.clear()
            _sync.swap_running(self.ctr, 0)
        self.task = None  # drop the last task's arrays
        self.width = 1

    def entry_point(self, kernel, args):
        """``kernel``'s machine code for exactly the types of ``args`` (and the counters), entered without
        numba's dispatcher matching the types on every call (about 2 us of a kernel call); ``kernel`` itself
        where it has not been compiled for those types. An entry point checks nothing: every call through
        it must pass arguments of those very types (dtype, rank, C-contiguous)."""
        try:
            import numba
            return kernel.overloads[tuple(numba.typeof(a) for a in tuple(args) + (self.ctr,))].entry_point
        except Exception:  # not compiled for them (or a numba without these attributes): the dispatcher
            return kernel

    def run(self, kernel, args, parallel=True):
        """``kernel(*args, ctr)`` on every thread of the run (on this one alone unless ``parallel``)."""
        if not parallel or self.width < 2:
            kernel(*args, _sync.counters(1))  # private counters: no worker looks at them
            return
        ctr = self.ctr
        self.tasks += 1
        self.task = (kernel, args)
        _sync.post(ctr, self.tasks, self.width)
        try:
            total = kernel(*args, ctr)
        except BaseException:
            _sync.stop(ctr)  # the workers stop taking blocks
            _sync.wait_done(ctr, 0)
            raise
        if not _sync.wait_done(ctr, total):
            error, self.error = self.error, None
            raise RuntimeError("tinyrt: kernel %s failed on a pool thread: %s: %s"
                               % (getattr(kernel, "__name__", kernel), type(error).__name__, error)) from error

    def _work(self, index):
        seen = 0
        leaving = False
        while True:
            if not self.wake.is_set():
                self.wake.wait()
            got = _sync.wait_task(self.ctr, seen, leaving, index)  # spins, without the GIL
            leaving = got > 0
            seen = abs(got)
            if not leaving:
                continue  # the run ended: sleep until the next
            kernel, args = self.task  # the task joined: its caller waits for this worker
            try:
                kernel(*args, self.ctr)
            except BaseException as e:  # the caller re-raises it; this thread lives on
                self.error = e
                _sync.add(self.ctr, _sync.FAILED, 1)


PATIENCE = 20e-6  # seconds a segment's thread waits for the threads before it to enter a layer (in_turn)


def _turns_in(seconds):
    """How many turns of _sync.in_turn's wait take about ``seconds`` here (a turn's pause instruction
    takes from one to ~150 cycles, by CPU): timed on a wait that never ends early."""
    never = _sync.counters(2)  # no thread has entered: thread 1's turn never comes
    _sync.in_turn(never, 1, 1)  # compiled (or loaded) first
    turns = 256
    while True:
        t0 = time.perf_counter()
        _sync.in_turn(never, 1, turns)
        took = time.perf_counter() - t0
        if took > 0.002 or turns >= 1 << 30:
            return max(1, int(turns * seconds / max(took, 1e-9)))
        turns *= 4


POOL = Pool()
