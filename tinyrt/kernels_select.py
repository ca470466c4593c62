"""Choosing the kernels a session runs on: numba-compiled (``kernels/``) or tinyrt's numpy ops.

    TINYRT_KERNELS=numba|numpy      environment variable
    SessionOptions.kernels          "numba" | "numpy" | None (the environment variable, else auto)

Auto is numba when it imports, else numpy; asking for numba where it is missing warns and runs numpy.
The choice is made at session creation; only then is numba imported (``import tinyrt`` imports numpy
only).

On the numba path, ``bind`` swaps the function of each Conv / FusedConv / Gemm / MaxPool / AveragePool /
GlobalAveragePool / Softmax / Mul / Add / NonMaxSuppression step for a kernel wrapper that holds the
weights packed (float32, in the layout its kernel reads, packed once, on first use). A wrapper falls back
to the numpy op for what its kernel does not cover (other dtypes, 1-D/3-D convs, shapes that broadcast,
...), so the results never depend on the path beyond rounding.

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

import numpy as np

from . import limits
from .errors import InputError
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
            if (step.node.domain, step.node.op_type) in (("", "Conv"), ("ai.tinyrt", "FusedConv")):
                fn = _numpy_conv(step, plan.constants)
                if fn is not None:
                    fn.step_attrs = step.attrs
                    fn.attributes_bound = True
                    step.fn = fn
            for sub in step.subplans.values():
                for p in (sub if isinstance(sub, list) else [sub]):
                    self.bind(p)
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
            make = _WRAPPERS.get((step.node.domain, step.node.op_type))
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


# --- wrappers -------------------------------------------------------------------------------------------------

class _NumpyConv:
    """The numpy path's 2-D float32 Conv / FusedConv with constant weights, prepared once per input shape:
    its geometry, size checks and work, the depthwise weights and the bias tiled over an output row (the
    numpy op computes all of those on every call, which costs more than the math of a small conv). The
    math is the numpy op's own (ops/conv.py ``_conv2d``, ops/fused.py ``apply_activation``)."""

    kernel_name = 'numpy conv, prepared'  # what tinyrt profile / trace / code show
    step_attrs = {}  # the node's attributes (set by bind)

    def __init__(self, step, W, B):
        from .ops import conv, fused, _window
        self.conv, self.fused, self.win = conv, fused, _window
        self.ref = step.fn
        a = step.attrs
        self.W = W
        self.B = B
        self.M, self.cg = W.shape[:2]
        self.group = int(a.get("group", 1))
        self.kernel_shape = a.get("kernel_shape")
        self.geometry_attrs = dict(strides=a.get("strides"), dilations=a.get("dilations"), pads=a.get("pads"),
                                   auto_pad=a.get("auto_pad", "NOTSET"))
        self.activation = a.get("activation", "")
        self.params = list(a.get("activation_params") or [])
        self._prepared = {}

    def prepare(self, shape, limit):
        key = (shape, limit)
        p = self._prepared.get(key)
        if p is None:
            N, C, H, Wd = shape
            M, cg, g = self.M, self.cg, self.group
            kernel = list(self.W.shape[2:])
            if C != cg * g or M % g or (self.kernel_shape is not None and list(self.kernel_shape) != kernel):
                return None  # the numpy op reports it
            kernel, strides, dilations, begin, end, out = self.win.geometry(
                "Conv", [H, Wd], kernel, **self.geometry_attrs)
            # what the numpy op checks before allocating (see ops/conv.py), once per shape and limit
            K = kernel[0] * kernel[1]
            padded = [n + max(0, b) + max(0, e) for n, b, e in zip([H, Wd], begin, end)]
            limits.check_shape((N, max(C, M)) + tuple(padded), np.float32, "Conv (padded input)")
            limits.check_shape((N, M, out[0] * out[1]), np.float32, "Conv (output)")
            depthwise = g == C and cg == 1
            if K > 1 and not depthwise:
                limits.check_shape((N, C * K, out[0] * out[1]), np.float32, "Conv (im2col columns)")
            tiled = None
            if depthwise:
                limits.check_shape((K, out[1] * M), np.float32, "Conv (tiled depthwise weights)")
                tiled = self.conv.tile_depthwise(self.W, out[1])
            bias = None if self.B is None else np.tile(self.B, out[1])
            work = int(N * M * out[0] * out[1] * cg * K * limits.MAC_COST) + K * limits.LOOP_COST
            p = (kernel, strides, dilations, begin, end, out, tiled, bias, work)
            if len(self._prepared) > 16:
                self._prepared.clear()
            self._prepared[key] = p
        return p

    def __call__(self, X, W, B=None, Z=None, **attrs):
        attrs = attrs or self.step_attrs
        p = None
        if X.dtype == np.float32 and X.ndim == 4:
            p = self.prepare(X.shape, limits.current().tensor_bytes)
        if p is None:
            return self.ref(X, W, B, Z, **attrs) if Z is not None else self.ref(X, W, B, **attrs)
        kernel, strides, dilations, begin, end, out, tiled, bias, work = p
        limits.spend(work, "Conv")
        y = self.conv._conv2d(X, self.W, self.group, kernel, strides, dilations, begin, end, out, tiled)
        N, OH, OW, M = y.shape
        if bias is not None:
            rows = y.reshape(N * OH, OW * M)
            rows += bias
        y = y.transpose(0, 3, 1, 2)
        if Z is not None:
            if Z.shape == y.shape:
                y += Z
            else:
                return self.ref(X, W, B, Z, **attrs)
        if self.activation:
            self.fused.apply_activation(y, self.activation, self.params)
        return y


