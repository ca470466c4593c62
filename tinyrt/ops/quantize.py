"""Linear quantization: integers q that stand for real numbers r = (q - zero_point) * scale.

    QuantizeLinear(x, scale, zp)     q = saturate(round_half_to_even(x / scale) + zp)
    DequantizeLinear(q, scale, zp)   r = (q - zp) * scale
    DynamicQuantizeLinear(x)         uint8 q, scale, zp chosen from x's range (which is widened to hold 0):
                                     scale = (max - min) / 255, zp = saturate(round(0 - min / scale))
    QLinearConv / QLinearMatMul      the integer sums acc = sum (x - x_zp) * (w - w_zp) (+ int32 bias),
                                     then requantized: q = saturate(round(acc * x_scale * w_scale / y_scale) + y_zp)
    ConvInteger / MatMulInteger      the integer sums acc alone, as int32 (MatMulInteger is in matmul.py)

``scale`` and ``zp`` are per tensor (a scalar or one value), per axis (1-D, one per index of ``axis``) or,
from opset 21, per block (the rank of x, ``block_size`` consecutive indices of ``axis`` share one).
The integer type is zp's; without zp it is ``output_dtype`` (opset 21+) or uint8. tinyrt holds int8,
uint8, int16 and uint16 (and int32 for DequantizeLinear's bias input); float8 and int4 are refused at load.

The arithmetic is onnxruntime's (and its MLAS library's), so results are the same integers: x / scale in
float32, round half to even (``np.rint``), then + zp and clamp. The integer sums are exact: they are
computed as float64 products of small integers (exact below 2^53) so that BLAS does the work, then
converted to int32. Requantization multiplies the float32 sum by the float32 ratio of the scales.
"""
import numpy as np

from ..dtypes import ONNX_TYPES, type_name
from ..errors import InputError, UnsupportedError
from .registry import TINYRT_DOMAIN, infers, op
from .tails import clip as _clip, flat as _flat, pieces as _pieces, tail
from . import conv as _conv
from . import matmul as _matmul

# the integer types tinyrt quantizes to, by ONNX type code (uint8, int8, uint16, int16)
QUANT_TYPES = (2, 3, 4, 5)


def qrange(dtype):
    info = np.iinfo(dtype)
    return info.min, info.max


def _check_quantize(**attrs):
    code = attrs.get("output_dtype", 0)
    if code and code not in QUANT_TYPES:
        raise UnsupportedError("output_dtype=%s (%s): tinyrt quantizes to uint8, int8, uint16 and int16"
                               % (code, type_name(code)))
    precision = attrs.get("precision", 0)
    if precision not in (0, 1):  # 1 = float: what tinyrt computes x / scale in anyway
        raise UnsupportedError("precision=%s (%s): tinyrt divides by the scale in float32"
                               % (precision, type_name(precision)))


def _check_dequantize(**attrs):
    code = attrs.get("output_dtype", 0)
    if code not in (0, 1, 10):
        raise UnsupportedError("output_dtype=%s (%s): tinyrt dequantizes to float or float16"
                               % (code, type_name(code)))


