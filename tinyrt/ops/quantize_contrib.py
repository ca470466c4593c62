"""onnxruntime's quantized contrib ops (domain ``com.microsoft``), as its quantizer writes them for CNNs.

onnxruntime's ``quantize_static(..., quant_format=QuantFormat.QOperator)`` replaces float ops by these
(onnxruntime/python/tools/quantization/registry.py, QLinearOpsRegistry). Each reads and writes uint8/int8
tensors with a scale and zero point per tensor, r = (q - zp) * scale (see quantize.py):

    QLinearAdd(a, sa, za, b, sb, zb, sc, zc)   c = q(r(a) + r(b))          numpy broadcasting
    QLinearMul(...)                            c = q(r(a) * r(b))
    QLinearSigmoid(x, sx, zx, sy, zy)          y = q(sigmoid(r(x)))        through a 256-entry table
    QLinearLeakyRelu(x, ..., alpha)            y = q(leaky_relu(r(x)))     through a 256-entry table
    QLinearGlobalAveragePool(x, ...)           the integer sum of each channel, requantized
    QLinearAveragePool(x, ..., attrs)          AveragePool of r(x), quantized
    QLinearConcat(sy, zy, x1, s1, z1, ...)     Concat of the inputs, each requantized to (sy, zy)
    QLinearSoftmax(x, sx, zx, sy, zy)          y = q(softmax(r(x)))
    QGemm(a, sa, za, b, sb, zb, C, sy, zy)     (sum (a - za)(b - zb) + C) * alpha * sa * sb, quantized to
                                               (sy, zy), or float when sy is absent
    QuantizeLinear / DequantizeLinear          the ONNX ops with ``axis`` (the quantizer writes these
                                               for 16-bit types before opset 21)

where q(v) = saturate(round_half_even(v / scale) + zp). The arithmetic follows onnxruntime's CPU kernels
(MLAS) where it can be written plainly: unary ops are tables of the 256 possible inputs, GlobalAveragePool
requantizes the integer sum with x_scale / N / y_scale, Conv/MatMul/Gemm sums are exact. Add and Mul
multiply the zero-point-free integers by float32 scale ratios (MLAS's scalar formula); its SSE/NEON code
uses fixed-point multipliers instead, so a value may differ by one quantization step.
"""
import numpy as np

from ..errors import InputError
from .activation import sigmoid as _sigmoid
from .pool import average_pool_19
from .quantize import per_axis, quantize, dequantize, qrange, _scalar, matmul_integer_sums, requantize
from .registry import op
from .softmax import _softmax

MS = "com.microsoft"


def _f32(v):
    return np.float32(_scalar(v, "scale"))


def _zp(z):
    return None if z is None else _scalar(z, "zero point")


def _out_dtype(zp, x):
    return zp.dtype if zp is not None else x.dtype


def _saturate(v, zp, dtype):
    """round half to even, + zp, clamp to dtype, from float32 values v (already divided by the scale)."""
    lo, hi = qrange(dtype)
    y = np.rint(v)
    if zp is not None:
        y += np.float32(zp)
    return np.clip(y, lo, hi).astype(dtype)


def _centered(q, zp):
    return q.astype(np.float32) - (np.float32(zp) if zp is not None else np.float32(0))


@op("QLinearAdd", 1, domain=MS)
def qlinear_add(A, A_scale, A_zero_point, B, B_scale, B_zero_point, C_scale, C_zero_point=None):
    # MLAS: c = (sa / sc) * (a - za) + (sb / sc) * (b - zb), rounded, + zc
    sc = _f32(C_scale)
    v = (_f32(A_scale) / sc) * _centered(A, _zp(A_zero_point)) + (_f32(B_scale) / sc) * _centered(B, _zp(B_zero_point))
    zc = _zp(C_zero_point)
    return _saturate(v, zc, _out_dtype(zc, A))


