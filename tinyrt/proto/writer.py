"""tinyrt's graph IR written back as an ONNX file (protobuf wire format, no onnx/protobuf needed).

``SessionOptions.optimized_model_filepath`` uses it to save the graph after tinyrt's passes, as onnxruntime
saves its optimised graph. Fused nodes keep tinyrt's own domain (ai.tinyrt: FusedConv), so such a file
runs in tinyrt, as onnxruntime's optimised files (com.microsoft ops) run in onnxruntime.

    write_model(path, model_ir, graph, extra_inputs=(), external_file=None, external_min_bytes=1024)

Initializers of at least ``external_min_bytes`` go to ``external_file`` (beside the model) when it is given.
"""
import os
import struct

import numpy as np

from .. import dtypes
from ..errors import InputError, UnsupportedError

IR_VERSION = 8          # what the files tinyrt writes declare (opset 13+ models, optionals, strings)
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


def _varint(n):
    if n < 0:
        n += 1 << 64    # int64 fields: two's complement in ten bytes
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


class _Message:
    """Fields appended in order; nested messages are written as length-delimited bytes."""

    def __init__(self):
        self.parts = []

    def int(self, field, value):
        self.parts.append(_varint(field << 3 | _VARINT) + _varint(int(value)))

    def float(self, field, value):
        self.parts.append(_varint(field << 3 | _FIXED32) + struct.pack("<f", value))

    def bytes(self, field, data):
        self.parts.append(_varint(field << 3 | _BYTES) + _varint(len(data)) + data)

    def text(self, field, value):
        if value:
            self.bytes(field, value.encode("utf-8"))

    def message(self, field, msg):
        self.bytes(field, msg.encode())

    def encode(self):
        return b"".join(self.parts)


class _External:
    """The external-data file initializers go to, written as they come."""

    def __init__(self, folder, name, min_bytes):
        self.name = name
        self.min_bytes = min_bytes
        self.path = os.path.join(folder, name) if name is not None else None
        self.file = None
        self.offset = 0

    def take(self, array):
        """(offset, length) of the array's bytes in the file, or None when it stays inside the model."""
        if self.name is None or array.nbytes < self.min_bytes or dtypes.is_string(array.dtype):
            return None
        if self.file is None:
            self.file = open(self.path, "wb")
        data = _little_endian(array).tobytes()
        offset = self.offset
        self.file.write(data)
        self.offset += len(data)
        return offset, len(data)

    def close(self):
        if self.file is not None:
            self.file.close()


def _little_endian(array):
    array = np.ascontiguousarray(array)
    return array.astype(array.dtype.newbyteorder("<"), copy=False)


def _tensor(array, name, external=None):
    t = _Message()
    for d in array.shape:
        t.int(1, d)
    t.int(2, dtypes.from_numpy(array.dtype))
    t.text(8, name)
    if dtypes.is_string(array.dtype):
        for s in array.reshape(-1).tolist():
            t.bytes(6, s.encode("utf-8") if isinstance(s, str) else bytes(s))
        return t
    where = external.take(array) if external is not None else None
    if where is None:
        t.bytes(9, _little_endian(array).tobytes())
    else:
        for key, value in (("location", external.name), ("offset", str(where[0])), ("length", str(where[1]))):
            entry = _Message()
            entry.text(1, key)
            entry.text(2, value)
            t.message(13, entry)
        t.int(14, 1)  # data_location: EXTERNAL
    return t


def _type(spec):
    tp = _Message()
    if spec.kind in ("sequence", "optional"):
        inner = _Message()
        inner.message(1, _type(spec.element))
        tp.message(4 if spec.kind == "sequence" else 9, inner)
        return tp
    tensor = _Message()
    if spec.elem_type:
        tensor.int(1, spec.elem_type)
    if spec.shape is not None:
        shape = _Message()
        for d in spec.shape:
            dim = _Message()
            if isinstance(d, int):
                dim.int(1, d)
            elif d:
                dim.text(2, d)
            shape.message(1, dim)
        tensor.message(2, shape)
    tp.message(1, tensor)
    return tp


def _value_info(spec):
    v = _Message()
    v.text(1, spec.name)
    v.message(2, _type(spec))
    return v


