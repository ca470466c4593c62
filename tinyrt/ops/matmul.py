"""Matrix products.

    Gemm(A, B, C)    Y = alpha * A' @ B' + beta * C     A' = A.T if transA, B' = B.T if transB;
                                                        A' is (M, K), B' is (K, N), C broadcasts to (M, N)
    MatMul(A, B)     numpy.matmul: stacks of matrices broadcast; a 1-D operand is a row / column vector
    Einsum(*X)       numpy.einsum with the node's equation
    MatMulInteger    (A - a_zero_point) @ (B - b_zero_point), exact, in int32

numpy hands float matmuls to BLAS, the fast path for the fully connected layers of a CNN.
"""
import numpy as np

from ..errors import InputError
from .registry import op


# Gemm-7 dropped `broadcast` (C always broadcasts), 9 added integer types, 11 made C optional,
# 13 added bfloat16. With C=None allowed, one function serves all of them.
@op("Gemm", 7, 9, 11, 13)
def gemm(a, b, c=None, *, alpha=1.0, beta=1.0, transA=0, transB=0):
    if a.ndim != 2 or b.ndim != 2:
        raise InputError("Gemm: A and B must be 2-D, got shapes %s and %s" % (a.shape, b.shape))
    a2 = a.T if transA else a
    b2 = b.T if transB else b
    if a2.shape[1] != b2.shape[0]:
        raise InputError("Gemm: A' %s and B' %s do not multiply (transA=%d, transB=%d)"
                         % (a2.shape, b2.shape, transA, transB))
    y = np.matmul(a2, b2)
    if alpha != 1.0:
        y *= a.dtype.type(alpha)  # a scalar of T: float32 stays float32
    if c is not None and beta != 0.0:
        try:  # in place: numpy refuses (ValueError) any C that would enlarge y beyond (M, N)
            y += c if beta == 1.0 else c * c.dtype.type(beta)
        except ValueError:
            raise InputError("Gemm: C of shape %s does not broadcast to (M, N) = %s" % (c.shape, y.shape))
    return y


# MatMul-9 added integer types, 13 bfloat16.
@op("MatMul", 1, 9, 13)
def matmul(a, b):
    try:
        return np.matmul(a, b)
    except ValueError:
        raise InputError("MatMul: shapes %s and %s do not multiply" % (a.shape, b.shape))


# Einsum-28 added the 8- and 16-bit integer types and bfloat16.
@op("Einsum", 12, 28)
def einsum(*inputs, equation):
    eq = equation.replace(" ", "")
    try:
        # optimize=True picks a contraction order and hands contractions to BLAS (3x faster on a
        # batched matmul); it costs a few microseconds of planning, so one-operand einsums skip it.
        return np.asarray(np.einsum(eq, *inputs, optimize=len(inputs) > 1))
    except ValueError as e:
        raise InputError("Einsum %r on shapes %s: %s" % (equation, [x.shape for x in inputs], e))


@op("MatMulInteger", 10)
def matmul_integer(a, b, a_zero_point=None, b_zero_point=None):
    # float64 holds every int32 sum of uint8/int8 products exactly (|sum| < 2^53 for K < 2^37), and
    # numpy's float matmul goes to BLAS while its integer matmul is a slow plain loop.
    af = a.astype(np.float64)
    bf = b.astype(np.float64)
    if a_zero_point is not None:
        zp = a_zero_point.astype(np.float64)
        if zp.ndim == 1 and a.ndim >= 2 and zp.size == a.shape[-2] and zp.size != 1:
            zp = zp[:, None]  # one zero point per row of A
        af -= zp
    if b_zero_point is not None:
        bf -= b_zero_point.astype(np.float64)  # scalar or one per column of B: broadcasts as it is
    try:
        y = np.matmul(af, bf)
    except ValueError:
        raise InputError("MatMulInteger: shapes %s and %s do not multiply" % (a.shape, b.shape))
    return y.astype(np.int32)
