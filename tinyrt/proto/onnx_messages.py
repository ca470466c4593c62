"""ONNX's protobuf messages (onnx/onnx.proto3), decoded from the wire format into small Python objects.

Each message class lists its fields as {number: (name, kind, repeated)}. ``kind`` is a scalar kind or a
message class. Unknown fields are skipped, as protobuf does, so files from newer exporters still load.
Repeated scalars are accepted packed and unpacked alike.
"""
import os
import struct

import numpy as np

from ..errors import ModelError
from ..files import read_regular
from . import diagnose
from .wire import FIXED32, FIXED64, LENGTH, VARINT, iter_fields, read_packed_varints

MAX_DEPTH = 100  # nested messages; deeper files are refused rather than blowing the Python stack

INT64, UINT64, INT32, FLOAT, DOUBLE, STRING, BYTES = "int64", "uint64", "int32", "float", "double", "string", "bytes"
VIEW = "view"  # bytes kept as a memoryview into the file: tensor data is not copied while decoding
_VARINT_KINDS = (INT64, UINT64, INT32)
_FIXED = {FLOAT: (FIXED32, "<f4", 4), DOUBLE: (FIXED64, "<f8", 8)}


def _signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v


class Message:
    FIELDS = {}
    ARRAYS = ()  # repeated numeric fields kept as a list of numpy chunks (tensor data): see ``values``
    LAZY = ()    # repeated message fields decoded when read (a graph's nodes): see ``Lazy``

    def __init__(self):
        defaults, lists = self._defaults()
        d = self.__dict__
        d.update(defaults)
        for name in lists:
            d[name] = []
        self.present = set()

    @classmethod
    def _defaults(cls):
        """({name: default of each single field}, names of repeated fields), worked out once a class."""
        found = cls.__dict__.get("_DEFAULTS")
        if found is None:
            defaults, lists = {}, []
            for name, kind, repeated in cls.FIELDS.values():
                if repeated:
                    lists.append(name)
                elif isinstance(kind, type):
                    defaults[name] = None
                else:
                    defaults[name] = {STRING: "", BYTES: b"", VIEW: b"", FLOAT: 0.0, DOUBLE: 0.0}.get(kind, 0)
            found = cls._DEFAULTS = (defaults, tuple(lists))
        return found

    @classmethod
    def decode(cls, buf, start, end, depth=0):
        if depth > MAX_DEPTH:
            raise ModelError("messages nested deeper than %d levels" % MAX_DEPTH)
        msg = cls()
        fields, d, present = cls.FIELDS, msg.__dict__, msg.present
        for number, wire_type, value in iter_fields(buf, start, end):
            spec = fields.get(number)
            if spec is None:
                continue  # unknown field: skip, as protobuf does
            name, kind, repeated = spec
            if kind == STRING and wire_type == LENGTH:  # names, most fields of a big graph: no call
                try:
                    text = str(buf[value[0]:value[1]], "utf-8")
                except UnicodeDecodeError:
                    raise ModelError("%s.%s: string is not valid UTF-8" % (cls.__name__, name)) from None
                present.add(name)
                if repeated:
                    d[name].append(text)
                else:
                    d[name] = text
                continue
            if name in cls.LAZY:
                _expect_in(wire_type, LENGTH, kind.__name__, cls.__name__, name)
                found = getattr(msg, name)
                if not found:
                    found = Lazy(kind, buf, depth + 1, "%s.%s" % (cls.__name__, name), start, end, number)
                    setattr(msg, name, found)
                    msg.present.add(name)
                found.count += 1
                continue
            try:
                decoded = _decode_value(buf, kind, wire_type, value, repeated, depth)
            except ModelError as e:
                raise ModelError("%s.%s: %s" % (cls.__name__, name, e)) from None
            msg.present.add(name)
            if repeated and name in cls.ARRAYS:
                chunks = getattr(msg, name)  # tensor data: kept as numpy chunks, see ``values``
                if isinstance(decoded, list) and chunks and isinstance(chunks[-1], list):
                    chunks[-1].extend(decoded)  # unpacked values, one field each: one list
                else:
                    chunks.append(decoded)
            elif repeated:
                getattr(msg, name).extend(decoded.tolist() if isinstance(decoded, np.ndarray) else decoded)
            else:
                setattr(msg, name, decoded)
        return msg

    def __repr__(self):
        shown = ", ".join("%s=%r" % (n, getattr(self, n)) for n in sorted(self.present))
        return "%s(%s)" % (type(self).__name__, shown[:300])


