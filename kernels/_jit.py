"""``@kernel``: how every kernel is compiled: lazily (on first call), cached on disk, releasing the GIL;
and ``PROGRESS``, which says so on stderr while it happens.

A kernel splits its work into numbered blocks and takes them with ``start`` / ``finished``
(``_sync.py``) until none is left, then returns how many there were; the pool (``_pool.py``) runs that
same function on each of its threads at once. One compiled function serves one thread or several: at one
thread it simply takes every block itself.

Compiling takes about 10 s for a MobileNet on a desktop and many minutes on a Pi, on the first run only
(numba caches the machine code); so that this is not a silent pause, the first compile of a process
prints one line saying what happens, why, and where the cache goes, then one line per kernel with its
time. ``TINYRT_QUIET=1`` (or a session's ``log_severity_level`` of 3 or more) keeps it quiet.
"""
import os
import sys
import time

from numba import njit

from ._sync import start, finished  # noqa: F401  (what kernel modules use with @kernel)

# "contract" lets LLVM fuse a * b + c into one FMA instruction (one rounding instead of two, as
# onnxruntime's kernels do); no other fast-math liberty: NaN and infinity keep numpy's rules.
FASTMATH = {"contract"}


class Progress:
    """The compile messages (see the module docstring). ``quiet``: set for a session's runs."""

    def __init__(self):
        self.quiet = False
        self.started = None  # when this process first compiled a kernel
        self.compiled = []   # (name, seconds) of the kernels compiled so far
        self._open = []      # [name, start, its line still open] of the compiles in progress: a kernel
        #                      that calls others (kernels/segment.py) compiles those first, inside its own

    def compiling(self):
        """Whether a kernel is being compiled right now (on some thread of this process)."""
        return bool(self._open)

    def silenced(self):
        return self.quiet or os.environ.get("TINYRT_QUIET", "").strip() not in ("", "0")

    def begin(self, name):
        now = time.time()
        while self._open and self._open[-1][0] not in CALLERS:  # it never ended: numba raised
            if self._open.pop()[2] and not self.silenced():
                print(" failed", file=sys.stderr, flush=True)
        if self._open and self._open[-1][2]:
            self._open[-1][2] = False
            if not self.silenced():
                print(" first the kernels it calls:", file=sys.stderr, flush=True)
        self._open.append([name, now, True])
        if self.silenced():
            return
        if self.started is None:
            from . import cache_folder
            print("tinyrt: compiling the numba kernels for this machine: once, on first use (about 10 s on a "
                  "desktop, minutes on a Pi); they are cached in %s. `tinyrt warmup` compiles them ahead of "
                  "time; TINYRT_QUIET=1 hides this." % cache_folder(), file=sys.stderr)
            self.started = now
        print("tinyrt:   %-24s ..." % name, end="", file=sys.stderr, flush=True)

    def end(self):
        if not self._open:
            return
        name, began, line_open = self._open.pop()
        seconds = time.time() - began
        self.compiled.append((name, seconds))
        if not self.silenced():
            if not line_open:
                print("tinyrt:   %-24s ..." % name, end="", file=sys.stderr)
            print(" %.1f s (%.0f s in all)" % (seconds, time.time() - self.started), file=sys.stderr, flush=True)


PROGRESS = Progress()


class _AnnouncedCache:
    """A kernel's numba cache, seen through: a miss on loading means a compile starts (``Progress.begin``),
    and saving the result means it ended."""

    def __init__(self, cache, name):
        self._cache, self._name = cache, name

    def load_overload(self, sig, target_context):
        result = self._cache.load_overload(sig, target_context)
        if result is None:
            PROGRESS.begin(self._name)
        return result

    def save_overload(self, sig, data):
        PROGRESS.end()
        return self._cache.save_overload(sig, data)

    def __getattr__(self, name):
        return getattr(self._cache, name)


CALLERS = set()  # kernels that call other kernels (kernels/segment.py): those compile inside their compile


def kernel(fn, calls_kernels=False):
    compiled = njit(nogil=True, cache=True, fastmath=FASTMATH)(fn)
    name = "%s.%s" % (fn.__module__.rsplit(".", 1)[-1], fn.__name__)
    if calls_kernels:
        CALLERS.add(name)
    compiled._cache = _AnnouncedCache(compiled._cache, name)
    return compiled


# The functions kernels call are compiled the same way, each on its own: LLVM inlines the small ones where
# they are called (numba's inline="always" would copy their IR at every call site, and compiling took
# minutes on an emulated board). They compile while the kernel that calls them does, so its time is theirs.
def helper(fn):
    return njit(nogil=True, cache=True, fastmath=FASTMATH)(fn)
