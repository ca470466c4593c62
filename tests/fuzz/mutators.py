"""Mutators for protobuf files: byte-level damage and structure-aware edits of the wire format.

A file is parsed (without any schema) into a tree of fields; a length-delimited field whose payload
parses cleanly as fields is kept as a sub-tree, so edits deep inside (a dim, an attribute int, a length)
can be made and the file written back with every enclosing length fixed up. Byte-level mutators work on
the raw bytes and leave lengths as they are (they model corruption, not malice).

Every mutator takes a ``random.Random`` and returns new bytes; ``mutate`` picks one or a few at random.
All of it is deterministic given the RNG, so a case is named by (seed name, case number).
"""
import random
import struct

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5

INTERESTING_INTS = [0, 1, 2, 3, 7, 8, 255, 256, 1000, 65535, 65536, (1 << 31) - 1, 1 << 31, (1 << 32) - 1,
                    1 << 32, 1 << 40, (1 << 62), (1 << 63) - 1, 1 << 63, (1 << 64) - 1, (1 << 64) - 2,
                    (1 << 64) - 1000, (1 << 64) - (1 << 31), 1 << 20, 1 << 24, 12345678901]
INTERESTING_FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-45, 1e-30, 1e30, 3.4e38, -3.4e38, float("inf"),
                      float("-inf"), float("nan"), 1e6, 65536.0, 2.0 ** 31, 1e300]


# --- the wire format, without a schema --------------------------------------------------------------------