class Lazy:
    """A repeated message field decoded as it is read: only the message holding it is kept (where it lies in
    the file's bytes) and how many there are, so a graph of a million nodes is not a million decoded
    NodeProtos at once, nor a table of where each lies; reading them goes through the holding message's
    fields again, and the graph builder decodes one, builds its node and drops it. A message that does not
    decode is a ModelError when it is read (the graph builder reads them all)."""

    __slots__ = ("kind", "buf", "depth", "where", "start", "end", "number", "count")

    def __init__(self, kind, buf, depth, where, start, end, number):
        self.kind = kind
        self.buf = buf
        self.depth = depth
        self.where = where
        self.start, self.end = start, end  # the holding message
        self.number = number               # the field's number in it
        self.count = 0

    def __len__(self):
        return self.count

    def __iter__(self):
        for start, end in self._spans():
            yield self._decode(start, end)

    def _spans(self):
        number = self.number
        for found, wire_type, value in iter_fields(self.buf, self.start, self.end):
            if found == number and wire_type == LENGTH:
                yield value

    def __getitem__(self, i):
        n = len(self)
        if isinstance(i, slice):
            wanted = range(*i.indices(n))
            spans = list(self._spans())
            return [self._decode(*spans[j]) for j in wanted]
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("message index out of range")
        for j, span in enumerate(self._spans()):
            if j == i:
                return self._decode(*span)

    def _decode(self, start, end):
        try:
            return self.kind.decode(self.buf, start, end, self.depth)
        except ModelError as e:
            raise ModelError("%s: %s" % (self.where, e)) from None

    def __repr__(self):
        return "<%d %s messages, decoded when read>" % (len(self), self.kind.__name__)


def values(chunks, dtype):
    """One numpy array of ``dtype`` from the chunks a tensor data field was read into."""
    if not chunks:
        return np.zeros(0, dtype)
    return np.concatenate([np.array(c, dtype=dtype).reshape(-1) if isinstance(c, list)
                           else c.astype(dtype, copy=False).reshape(-1) for c in chunks])