def _attribute(name, value, external):
    from ..graph import Graph, ValueSpec
    a = _Message()
    a.text(1, name)
    kinds = []
    if isinstance(value, bool) or isinstance(value, (int, np.integer)):
        a.int(3, value)
        kinds.append(2)
    elif isinstance(value, (float, np.floating)):
        a.float(2, value)
        kinds.append(1)
    elif isinstance(value, str):
        a.bytes(4, value.encode("utf-8"))
        kinds.append(3)
    elif isinstance(value, np.ndarray):
        a.message(5, _tensor(value, "", external))
        kinds.append(4)
    elif isinstance(value, Graph):
        a.message(6, _graph(value, external))
        kinds.append(5)
    elif isinstance(value, ValueSpec):
        a.message(14, _type(value))
        kinds.append(13)
    elif isinstance(value, (list, tuple)):
        items = list(value)
        if all(isinstance(v, (float, np.floating)) for v in items) and items:
            for v in items:
                a.float(7, v)
            kinds.append(6)
        elif all(isinstance(v, (int, np.integer)) for v in items):
            for v in items:
                a.int(8, v)
            kinds.append(7)
        elif all(isinstance(v, (int, float, np.integer, np.floating)) for v in items):
            for v in items:
                a.float(7, v)
            kinds.append(6)
        elif all(isinstance(v, str) for v in items):
            for v in items:
                a.bytes(9, v.encode("utf-8"))
            kinds.append(8)
        elif all(isinstance(v, np.ndarray) for v in items):
            for v in items:
                a.message(10, _tensor(v, "", external))
            kinds.append(9)
        elif all(isinstance(v, Graph) for v in items):
            for v in items:
                a.message(11, _graph(v, external))
            kinds.append(10)
    if not kinds:
        raise UnsupportedError("attribute %r holds %s, which tinyrt cannot write to ONNX" % (name, type(value).__name__))
    a.int(20, kinds[0])
    return a


def _graph(graph, external, extra_inputs=()):
    g = _Message()
    for node in graph.nodes:
        n = _Message()
        for x in node.inputs:
            n.bytes(1, x.encode("utf-8"))
        for y in node.outputs:
            n.bytes(2, y.encode("utf-8"))
        n.text(3, node.name)
        n.text(4, node.op_type)
        for key, value in sorted(node.attrs.items()):
            n.message(5, _attribute(key, value, external))
        n.text(7, node.domain)
        g.message(1, n)
    g.text(2, graph.name)
    for name, array in graph.initializers.items():
        g.message(5, _tensor(array, name, external))
    for spec in list(graph.inputs) + list(extra_inputs):
        g.message(11, _value_info(spec))
    for spec in graph.outputs:
        g.message(12, _value_info(spec))
    for spec in graph.value_info.values():
        g.message(13, _value_info(spec))
    return g


def _opsets(model_ir, graph):
    opsets = dict(model_ir.opsets)
    for node in graph.all_nodes():
        if node.domain not in opsets and node.opset is not None:
            opsets[node.domain] = node.opset
    return opsets


def write_model(path, model_ir, graph, extra_inputs=(), external_file=None, external_min_bytes=1024):
    """Write ``graph`` (with the file-level fields of ``model_ir``) to ``path`` as an ONNX model."""
    folder = os.path.dirname(os.path.abspath(path))
    if external_file is not None and (os.path.isabs(external_file) or os.sep in external_file):
        raise InputError("the external initializers file %r must be a plain file name (it is written beside "
                         "the model)" % external_file)
    external = _External(folder, external_file, external_min_bytes)
    try:
        m = _Message()
        m.int(1, max(IR_VERSION, model_ir.ir_version or 0))
        m.text(2, "tinyrt")
        m.text(4, model_ir.domain)
        m.text(6, model_ir.doc_string)
        m.message(7, _graph(graph, external, extra_inputs))
        for domain, version in sorted(_opsets(model_ir, graph).items()):
            opset = _Message()
            opset.text(1, domain)
            opset.int(2, version)
            m.message(8, opset)
        for key, value in model_ir.metadata.items():
            entry = _Message()
            entry.text(1, key)
            entry.text(2, value)
            m.message(14, entry)
        data = m.encode()
    finally:
        external.close()
    with open(path, "wb") as f:
        f.write(data)
