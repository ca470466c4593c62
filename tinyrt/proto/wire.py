"""The protobuf wire format, decoded by hand.

A message is a sequence of fields. Each field starts with a varint key = (field_number << 3) | wire_type:
  0 varint       - integers, 7 bits a byte, high bit set on every byte but the last
  1 fixed64      - 8 little-endian bytes (double, fixed64)
  2 length-delim - a varint length, then that many bytes (strings, bytes, sub-messages, packed repeats)
  5 fixed32      - 4 little-endian bytes (float, fixed32)
Every length is checked against the bytes that are left, so a broken file fails here, cleanly.
"""
import struct

import numpy as np

from ..errors import ModelError

_MASK64 = (1 << 64) - 1

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
            return result & _MASK64, pos  # a 10th byte may carry bits past 64: protobuf drops them
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
        key = buf[pos]
        if key < 0x80:  # almost every key is one byte: no call (a million-node file has ~4 million keys)
            pos += 1
        else:
            key, pos = read_varint(buf, pos, end)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ModelError("field number 0 at byte %d" % pos)
        if wire_type == VARINT:
            value, pos = read_varint(buf, pos, end)
        elif wire_type == LENGTH:
            length = buf[pos] if pos < end else 0x80
            if length < 0x80:
                pos += 1
            else:
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


_CHUNK = 1 << 20  # bytes decoded at once: numpy's temporaries stay a few MB whatever the field's size


def read_packed_varints(buf, start, end):
    """The varints packed in ``buf[start:end]``, as a numpy uint64 array (values taken mod 2**64).

    Decoded with numpy, not a Python loop: a packed field may hold millions of values.
    """
    if end - start <= _CHUNK:
        return _packed_chunk(buf, start, end)
    parts = []
    pos = start
    while pos < end:
        stop = min(pos + _CHUNK, end)
        if stop < end:  # cut after the last complete varint of this window
            window = np.frombuffer(buf, dtype=np.uint8, count=stop - pos, offset=pos)
            last = np.flatnonzero(window < 0x80)
            if not last.size:
                raise ModelError("varint longer than 10 bytes in the packed field at byte %d" % pos)
            stop = pos + int(last[-1]) + 1
        parts.append(_packed_chunk(buf, pos, stop))
        pos = stop
    return np.concatenate(parts)


def _packed_chunk(buf, start, end):
    n = end - start
    if n == 0:
        return np.zeros(0, np.uint64)
    b = np.frombuffer(buf, dtype=np.uint8, count=n, offset=start)
    last = b < 0x80  # the last byte of each varint has its high bit clear
    if not last[-1]:
        raise ModelError("truncated varint at byte %d" % end)
    ends = np.flatnonzero(last)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts + 1
    if lengths.max() > 10:
        raise ModelError("varint longer than 10 bytes in the packed field at byte %d" % start)
    position = np.arange(n) - np.repeat(starts, lengths)  # of each byte within its varint
    parts = (b & 0x7F).astype(np.uint64) << (7 * position).astype(np.uint64)
    return np.add.reduceat(parts, starts)  # disjoint bit fields: the sum is their OR (mod 2**64)
