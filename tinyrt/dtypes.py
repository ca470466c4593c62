"""ONNX tensor element types and the numpy dtypes tinyrt maps them to."""
import numpy as np

# TensorProto.DataType code -> (ONNX name used in 'tensor(...)' strings, numpy dtype)
ONNX_TYPES = {
    1: ("float", np.dtype(np.float32)),
    2: ("uint8", np.dtype(np.uint8)),
    3: ("int8", np.dtype(np.int8)),
    4: ("uint16", np.dtype(np.uint16)),
    5: ("int16", np.dtype(np.int16)),
    6: ("int32", np.dtype(np.int32)),
    7: ("int64", np.dtype(np.int64)),
    8: ("string", np.dtype(object)),        # numpy object arrays of Python str (see as_strings)
    9: ("bool", np.dtype(np.bool_)),
    10: ("float16", np.dtype(np.float16)),
    11: ("double", np.dtype(np.float64)),
    12: ("uint32", np.dtype(np.uint32)),
    13: ("uint64", np.dtype(np.uint64)),
}

# Types that exist in ONNX but that tinyrt refuses, by code, for clear messages.
UNSUPPORTED_TYPES = {
    0: "undefined", 14: "complex64", 15: "complex128", 16: "bfloat16",
    17: "float8e4m3fn", 18: "float8e4m3fnuz", 19: "float8e5m2", 20: "float8e5m2fnuz",
    21: "uint4", 22: "int4", 23: "float4e2m1", 24: "float8e8m0", 25: "uint2", 26: "int2",
}

_BY_DTYPE = {dt: code for code, (_, dt) in ONNX_TYPES.items()}


def is_supported(code):
    return code in ONNX_TYPES


def to_numpy(code):
    """numpy dtype of ONNX element type ``code``; KeyError when tinyrt does not support it."""
    return ONNX_TYPES[code][1]


def type_name(code):
    """ONNX's name for an element type, e.g. 1 -> 'float'."""
    if code in ONNX_TYPES:
        return ONNX_TYPES[code][0]
    return UNSUPPORTED_TYPES.get(code, "type %d" % code)


def from_numpy(dtype):
    """ONNX element type code of a numpy dtype."""
    return _BY_DTYPE[np.dtype(dtype)]


def is_string(dtype):
    """Whether ``dtype`` is how tinyrt holds ONNX strings: numpy object arrays of Python str."""
    return np.dtype(dtype) == np.dtype(object)


def as_strings(a):
    """An array of str / bytes / objects as tinyrt's string tensor: an object array of Python str
    (bytes are UTF-8 text, as ONNX's strings are)."""
    a = np.asarray(a)
    out = np.empty(a.shape, dtype=object)
    flat = out.reshape(-1)
    for i, v in enumerate(a.reshape(-1)):
        if isinstance(v, np.void):  # numpy's raw-bytes scalars
            v = v.tobytes()
        flat[i] = v.decode("utf-8") if isinstance(v, bytes) else str(v)
    return out