def _varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_varint(buf, pos):
    result, shift = 0, 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("bad varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


class Field:
    """One field: number, wire type, and a value (int; bytes; or a list of Fields for a sub-message)."""
    __slots__ = ("number", "wire", "value", "children")

    def __init__(self, number, wire, value, children=None):
        self.number, self.wire, self.value, self.children = number, wire, value, children

    def copy(self):
        kids = None if self.children is None else [c.copy() for c in self.children]
        return Field(self.number, self.wire, self.value, kids)


def parse(buf, depth=0):
    """A list of Fields, or raise ValueError when ``buf`` is not a clean message."""
    fields, pos = [], 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0 or number > 1000:
            raise ValueError("implausible field number")
        if wire == VARINT:
            value, pos = _read_varint(buf, pos)
            fields.append(Field(number, wire, value))
        elif wire == FIXED64:
            if pos + 8 > len(buf):
                raise ValueError("short")
            fields.append(Field(number, wire, buf[pos:pos + 8]))
            pos += 8
        elif wire == FIXED32:
            if pos + 4 > len(buf):
                raise ValueError("short")
            fields.append(Field(number, wire, buf[pos:pos + 4]))
            pos += 4
        elif wire == LENGTH:
            n, pos = _read_varint(buf, pos)
            if pos + n > len(buf):
                raise ValueError("short")
            payload = bytes(buf[pos:pos + n])
            pos += n
            children = None
            if payload and depth < 40:
                try:
                    children = parse(payload, depth + 1)
                except ValueError:
                    children = None
            fields.append(Field(number, wire, payload, children))
        else:
            raise ValueError("bad wire type")
    return fields


def serialize(fields):
    out = bytearray()
    for f in fields:
        out += _varint((f.number << 3) | f.wire)
        if f.wire == VARINT:
            out += _varint(f.value)
        elif f.wire in (FIXED32, FIXED64):
            out += f.value
        else:
            payload = serialize(f.children) if f.children is not None else f.value
            out += _varint(len(payload)) + payload
    return bytes(out)


def walk(fields, parent=None):
    """Every (field, the list holding it), depth first."""
    for f in fields:
        yield f, fields
        if f.children is not None:
            for item in walk(f.children, f):
                yield item


def _pick(rng, fields, want=None):
    items = [(f, holder) for f, holder in walk(fields) if want is None or want(f)]
    return rng.choice(items) if items else (None, None)


# --- structure-aware mutators (lengths fixed up when written back) ------------------------------------------

def set_varint(rng, fields):
    """A varint (dim, attribute int, type code, opset, ...) set to an interesting value."""
    f, _ = _pick(rng, fields, lambda f: f.wire == VARINT)
    if f is None:
        return False
    f.value = rng.choice(INTERESTING_INTS) if rng.random() < 0.7 else \
        (f.value + rng.choice([-2, -1, 1, 2, 10])) % (1 << 64)
    return True


def set_packed(rng, fields):
    """A packed or raw payload (ints, raw_data, dims) gets interesting 8/4-byte values or varints written in."""
    f, _ = _pick(rng, fields, lambda f: f.wire == LENGTH and f.children is None and f.value)
    if f is None:
        return False
    data = bytearray(f.value)
    choice = rng.random()
    if choice < 0.4 and len(data) >= 8:  # an int64 inside raw_data (shape tensors, k, trip counts)
        at = rng.randrange(0, len(data) - 7) // 8 * 8
        v = rng.choice(INTERESTING_INTS) if rng.random() < 0.8 else -rng.choice(INTERESTING_INTS)
        struct.pack_into("<Q", data, at, v % (1 << 64))
    elif choice < 0.7 and len(data) >= 4:  # a float32 (scales, thresholds, weights)
        at = rng.randrange(0, len(data) - 3) // 4 * 4
        struct.pack_into("<f", data, at, rng.choice(INTERESTING_FLOATS[:-1]))
    else:  # packed varints: rewrite the whole payload as interesting varints
        count = max(1, min(8, len(data)))
        data = bytearray(b"".join(_varint(rng.choice(INTERESTING_INTS)) for _ in range(count)))
    f.value = bytes(data)
    return True


def wrong_wire_type(rng, fields):
    f, _ = _pick(rng, fields)
    if f is None:
        return False
    new = rng.choice([w for w in (VARINT, FIXED64, LENGTH, FIXED32) if w != f.wire])
    f.wire = new
    f.children = None
    f.value = {VARINT: rng.choice(INTERESTING_INTS), FIXED64: bytes(8), FIXED32: b"\xff\xff\x7f\x7f",
               LENGTH: rng.choice([b"", b"\x08\x01", bytes(rng.getrandbits(8) for _ in range(5))])}[new]
    return True


def duplicate_field(rng, fields):
    f, holder = _pick(rng, fields)
    if f is None:
        return False
    times = rng.choice([1, 1, 2, 10, 100])
    at = holder.index(f)
    for _ in range(times):
        holder.insert(at, f.copy())
    return True


def delete_field(rng, fields):
    f, holder = _pick(rng, fields)
    if f is None:
        return False
    holder.remove(f)
    return True


def move_field(rng, fields):
    """A field taken from one message and put into another (a node in an attribute, a dim in a tensor...)."""
    f, holder = _pick(rng, fields)
    target, _ = _pick(rng, fields, lambda g: g.children is not None)
    if f is None or target is None:
        return False
    target.children.insert(rng.randrange(len(target.children) + 1), f.copy())
    return True


def renumber_field(rng, fields):
    f, _ = _pick(rng, fields)
    if f is None:
        return False
    f.number = rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 20, 21, 25, 536870911])
    return True


def deep_nesting(rng, fields):
    """A message nested hundreds or thousands of levels deep, put where a message belongs."""
    f, _ = _pick(rng, fields, lambda g: g.children is not None)
    if f is None:
        return False
    depth = rng.choice([50, 120, 500, 3000])
    numbers = [f.number] if rng.random() < 0.5 else [rng.choice([1, 5, 6, 7, 10, 11, 13])
                                                     for _ in range(rng.randint(1, 3))]
    payload = serialize(f.children)
    for i in range(depth):
        payload = _varint((numbers[i % len(numbers)] << 3) | LENGTH) + _varint(len(payload)) + payload
    f.children = None
    f.value = payload
    return True


def splice_from(rng, fields, others):
    """A field from another seed put into this one (ops, attributes, tensors of another model)."""
    if not others:
        return False
    donor = rng.choice(others)
    f, _ = _pick(rng, donor)
    target, _ = _pick(rng, fields, lambda g: g.children is not None)
    if f is None or target is None:
        return False
    target.children.insert(rng.randrange(len(target.children) + 1), f.copy())
    return True


STRUCTURED = [set_varint, set_varint, set_varint, set_packed, set_packed, wrong_wire_type, duplicate_field,
              delete_field, delete_field, move_field, renumber_field, deep_nesting]


# --- byte-level mutators (lengths left as they are) -----------------------------------------------------------

