"""Matrix products.

    Gemm(A, B, C)    Y = alpha * A' @ B' + beta * C     A' = A.T if transA, B' = B.T if transB;
                                                        A' is (M, K), B' is (K, N), C broadcasts to (M, N)
    MatMul(A, B)     numpy.matmul: stacks of matrices broadcast; a 1-D operand is a row / column vector
    Einsum(*X)       numpy.einsum with the node's equation
    MatMulInteger    (A - a_zero_point) @ (B - b_zero_point), exact, in int32

numpy hands float matmuls to BLAS, the fast path for the fully connected layers of a CNN.
"""
import numpy as np

from .. import limits
from ..errors import InputError
from .registry import counts_macs, infers, op, static_shape
from ._infer_types import broadcast_dims, first


def _check_product(name, a, b):
    """Refuse, before computing, a product whose result is too big; spend its multiply-adds."""
    if a.ndim == 0 or b.ndim == 0:
        return  # numpy refuses these; the op reports it
    sa = a.shape if a.ndim >= 2 else (1,) + a.shape
    sb = b.shape if b.ndim >= 2 else b.shape + (1,)
    batch = [max(x, y) for x, y in zip((1,) * (len(sb) - len(sa)) + sa[:-2], (1,) * (len(sa) - len(sb)) + sb[:-2])]
    rows, cols = sa[-2], sb[-1]
    count = limits.nominal_count(batch + [rows, cols])
    limits.check_count(count, max(a.itemsize, b.itemsize, 4), name)
    limits.spend_macs(count * max(sa[-1], 1), name)


def _check_einsum(eq, inputs):
    """Size the result (and the work) of an einsum from its letters, before numpy computes it.

    Implicit outputs ("i,j": the letters used once, in alphabetical order) and ellipses ("...": the
    broadcast of the dims they stand for) are sized too: "i,j" on two 16,000-vectors is a 1 GB outer
    product.
    """
    lhs, out = eq.split("->", 1) if "->" in eq else (eq, None)
    terms = lhs.split(",")
    if len(terms) != len(inputs):
        return  # numpy reports it
    dims, ellipsis = {}, ()
    for term, x in zip(terms, inputs):
        shape = list(np.shape(x))
        if "..." in term:
            head, tail = term.split("...", 1)
            n = len(shape) - len(head) - len(tail)
            if n < 0:
                return  # numpy reports it
            try:
                ellipsis = limits.broadcast_shape(ellipsis, shape[len(head):len(head) + n])
            except ValueError:
                return
            term, shape = head + tail, shape[:len(head)] + shape[len(head) + n:]
        for letter, d in zip(term, shape):
            dims[letter] = max(dims.get(letter, 1), int(d))
    if out is None:
        letters = [c for c in lhs if c.isalpha()]
        out_letters = sorted(c for c in set(letters) if letters.count(c) == 1)
        has_ellipsis = "..." in lhs
    else:
        out_letters, has_ellipsis = [c for c in out if c.isalpha()], "..." in out
    out_shape = [dims.get(c, 1) for c in out_letters] + (list(ellipsis) if has_ellipsis else [])
    itemsize = max([x.itemsize for x in inputs] + [4])
    limits.check_count(limits.nominal_count(out_shape), itemsize, "Einsum")
    limits.spend_macs(limits.nominal_count(list(dims.values()) + list(ellipsis)), "Einsum")


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
    _check_product("Gemm", a2, b2)
    y = np.matmul(a2, b2)
    if alpha != 1.0:
        y *= a.dtype.type(alpha)  # a scalar of T: float32 stays float32
    if c is not None and beta != 0.0:
        try:  # in place: numpy refuses (ValueError) any C that would enlarge y beyond (M, N)
            y += c if beta == 1.0 else c * c.dtype.type(beta)
        except ValueError:
            raise InputError("Gemm: C of shape %s does not broadcast to (M, N) = %s" % (c.shape, y.shape))
    return y


@static_shape(gemm)
def _gemm_shape(node, shapes, constants):
    x, b, a = shapes[0], shapes[1], node.attrs
    if b is None:
        return None
    return (x[1] if a.get("transA", 0) else x[0], b[0] if a.get("transB", 0) else b[1])


@counts_macs(gemm)
def _gemm_macs(args, out, attrs):
    """Each output value is K products, K being A' 's columns."""
    if isinstance(args[0], np.ndarray):
        k = args[0].shape[0] if attrs.get("transA", 0) else args[0].shape[-1]
        return int(out.size) * int(k)
    return 0


# MatMul-9 added integer types, 13 bfloat16.
@op("MatMul", 1, 9, 13)
def matmul(a, b):
    _check_product("MatMul", a, b)
    try:
        return np.matmul(a, b)
    except ValueError:
        raise InputError("MatMul: shapes %s and %s do not multiply" % (a.shape, b.shape))


@counts_macs(matmul)
def _matmul_macs(args, out, attrs):
    """Each output value is K products, K being A's last axis."""
    if isinstance(args[0], np.ndarray):
        return int(out.size) * int(args[0].shape[-1])
    return 0


# Einsum-28 added the 8- and 16-bit integer types and bfloat16.
@op("Einsum", 12, 28)
def einsum(*inputs, equation):
    eq = equation.replace(" ", "")
    _check_einsum(eq, inputs)
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
    _check_product("MatMulInteger", a, b)
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


@infers(matmul)
def _matmul_types(node, ins, constants):
    (elem, x), y = first(ins), ins[1][1]
    if x is None or y is None or len(x) < 1 or len(y) < 1:
        return [(elem, None)]
    xs, ys = (x if len(x) > 1 else [1] + x), (y if len(y) > 1 else y + [1])
    out = broadcast_dims([xs[:-2], ys[:-2]]) + [xs[-2], ys[-1]]
    if len(x) == 1:
        out.pop(-2)
    if len(y) == 1:
        out.pop(-1)
    return [(elem, out)]


@infers(gemm)
def _gemm_types(node, ins, constants):
    (elem, x), y = first(ins), ins[1][1]
    if x is None or y is None:
        return [(elem, None)]
    a = node.attrs
    return [(elem, [x[1] if a.get("transA", 0) else x[0], y[0] if a.get("transB", 0) else y[1]])]