def per_axis(param, x, axis, block_size, what):
    """``param`` (scale or zero point) shaped to broadcast against x: per tensor, per axis or per block."""
    param = np.asarray(param)
    if param.size == 1 and param.ndim <= 1 and not block_size:
        return param.reshape(())
    a = axis + x.ndim if axis < 0 else axis
    if not 0 <= a < max(x.ndim, 1):
        raise InputError("%s: axis %d is out of range for an input of rank %d" % (what, axis, x.ndim))
    if block_size:
        if param.ndim != x.ndim:
            raise InputError("%s: blocked quantization needs a scale of x's rank %d, got shape %s"
                             % (what, x.ndim, param.shape))
        blocks = -(-x.shape[a] // block_size)
        if param.shape[a] != blocks or any(p != n for i, (p, n) in enumerate(zip(param.shape, x.shape)) if i != a):
            raise InputError("%s: scale shape %s does not fit x %s with block_size %d on axis %d"
                             % (what, param.shape, x.shape, block_size, a))
        return np.repeat(param, block_size, axis=a)[(slice(None),) * a + (slice(0, x.shape[a]),)]
    if param.ndim != 1 or param.shape[0] != x.shape[a]:
        raise InputError("%s: per-axis scale/zero point of shape %s does not fit axis %d of x %s"
                         % (what, param.shape, a, x.shape))
    return param.reshape((-1,) + (1,) * (x.ndim - a - 1))


def quantize(x, scale, zp, dtype):
    """saturate(round_half_even(x / scale) + zp) as ``dtype``; scale and zp already broadcastable."""
    lo, hi = qrange(dtype)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        q = np.rint(x.astype(np.float32, copy=False) / scale.astype(np.float32, copy=False))
    if zp is not None:
        q += zp.astype(np.float32)
    return np.clip(q, lo, hi).astype(dtype)


def dequantize(q, scale, zp):
    """(q - zp) * scale, the integer difference exact (int64), then scale's float type."""
    d = q.astype(np.int64)
    if zp is not None:
        d = d - zp.astype(np.int64)
    return d.astype(scale.dtype) * scale


def _quantize_linear(x, y_scale, y_zero_point, axis, block_size, output_dtype, name="QuantizeLinear"):
    if y_zero_point is not None:
        dtype = y_zero_point.dtype
    elif output_dtype:
        dtype = ONNX_TYPES[output_dtype][1]
    else:
        dtype = np.dtype(np.uint8)
    if dtype.kind not in "iu" or dtype.itemsize > 2:
        raise InputError("%s: zero point of type %s; tinyrt quantizes to (u)int8 and (u)int16" % (name, dtype))
    scale = per_axis(y_scale, x, axis, block_size, name)
    zp = per_axis(y_zero_point, x, axis, block_size, name) if y_zero_point is not None else None
    return quantize(x, scale, zp, dtype)


def _dequantize_linear(x, x_scale, x_zero_point, axis, block_size, name="DequantizeLinear"):
    if x.dtype.kind not in "iu" or x.dtype.itemsize > 4:
        raise InputError("%s: input of type %s; tinyrt dequantizes (u)int8, (u)int16 and int32" % (name, x.dtype))
    scale = per_axis(x_scale, x, axis, block_size, name)
    zp = per_axis(x_zero_point, x, axis, block_size, name) if x_zero_point is not None else None
    return dequantize(x, scale, zp)


# 10: per tensor; 13: per axis (`axis`); 19: float8 and `saturate` (which only float8 uses);
# 21: int16/uint16, int4, blocks (`block_size`), `output_dtype`; 23: `precision`, float4;
# 24, 25, 28: more sub-byte and float8 types. tinyrt computes the integer types of every version.
@op("QuantizeLinear", 10)
def quantize_linear_10(x, y_scale, y_zero_point=None):
    return _quantize_linear(x, y_scale, y_zero_point, 1, 0, 0)


@op("QuantizeLinear", 13)
def quantize_linear_13(x, y_scale, y_zero_point=None, *, axis=1):
    return _quantize_linear(x, y_scale, y_zero_point, axis, 0, 0)


@op("QuantizeLinear", 19)
def quantize_linear_19(x, y_scale, y_zero_point=None, *, axis=1, saturate=1):
    return _quantize_linear(x, y_scale, y_zero_point, axis, 0, 0)


@op("QuantizeLinear", 21, check=_check_quantize)
def quantize_linear_21(x, y_scale, y_zero_point=None, *, axis=1, block_size=0, output_dtype=0, saturate=1):
    return _quantize_linear(x, y_scale, y_zero_point, axis, block_size, output_dtype)


@op("QuantizeLinear", 23, 24, 25, 28, check=_check_quantize)
def quantize_linear_23(x, y_scale, y_zero_point=None, *, axis=1, block_size=0, output_dtype=0, precision=0,
                       saturate=1):
    return _quantize_linear(x, y_scale, y_zero_point, axis, block_size, output_dtype)


@op("DequantizeLinear", 10)
def dequantize_linear_10(x, x_scale, x_zero_point=None):
    return _dequantize_linear(x, x_scale, x_zero_point, 1, 0)


@op("DequantizeLinear", 13, 19)
def dequantize_linear_13(x, x_scale, x_zero_point=None, *, axis=1):
    return _dequantize_linear(x, x_scale, x_zero_point, axis, 0)


@op("DequantizeLinear", 21)
def dequantize_linear_21(x, x_scale, x_zero_point=None, *, axis=1, block_size=0):
    return _dequantize_linear(x, x_scale, x_zero_point, axis, block_size)


@op("DequantizeLinear", 23, 24, 25, 28, check=_check_dequantize)
def dequantize_linear_23(x, x_scale, x_zero_point=None, *, axis=1, block_size=0, output_dtype=0):
    return _dequantize_linear(x, x_scale, x_zero_point, axis, block_size)


@op("DynamicQuantizeLinear", 11)
def dynamic_quantize_linear(x):
    x = x.astype(np.float32, copy=False)
    lo = min(float(x.min()) if x.size else 0.0, 0.0)
    hi = max(float(x.max()) if x.size else 0.0, 0.0)
    # onnxruntime's arithmetic, in float32: scale = (max - min) / 255 (1 when the range is empty)
    scale = np.float32(1.0) if hi == lo else (np.float32(hi) - np.float32(lo)) / np.float32(255)
    zp = np.float32(0) - np.float32(lo) / scale
    zp = np.uint8(np.rint(np.clip(zp, 0, 255)))
    y = quantize(x, np.asarray(scale, np.float32), np.asarray(zp), np.dtype(np.uint8))
    return y, np.array(scale, np.float32), np.array(zp, np.uint8)


# ------------------------------------------------------------------------------------- integer products


def _centered(q, zp, axis_len=None):
    """q - zp as float64 (exact for 8- and 16-bit integers); zp per tensor, or per row for weights."""
    d = q.astype(np.float64)
    if zp is not None:
        zp = np.asarray(zp).astype(np.float64)
        if zp.size > 1:  # one zero point per output channel (the first axis of a weight)
            zp = zp.reshape((-1,) + (1,) * (q.ndim - 1))
        d -= zp.reshape(-1)[0] if zp.size == 1 else zp
    return d


def _to_int32(acc):
    return np.rint(acc).astype(np.int32)


def conv_integer_sums(x, x_zero_point, w, w_zero_point, attrs):
    """The exact int32 sums of a quantized convolution (ConvInteger's result, QLinearConv's accumulator)."""
    y = _conv.conv(_centered(x, x_zero_point), _centered(w, w_zero_point), **attrs)
    return _to_int32(y)


def requantize(acc, multiplier, zp, dtype):
    """saturate(round_half_even(float32(acc) * multiplier) + zp), MLAS's requantization."""
    lo, hi = qrange(dtype)
    y = np.rint(acc.astype(np.float32) * multiplier)
    if zp is not None:
        y += np.float32(zp)
    return np.clip(y, lo, hi).astype(dtype)


def _scalar(v, what):
    v = np.asarray(v)
    if v.size != 1:
        raise InputError("%s must be a single value, got shape %s" % (what, v.shape))
    return v.reshape(())


def _check_qconv(**attrs):
    _conv._check_conv("QLinearConv")(**attrs)


@op("ConvInteger", 10, check=_check_qconv)
def conv_integer(x, w, x_zero_point=None, w_zero_point=None, *, auto_pad="NOTSET", dilations=None, group=1,
                 kernel_shape=None, pads=None, strides=None):
    return conv_integer_sums(x, x_zero_point, w, w_zero_point,
                             dict(auto_pad=auto_pad, dilations=dilations, group=group, kernel_shape=kernel_shape,
                                  pads=pads, strides=strides))


@op("QLinearConv", 10, check=_check_qconv)
def qlinear_conv(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B=None, *,
                 auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None, strides=None):
    acc = conv_integer_sums(x, x_zero_point, w, w_zero_point,
                            dict(auto_pad=auto_pad, dilations=dilations, group=group, kernel_shape=kernel_shape,
                                 pads=pads, strides=strides))
    M = w.shape[0]
    if B is not None:
        acc = acc + B.astype(np.int32).reshape((M,) + (1,) * (acc.ndim - 2))
    # onnxruntime: one float32 multiplier per output channel, x_scale * w_scale[m] / y_scale
    ws = np.asarray(w_scale, np.float32).reshape(-1)
    if ws.size not in (1, M):
        raise InputError("QLinearConv: w_scale has %d values for %d output channels" % (ws.size, M))
    mult = (np.float32(_scalar(x_scale, "QLinearConv: x_scale")) * ws) / np.float32(_scalar(y_scale, "y_scale"))
    mult = mult.reshape((-1,) + (1,) * (acc.ndim - 2)) if ws.size > 1 else mult.reshape(())
    zp = _scalar(y_zero_point, "QLinearConv: y_zero_point")
    return requantize(acc, mult, zp, zp.dtype)


def matmul_integer_sums(a, a_zero_point, b, b_zero_point):
    """Exact int32 sums of (a - a_zp) @ (b - b_zp): MatMulInteger, and QLinearMatMul's accumulator."""
    return _matmul.matmul_integer(a, b, a_zero_point, b_zero_point)


# QLinearMatMul-21 added float8 types and float16/bfloat16 scales: the same arithmetic.
@op("QLinearMatMul", 10, 21)
def qlinear_matmul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
    acc = matmul_integer_sums(a, a_zero_point, b, b_zero_point)
    # a per-row a_scale and a per-column b_scale broadcast like the zero points
    sa = np.asarray(a_scale, np.float32)
    sa = sa.reshape(()) if sa.size == 1 else sa.reshape(-1, 1)
    sb = np.asarray(b_scale, np.float32)
    sb = sb.reshape(()) if sb.size == 1 else sb.reshape(-1)
    mult = (sa * sb) / np.asarray(y_scale, np.float32).reshape(())
    zp = _scalar(y_zero_point, "QLinearMatMul: y_zero_point")
    return requantize(acc, mult, zp, zp.dtype)


# ------------------------------------------------------------------ QuantizeDequantize (tinyrt's own)


@op("QuantizeDequantize", 1, domain=TINYRT_DOMAIN)
def quantize_dequantize(x, scale, addend=None, *, low, high):
    """DequantizeLinear(QuantizeLinear(x)) with a per-tensor scale, written by passes/quantization.py:
    clip(round_half_even(x / scale), low, high) * scale, where low, high = qmin - zp, qmax - zp. With
    ``addend`` (a QDQ model's residual Add, folded in by the pass) x + addend is rounded."""
    s = np.float32(_scalar(scale, "QuantizeDequantize: scale"))
    x = x.astype(np.float32, copy=False)
    if addend is not None:
        return round_in_place(np.add(x, addend.astype(np.float32, copy=False)), s, low, high)
    y = np.empty_like(x)  # x's memory layout (order "K")
    if y.strides != x.strides or _flat(y) is None:
        np.copyto(y, x)
        return round_in_place(y, s, low, high)
    return round_in_place(y, s, low, high, src=x)  # its first sweep reads x: no copy of its own


def round_in_place(y, scale, low, high, chunk=65536, src=None):
    """y = clip(round_half_even(y / scale), low, high) * scale in place, as QuantizeDequantize computes it;
    of ``src``'s values instead of y's where given (an array of y's shape and strides). Clipping at
    low * scale and high * scale first is the same (rounding is monotonic and the bounds are integers)."""
    s = y.dtype.type(scale)
    lo, hi = y.dtype.type(low * s), y.dtype.type(high * s)
    for part, source in _pieces(y, chunk, src):
        _clip(source, lo, hi, out=part)
        np.divide(part, s, out=part)
        np.rint(part, out=part)
        np.multiply(part, s, out=part)
    return y


def _rounding_for_kernels(scale, low, high):
    """The conv kernels clip to [low, high] * s (their Clip), then round (qs = s: kernels/conv.py)."""
    s = np.float32(scale)
    return "Clip", np.float32(low * s), np.float32(high * s), s


def _rounding_folded(W, B, scale, low, high, chunk=65536):
    """The numpy path's conv with its rounding (Tail.fold): W / s and B / s made once, so that the conv's
    sums come out in steps of s; its tail is then clip to [low, high], rint and * s, with no division.
    A float rounding away from (conv + B) / s, as folding a BatchNormalization is: near a half step the
    integer may differ by one (QDQ models are held to one step). None where W / s is not finite."""
    s = np.float32(scale)
    if not (np.isfinite(s) and s > 0):
        return None
    if s != 1:
        with np.errstate(over="ignore", divide="ignore", invalid="ignore", under="ignore"):
            W = (W / s).astype(np.float32, copy=False)
            B = None if B is None else (B / s).astype(np.float32, copy=False)
        if not np.isfinite(W).all() or (B is not None and not np.isfinite(B).all()):
            return None
    lo, hi = np.float32(low), np.float32(high)

    def apply(y):
        for part, _ in _pieces(y, chunk):
            _clip(part, lo, hi, out=part)
            np.rint(part, out=part)
            if s != 1:  # a rounding that hands on whole steps (passes/quantization.py round_in_steps): none
                np.multiply(part, s, out=part)
        return y
    return W, B, apply


# A conv's QDQ rounding, as the tail passes/quantization.py fuses into it: params [scale, low, high]
tail("QuantizeDequantize", round_in_place, kernel=_rounding_for_kernels, fold=_rounding_folded)


infers(conv_integer)(_conv.conv_types)
