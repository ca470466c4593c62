"""What is wrong with a file that does not decode as an ONNX model, said in one line a person can act on.

The wire reader's errors are exact but speak protobuf (``field 7 at byte 22 says 7207 bytes, only 2978 are
left``). Here they become ``model.onnx is truncated at byte 3000 of 10230 ...`` or ``photo.onnx is not an ONNX
model: it is a JPEG picture``, naming the file first, with the wire detail kept after it for experts.

How: a file is recognised by its first bytes when it is a common other format (pictures, archives, a PyTorch
checkpoint, a Git LFS pointer, an HTML page); otherwise its top-level fields are walked the way protobuf
would: an ONNX ModelProto starts with one of its own fields, and a top-level field that runs past the end of
the file means the file was cut short.
"""
import os

from ..errors import ModelError
from .wire import FIXED32, FIXED64, LENGTH, VARINT

# ModelProto's fields (onnx.proto3) and their wire types: the first field of an ONNX file is one of these
MODEL_FIELDS = {1: VARINT, 2: LENGTH, 3: LENGTH, 4: LENGTH, 5: VARINT, 6: LENGTH, 7: LENGTH, 8: LENGTH,
                14: LENGTH, 20: LENGTH, 25: LENGTH, 26: LENGTH}

# (first bytes, what the file is): formats people rename or download by mistake
SIGNATURES = [
    (b"\xff\xd8\xff", "a JPEG picture"),
    (b"\x89PNG\r\n\x1a\n", "a PNG picture"),
    (b"GIF8", "a GIF picture"),
    (b"BM", "a BMP picture"),
    (b"RIFF", "a RIFF file (WebP picture, WAV or AVI)"),
    (b"PK\x03\x04", "a zip archive (a PyTorch .pth checkpoint is one: convert it with `python -m exporter "
                    "convert`)"),
    (b"\x80\x02", "a Python pickle (an old PyTorch checkpoint?: convert it with `python -m exporter convert`)"),
    (b"\x1f\x8b", "a gzip-compressed file: decompress it first"),
    (b"%PDF", "a PDF document"),
    (b"\x89HDF", "an HDF5 file (a Keras .h5 model?)"),
    (b"\x7fELF", "a program (ELF binary)"),
    (b"version https://git-lfs", "a Git LFS pointer, not the model itself: run `git lfs pull`"),
]


def source_name(source):
    """How to name a model source in a message: its path, its file object's name, or 'the model bytes'."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    name = getattr(source, "name", None)
    if isinstance(name, str):
        return name
    return "the model bytes"


def not_onnx(name, data, detail=None):
    """The ModelError for ``data`` (the file's bytes) that failed to decode with ``detail``."""
    what, wire = _diagnose(name, data)
    if detail is not None:
        wire = str(detail)         # the reader's own words: where exactly decoding stopped
    return ModelError(what + ("" if not wire else " [wire format: %s]" % wire))


def no_graph(name, data):
    """The ModelError for a file that decoded but holds no graph."""
    what, _ = _diagnose(name, data)
    if "damaged" in what:          # the fields decode: another kind of protobuf file, or an empty ModelProto
        what = "%s is not an ONNX model: it holds no graph (ModelProto field 7)" % name
    return ModelError(what)


def _diagnose(name, data):
    """(the message, wire-level detail or None)."""
    head = bytes(data[:1024])
    kind = _signature(head)
    if kind:
        return "%s is not an ONNX model: it is %s" % (name, kind), None
    if _looks_like_text(head):
        start = head[:40].decode("utf-8", "replace").strip().splitlines()[0] if head.strip() else ""
        return ("%s is not an ONNX model: it is a text file (it starts %r; a web page saved in place of the "
                "download?)" % (name, start)), None
    return _walk(name, data)


def _signature(head):
    for magic, kind in SIGNATURES:
        if head.startswith(magic):
            return kind
    if head[4:8] == b"TFL3":
        return "a TensorFlow Lite model"
    if head[:1] == b"\x80" and head[1:2] in (b"\x03", b"\x04", b"\x05"):
        return "a Python pickle (a PyTorch checkpoint?: convert it with `python -m exporter convert`)"
    return None


def _looks_like_text(head):
    sample = head[:512]
    if not sample.strip():
        return False
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\r\n\t" for c in text)


def _walk(name, data):
    """Walk the top-level fields (a few: cheap whatever the file's size): (message, wire detail)."""
    pos, first, size = 0, True, len(data)
    while pos < size:
        key_at = pos
        key, pos, cut = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if first and (cut or MODEL_FIELDS.get(number) != wire_type):
            return ("%s is not an ONNX model: its first bytes are not an ONNX ModelProto (field %d, wire type %d "
                    "at byte 0)" % (name, number, wire_type)), None
        first = False
        if cut:
            return _truncated(name, size, None, "the file ends inside a field key at byte %d" % key_at)
        if wire_type == VARINT:
            _, pos, cut = _varint(data, pos)
            if cut:
                return _truncated(name, size, None, "the file ends inside field %d" % number)
        elif wire_type == LENGTH:
            length, pos, cut = _varint(data, pos)
            if cut:
                return _truncated(name, size, None, "the file ends inside the length of field %d" % number)
            if pos + length > size:
                return _truncated(name, size, pos + length, "top-level field %d at byte %d says %d bytes, "
                                  "only %d are left" % (number, pos, length, size - pos))
            pos += length
        elif wire_type in (FIXED32, FIXED64):
            pos += 4 if wire_type == FIXED32 else 8
            if pos > size:
                return _truncated(name, size, pos, "the file ends inside field %d" % number)
        else:
            return ("%s is not a valid ONNX model: it is damaged at byte %d (wire type %d)"
                    % (name, key_at, wire_type)), None
    return "%s is a damaged ONNX model: its top level is whole but something inside is broken" % name, None


def _truncated(name, size, needed, detail):
    if needed is None:
        where = "at byte %d" % size
    else:
        where = "at byte %d of %d" % (size, needed)
    return ("%s is truncated %s: an incomplete ONNX model (an interrupted download or copy?)"
            % (name, where)), detail


def _varint(buf, pos):
    """(value, position after it, whether the bytes ran out) for the varint at ``pos``."""
    result = shift = 0
    while pos < len(buf):
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos, False
        shift += 7
        if shift >= 70:
            return result, pos, False
    return result, pos, True


def name_the_file(error, name):
    """``error`` (a ModelError found after decoding, e.g. while reading external data) with the model's name
    in front, unless it already names it."""
    text = str(error)
    if not name or name == "the model bytes" or text.startswith(name):
        return error
    if "external data" in text and "does not exist" in text:
        return type(error)("%s: external data missing: %s" % (name, text))
    return type(error)("%s: %s" % (name, text))
