"""How many threads numpy's BLAS may use while tinyrt runs (``SessionOptions.intra_op_num_threads``).

numpy cannot be told after import; the BLAS library it loaded can. Like threadpoolctl (which this mirrors
in a few lines, to stay dependency-free), find the loaded OpenBLAS and call its set/get functions. Where
there is none (or another BLAS), the setting is a no-op, and ``blas_threads_controllable()`` says so.
"""
import ctypes
import os
import threading

# Symbol names differ by build: plain OpenBLAS, numpy's scipy-openblas wheels (64-bit ints).
_SYMBOL_PAIRS = [
    ("openblas_set_num_threads", "openblas_get_num_threads"),
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
]
_lock = threading.Lock()
_found = None


def _unlock_after_fork():
    """A child forked while another thread held the lock (inside a run) gets a free one, not a deadlock."""
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_unlock_after_fork)


def _blas():
    """(set, get) functions of the OpenBLAS numpy loaded, or None."""
    global _found
    if _found is None:
        _found = False
        for path in _loaded_libraries():
            if "openblas" not in os.path.basename(path).lower():
                continue
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for set_name, get_name in _SYMBOL_PAIRS:
                if hasattr(lib, set_name) and hasattr(lib, get_name):
                    _found = (getattr(lib, set_name), getattr(lib, get_name))
                    break
            if _found:
                break
    return _found or None


def _loaded_libraries():
    import numpy  # noqa: F401  (make sure numpy's BLAS is loaded)
    try:
        with open("/proc/self/maps") as f:
            return sorted({line.split()[-1] for line in f if ".so" in line and "/" in line})
    except OSError:  # not Linux: no control, no harm
        return []


def blas_threads_controllable():
    return _blas() is not None


def get_blas_threads():
    blas = _blas()
    return int(blas[1]()) if blas else None


class blas_threads:
    """Context manager: BLAS uses ``n`` threads inside (n <= 0 leaves it alone)."""

    def __init__(self, n):
        self.n = n
        self.previous = None

    def __enter__(self):
        blas = _blas() if self.n and self.n > 0 else None
        if blas:
            _lock.acquire()
            self.previous = int(blas[1]())
            if self.previous != self.n:
                blas[0](int(self.n))
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            blas = _blas()
            if self.previous != self.n:
                blas[0](self.previous)
            self.previous = None
            _lock.release()
        return False


def cores():
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class WidthChooser:
    """The default thread count that never makes a run slower than one thread: measured, run by run.

    With ``intra_op_num_threads = 0`` a session may use every core; but when another process keeps a
    core busy (a camera loop on a board), threads that wait for each other's blocks, or BLAS threads
    spinning against it, make a run several times slower than one thread would. So a session's runs at
    the default setting are timed, at all cores and at one thread, and the faster wins:

    * the first runs try both widths, ``FIRST`` runs each (after ``SKIP`` warm-up runs, not counted), in
      the Thue-Morse order (wide, one, one, wide, one, wide, wide, one): strict alternation put each width
      on every other run, so a caller's own rhythm (a pause, then two runs: a benchmark, a camera loop)
      gave one width all the runs just after a pause, when threads wake up slower, and it lost for good
      (MobileNetV2-224 ran its default at one thread, 6.7 ms, against 3.9 at two);
    * then every run takes the width whose recent runs were faster (the mean of the last ``KEEP`` but
      the slowest: the caller's runs as they come, a pause's slow ones too, without one odd outlier; a
      median took whichever kind of run, after a pause or not, happened to be the majority of the last
      few, and flipped between them), and now and then one run tries the other: after 8 runs, then 16,
      32, ... up to 256 while it keeps losing, so a width that lost costs at most a run in 256 (and back
      to 8 when the winner changes).

    An asked-for count (``intra_op_num_threads > 0``) is used as it is.
    """

    SKIP = 3
    FIRST = 4
    KEEP = 6
    FIRST_PROBE, LAST_PROBE = 8, 256

    def __init__(self, wide):
        self.wide = wide
        self.times = {1: [], wide: []}
        self.runs = 0
        self.best = wide
        self.gap = self.FIRST_PROBE
        self.since = 0

    def pick(self):
        """The width of the next run."""
        if self.runs < self.SKIP:
            return self.wide
        a, b = self.times[self.wide], self.times[1]
        if len(a) < self.FIRST or len(b) < self.FIRST:
            # Thue-Morse: each pair of runs (2k, 2k + 1) holds one of each width, so 2 * FIRST runs give
            # FIRST to each
            return 1 if bin(self.runs - self.SKIP).count("1") % 2 else self.wide
        if self.since >= self.gap:
            return 1 if self.best == self.wide else self.wide
        return self.best

    def record(self, width, seconds):
        self.runs += 1
        if self.runs <= self.SKIP:
            return
        kept = self.times[width]
        kept.append(seconds)
        if len(kept) > self.KEEP:
            del kept[0]
        a, b = self.times[self.wide], self.times[1]
        if len(a) < self.FIRST or len(b) < self.FIRST:
            return
        best = self.wide if _typical(a) <= _typical(b) else 1
        if width != self.best:  # a probe of the other width
            self.since = 0
            if best == self.best:
                self.gap = min(self.gap * 2, self.LAST_PROBE)
            else:
                self.gap = self.FIRST_PROBE
        else:
            self.since += 1
        self.best = best


def _typical(seconds):
    """The mean of ``seconds`` without the largest (one odd slow run: another process's spell)."""
    s = sorted(seconds)[:-1] if len(seconds) > 2 else list(seconds)
    return sum(s) / len(s)
