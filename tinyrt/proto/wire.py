"""The protobuf wire format, decoded by hand.

A message is a sequence of fields. Each field starts with a varint key = (field_number << 3) | wire_type:
  0 varint       - integers, 7 bits a byte, high bit set on every byte but the last
  1 fixed64      - 8 little-endian bytes (double, fixed64)
  2 length-delim - a varint length, then that many bytes (strings, bytes, sub-messages, packed repeats)
  5 fixed32      - 4 little-endian bytes (float, fixed32)
Every length is checked against the bytes that are left, so a broken file fails here, cleanly.
"""
import struct

from ..errors import ModelError

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


def read_varint(buf, pos, end):
    """Decode the varint at ``buf[pos]``; return (value, position after it)."""
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise ModelError("truncated varint at byte %d" % pos)
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ModelError("varint longer than 10 bytes at byte %d" % pos)


def iter_fields(buf, start, end):
    """Yield (field_number, wire_type, value) for each field of the message in ``buf[start:end]``.

    ``value`` is an int for VARINT, FIXED32 and FIXED64 fields (the raw bits for fixed ones), and a
    (start, end) pair of offsets into ``buf`` for LENGTH fields.
    """
    pos = start
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ModelError("field number 0 at byte %d" % pos)
        if wire_type == VARINT:
            value, pos = read_varint(buf, pos, end)
        elif wire_type == LENGTH:
            length, pos = read_varint(buf, pos, end)
            if length > end - pos:
                raise ModelError("field %d at byte %d says %d bytes, only %d are left"
                                 % (number, pos, length, end - pos))
            value = (pos, pos + length)
            pos += length
        elif wire_type == FIXED32:
            if end - pos < 4:
                raise ModelError("truncated 4-byte field %d at byte %d" % (number, pos))
            value = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        elif wire_type == FIXED64:
            if end - pos < 8:
                raise ModelError("truncated 8-byte field %d at byte %d" % (number, pos))
            value = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        else:
            raise ModelError("unsupported wire type %d (field %d) at byte %d" % (wire_type, number, pos))
        yield number, wire_type, value


def read_packed_varints(buf, start, end):
    values = []
    pos = start
    while pos < end:
        v, pos = read_varint(buf, pos, end)
        values.append(v)
    return values