def bit_flips(rng, data):
    data = bytearray(data)
    for _ in range(rng.choice([1, 1, 2, 4, 16])):
        if data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


def truncate(rng, data):
    return data[:rng.randrange(len(data) + 1)]


def huge_length(rng, data):
    """Rewrite one length prefix (found by parsing) to a huge or off-by-some value, without fixing others."""
    spots = []
    _length_spots(data, 0, len(data), spots, 0)
    if not spots:
        return bit_flips(rng, data)
    at, end, old = rng.choice(spots)
    new = rng.choice([old + 1, old + 7, max(0, old - 1), 1 << 31, (1 << 32) + old, 1 << 62, (1 << 64) - 1,
                      len(data) * 2])
    return data[:at] + _varint(new) + data[end:]


def _length_spots(buf, start, stop, spots, depth):
    pos = start
    try:
        while pos < stop:
            key, pos = _read_varint(buf, pos)
            wire = key & 7
            if wire == VARINT:
                _, pos = _read_varint(buf, pos)
            elif wire == FIXED64:
                pos += 8
            elif wire == FIXED32:
                pos += 4
            elif wire == LENGTH:
                at = pos
                n, pos = _read_varint(buf, pos)
                spots.append((at, pos, n))
                if depth < 30 and pos + n <= stop:
                    _length_spots(buf, pos, pos + n, spots, depth + 1)
                pos += n
            else:
                return
    except (ValueError, IndexError):
        return


def duplicate_span(rng, data):
    if not data:
        return data
    a = rng.randrange(len(data))
    b = min(len(data), a + rng.randint(1, 64))
    at = rng.randrange(len(data) + 1)
    return data[:at] + data[a:b] * rng.choice([1, 2, 8]) + data[at:]


def delete_span(rng, data):
    if not data:
        return data
    a = rng.randrange(len(data))
    b = min(len(data), a + rng.randint(1, 64))
    return data[:a] + data[b:]


def random_bytes(rng, data):
    """Random bytes over a span, or a whole random file."""
    if rng.random() < 0.2 or not data:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))
    a = rng.randrange(len(data))
    n = rng.randint(1, 32)
    return data[:a] + bytes(rng.getrandbits(8) for _ in range(n)) + data[a + n:]


def insert_interesting(rng, data):
    """An interesting varint or float dropped in at a random place."""
    at = rng.randrange(len(data) + 1)
    blob = _varint(rng.choice(INTERESTING_INTS)) if rng.random() < 0.5 else \
        struct.pack("<f", rng.choice(INTERESTING_FLOATS[:-1]))
    return data[:at] + blob + data[at:]


BYTE_LEVEL = [bit_flips, truncate, huge_length, duplicate_span, delete_span, random_bytes, insert_interesting]


# --- the entry point ----------------------------------------------------------------------------------------

class Mutator:
    """Mutates the seeds it is given; ``case(i)`` is the i-th mutant, the same on every machine."""

    def __init__(self, seeds, base_seed=0):
        self.names = sorted(seeds)
        self.seeds = [seeds[n] for n in self.names]
        self.trees = [parse(s) for s in self.seeds]
        self.base_seed = base_seed

    def case(self, i):
        """(seed name, mutated bytes) of case number ``i``."""
        rng = random.Random("%d:%d" % (self.base_seed, i))
        k = i % len(self.seeds)
        return self.names[k], mutate(rng, self.seeds[k], self.trees[k], self.trees)


def mutate(rng, data, tree=None, others=()):
    """One to four mutations of ``data``: structure-aware most of the time, byte-level otherwise."""
    if tree is None:
        try:
            tree = parse(data)
        except ValueError:
            tree = None
    rounds = rng.choice([1, 1, 1, 2, 2, 3, 4])
    for _ in range(rounds):
        if tree is not None and rng.random() < 0.7:
            fields = [f.copy() for f in tree]
            if rng.random() < 0.1:
                splice_from(rng, fields, [t for t in others if t is not tree])
            else:
                rng.choice(STRUCTURED)(rng, fields)
            data = serialize(fields)
        else:
            data = rng.choice(BYTE_LEVEL)(rng, data)
        try:
            tree = parse(data)
        except ValueError:
            tree = None
    return data
