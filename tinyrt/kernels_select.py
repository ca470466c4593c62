"""Choosing the kernels a session runs on: numba-compiled (``kernels/``) or tinyrt's numpy ops.

    TINYRT_KERNELS=numba|numpy      environment variable
    SessionOptions.kernels          "numba" | "numpy" | None (the environment variable, else auto)

Auto is numba when it imports, else numpy; asking for numba where it is missing warns and runs numpy.
The choice is made at session creation; only then is numba imported (``import tinyrt`` imports numpy
only).

On the numba path, ``bind`` swaps the function of each Conv / FusedConv / Gemm / MaxPool / AveragePool /
GlobalAveragePool / Softmax / Mul / Add / NonMaxSuppression / QuantizeDequantize step for a kernel wrapper
(tinyrt/kernel_wrappers/) that holds the weights packed (float32, in the layout its kernel reads, packed
once, on first use). A wrapper falls back to the numpy op for what its kernel does not cover (other dtypes,
1-D/3-D convs, shapes that broadcast, ...), so the results never depend on the path beyond rounding.

Layout: the conv and pool kernels write channels-last memory and return it as an (N, C, H, W) view
(``y.transpose(0, 3, 1, 2)``), so a chain of convs never transposes anything; every other op sees an
ordinary array of the ONNX shape (numpy follows the strides), and the session hands out contiguous
outputs. A kernel given NCHW memory (the model's input, a Concat's result) copies it to channels-last
first, or, for a 1x1 conv or the stem, reads it as it is.

Threads: one pool at a time. On the numba path the kernels' own pool (kernels/_pool.py) runs them on
``intra_op_num_threads`` threads; at the default (0) each run takes all cores or one thread, whichever
recent runs found faster (threads.WidthChooser: another busy process must not make the default slower
than one thread; the kernels' numbers do not depend on their thread count). BLAS (which no kernel calls:
they have their own GEMM) is held at one thread for the numpy ops in between, so its threads never
compete with the pool's.

On the numpy path BLAS gets ``intra_op_num_threads`` threads, and one at the default: OpenBLAS's answer
depends on its thread count (measured: float32 GEMMs of a MobileNet differ by up to 2e-6 between one and
two threads; even cutting one GEMM into row blocks changes them), so a width chosen run by run would give
a session different answers for the same input; and its threads spin against a busy core (a camera
loop), which made a run many times slower. An asked-for count is used as it is, the same on every run.
"""
import importlib
import os
import sys
import threading
import time
import warnings

from .errors import InputError
from .kernel_wrappers import NUMPY_WRAPPERS, WRAPPERS
from .kernel_wrappers.numpy_conv import border_for_readers
from .threads import WidthChooser, blas_threads, cores

CHOICES = ("numba", "numpy")
_numba_lock = threading.RLock()  # one numba run at a time: the kernels' pool serves one run


def _unlock_after_fork():
    """A child forked while another thread was inside a run inherits the lock held by a thread it does not
    have: it would wait for ever. The child starts with a free lock (the pool resets itself likewise)."""
    global _numba_lock
    _numba_lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_unlock_after_fork)


def requested(options=None):
    """The path asked for: the session option, else TINYRT_KERNELS, else None (auto)."""
    want = getattr(options, "kernels", None) or os.environ.get("TINYRT_KERNELS", "").strip().lower() or None
    if want in ("auto", "default"):
        want = None
    if want is not None and want not in CHOICES:
        raise InputError("kernels=%r: choose one of %s (or leave it unset for the best available)"
                         % (want, ", ".join(CHOICES)))
    return want


def _import_kernels():
    """tinyrt's kernels package, loaded; raises ImportError when numba or the package is missing.

    In a checkout, or with tinyrt/ and kernels/ copied side by side next to a script, it is the kernels/
    folder beside tinyrt/; ``pip install`` puts it in site-packages as ``tinyrt_kernels`` (a generic top-level
    name like ``kernels`` could collide with another project's).
    """
    parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.isfile(os.path.join(parent, "kernels", "__init__.py")):
        if parent not in sys.path:
            sys.path.append(parent)
        name = "kernels"
    else:
        name = "tinyrt_kernels"
    pkg = importlib.import_module(name)
    if not getattr(pkg, "TINYRT_KERNELS", False):
        raise ImportError("the importable %r package (%s) is not tinyrt's" % (name, getattr(pkg, "__file__", "?")))
    return pkg.load()


