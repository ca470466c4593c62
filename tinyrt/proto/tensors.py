"""TensorProto -> numpy array: raw_data, every typed field, and external data files."""
import os
import stat

import numpy as np

from .. import dtypes, limits
from ..errors import ModelError, UnsupportedError
from .onnx_messages import values

# Which typed field holds the values of each element type when raw_data is absent.
_FIELD_OF = {
    1: "float_data", 10: "int32_data", 11: "double_data", 7: "int64_data", 12: "uint64_data",
    13: "uint64_data", 2: "int32_data", 3: "int32_data", 4: "int32_data", 5: "int32_data", 6: "int32_data",
    9: "int32_data",
}


def tensor_to_array(t, folder=None, what=None):
    """The numpy array a TensorProto holds. ``folder`` is where its external data may live."""
    what = what or "tensor %r" % t.name
    if not dtypes.is_supported(t.data_type):
        raise UnsupportedError("%s has element type %s, which tinyrt does not support"
                               % (what, dtypes.type_name(t.data_type)))
    dtype = dtypes.to_numpy(t.data_type)
    shape = tuple(t.dims)
    if any(d < 0 for d in shape):
        raise ModelError("%s has a negative dimension in %s" % (what, list(shape)))
    if any(d > limits.MAX_DIM for d in shape):
        raise ModelError("%s has an absurd dimension in %s (more than %d)" % (what, list(shape), limits.MAX_DIM))
    if len(shape) > limits.MAX_RANK:
        raise ModelError("%s has rank %d; tinyrt (numpy) allows at most %d axes" % (what, len(shape), limits.MAX_RANK))
    count = 1
    for d in shape:
        count *= d
    if t.segment:
        raise UnsupportedError("%s is stored in segments, which tinyrt does not support" % what)
    if t.data_location == 1 or t.external_data:
        raw = _read_external(t, folder, what, count * dtype.itemsize)
    elif "raw_data" in t.present:
        raw = t.raw_data
    else:
        return _typed_values(t, dtype, shape, count, what)
    if len(raw) != count * dtype.itemsize:
        raise ModelError("%s: dims %s need %d bytes of data, the file holds %d"
                         % (what, list(shape), count * dtype.itemsize, len(raw)))
    array = np.frombuffer(raw, dtype=dtype.newbyteorder("<"), count=count)
    return array.astype(dtype).reshape(shape)  # a native, writable, aligned copy


def _typed_values(t, dtype, shape, count, what):
    """The array held in a typed field (float_data, int32_data, ...), which the reader kept as numpy chunks."""
    field = _FIELD_OF[t.data_type]
    chunks = getattr(t, field)
    held = sum(len(c) for c in chunks)
    if held != count:
        raise ModelError("%s: dims %s need %d values, the file holds %d" % (what, list(shape), count, held))
    if field in ("float_data", "double_data"):
        return values(chunks, dtype).reshape(shape)
    wide = values(chunks, np.uint64 if field == "uint64_data" else np.int64)
    if t.data_type == 10:  # float16 travels as its 16 bit patterns in int32_data
        lo, hi, target = 0, 0xFFFF, np.dtype(np.uint16)
    elif t.data_type == 9:  # bool: 0 or 1
        lo, hi, target = 0, 1, np.dtype(np.uint8)
    else:
        info = np.iinfo(dtype)
        lo, hi, target = info.min, info.max, dtype
    if wide.size and (int(wide.min()) < lo or int(wide.max()) > hi):
        raise ModelError("%s holds values out of range for %s" % (what, dtype))
    array = wide.astype(target)
    if t.data_type == 10:
        array = array.view(np.float16)
    elif t.data_type == 9:
        array = array.astype(np.bool_)
    return array.reshape(shape)


def _read_external(t, folder, what, nbytes):
    """Bytes of a tensor kept in a file beside the model; the path may not leave the model's folder."""
    info = {e.key: e.value for e in t.external_data}
    location = info.get("location")
    if not location:
        raise ModelError("%s says its data is external but names no location" % what)
    if folder is None:
        raise ModelError("%s keeps its data in %r, but the model was given as bytes: load it from its path"
                         % (what, location))
    if "\x00" in location:
        raise ModelError("%s: external data location %r holds a NUL byte" % (what, location))
    if os.path.isabs(location) or ".." in location.replace("\\", "/").split("/"):
        raise ModelError("%s: external data location %r leaves the model's folder" % (what, location))
    root = os.path.realpath(folder)
    path = os.path.realpath(os.path.join(root, location))
    if os.path.commonpath([root, path]) != root:
        raise ModelError("%s: external data location %r leads out of the model's folder" % (what, location))
    try:
        offset = int(info.get("offset", 0))
        length = int(info.get("length", nbytes))
    except ValueError:
        raise ModelError("%s: external data offset/length are not integers: %r" % (what, info)) from None
    try:
        st = os.stat(path)
    except OSError:
        raise ModelError("%s: external data file %r does not exist" % (what, location)) from None
    if not stat.S_ISREG(st.st_mode):  # a folder, a FIFO (reading one would block), a device...
        raise ModelError("%s: external data location %r is not a regular file" % (what, location))
    size = st.st_size
    if offset < 0 or length < 0 or offset + length > size:
        raise ModelError("%s: external data [%d, %d) runs past the end of %r (%d bytes)"
                         % (what, offset, offset + length, location, size))
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)
