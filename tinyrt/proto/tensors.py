"""TensorProto -> numpy array: raw_data, every typed field, and external data files."""
import bisect
import os
import sys

import numpy as np

from .. import dtypes, limits
from ..errors import ModelError, UnsupportedError
from ..files import descriptor_path, open_regular
from .onnx_messages import values

# Which typed field holds the values of each element type when raw_data is absent.
_FIELD_OF = {
    1: "float_data", 10: "int32_data", 11: "double_data", 7: "int64_data", 12: "uint64_data",
    13: "uint64_data", 2: "int32_data", 3: "int32_data", 4: "int32_data", 5: "int32_data", 6: "int32_data",
    9: "int32_data",
}


def tensor_to_array(t, folder=None, what=None, external=None):
    """The numpy array a TensorProto holds. ``folder`` is where its external data may live; ``external``
    (an ExternalFiles) shares the ranges several tensors read."""
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
    if dtypes.is_string(dtype):
        return _strings(t, shape, count, what)
    if t.data_location == 1 or t.external_data:
        return _read_external(t, folder, what, count * dtype.itemsize, external, dtype, shape)
    if "raw_data" not in t.present:
        return _typed_values(t, dtype, shape, count, what)
    raw = t.raw_data
    if len(raw) != count * dtype.itemsize:
        raise ModelError("%s: dims %s need %d bytes of data, the file holds %d"
                         % (what, list(shape), count * dtype.itemsize, len(raw)))
    return _array(raw, dtype, shape)


def _strings(t, shape, count, what):
    """A string tensor (its values are always in string_data) as an object array of Python str."""
    if len(t.string_data) != count:
        raise ModelError("%s: dims %s need %d strings, the file holds %d"
                         % (what, list(shape), count, len(t.string_data)))
    out = np.empty(count, dtype=object)
    for i, raw in enumerate(t.string_data):
        try:
            out[i] = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise ModelError("%s: string %d is not valid UTF-8" % (what, i)) from None
    return out.reshape(shape)