@op("QLinearMul", 1, domain=MS)
def qlinear_mul(A, A_scale, A_zero_point, B, B_scale, B_zero_point, C_scale, C_zero_point=None):
    # MLAS: c = (a - za) * (b - zb) * (sa * sb / sc), rounded, + zc
    mult = _f32(A_scale) * _f32(B_scale) / _f32(C_scale)
    v = _centered(A, _zp(A_zero_point)) * _centered(B, _zp(B_zero_point)) * mult
    zc = _zp(C_zero_point)
    return _saturate(v, zc, _out_dtype(zc, A))


def _table(X, X_scale, X_zero_point, Y_scale, Y_zero_point, fn):
    """y = q(fn(r(x))) for 8-bit x, computed once for each of the 256 values x can have."""
    if X.dtype.itemsize != 1:
        raise InputError("quantized lookup ops take int8 or uint8 inputs, got %s" % X.dtype)
    lo, hi = qrange(X.dtype)
    values = np.arange(lo, hi + 1).astype(X.dtype)
    zx, zy = _zp(X_zero_point), _zp(Y_zero_point)
    real = ((values.astype(np.float32) - np.float32(zx if zx is not None else 0)) * _f32(X_scale)).astype(np.float32)
    out = quantize(fn(real).astype(np.float32), np.asarray(_f32(Y_scale)), zy, _out_dtype(zy, X))
    return out[X.astype(np.int32) - lo]


@op("QLinearSigmoid", 1, domain=MS)
def qlinear_sigmoid(X, X_scale, X_zero_point, Y_scale, Y_zero_point=None):
    return _table(X, X_scale, X_zero_point, Y_scale, Y_zero_point, _sigmoid)


@op("QLinearLeakyRelu", 1, domain=MS)
def qlinear_leaky_relu(X, X_scale, X_zero_point, Y_scale, Y_zero_point=None, *, alpha=0.01):
    return _table(X, X_scale, X_zero_point, Y_scale, Y_zero_point,
                  lambda r: np.where(r >= 0, r, r * np.float32(alpha)))


@op("QLinearGlobalAveragePool", 1, domain=MS)
def qlinear_global_average_pool(X, x_scale, x_zero_point, y_scale, y_zero_point, *, channels_last=0):
    if X.ndim < 3:
        raise InputError("QLinearGlobalAveragePool: input of rank %d, expected (N, C, ...)" % X.ndim)
    axes = tuple(range(1, X.ndim - 1)) if channels_last else tuple(range(2, X.ndim))
    n = int(np.prod([X.shape[a] for a in axes]))
    total = X.astype(np.int64).sum(axis=axes, keepdims=True)
    zx, zy = _zp(x_zero_point), _zp(y_zero_point)
    if zx is not None:
        total -= int(zx) * n
    # MLAS: (sum - zx * N) * (x_scale / N / y_scale), rounded, + zy
    mult = _f32(x_scale) / np.float32(n) / _f32(y_scale)
    return requantize(total, mult, zy, _out_dtype(zy, X))


@op("QLinearAveragePool", 1, domain=MS)
def qlinear_average_pool(X, x_scale, x_zero_point, y_scale, y_zero_point=None, *, kernel_shape, auto_pad="NOTSET",
                         ceil_mode=0, channels_last=0, count_include_pad=0, pads=None, strides=None):
    zx, zy = _zp(x_zero_point), _zp(y_zero_point)
    real = dequantize(X, np.asarray(_f32(x_scale)), zx)
    if channels_last:
        real = np.moveaxis(real, -1, 1)
    y = average_pool_19(real, kernel_shape=kernel_shape, auto_pad=auto_pad, ceil_mode=ceil_mode,
                        count_include_pad=count_include_pad, pads=pads, strides=strides)
    if channels_last:
        y = np.moveaxis(y, 1, -1)
    return quantize(y, np.asarray(_f32(y_scale)), zy, _out_dtype(zy, X))