def _decode_value(buf, kind, wire_type, value, repeated, depth):
    """Decode one field; a list of values when ``repeated`` (a packed field holds many; numpy arrays for
    packed numbers, which the caller turns into lists except for tensor data)."""
    if isinstance(kind, type):
        _expect(wire_type, LENGTH, kind.__name__)
        msg = kind.decode(buf, value[0], value[1], depth + 1)
        return [msg] if repeated else msg
    if kind == VIEW:
        _expect(wire_type, LENGTH, "bytes")
        return buf[value[0]:value[1]]
    if kind == STRING:
        _expect(wire_type, LENGTH, kind)
        try:
            raw = str(buf[value[0]:value[1]], "utf-8")
        except UnicodeDecodeError:
            raise ModelError("string is not valid UTF-8") from None
        return [raw] if repeated else raw
    if kind == BYTES:
        _expect(wire_type, LENGTH, kind)
        raw = bytes(buf[value[0]:value[1]])
        return [raw] if repeated else raw
    if kind in _VARINT_KINDS:
        if wire_type == LENGTH and repeated:  # packed: numpy does the arithmetic
            packed = read_packed_varints(buf, value[0], value[1])
            if kind == INT64:
                return packed.view(np.int64)
            if kind == INT32:
                return packed.astype(np.uint32).view(np.int32)
            return packed
        _expect(wire_type, VARINT, kind)
        if kind == INT64:
            value = _signed(value)
        elif kind == INT32:
            value &= 0xFFFFFFFF
            value = value - (1 << 32) if value >= 1 << 31 else value
        return [value] if repeated else value
    wire, dtype, size = _FIXED[kind]
    if wire_type == LENGTH and repeated:  # packed: a little-endian array
        start, end = value
        if (end - start) % size:
            raise ModelError("packed %s field of %d bytes is not a multiple of %d" % (kind, end - start, size))
        return np.frombuffer(buf, dtype=dtype, count=(end - start) // size, offset=start)
    _expect(wire_type, wire, kind)
    number = struct.unpack("<f" if size == 4 else "<d", struct.pack("<I" if size == 4 else "<Q", value))[0]
    return [number] if repeated else number


def _expect_in(wire_type, wanted, kind, message, name):
    if wire_type != wanted:
        raise ModelError("%s.%s: wire type %d where a %s (wire type %d) belongs"
                         % (message, name, wire_type, kind, wanted))


def _expect(wire_type, wanted, kind):
    if wire_type != wanted:
        raise ModelError("wire type %d where a %s (wire type %d) belongs" % (wire_type, kind, wanted))


# --- the messages, in the order of onnx.proto3 -------------------------------------------------------------

class StringStringEntry(Message):
    FIELDS = {1: ("key", STRING, False), 2: ("value", STRING, False)}


class OperatorSetId(Message):
    FIELDS = {1: ("domain", STRING, False), 2: ("version", INT64, False)}


class TensorProto(Message):
    ARRAYS = ("float_data", "int32_data", "int64_data", "double_data", "uint64_data")
    FIELDS = {
        1: ("dims", INT64, True), 2: ("data_type", INT32, False), 8: ("name", STRING, False),
        9: ("raw_data", VIEW, False), 4: ("float_data", FLOAT, True), 5: ("int32_data", INT64, True),
        6: ("string_data", BYTES, True), 7: ("int64_data", INT64, True), 10: ("double_data", DOUBLE, True),
        11: ("uint64_data", UINT64, True), 12: ("doc_string", STRING, False),
        13: ("external_data", StringStringEntry, True), 14: ("data_location", INT32, False),
        3: ("segment", BYTES, False),
    }


class Dimension(Message):
    FIELDS = {1: ("dim_value", INT64, False), 2: ("dim_param", STRING, False), 3: ("denotation", STRING, False)}


class TensorShape(Message):
    FIELDS = {1: ("dim", Dimension, True)}


class TensorType(Message):
    FIELDS = {1: ("elem_type", INT32, False), 2: ("shape", TensorShape, False)}


class TypeProto(Message):
    FIELDS = {1: ("tensor_type", TensorType, False), 6: ("denotation", STRING, False)}
    # map (5) and sparse tensor (8) types are left undecoded: tinyrt refuses them by their field number,
    # see ``other``. Sequence (4) and optional (9) types are added below, once TypeProto exists.
    OTHER_KINDS = {5: "map", 8: "sparse tensor"}

    @classmethod
    def decode(cls, buf, start, end, depth=0):
        msg = super().decode(buf, start, end, depth)
        msg.other = None
        for number, _, _ in iter_fields(buf, start, end):
            if number in cls.OTHER_KINDS:
                msg.other = cls.OTHER_KINDS[number]
        return msg


class ContainerType(Message):
    """SequenceProto's and OptionalProto's type: the type of what they hold."""
    FIELDS = {1: ("elem_type", TypeProto, False)}


TypeProto.FIELDS[4] = ("sequence_type", ContainerType, False)
TypeProto.FIELDS[9] = ("optional_type", ContainerType, False)


class ValueInfo(Message):
    FIELDS = {1: ("name", STRING, False), 2: ("type", TypeProto, False), 3: ("doc_string", STRING, False)}


class Attribute(Message):
    FIELDS = {
        1: ("name", STRING, False), 21: ("ref_attr_name", STRING, False), 13: ("doc_string", STRING, False),
        20: ("type", INT32, False), 2: ("f", FLOAT, False), 3: ("i", INT64, False), 4: ("s", BYTES, False),
        5: ("t", TensorProto, False), 7: ("floats", FLOAT, True), 8: ("ints", INT64, True),
        9: ("strings", BYTES, True), 10: ("tensors", TensorProto, True),
        22: ("sparse_tensor", BYTES, False), 23: ("sparse_tensors", BYTES, True),
        14: ("tp", BYTES, False), 15: ("type_protos", BYTES, True),
    }
    # graphs (6) and lists of graphs (11) are added below, once Graph exists


class Node(Message):
    FIELDS = {
        1: ("input", STRING, True), 2: ("output", STRING, True), 3: ("name", STRING, False),
        4: ("op_type", STRING, False), 7: ("domain", STRING, False), 5: ("attribute", Attribute, True),
        6: ("doc_string", STRING, False), 8: ("overload", STRING, False),
    }


class Graph(Message):
    LAZY = ("node",)
    FIELDS = {
        1: ("node", Node, True), 2: ("name", STRING, False), 5: ("initializer", TensorProto, True),
        15: ("sparse_initializer", BYTES, True), 10: ("doc_string", STRING, False),
        11: ("input", ValueInfo, True), 12: ("output", ValueInfo, True), 13: ("value_info", ValueInfo, True),
    }


Attribute.FIELDS[6] = ("g", Graph, False)
Attribute.FIELDS[11] = ("graphs", Graph, True)


class Function(Message):
    FIELDS = {
        1: ("name", STRING, False), 4: ("input", STRING, True), 5: ("output", STRING, True),
        6: ("attribute", STRING, True), 11: ("attribute_proto", Attribute, True), 7: ("node", Node, True),
        8: ("doc_string", STRING, False), 9: ("opset_import", OperatorSetId, True),
        10: ("domain", STRING, False), 13: ("overload", STRING, False), 12: ("value_info", ValueInfo, True),
    }


class Model(Message):
    FIELDS = {
        1: ("ir_version", INT64, False), 8: ("opset_import", OperatorSetId, True),
        2: ("producer_name", STRING, False), 3: ("producer_version", STRING, False),
        4: ("domain", STRING, False), 5: ("model_version", INT64, False), 6: ("doc_string", STRING, False),
        7: ("graph", Graph, False), 14: ("metadata_props", StringStringEntry, True),
        25: ("functions", Function, True),
    }


MAX_FILE_BYTES = (2 << 30) - 1  # protobuf's limit on one message: bigger models keep weights in external data


def read_source(source):
    """The bytes of a model given as a path, bytes-like object or binary file object, and its folder.

    The folder (None for bytes) is where external data is looked for.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), None
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        # a FIFO would block, /dev/zero never end: a regular file only, of at most protobuf's 2 GiB
        data = read_regular(path, "model file", MAX_FILE_BYTES, ModelError)
        return data, os.path.dirname(os.path.abspath(path))
    if hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise ModelError("the model's file object gave %s, not bytes: open it in binary mode ('rb')"
                             % type(data).__name__)
        name = getattr(source, "name", None)
        folder = os.path.dirname(os.path.abspath(name)) if isinstance(name, str) and os.path.exists(name) else None
        return bytes(data), folder
    raise ModelError("a model is a path, bytes or a binary file object, not %s" % type(source).__name__)


def load_model(source):
    """Decode an ONNX ModelProto. Returns (Model, folder for external data or None)."""
    data, folder = read_source(source)
    name = diagnose.source_name(source)
    if not data:
        raise ModelError("%s is empty (0 bytes): not an ONNX model" % name)
    try:
        model = Model.decode(memoryview(data), 0, len(data))
    except ModelError as e:       # said in protobuf's terms: say what is wrong with the file first
        raise diagnose.not_onnx(name, data, e) from None
    model.file_size = len(data)
    model.source_name = name
    if model.graph is None:
        raise diagnose.no_graph(name, data)
    return model, folder


__all__ = ["load_model", "read_source", "Model", "Graph", "Node", "Attribute", "TensorProto", "ValueInfo",
           "Function"]
