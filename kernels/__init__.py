"""numba-compiled kernels for tinyrt's heaviest ops.

tinyrt uses them when numba imports (``tinyrt/kernels_select.py`` chooses, at session creation); each
kernel keeps the contract of tinyrt's numpy op of the same name and is tested against it
(tests/test_kernels.py).

    conv.py    2-D convs writing channels-last (NHWC) memory: pointwise (1x1) as GEMMs over blocks of
               pixels; depthwise (any kernel, stride, dilation, padding, with no padded copy) on vectors
               of channels; every other conv as im2col + GEMM per block of rows. Bias, residual and
               activation are applied before each output is stored.
    stem.py    the first conv (few taps, the model's NCHW input) straight from the input, with no im2col
               buffer: 8 pixels by 1-2 vectors of output channels in registers over the taps.
    gemm.py    the register-blocked GEMM tile under those convs, with its weights packed once.
    qgemm.py   a Gemm whose weights the file stores as int8 (a quantized classifier head), reading them so.
    pool.py    2-D MaxPool and AveragePool on channels-last memory (padding, ceil mode, dilations,
               count_include_pad).
    eltwise.py the tails that are left after fusion: channel scaling (squeeze-excite Mul) and Add.
    channels.py ShuffleNet's channel shuffle and channel slices, copies a segment can run.
    detection.py NonMaxSuppression: per (batch, class) sort and greedy suppression, compiled.
    segment.py a run of convs in one compiled call: a table of layers, each the conv kernel its own call
               would run, with the same arguments (no trip through Python between them).
    _simd.py   SIMD vector types and operations for numba (LLVM intrinsics).
    _pool.py   the thread pool that runs a kernel's blocks on several cores (``POOL``), and
    _sync.py   the atomic counters its threads take blocks with; ``_jit.py``: how kernels are compiled
               (and the lines that say so while it happens); ``_target.py``: the machine they are
               compiled for, checked first (32-bit Arm boards need care: see there).

Compilation happens on first use, never at import, and the result is cached on disk (numba's
``cache=True``) so a board compiles once. The cache directory is

    $TINYRT_CACHE_DIR                       when set, else
    $XDG_CACHE_HOME/tinyrt/numba            (default ~/.cache/tinyrt/numba)

with one sub-folder per name this package is imported under, version of its sources and SIMD width
(numba checks a cached kernel against its own file only, not against the helpers it inlines from gemm.py
or _simd.py, so a changed helper must not meet an old cache; numba keys each entry by CPU as well; and a
cached kernel names the module it reads its globals from, so ``kernels`` in a checkout and the installed
``tinyrt_kernels``, the same sources, must not load each other's entries). Only these kernels use it: a
locator is installed for the files of this package, so numba's own setting (NUMBA_CACHE_DIR) stays the
user's for their own code.
Importing this package imports numba; ``import tinyrt`` never does.

Tested with numba 0.52 (llvmlite 0.35: Debian bullseye, legacy Raspberry Pi OS 32-bit) to 0.68, on x86-64,
aarch64 and 32-bit Arm (tests/boards/). Where numba's JIT cannot compile the kernels' atomics for the CPU,
``load`` raises ImportError and tinyrt runs its numpy ops.
"""
import hashlib
import os
import sys

TINYRT_KERNELS = True  # marks this package as tinyrt's (another "kernels" may be importable)
_HERE = os.path.dirname(os.path.abspath(__file__))


def cache_dir():
    """Where compiled kernels are kept (see the module docstring)."""
    path = os.environ.get("TINYRT_CACHE_DIR")
    if not path:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(base, "tinyrt", "numba")
    return path


def _sources_digest():
    """A short hash of this package's Python sources: part of the cache folder's name."""
    h = hashlib.sha1()
    for name in sorted(os.listdir(_HERE)):
        if name.endswith(".py"):
            with open(os.path.join(_HERE, name), "rb") as f:
                h.update(name.encode() + b"\0" + f.read())
    return h.hexdigest()[:12]


def _install_cache_locator(subdir):
    """Make numba keep the cache of this package's kernels in ``cache_dir()/subdir``."""
    from numba.core import caching
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl")
    base = getattr(caching, "UserProvidedCacheLocator", None) or getattr(caching, "_UserProvidedCacheLocator")
    if any(getattr(c, "_tinyrt", False) for c in impl._locator_classes):
        return
    root = os.path.join(cache_dir(), subdir)

    class TinyrtCacheLocator(base):
        _tinyrt = True

        def __init__(self, py_func, py_file):
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = os.path.join(root, os.path.splitext(os.path.basename(py_file))[0])

        @classmethod
        def from_function(cls, py_func, py_file):
            if os.path.dirname(os.path.abspath(py_file)) != _HERE:
                return None
            self = cls(py_func, py_file)
            try:
                self.ensure_cache_path()
            except OSError:
                return None  # an unwritable cache: numba's other locators (or no cache) take over
            return self

    impl._locator_classes.insert(0, TinyrtCacheLocator)
    global _cache_folder
    _cache_folder = root


_cache_folder = None
_loaded = None
POOL = None  # the thread pool (_pool.Pool) once loaded


def cache_folder():
    """The folder this version of the kernels is cached in (once ``load`` has run), else ``cache_dir()``."""
    return _cache_folder or cache_dir()


def load():
    """Import numba and the kernel modules (compiling nothing); returns this package. Raises ImportError."""
    global _loaded, POOL
    if _loaded is None:
        from ._target import configure_import, machine
        configure_import()  # before numba's first import (32-bit Arm: see _target.py)
        import numba  # noqa: F401  (ImportError when absent: the caller falls back to numpy)
        m = machine()
        if not m.atomics:
            import warnings
            why = ("numba %s's JIT cannot compile the kernels' atomic counters for this CPU (%s): LLVM makes "
                   "them library calls it cannot resolve; setting NUMBA_CPU_NAME to this CPU (e.g. cortex-a7) "
                   "may help" % (numba.__version__, m.describe()))
            warnings.warn("tinyrt: %s; running the numpy ops" % why, RuntimeWarning, stacklevel=2)
            raise ImportError(why)
        from ._simd import LANES
        _install_cache_locator("%s-%s-simd%d" % (__name__, _sources_digest(), LANES))
        from . import channels, conv, gemm, pool, eltwise, detection, qgemm, segment, stem  # noqa: F401
        from ._pool import POOL
        _loaded = sys.modules[__name__]
    return _loaded