def _numpy_conv(step, constants):
    names = list(step.inputs) + ["", ""]
    W = constants.get(names[1]) if names[1] else None
    B = constants.get(names[2]) if names[2] else None
    if W is None or W.dtype != np.float32 or W.ndim != 4 or (names[2] and B is None):
        return None
    if B is not None and (B.dtype != np.float32 or B.shape != (W.shape[0],)):
        return None
    return _NumpyConv(step, W, B)


_EMPTY4 = np.zeros((1, 1, 1, 1), np.float32)  # no residual input


def channels_last_memory(a):
    """True when the (N, C, H, W) array ``a`` is a view of contiguous (N, H, W, C) memory."""
    return a.ndim == 4 and a.transpose(0, 2, 3, 1).flags.c_contiguous


def to_channels_last(a):
    """(N, C, H, W) -> contiguous (N, H, W, C): free for a view of such memory, else one copy."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))


class _ConvKernel:
    """Conv / FusedConv on the numba kernels (kernels/conv.py), with weights packed once.

    The result is an (N, M, OH, OW) view of channels-last memory, which the next conv reads as it is;
    every other op sees an ordinary numpy array of the right shape (numpy follows the strides).
    """

    @property
    def kernel_name(self):
        """The kernels this conv ran on so far (picked per input shape), for profile / trace / code."""
        kinds = sorted({p[0] or "numpy fallback" for p in self._prepared.values()})
        return "numba conv." + "/".join(kinds) if kinds else "numba conv"

    step_attrs = {}  # the node's attributes (set by bind)

    def __init__(self, backend, step, constants):
        from .ops import _window
        self.win = _window
        self.backend = backend
        self.k = backend.k
        self.ref = step.fn
        a = step.attrs
        W = constants[step.inputs[1]]
        b_name = step.inputs[2] if len(step.inputs) > 2 else ""
        self.W = np.asarray(W, dtype=np.float32)
        self.M, self.cg = W.shape[:2]
        self.kernel = list(W.shape[2:])
        self.bias = (np.ascontiguousarray(constants[b_name].reshape(-1), dtype=np.float32) if b_name
                     else np.zeros(self.M, np.float32))
        self.group = int(a.get("group", 1))
        self.attrs = dict(strides=a.get("strides"), dilations=a.get("dilations"), pads=a.get("pads"),
                          auto_pad=a.get("auto_pad", "NOTSET"))
        params = list(a.get("activation_params") or []) + [0.0, 0.0]
        activation = a.get("activation", "")
        if activation == "Relu":  # the same function, and the Clip loop vectorises (measured: 4x faster)
            activation, params = "Clip", [0.0, float("inf")]
        self.qscale = np.float32(0)  # QDQ rounding (kernels/conv.py's qs): its clip is a Clip in the tiles
        if activation == "QuantizeDequantize":
            s = np.float32(params[0])
            activation, params, self.qscale = "Clip", [np.float32(params[1] * s), np.float32(params[2] * s)], s
        self.act = self.k.conv.ACT[activation]
        self.alpha, self.beta = np.float32(params[0]), np.float32(params[1])
        self._prepared = {}
        self._packed = {}

    def packed(self, layout):
        """The weights in the layout a kernel reads, made on first use (a conv needs one or two of them)."""
        w = self._packed.get(layout)
        if w is None:
            M, cg, (kh, kw), g = self.M, self.cg, self.kernel, self.group
            gemm = self.k.gemm
            if layout == "taps":          # depthwise: (kh * kw, C), zero-padded to whole vectors of channels
                lanes = self.k.conv.LANES
                w = np.zeros((kh * kw, -(-M // lanes) * lanes), np.float32)
                w[:, :M] = self.W.reshape(M, kh * kw).T
            elif layout == "bias":        # depthwise: likewise
                w = gemm.pack_bias(self.bias)
            elif layout == "group-bias":  # GEMMs: each group's bias, padded like its panels
                w = np.stack([gemm.pack_bias(b) for b in self.bias.reshape(g, M // g)])
            else:  # GEMMs: each group's (rows, M / group) weights in panels (kernels/gemm.py); the rows
                # (i, j, c) "tap-major" for im2col from NHWC, else (c, i, j): im2col from NCHW, pointwise
                if layout == "tap-major":
                    w = self.W.reshape(g, M // g, cg, kh, kw).transpose(0, 3, 4, 2, 1).reshape(g, kh * kw * cg, M // g)
                else:
                    w = self.W.reshape(g, M // g, cg * kh * kw).transpose(0, 2, 1)
                w = np.stack([gemm.pack(wg) for wg in w])
            w = np.ascontiguousarray(w)
            self._packed[layout] = w
        return w

    def prepare(self, shape, threads):
        """How to run inputs of ``shape``, worked out once: which kernel and its scalar arguments."""
        key = (shape, threads)
        p = self._prepared.get(key)
        if p is None:
            kernel, strides, dilations, begin, end, out = self.win.geometry(
                "Conv", list(shape[2:]), self.kernel, **self.attrs)
            N, C = shape[:2]
            (kh, kw), (sh, sw), (dh, dw), (pt, pl), (OH, OW) = kernel, strides, dilations, begin, out
            if min(begin + end) < 0 or C != self.cg * self.group or self.M % self.group:
                kind = None  # negative pads, bad channel counts: the numpy op handles (or reports) it
            elif self.group == C == self.M and self.cg == 1:
                kind = "depthwise"
            elif kernel == [1, 1] and strides == [1, 1] and not any(begin + end) and self.group == 1:
                kind = "pointwise"
            else:
                kind = "im2col"
            yshape = (N, self.M, OH, OW)
            macs = limits.product(yshape) * self.cg * kh * kw
            # a small conv runs on one thread: splitting it would cost more than it saves (a depthwise
            # conv does one multiply-add per load, a GEMM about 16: it is worth splitting 16x sooner)
            threaded = threads > 1 and macs * (16 if kind == "depthwise" else 1) >= PARALLEL_MIN_MACS
            T = threads if threaded else 1
            tail = (self.act, self.alpha, self.beta, self.qscale)
            if kind == "pointwise":
                args = tail + _pointwise_blocks(N, self.M, OH * OW, T, self.k.gemm.PANEL)
            elif kind == "depthwise":
                args = (kh, kw, sh, sw, dh, dw, pt, pl) + tail
            else:
                args = (kh, kw, sh, sw, dh, dw, pt, pl) + tail + (_im2col_rows(N, kh * kw * self.cg, OH, OW, T),)
            if kind == "pointwise":
                weights = (self.packed("channel-major")[0], self.packed("group-bias")[0])
            elif kind == "depthwise":
                weights = (self.packed("taps"), self.packed("bias"))
            elif kind == "im2col":
                layout = "tap-major" if self.cg >= 16 else "channel-major"  # NCHW input: see __call__
                weights = (self.packed(layout), self.packed("group-bias"))
            else:
                weights = ()
            p = (kind, args, yshape, limits.nominal_count(yshape) * 4, int(macs * limits.MAC_COST), threaded, weights)
            self._prepared[key] = p
        return p

    def __call__(self, X, W, B=None, Z=None, **attrs):
        attrs = attrs or self.step_attrs  # the program calls a wrapper without them (bound here)
        if X.dtype != np.float32 or X.ndim != 4:
            return self._ref(X, W, B, Z, attrs)
        kind, args, yshape, nbytes, work, threaded, weights = self.prepare(X.shape, self.backend.threads)
        budget = limits.current()  # pads and strides come from the file: check the size before allocating
        if budget.tensor_bytes is not None and nbytes > budget.tensor_bytes:
            limits.check_shape(yshape, np.float32, "Conv")
        limits.spend(work, "Conv")
        has_z = Z is not None
        if kind is None or 0 in X.shape or 0 in yshape or (has_z and (Z.shape != yshape or Z.dtype != np.float32)):
            return self._ref(X, W, B, Z, attrs)
        N, C, OH, OW = X.shape[0], X.shape[1], yshape[2], yshape[3]
        conv, run = self.k.conv, self.backend.pool.run
        y = np.empty((N, OH, OW, self.M), np.float32)
        z = to_channels_last(Z) if has_z else _EMPTY4
        if kind == "pointwise":
            if channels_last_memory(X):
                x, nchw = X.transpose(0, 2, 3, 1).reshape(N, OH * OW, C), False
            else:
                x, nchw = np.ascontiguousarray(X).reshape(N, C, OH * OW), True
            run(conv.pointwise, (x,) + weights + (z, has_z, y) + args + (nchw,), threaded)
        elif kind == "depthwise":
            run(conv.depthwise, (to_channels_last(X),) + weights + (z, has_z, y) + args, threaded)
        elif self.cg >= 16:
            run(conv.im2col, (to_channels_last(X),) + weights + (z, has_z, y) + args, threaded)
        elif channels_last_memory(X):  # few channels, but channels-last memory: gather channels after all
            run(conv.im2col, (to_channels_last(X), self.packed("tap-major"), weights[1], z, has_z, y) + args,
                threaded)
        else:  # few channels in NCHW memory (the stem reading the model's input): gather rows of pixels
            run(conv.im2col_nchw, (np.ascontiguousarray(X),) + weights + (z, has_z, y) + args, threaded)
        return y.transpose(0, 3, 1, 2)

    def _ref(self, X, W, B, Z, attrs):
        if Z is not None:
            return self.ref(X, W, B, Z, **attrs)
        return self.ref(X, W, B, **attrs)

    def specialize(self, args):
        """This conv for one signature of the compiled program (``args``: the first run's inputs): the
        geometry, packed weights and scalar arguments bound once, the limits checked and its work counted
        by the program (``work``), and the kernel entered past numba's dispatcher. Returns (call, work), or
        None where every call must go through ``__call__`` (the numpy fallbacks, NCHW input to im2col).
        The call does what ``__call__`` does for these shapes, with the same kernel and arguments: the
        same numbers."""
        X = args[0]
        Z = args[3] if len(args) > 3 else None
        if type(X) is not np.ndarray or X.dtype != np.float32 or X.ndim != 4:
            return None
        threads = self.backend.threads
        kind, kargs, yshape, nbytes, work, threaded, weights = self.prepare(X.shape, threads)
        has_z = Z is not None
        if kind is None or (kind == "im2col" and self.cg < 16) or 0 in X.shape or 0 in yshape or (
                has_z and (type(Z) is not np.ndarray or Z.shape != yshape or Z.dtype != np.float32)):
            return None
        N, C, H, W = X.shape
        ynhwc = (N, yshape[2], yshape[3], self.M)
        L = H * W
        backend, general = self.backend, self.__call__
        kernel = getattr(self.k.conv, kind)
        w, bias = weights
        example = (np.empty((N, L, C) if kind == "pointwise" else (N, H, W, C), np.float32), w, bias,
                   np.empty(yshape, np.float32).transpose(0, 2, 3, 1).copy() if has_z else _EMPTY4, has_z,
                   np.empty(ynhwc, np.float32)) + kargs
        if kind == "pointwise":
            example += (False,)
        entry = self.backend.pool.entry_point(kernel, example)

        if kind == "pointwise":
            def call(X, W, B=None, Z=None, **attrs):
                if backend.threads != threads:  # the pool's width changed since: the general call
                    return general(X, W, B, Z, **attrs)
                y = np.empty(ynhwc, np.float32)
                if X.transpose(0, 2, 3, 1).flags.c_contiguous:  # channels-last memory: read as it is
                    x, nchw = X.transpose(0, 2, 3, 1).reshape(N, L, C), False
                else:
                    x, nchw = np.ascontiguousarray(X).reshape(N, C, L), True
                run(entry, (x, w, bias, _EMPTY4 if Z is None else to_channels_last(Z), has_z, y) + kargs
                    + (nchw,), threaded)
                return y.transpose(0, 3, 1, 2)
        else:
            def call(X, W, B=None, Z=None, **attrs):
                if backend.threads != threads:
                    return general(X, W, B, Z, **attrs)
                y = np.empty(ynhwc, np.float32)
                run(entry, (to_channels_last(X), w, bias, _EMPTY4 if Z is None else to_channels_last(Z), has_z,
                            y) + kargs, threaded)
                return y.transpose(0, 3, 1, 2)
        run = self.backend.pool.run
        return call, work


PARALLEL_MIN_MACS = 1 << 20  # below about a million multiply-adds a conv runs serially (see ``prepare``)


def _pointwise_blocks(N, M, L, threads, panel):
    """(pixels, channels) of one block of a 1x1 conv: 64 pixels by all channels (the block's input rows
    stay in cache while each panel of weights passes over them). Threaded: about four blocks of rows a
    thread; with too few pixels for that (a 7x7 layer), one block of output channels a thread instead."""
    rows, cols = min(L, 64), M
    if threads > 1:
        if L >= 32 * threads:
            rows = min(rows, (-(-L // (4 * threads)) + 7) // 8 * 8)
        elif N < threads:
            cols = min(M, -(-M // (threads * panel)) * panel)
    return rows, cols


def _im2col_rows(images, kc, OH, OW, threads):
    """Output rows per im2col block: a column buffer of about 24K floats, enough blocks for the threads."""
    rows = max(1, min(OH, 24576 // max(1, kc * OW)))
    while rows > 1 and images * (-(-OH // rows)) < threads:
        rows = (rows + 1) // 2
    return rows


def _conv(backend, step, constants):
    w_name = step.inputs[1] if len(step.inputs) > 1 else ""
    b_name = step.inputs[2] if len(step.inputs) > 2 else ""
    if w_name not in constants or (b_name and b_name not in constants):
        return None
    W = constants[w_name]
    if W.ndim != 4 or W.dtype != np.float32 or 0 in W.shape:
        return None
    if b_name and constants[b_name].shape != (W.shape[0],):
        return None  # the kernels read M bias values by pointer: the numpy op reports a wrong bias
    return _ConvKernel(backend, step, constants)


class _GemmKernel:
    """Gemm with constant float32 B (and C, one value per output column) on the pointwise kernel:
    Y = A @ B' + C is a 1x1 conv over the rows of A, with B' packed once (a CNN's classifier head)."""

    kernel_name = 'numba conv.pointwise (Gemm)'  # what tinyrt profile / trace / code show
    step_attrs = {}  # the node's attributes (set by bind)

    def __init__(self, backend, B, bias, step):
        self.backend = backend
        self.k = backend.k
        self.ref = step.fn
        self.B, self.bias = B, bias  # B' (K, M); packed on first use
        self.packed = None

    def __call__(self, A, B, C=None, **attrs):
        attrs = attrs or self.step_attrs  # the program calls a wrapper without them (bound here)
        K, M = self.B.shape
        if A.dtype != np.float32 or A.ndim != 2 or A.shape[1] != K:
            return self.ref(A, B, C, **attrs)
        if self.packed is None:
            self.packed = (self.k.gemm.pack(self.B), self.k.gemm.pack_bias(self.bias))
        N = A.shape[0]
        if N == 0 or K == 0 or M == 0:  # nothing to multiply: the numpy op returns the empty result
            return self.ref(A, B, C, **attrs)
        limits.check_shape((N, M), np.float32, "Gemm")
        limits.spend_macs(N * K * M, "Gemm")
        threads = self.backend.threads
        threaded = threads > 1 and N * K * M >= PARALLEL_MIN_MACS
        y = np.empty((1, N, 1, M), np.float32)  # 4-D like a conv's: the kernel compiled once serves both
        self.backend.pool.run(self.k.conv.pointwise, (
            np.ascontiguousarray(A).reshape(1, N, K), self.packed[0], self.packed[1], _EMPTY4, False, y, 0,
            np.float32(0), np.float32(0), np.float32(0)) + _pointwise_blocks(1, M, N, threads if threaded else 1, self.k.gemm.PANEL)
            + (False,), threaded)
        return y.reshape(N, M)

    def specialize(self, args):
        """This Gemm for one signature of the compiled program (see _ConvKernel.specialize)."""
        A = args[0]
        K, M = self.B.shape
        if type(A) is not np.ndarray or A.dtype != np.float32 or A.ndim != 2 or A.shape[1] != K \
                or self.packed is None or 0 in (A.shape[0], K, M):
            return None
        N = A.shape[0]
        threads = self.backend.threads
        threaded = threads > 1 and N * K * M >= PARALLEL_MIN_MACS
        rest = (self.packed[0], self.packed[1], _EMPTY4, False)
        tail = (0, np.float32(0), np.float32(0), np.float32(0)) + _pointwise_blocks(
            1, M, N, threads if threaded else 1, self.k.gemm.PANEL) + (False,)
        backend, run, general = self.backend, self.backend.pool.run, self.__call__
        entry = backend.pool.entry_point(self.k.conv.pointwise, (np.empty((1, N, K), np.float32),) + rest + (
            np.empty((1, N, 1, M), np.float32),) + tail)

        def call(A, B, C=None, **attrs):
            if backend.threads != threads:
                return general(A, B, C, **attrs)
            y = np.empty((1, N, 1, M), np.float32)
            run(entry, (np.ascontiguousarray(A).reshape(1, N, K),) + rest + (y,) + tail, threaded)
            return y.reshape(N, M)
        return call, int(N * K * M * limits.MAC_COST)


def _gemm(backend, step, constants):
    a = step.attrs
    names = list(step.inputs) + ["", ""]
    B = constants.get(names[1]) if names[1] else None
    C = constants.get(names[2]) if names[2] else None
    if (B is None or B.dtype != np.float32 or B.ndim != 2 or a.get("transA", 0) or a.get("alpha", 1.0) != 1.0
            or (names[2] and (C is None or C.dtype != np.float32 or a.get("beta", 1.0) != 1.0))):
        return None
    Bt = B.T if a.get("transB", 0) else B
    M = Bt.shape[1]
    if C is None:
        bias = np.zeros(M, np.float32)
    elif C.ndim <= 2 and C.size in (1, M) and (C.ndim < 2 or C.shape[0] == 1):
        bias = np.broadcast_to(C.reshape(-1), (M,))  # one value per column (or one for all)
    else:
        return None  # C varies by row: the numpy op
    return _GemmKernel(backend, np.ascontiguousarray(Bt), np.ascontiguousarray(bias), step)


class _PoolKernel:
    @property
    def kernel_name(self):
        return "numba pool." + ("max_pool" if self.op_type == "MaxPool" else "avg_pool")

    step_attrs = {}  # the node's attributes (set by bind)

    def __init__(self, backend, step, op_type):
        from .ops import pool
        self.pool = pool
        self.backend = backend
        self.k = backend.k
        self.ref = step.fn
        self.op_type = op_type
        a = step.attrs
        self.args = (a.get("kernel_shape"), a.get("strides"), a.get("dilations"), a.get("pads"),
                     a.get("auto_pad", "NOTSET"), a.get("ceil_mode", 0))
        self.include_pad = bool(a.get("count_include_pad", 0))
        self._geometry = {}

    def __call__(self, X, **attrs):
        attrs = attrs or self.step_attrs  # the program calls a wrapper without them (bound here)
        if X.dtype != np.float32 or X.ndim != 4:
            return self.ref(X, **attrs)
        g = self._geometry.get(X.shape)
        if g is None:
            g = self.pool._Geometry(self.op_type, X, *self.args)
            self._geometry[X.shape] = g
        if min(g.begin + g.end) < 0:
            return self.ref(X, **attrs)
        x = to_channels_last(X)
        y = np.empty((X.shape[0],) + tuple(g.out) + (X.shape[1],), np.float32)
        (kh, kw), (sh, sw), (dh, dw), (pt, pl) = g.kernel, g.strides, g.dilations, g.begin
        geometry = (kh, kw, sh, sw, dh, dw, pt, pl)
        if self.op_type == "MaxPool":
            self.backend.pool.run(self.k.pool.max_pool, (x, y) + geometry)
        else:
            self.backend.pool.run(self.k.pool.avg_pool, (x, y) + geometry + (g.end[0], g.end[1], self.include_pad))
        return y.transpose(0, 3, 1, 2)  # channels-last memory, like the convs' results

    def specialize(self, args):
        """This pool for one signature of the compiled program (see _ConvKernel.specialize)."""
        X = args[0]
        if type(X) is not np.ndarray or X.dtype != np.float32 or X.ndim != 4:
            return None
        g = self._geometry.get(X.shape)
        if g is None or min(g.begin + g.end) < 0:
            return None
        (kh, kw), (sh, sw), (dh, dw), (pt, pl) = g.kernel, g.strides, g.dilations, g.begin
        rest = (kh, kw, sh, sw, dh, dw, pt, pl)
        kernel = self.k.pool.max_pool
        if self.op_type != "MaxPool":
            kernel, rest = self.k.pool.avg_pool, rest + (g.end[0], g.end[1], self.include_pad)
        yshape = (X.shape[0],) + tuple(g.out) + (X.shape[1],)
        run = self.backend.pool.run
        entry = self.backend.pool.entry_point(kernel, (to_channels_last(X), np.empty(yshape, np.float32)) + rest)

        def call(X, **attrs):
            y = np.empty(yshape, np.float32)
            run(entry, (to_channels_last(X), y) + rest)
            return y.transpose(0, 3, 1, 2)
        return call, 0


class _GlobalAvgPoolKernel:
    """GlobalAveragePool of channels-last memory (what the convs write): one pass over the pixels, where
    numpy would reduce across the strides of the (N, C, H, W) view."""

    kernel_name = 'numba pool.global_avg_pool'  # what tinyrt profile / trace / code show
    step_attrs = {}  # the node's attributes (set by bind)

    def __init__(self, backend, step):
        self.backend = backend
        self.k = backend.k
        self.ref = step.fn

    def __call__(self, X, **attrs):
        attrs = attrs or self.step_attrs  # the program calls a wrapper without them (bound here)
        if X.dtype != np.float32 or not channels_last_memory(X):
            return self.ref(X, **attrs)
        N, C, H, W = X.shape
        y = np.empty((N, C), np.float32)
        self.backend.pool.run(self.k.pool.global_avg_pool, (X.transpose(0, 2, 3, 1).reshape(N, H * W, C), y), False)
        return y.reshape(N, C, 1, 1)

    def specialize(self, args):
        """This pool for one signature of the compiled program (see _ConvKernel.specialize)."""
        X = args[0]
        if type(X) is not np.ndarray or X.dtype != np.float32 or not channels_last_memory(X):
            return None
        N, C, H, W = X.shape
        run, general = self.backend.pool.run, self.__call__
        entry = self.backend.pool.entry_point(self.k.pool.global_avg_pool, (
            X.transpose(0, 2, 3, 1).reshape(N, H * W, C), np.empty((N, C), np.float32)))

        def call(X, **attrs):
            if not X.transpose(0, 2, 3, 1).flags.c_contiguous:  # this run's input is laid out otherwise
                return general(X, **attrs)
            y = np.empty((N, C), np.float32)
            run(entry, (X.transpose(0, 2, 3, 1).reshape(N, H * W, C), y), False)
            return y.reshape(N, C, 1, 1)
        return call, 0


class _SoftmaxKernel:
    """Softmax of float32 over the last axis (opset 13) or over all axes from ``axis`` (older opsets):
    one row at a time, compiled (a numpy op after the convs runs slowly, its code evicted from cache)."""

    kernel_name = 'numba eltwise.softmax'  # what tinyrt profile / trace / code show
    step_attrs = {}  # the node's attributes (set by bind)

    def __init__(self, backend, step):
        self.backend = backend
        self.k = backend.k
        self.ref = step.fn
        self.flatten = step.impl.version < 13  # before 13: all axes from ``axis`` at once

    def __call__(self, x, **attrs):
        attrs = attrs or self.step_attrs  # the program calls a wrapper without them (bound here)
        axis = attrs.get("axis", 1 if self.flatten else -1)
        if x.dtype != np.float32 or x.ndim == 0 or x.size == 0 or not -x.ndim <= axis < x.ndim:
            return self.ref(x, **attrs)
        axis %= x.ndim
        if not self.flatten and axis != x.ndim - 1:
            return self.ref(x, **attrs)
        rows = limits.product(x.shape[:axis])
        y = np.empty(x.shape, np.float32)
        self.backend.pool.run(self.k.eltwise.softmax, (np.ascontiguousarray(x).reshape(rows, -1), y.reshape(rows, -1)),
                              False)
        return y


def _max_pool(backend, step, constants):
    if any(step.outputs[1:]):  # Indices wanted: the numpy op
        return None
    return _PoolKernel(backend, step, "MaxPool")


def _avg_pool(backend, step, constants):
    return _PoolKernel(backend, step, "AveragePool")


class _MulKernel:
    """Mul of (N, C, H, W) by (N, C, 1, 1) (squeeze-excite gating), either order, on channels-last memory."""

    kernel_name = 'numba eltwise.channel_scale'  # what tinyrt profile / trace / code show
    step_attrs = {}  # the node's attributes (set by bind)

    def __init__(self, backend, step):
        self.backend = backend
        self.k = backend.k
        self.ref = step.fn

    def __call__(self, A, B, **attrs):
        attrs = attrs or self.step_attrs  # the program calls a wrapper without them (bound here)
        if A.dtype == np.float32 and B.dtype == np.float32 and A.ndim == 4 and B.ndim == 4:
            if B.shape[2:] == (1, 1) and A.shape[:2] == B.shape[:2] and A.shape[2] * A.shape[3] > 1:
                x, s = A, B
            elif A.shape[2:] == (1, 1) and A.shape[:2] == B.shape[:2] and B.shape[2] * B.shape[3] > 1:
                x, s = B, A
            else:
                return self.ref(A, B, **attrs)
            N, C, H, W = x.shape
            y = np.empty((N, H, W, C), np.float32)
            self.backend.pool.run(self.k.eltwise.channel_scale, (
                to_channels_last(x).reshape(N, H * W, C), np.ascontiguousarray(s.reshape(N, C)), y.reshape(N, H * W, C)))
            return y.transpose(0, 3, 1, 2)
        return self.ref(A, B, **attrs)

    def specialize(self, args):
        """This Mul for one signature of the compiled program (see _ConvKernel.specialize)."""
        A, B = args[:2]
        if not (type(A) is np.ndarray and type(B) is np.ndarray and A.dtype == np.float32
                and B.dtype == np.float32 and A.ndim == 4 and B.ndim == 4 and A.shape[:2] == B.shape[:2]):
            return None
        if B.shape[2:] == (1, 1) and A.shape[2] * A.shape[3] > 1:
            scaled_first = True
        elif A.shape[2:] == (1, 1) and B.shape[2] * B.shape[3] > 1:
            scaled_first = False
        else:
            return None
        N, C, H, W = (A if scaled_first else B).shape
        run = self.backend.pool.run
        entry = self.backend.pool.entry_point(self.k.eltwise.channel_scale, (
            np.empty((N, H * W, C), np.float32), np.empty((N, C), np.float32), np.empty((N, H * W, C), np.float32)))

        def call(A, B, **attrs):
            x, s = (A, B) if scaled_first else (B, A)
            y = np.empty((N, H, W, C), np.float32)
            run(entry, (to_channels_last(x).reshape(N, H * W, C), np.ascontiguousarray(s.reshape(N, C)),
                        y.reshape(N, H * W, C)))
            return y.transpose(0, 3, 1, 2)
        return call, 0


class _AddKernel:
    """Add of two float32 arrays of one shape and one memory layout, over the kernels' threads."""

    kernel_name = 'numba eltwise.add'  # what tinyrt profile / trace / code show
    step_attrs = {}  # the node's attributes (set by bind)

    def __init__(self, backend, step):
        self.backend = backend
        self.k = backend.k
        self.ref = step.fn

    def __call__(self, A, B, **attrs):
        attrs = attrs or self.step_attrs  # the program calls a wrapper without them (bound here)
        if A.dtype == np.float32 and B.dtype == np.float32 and A.shape == B.shape and A.size >= 65536:
            if A.flags.c_contiguous and B.flags.c_contiguous:
                a, b, back = A, B, None
            elif channels_last_memory(A) and channels_last_memory(B):
                a, b, back = A.transpose(0, 2, 3, 1), B.transpose(0, 2, 3, 1), (0, 3, 1, 2)
            else:
                return self.ref(A, B, **attrs)
            y = np.empty(a.shape, np.float32)
            self.backend.pool.run(self.k.eltwise.add, (a.reshape(-1), b.reshape(-1), y.reshape(-1)))
            return y if back is None else y.transpose(back)
        return self.ref(A, B, **attrs)


_WRAPPERS = {
    ("", "Conv"): _conv,
    ("", "Gemm"): _gemm,
    ("ai.tinyrt", "FusedConv"): _conv,
    ("", "MaxPool"): _max_pool,
    ("", "GlobalAveragePool"): lambda backend, step, constants: _GlobalAvgPoolKernel(backend, step),
    ("", "Softmax"): lambda backend, step, constants: _SoftmaxKernel(backend, step),
    ("", "AveragePool"): _avg_pool,
    ("", "Mul"): lambda backend, step, constants: _MulKernel(backend, step),
    ("", "Add"): lambda backend, step, constants: _AddKernel(backend, step),
}


class _NMSKernel:
    """NonMaxSuppression on the compiled greedy loop (kernels/detection.py), for float32 boxes and scores.

    The thresholds are read and checked by the numpy op's ``nms_arguments`` and the corners computed by its
    ``_corners``, so both paths refuse the same inputs and compare the same float32 numbers. Work is spent
    as the numpy op spends it (a fixed cost per (batch, class), then 40 x the boxes left each time a box is
    kept), the kernel counting the second part. A hostile input stays bounded: the classes run in chunks
    whose worst case (40 x boxes x kept per class) fits in what is left of the budget, and a chunk of one
    class stops as soon as it passes it.
    """

    kernel_name = 'numba detection.nms'  # what tinyrt profile / trace / code show
    step_attrs = {}  # the node's attributes (set by bind)

    CHUNK_OUT = 1 << 22  # at most this many int64 slots of kept indices per chunk (32 MiB)

    def __init__(self, backend, step):
        from .ops import detection
        self.det = detection
        self.backend = backend
        self.k = backend.k
        self.ref = step.fn

    def __call__(self, boxes, scores, max_output_boxes_per_class=None, iou_threshold=None, score_threshold=None,
                 **attrs):
        attrs = attrs or self.step_attrs  # the program calls a wrapper without them (bound here)
        args = (boxes, scores, max_output_boxes_per_class, iou_threshold, score_threshold)
        if boxes.dtype != np.float32 or scores.dtype != np.float32 or boxes.ndim != 3 or scores.ndim != 3 \
                or boxes.shape[1] >= 1 << 32:  # the kernel keeps a box index in 32 bits
            return self.ref(*args, **attrs)
        max_out, iou_thr, score_thr = self.det.nms_arguments(*args)
        B, C, N = scores.shape
        if max_out == 0 or B * C == 0:
            return np.zeros((0, 3), dtype=np.int64)
        limits.spend(B * C * limits.ITERATION_COST, "NonMaxSuppression")  # the numpy op's cost per class
        K = min(max_out, N)
        x0, y0, x1, y1, area = [np.ascontiguousarray(a) for a in
                                self.det._corners(boxes, int(attrs.get("center_point_box", 0)))]
        s = np.ascontiguousarray(scores).reshape(B * C, N)
        use_thr = score_thr is not None
        thr = score_thr if use_thr else np.float32(0)
        per_class = 40 * (N * K - K * (K - 1) // 2)  # the most one class can spend: K boxes kept of N
        rows = []
        lo = 0
        while lo < B * C:
            left = limits.current().work
            chunk = min(B * C - lo, max(1, self.CHUNK_OUT // max(K, 1)))
            if left is not None:
                chunk = min(chunk, max(1, left // max(per_class, 1)))
            hi = lo + chunk
            out = np.empty((chunk, K), np.int64)
            counts = np.zeros(chunk, np.int64)
            work = np.zeros(chunk, np.int64)
            self.backend.pool.run(self.k.detection.nms, (
                x0, y0, x1, y1, area, s, s.view(np.uint32), use_thr, thr, iou_thr, K, lo, hi,
                (1 << 62) if left is None else max(int(left), 0), out, counts, work))
            limits.spend(int(work.sum()), "NonMaxSuppression")  # raises once past the budget
            if counts.any():
                t = np.repeat(np.arange(lo, hi, dtype=np.int64), counts)
                sel = np.empty((t.size, 3), dtype=np.int64)
                sel[:, 0], sel[:, 1] = t // C, t % C
                sel[:, 2] = out[np.arange(K) < counts[:, None]]
                rows.append(sel)
            lo = hi
        if not rows:
            return np.zeros((0, 3), dtype=np.int64)
        return rows[0] if len(rows) == 1 else np.concatenate(rows, axis=0)


def _nms(backend, step, constants):
    return _NMSKernel(backend, step)


_WRAPPERS[("", "NonMaxSuppression")] = _nms


class _QuantizeDequantizeKernel:
    """A QDQ model's activation rounding (ops/quantize.py's QuantizeDequantize) in one compiled sweep."""

    def __init__(self, backend, step):
        self.backend = backend
        self.k = backend.k
        self.ref = step.fn
        self.low, self.high = step.attrs["low"], step.attrs["high"]

    def __call__(self, x, scale, **attrs):  # attributes bound here: the compiled program passes none
        low, high = self.low, self.high
        if x.dtype == np.float32 and scale.dtype == np.float32 and scale.size == 1 and x.size >= 4096:
            if x.flags.c_contiguous:
                a, back = x, None
            elif channels_last_memory(x):
                a, back = x.transpose(0, 2, 3, 1), (0, 3, 1, 2)
            else:
                return self.ref(x, scale, low=low, high=high)
            y = np.empty(a.shape, np.float32)
            self.backend.pool.run(self.k.eltwise.quantize_dequantize, (
                a.reshape(-1), y.reshape(-1), np.float32(scale.reshape(-1)[0]), np.float32(low), np.float32(high)))
            return y if back is None else y.transpose(back)
        return self.ref(x, scale, low=low, high=high)


_WRAPPERS[("ai.tinyrt", "QuantizeDequantize")] = lambda backend, step, constants: _QuantizeDequantizeKernel(
    backend, step)