def _array(raw, dtype, shape):
    """Little-endian bytes -> a native, writable, aligned array (a copy)."""
    array = np.frombuffer(raw, dtype=dtype.newbyteorder("<"), count=len(raw) // dtype.itemsize)
    return array.astype(dtype).reshape(shape)


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


class ExternalFiles:
    """What one model reads from its external data files: each byte range once.

    Many tensors may name the same range (1,500 initializers pointing at one 1 MiB file): they share one
    array (read-only views after the first), and the model's size (which sets its limits) counts those
    bytes once. Ranges that overlap without being equal are refused: no exporter writes them, and they
    would let a small file stand for many times its size.
    """

    def __init__(self):
        self.in_memory = {}  # location -> bytes the caller gave for that file (read there, not from disk)
        self.spans = {}    # (st_dev, st_ino) -> sorted [(begin, end)] of the ranges read
        self.arrays = {}   # (st_dev, st_ino, begin, end) -> the array first read from that range
        self.nbytes = 0    # distinct bytes read

    def shared(self, key, offset, length, what, location):
        """The array already read from this range, or None after claiming it (ModelError on overlap)."""
        found = self.arrays.get(key + (offset, offset + length))
        if found is not None or length == 0:
            return found
        spans = self.spans.setdefault(key, [])
        i = bisect.bisect_left(spans, (offset, offset + length))
        for other in spans[max(0, i - 1):i + 1]:
            if other[0] < offset + length and offset < other[1]:
                raise ModelError("%s: external data [%d, %d) of %r overlaps another tensor's [%d, %d)"
                                 % (what, offset, offset + length, location, other[0], other[1]))
        spans.insert(i, (offset, offset + length))
        self.nbytes += length
        return None

    def keep(self, key, offset, length, array):
        if length:
            self.arrays[key + (offset, offset + length)] = array


def _view_of(first, dtype, shape):
    """A read-only view of ``first``'s bytes as ``dtype``/``shape`` (both little-endian in the file)."""
    if sys.byteorder != "little" and first.dtype.itemsize > 1:
        return None  # the first array was byte-swapped: read the range again
    view = first.reshape(-1).view(np.uint8).view(dtype).reshape(shape)
    view.flags.writeable = False
    return view


def _read_external(t, folder, what, nbytes, external=None, dtype=None, shape=None):
    """The array of a tensor kept in a file beside the model; the path may not leave the model's folder.

    The file is opened once, without following a link at its end and without blocking (a FIFO swapped in
    would block ``open``), and checked through its descriptor: a regular file, whose real path is in the
    model's folder. So a link or FIFO swapped in after the path checks is refused, never read.
    """
    info = {e.key: e.value for e in t.external_data}
    location = info.get("location")
    if not location:
        raise ModelError("%s says its data is external but names no location" % what)
    if external is not None and location in external.in_memory:
        return _from_memory(external.in_memory[location], info, what, location, nbytes, dtype, shape)
    if folder is None:
        raise ModelError("%s keeps its data in %r, but the model was given as bytes: load it from its path"
                         % (what, location))
    if "\x00" in location:
        raise ModelError("%s: external data location %r holds a NUL byte" % (what, location))
    if os.path.isabs(location) or ".." in location.replace("\\", "/").split("/"):
        raise ModelError("%s: external data location %r leaves the model's folder" % (what, location))
    root = os.path.realpath(folder)
    path = os.path.realpath(os.path.join(root, location))
    if not _inside(root, path):
        raise ModelError("%s: external data location %r leads out of the model's folder" % (what, location))
    try:
        offset = int(info.get("offset", 0))
        length = int(info.get("length", nbytes))
    except ValueError:
        raise ModelError("%s: external data offset/length are not integers: %r" % (what, info)) from None
    error = _external_error(what, location)
    f, st = open_regular(path, "external data file", error, nofollow=True)
    with f:
        real = descriptor_path(f)
        if real is not None and not _inside(root, real):  # swapped between realpath() and open()
            raise ModelError("%s: external data location %r leads out of the model's folder" % (what, location))
        size = st.st_size
        if offset < 0 or length < 0 or offset + length > size:
            raise ModelError("%s: external data [%d, %d) runs past the end of %r (%d bytes)"
                             % (what, offset, offset + length, location, size))
        if length != nbytes:  # checked before reading: a length of 3 GiB for dims [1] reads nothing
            raise ModelError("%s: dims %s need %d bytes of data, external data %r says length %d"
                             % (what, list(shape), nbytes, location, length))
        key = (st.st_dev, st.st_ino)
        if external is not None:
            first = external.shared(key, offset, length, what, location)
            if first is not None:
                view = _view_of(first, dtype, shape)
                if view is not None:
                    return view
        f.seek(offset)
        raw = f.read(length)
    if len(raw) != length:
        raise ModelError("%s: external data %r ended after %d of %d bytes (did it change while loading?)"
                         % (what, location, len(raw), length))
    array = _array(raw, dtype, shape)
    if external is not None:
        external.keep(key, offset, length, array)
    return array


def _from_memory(data, info, what, location, nbytes, dtype, shape):
    """A tensor's external data from the bytes the caller gave for its file."""
    try:
        offset = int(info.get("offset", 0))
        length = int(info.get("length", nbytes))
    except ValueError:
        raise ModelError("%s: external data offset/length are not integers: %r" % (what, info)) from None
    if offset < 0 or length != nbytes or offset + length > len(data):
        raise ModelError("%s: external data [%d, %d) does not fit the %d bytes given for %r (dims %s need %d)"
                         % (what, offset, offset + length, len(data), location, list(shape), nbytes))
    return _array(bytes(data[offset:offset + length]), dtype, shape)


def _inside(root, path):
    return os.path.commonpath([root, path]) == root


def _external_error(what, location):
    """Makes ``open_regular``'s errors ModelErrors that name the tensor and its location first."""
    return lambda message: ModelError("%s: external data %r: %s" % (what, location, message))
