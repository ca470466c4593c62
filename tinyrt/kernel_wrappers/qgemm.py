"""Gemm whose constant B a QDQ model stores as 8-bit integers, on kernels/qgemm.py: the integers read as
they are (a quarter of the float weights' bytes), the scale applied per output column.

Constant folding turns B = DequantizeLinear(Q, scale, zero point) into float weights and keeps Q beside
them (passes/fold_constants.py, ``Plan.constants.dequantized``). This wrapper takes a Gemm whose B is such
a constant, int8 or uint8, with one scale (and zero point) for all of B or one per output column; any other
Gemm keeps the float kernel (conv.py's _GemmKernel).
"""
import numpy as np

from .. import limits
from .base import KernelWrapper


class _QGemmKernel(KernelWrapper):
    """Y = (A @ (Q - zp)) * scale + C with A (N, K) float32, on kernels/qgemm.py's ``gemm``: Q's int8 codes
    and a float offset per column (kernels/qgemm.py ``codes``)."""

    kernel_name = 'numba qgemm.gemm (Gemm, int8 weights)'  # what tinyrt profile / trace / code show

    def __init__(self, backend, q, off, scale, bias, step, min_macs):
        super().__init__(backend, step)
        self.q, self.off, self.scale, self.bias = q, off, scale, bias  # (K, M) int8, 3 x (M,) float32
        self.packed = None  # (made on first use)
        self.min_macs = min_macs  # fewer multiply-adds run on one thread (conv.py's PARALLEL_MIN_MACS)

    def _pack(self):
        if self.packed is None:
            k = self.k
            self.packed = (k.qgemm.pack(self.q), k.gemm.pack_bias(self.off), bool(self.off.any()),
                           k.gemm.pack_bias(self.scale), k.gemm.pack_bias(self.bias))
        return self.packed

    def _blocks(self, N, M):
        """(threaded, columns of a block): blocks of 4 rows by all columns; a few rows on several threads:
        blocks of columns, about one a thread."""
        threads = self.backend.threads
        K, PANEL = self.q.shape[0], self.k.qgemm.PANEL
        threaded = threads > 1 and N * K * M >= self.min_macs
        panels = -(-M // PANEL)
        if threaded and N < 4 * threads:
            return True, -(-panels // threads) * PANEL
        return threaded, panels * PANEL

    def __call__(self, A, B, C=None, **attrs):
        attrs = attrs or self.step_attrs  # the program calls a wrapper without them (bound here)
        K, M = self.q.shape
        if type(A) is not np.ndarray or A.dtype != np.float32 or A.ndim != 2 or A.shape[1] != K or 0 in A.shape:
            return self.ref(A, B, C, **attrs)
        N = A.shape[0]
        limits.check_shape((N, M), np.float32, "Gemm")
        limits.spend_macs(N * K * M, "Gemm")
        packed = self._pack()
        threaded, cols = self._blocks(N, M)
        y = np.empty((N, M), np.float32)
        self.backend.pool.run(self.k.qgemm.gemm, (np.ascontiguousarray(A),) + packed + (y, cols), threaded)
        return y

    def specialize(self, args, fixed):
        """This Gemm for one signature of the compiled program (see conv.py's _ConvKernel.specialize)."""
        A = args[0]
        K, M = self.q.shape
        if type(A) is not np.ndarray or A.dtype != np.float32 or A.ndim != 2 or A.shape[1] != K or 0 in A.shape:
            return None
        N = A.shape[0]
        packed = self._pack()
        threads = self.backend.threads
        threaded, cols = self._blocks(N, M)
        backend, run, general = self.backend, self.backend.pool.run, self.__call__
        entry = backend.pool.entry_point(self.k.qgemm.gemm, (np.empty((N, K), np.float32),) + packed + (
            np.empty((N, M), np.float32), cols))

        def call(A, B, C=None, **attrs):
            if backend.threads != threads:
                return general(A, B, C, **attrs)
            y = np.empty((N, M), np.float32)
            run(entry, (np.ascontiguousarray(A),) + packed + (y, cols), threaded)
            return y
        return call, int(N * K * M * limits.MAC_COST)


def qgemm(backend, step, dequantized, B, bias, trans_b, min_macs):
    """A _QGemmKernel for Gemm ``step`` whose float B (as the file has it, (M, K) when ``trans_b``) is in
    ``dequantized`` (Plan.constants.dequantized), with one float32 bias value per column; else None."""
    found = dequantized.get(step.inputs[1])
    if found is None:
        return None
    value, q, scale, zp, axis = found
    if value is not B or q.shape != B.shape or q.dtype not in (np.int8, np.uint8) or scale.dtype != np.float32:
        return None
    out_axis = 0 if trans_b else 1  # B's axis of output columns
    if scale.size != 1 and (scale.ndim != 1 or axis % 2 != out_axis or scale.shape[0] != B.shape[out_axis]):
        return None  # a scale along k (or blocked) does not come out of the sum
    if zp is not None and (zp.dtype != q.dtype or zp.size not in (1, scale.size)):
        return None
    M = B.shape[out_axis]
    zps = np.zeros(M, q.dtype) if zp is None else np.broadcast_to(zp.reshape(-1), (M,))
    codes, off = backend.k.qgemm.codes(q.T if trans_b else q, zps)
    cols = np.ascontiguousarray(np.broadcast_to(scale.reshape(-1), (M,)), np.float32)
    return _QGemmKernel(backend, np.ascontiguousarray(codes), off, cols, bias, step, min_macs)