def _quiet(options):
    """No lines while kernels compile (kernels/_jit.py) at log severity 3 (errors) or more: the session's
    ``log_severity_level``, else (-1) the process default (``tinyrt.set_default_logger_severity``)."""
    level = getattr(options, "log_severity_level", -1)
    if not isinstance(level, int) or level < 0:
        from .environment import _settings
        level = _settings.get("severity", 2)
    return level >= 3


def kernel_label(step):
    """Which code runs a step: a numba kernel (and which), a prepared numpy op, or the numpy op itself."""
    label = getattr(step.fn, "kernel_name", None)
    if isinstance(label, str):
        return label
    fn = step.fn
    return "numpy %s.%s" % (getattr(fn, "__module__", "?").rsplit(".", 1)[-1], getattr(fn, "__name__", type(fn).__name__))


def choose(options=None):
    """A backend object for ``options``: NumbaBackend or NumpyBackend."""
    want = requested(options)
    if want == "numpy":
        return NumpyBackend()
    try:
        return NumbaBackend(_import_kernels(), quiet=_quiet(options))
    except ImportError as e:
        if want == "numba":
            warnings.warn("tinyrt: numba kernels asked for but unavailable (%s); using numpy" % e,
                          RuntimeWarning, stacklevel=3)
        return NumpyBackend()


class NumpyBackend:
    name = "numpy"

    def bind(self, plan):
        """2-D float32 Conv / FusedConv steps with constant weights get a prepared numpy conv (_NumpyConv)."""
        for step in plan.steps:
            make = NUMPY_WRAPPERS.get((step.node.domain, step.node.op_type))
            if make is not None:
                fn = make(step, plan.constants)
                if fn is not None:
                    fn.step_attrs = step.attrs
                    fn.attributes_bound = True
                    step.fn = fn
            for sub in step.subplans.values():
                for p in (sub if isinstance(sub, list) else [sub]):
                    self.bind(p)
        border_for_readers(plan)  # convs that depthwise convs read write inside their zero border
        return plan

    def running(self, threads):
        """BLAS at ``threads`` threads for the run; at one for the default (0): see the module docstring."""
        return blas_threads(threads if threads and threads > 0 else 1)


class _Adaptive:
    """A run at the default thread count: at the width ``chooser`` picks (all cores or one, see
    threads.WidthChooser), timed, the time told to the chooser."""

    def __init__(self, chooser, make):
        self.chooser = chooser
        self.make = make
        self.width = None
        self.inner = None
        self.started = 0.0

    def __enter__(self):
        self.width = self.chooser.pick()
        self.inner = self.make(self.width)
        self.inner.__enter__()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        seconds = time.perf_counter() - self.started
        try:
            return self.inner.__exit__(*exc)
        finally:
            if exc[0] is None:
                self.chooser.record(self.width, seconds)


class _NumbaRunning:
    """BLAS at one thread, the kernels' pool at ``threads`` for the run."""

    def __init__(self, backend, threads):
        self.backend = backend
        self.threads = threads
        self.blas = blas_threads(1)
        self.previous = None

    def __enter__(self):
        _numba_lock.acquire()
        self.blas.__enter__()
        self.previous = self.backend.threads
        self.backend.threads = self.backend.pool.begin(self.threads)
        self.backend.k._jit.PROGRESS.quiet = self.backend.quiet
        return self

    def __exit__(self, *exc):
        try:
            self.backend.k._jit.PROGRESS.quiet = False
            self.backend.pool.end()
            self.backend.threads = self.previous
            return self.blas.__exit__(*exc)
        finally:
            _numba_lock.release()


class NumbaBackend:
    name = "numba"

    def __init__(self, k, quiet=False):
        self.k = k
        self.quiet = quiet
        self.pool = k.POOL
        self.threads = 1  # of the run in progress
        self.chooser = None

    def running(self, threads):
        if (threads and threads > 0) or cores() < 2:
            return _NumbaRunning(self, threads)
        if self.chooser is None:
            self.chooser = WidthChooser(cores())
        return _Adaptive(self.chooser, lambda width: _NumbaRunning(self, width))

    def bind(self, plan):
        """Give each step that a kernel covers its kernel wrapper (recursively into subgraphs)."""
        for step in plan.steps:
            make = WRAPPERS.get((step.node.domain, step.node.op_type))
            if make is not None:
                fn = make(self, step, plan.constants)
                if fn is not None:
                    fn.step_attrs = step.attrs  # the node's attributes, for the numpy op it falls back to
                    fn.attributes_bound = True  # so the program passes none (tinyrt/program.py)
                    step.fn = fn
            for sub in step.subplans.values():
                for p in (sub if isinstance(sub, list) else [sub]):
                    self.bind(p)
        return plan
