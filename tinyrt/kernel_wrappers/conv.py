"""Conv / FusedConv and Gemm on the numba kernels (kernels/conv.py), their weights packed once."""
import numpy as np

from .. import limits
from ..ops import fused as _fused
from ..ops.tails import TAILS
from .base import KernelWrapper
from .qgemm import qgemm
from .layout import EMPTY4 as _EMPTY4, aligned, channels_last_memory, empty_aligned, to_channels_last
from .segment import Layer


class _ConvKernel(KernelWrapper):
    """Conv / FusedConv on the numba kernels (kernels/conv.py), with weights packed once.

    The result is an (N, M, OH, OW) view of channels-last memory, which the next conv reads as it is;
    every other op sees an ordinary numpy array of the right shape (numpy follows the strides).
    """

    @property
    def kernel_name(self):
        """The kernels this conv ran on so far (picked per input shape), for profile / trace / code."""
        kinds = sorted({p[0] or "numpy fallback" for p in self._prepared.values()} | self._also)
        return "numba conv." + "/".join(kinds) if kinds else "numba conv"

    def __init__(self, backend, step, constants):
        from ..ops import _window
        self.win = _window
        super().__init__(backend, step)
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
        # the tail (ops/tails.py) as the kernels apply it: kernels/conv.py's act code, its a and b, and qs;
        # one they do not know is applied after them, in numpy (``after``)
        name, alpha, beta, qscale = _kernel_tail(a)
        self.after = None
        self.input_rounding = a.get("input_rounding")  # X rounded first (ops/fused.py): by the stem kernel
        # as it reads X (its arguments: ``rounding``), else before the kernel
        self.rounding = None if self.input_rounding is None else tuple(np.float32(v) for v in self.input_rounding)
        if name not in self.k.conv.ACT:
            tail, params = TAILS[a.get("activation", "")], list(a.get("activation_params") or [])
            self.after = lambda y: tail.apply(y, *params)
            name, alpha, beta, qscale = "", 0.0, 0.0, 0.0
        self.act = self.k.conv.ACT[name]
        self.alpha, self.beta, self.qscale = np.float32(alpha), np.float32(beta), np.float32(qscale)
        self._prepared = {}
        self._packed = {}
        self._also = set()  # "im2col" once a "stem" conv read channels-last memory (see __call__)

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
            w = aligned(w)
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
            elif self.group == 1 and self.cg < 16 and self.cg * kh * kw <= STEM_TAPS:
                kind = "stem"  # kernels/stem.py where the input is NCHW memory (see __call__), else im2col
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
            elif kind in ("im2col", "stem"):
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
        if self.rounding is not None and not (kind == "stem" and _nchw(X)):
            X = _fused.round_input(X, self.input_rounding)  # (the stem kernel rounds the rows it reads itself)
        y = empty_aligned((N, OH, OW, self.M))
        z = to_channels_last(Z) if has_z else _EMPTY4
        if kind == "pointwise":
            if channels_last_memory(X):
                x, nchw = X.transpose(0, 2, 3, 1).reshape(N, OH * OW, C), False
            else:
                x, nchw = np.ascontiguousarray(X).reshape(N, C, OH * OW), True
            run(conv.pointwise, (x,) + weights + (z, has_z, y) + args + (nchw,), threaded)
        elif kind == "depthwise":
            run(conv.depthwise, (to_channels_last(X),) + weights + (z, has_z, y) + args, threaded)
        elif kind == "stem" and _nchw(X):  # few taps in NCHW memory (the first conv, reading the model's input)
            run(self.k.stem.stem, (np.ascontiguousarray(X),) + weights + (z, has_z, y) + args
                + (self.rounding or _NO_ROUNDING), threaded)
        elif self.cg >= 16:
            run(conv.im2col, (to_channels_last(X),) + weights + (z, has_z, y) + args, threaded)
        elif channels_last_memory(X):  # few channels, but channels-last memory: gather channels after all
            self._also.add("im2col")  # (shown beside "stem" when prepare chose that: ``kernel_name``)
            run(conv.im2col, (to_channels_last(X), self.packed("tap-major"), weights[1], z, has_z, y) + args,
                threaded)
        else:  # few channels in NCHW memory, more taps than STEM_TAPS (a 7x7 stem): gather rows of pixels
            run(conv.im2col_nchw, (np.ascontiguousarray(X),) + weights + (z, has_z, y) + args, threaded)
        y = y.transpose(0, 3, 1, 2)
        return y if self.after is None else self.after(y)

    def _ref(self, X, W, B, Z, attrs):
        if Z is not None:
            return self.ref(X, W, B, Z, **attrs)
        return self.ref(X, W, B, **attrs)

    def specialize(self, args, fixed):
        """This conv for one signature of the compiled program (``args``: the first run's inputs): the
        geometry, packed weights and scalar arguments bound once, the limits checked and its work counted
        by the program (``work``), and the kernel entered past numba's dispatcher. Returns (call, work), or
        None where every call must go through ``__call__`` (the numpy fallbacks, NCHW input to im2col).
        The call does what ``__call__`` does for these shapes, with the same kernel and arguments: the
        same numbers."""
        X = args[0]
        Z = args[3] if len(args) > 3 else None
        if type(X) is not np.ndarray or X.dtype != np.float32 or X.ndim != 4 or self.after is not None:
            return None
        threads = self.backend.threads
        kind, kargs, yshape, nbytes, work, threaded, weights = self.prepare(X.shape, threads)
        has_z = Z is not None
        if kind is None or (kind == "im2col" and self.cg < 16) or 0 in X.shape or 0 in yshape or (
                has_z and (type(Z) is not np.ndarray or Z.shape != yshape or Z.dtype != np.float32)) or (
                self.rounding is not None and kind != "stem"):  # (a rounded input: the stem's, else __call__)
            return None
        N, C, H, W = X.shape
        ynhwc = (N, yshape[2], yshape[3], self.M)
        L = H * W
        backend, general = self.backend, self.__call__
        kernel = self.k.stem.stem if kind == "stem" else getattr(self.k.conv, kind)
        w, bias = weights
        xshape = {"pointwise": (N, L, C), "stem": (N, C, H, W)}.get(kind, (N, H, W, C))
        example = (np.empty(xshape, np.float32), w, bias,
                   np.empty(yshape, np.float32).transpose(0, 2, 3, 1).copy() if has_z else _EMPTY4, has_z,
                   np.empty(ynhwc, np.float32)) + kargs
        if kind == "pointwise":
            example += (False,)
        rounding = self.rounding or _NO_ROUNDING
        if kind == "stem":
            example += rounding
        entry = self.backend.pool.entry_point(kernel, example)

        if kind == "pointwise":
            def call(X, W, B=None, Z=None, **attrs):
                if backend.threads != threads:  # the pool's width changed since: the general call
                    return general(X, W, B, Z, **attrs)
                y = empty_aligned(ynhwc)
                if X.transpose(0, 2, 3, 1).flags.c_contiguous:  # channels-last memory: read as it is
                    x, nchw = X.transpose(0, 2, 3, 1).reshape(N, L, C), False
                else:
                    x, nchw = np.ascontiguousarray(X).reshape(N, C, L), True
                run(entry, (x, w, bias, _EMPTY4 if Z is None else to_channels_last(Z), has_z, y) + kargs
                    + (nchw,), threaded)
                return y.transpose(0, 3, 1, 2)
        elif kind == "stem":
            run = self.backend.pool.run

            def call(X, W, B=None, Z=None, **attrs):
                if backend.threads != threads or not _nchw(X):  # (channels-last memory: im2col, as __call__)
                    return general(X, W, B, Z, **attrs)
                y = empty_aligned(ynhwc)
                run(entry, (np.ascontiguousarray(X), w, bias, _EMPTY4 if Z is None else to_channels_last(Z), has_z,
                            y) + kargs + rounding, threaded)
                return y.transpose(0, 3, 1, 2)
            return call, work  # not a segment's layer: its input is NCHW memory, a segment's values channels-last
        else:
            def call(X, W, B=None, Z=None, **attrs):
                if backend.threads != threads:
                    return general(X, W, B, Z, **attrs)
                y = empty_aligned(ynhwc)
                run(entry, (to_channels_last(X), w, bias, _EMPTY4 if Z is None else to_channels_last(Z), has_z,
                            y) + kargs, threaded)
                return y.transpose(0, 3, 1, 2)
        run = self.backend.pool.run
        # what a segment (kernel_wrappers/segment.py) needs to run this layer: the same kernel and arguments;
        # its integers are ``prepare``'s kargs without the tail (act, a, b, qs: first for pointwise, after
        # the eight geometry numbers otherwise)
        ints = kargs[4:] if kind == "pointwise" else kargs[:8] + kargs[12:]
        call.layer = Layer(kind, ints, self.act, (self.alpha, self.beta, self.qscale), w, bias, (N, H, W, C), ynhwc,
                           has_z, threaded, threads)
        return call, work