@op("QLinearConcat", 1, domain=MS)
def qlinear_concat(Y_scale, Y_zero_point, *inputs, axis):
    if len(inputs) % 3 or not inputs:
        raise InputError("QLinearConcat: inputs after y_scale, y_zero_point come in (x, scale, zero point) "
                         "triples, got %d" % len(inputs))
    sy, zy = _f32(Y_scale), _zp(Y_zero_point)
    dtype = _out_dtype(zy, inputs[0])
    parts = []
    for x, s, z in zip(inputs[0::3], inputs[1::3], inputs[2::3]):
        z = _zp(z)
        if _f32(s) == sy and (z if z is not None else 0) == (zy if zy is not None else 0):
            parts.append(x.astype(dtype, copy=False))  # same quantization: copied as it is
        else:
            parts.append(_table(x, s, z, Y_scale, Y_zero_point, lambda r: r))
    try:
        return np.concatenate(parts, axis=axis)
    except (ValueError, np.AxisError) as e:
        raise InputError("QLinearConcat: shapes %s do not concatenate on axis %d (%s)"
                         % ([p.shape for p in parts], axis, e))


@op("QLinearSoftmax", 1, domain=MS)
def qlinear_softmax(X, X_scale, x_zero_point, y_scale, y_zero_point=None, *, axis=-1, opset=13):
    real = dequantize(X, np.asarray(_f32(X_scale)), _zp(x_zero_point))
    a = axis + X.ndim if axis < 0 else axis
    if not 0 <= a < X.ndim:
        raise InputError("QLinearSoftmax: axis %d is out of range for rank %d" % (axis, X.ndim))
    axes = (a,) if opset >= 13 else tuple(range(a, X.ndim))  # before opset 13: the trailing axes, flattened
    zy = _zp(y_zero_point)
    return quantize(_softmax(real, axes), np.asarray(_f32(y_scale)), zy, _out_dtype(zy, X))


@op("QGemm", 1, domain=MS)
def qgemm(A, a_scale, a_zero_point, B, b_scale, b_zero_point, C=None, y_scale=None, y_zero_point=None, *,
          alpha=1.0, transA=0, transB=0):
    if A.ndim != 2 or B.ndim != 2:
        raise InputError("QGemm: A and B must be 2-D, got %s and %s" % (A.shape, B.shape))
    a = A.T if transA else A
    b = B.T if transB else B
    bz = b_zero_point
    if bz is not None and np.asarray(bz).size > 1:
        bz = np.asarray(bz).reshape(-1)  # one per column of B' (per output channel)
    acc = matmul_integer_sums(a, a_zero_point, b, bz)
    if C is not None:
        acc = acc + C.astype(np.int32)  # the bias, quantized with scale sa * sb, zero point 0
    sb = np.asarray(b_scale, np.float32)
    sb = sb.reshape(()) if sb.size == 1 else sb.reshape(-1)
    scale = np.float32(alpha) * _f32(a_scale) * sb
    if y_scale is None:
        return (acc.astype(np.float32) * scale).astype(np.float32)
    zy = _zp(y_zero_point)
    return requantize(acc, scale / _f32(y_scale), zy, _out_dtype(zy, A))


@op("QuantizeLinear", 1, domain=MS)
def ms_quantize_linear(x, y_scale, y_zero_point=None, *, axis=1):
    dtype = y_zero_point.dtype if y_zero_point is not None else np.dtype(np.uint8)
    zp = per_axis(y_zero_point, x, axis, 0, "QuantizeLinear") if y_zero_point is not None else None
    return quantize(x, per_axis(y_scale, x, axis, 0, "QuantizeLinear"), zp, dtype)


@op("DequantizeLinear", 1, domain=MS)
def ms_dequantize_linear(x, x_scale, x_zero_point=None, *, axis=1):
    zp = per_axis(x_zero_point, x, axis, 0, "DequantizeLinear") if x_zero_point is not None else None
    return dequantize(x, per_axis(x_scale, x, axis, 0, "DequantizeLinear"), zp)