PARALLEL_MIN_MACS = 1 << 20  # below about a million multiply-adds a conv runs serially (see ``prepare``)
# kernels/stem.py takes a group-1 conv of fewer than 16 input channels in NCHW memory with at most this many
# taps (C * kh * kw; the stem's 27): few enough that gathering them (im2col_nchw) costs as much as the GEMM
STEM_TAPS = 64


_NO_ROUNDING = (np.float32(0), np.float32(0), np.float32(0))  # the stem kernel's input rounding: none


def _nchw(X):
    """Whether the stem kernel reads X: NCHW memory (or memory that is both, as with one channel), not a view
    of channels-last memory (a conv inside a network: im2col then gathers its channels as they lie)."""
    return X.flags.c_contiguous or not channels_last_memory(X)


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


def _kernel_tail(attrs):
    """(name in kernels/conv.py's ACT, a, b, qs) for a FusedConv's activation (ops/tails.py)."""
    return TAILS[attrs.get("activation", "")].for_kernel(list(attrs.get("activation_params") or []))


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


class _GemmKernel(KernelWrapper):
    """Gemm with constant float32 B (and C, one value per output column) on the pointwise kernel:
    Y = A @ B' + C is a 1x1 conv over the rows of A, with B' packed once (a CNN's classifier head)."""

    kernel_name = 'numba conv.pointwise (Gemm)'  # what tinyrt profile / trace / code show

    def __init__(self, backend, B, bias, step):
        super().__init__(backend, step)
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

    def specialize(self, args, fixed):
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
    bias = np.ascontiguousarray(bias)
    quantized = qgemm(backend, step, getattr(constants, "dequantized", {}), B, bias, a.get("transB", 0),
                      PARALLEL_MIN_MACS)
    return quantized or _GemmKernel(backend, np.ascontiguousarray(Bt), bias, step)
