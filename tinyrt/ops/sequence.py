"""Sequences: ordered lists of tensors (torch's exporter writes them for `chunk`, `split` and `unbind`).

A sequence value is a ``Sequence``, a Python list of numpy arrays, so the executor can tell it from a tuple
of several outputs.

    SequenceConstruct(a, b, ...)  = [a, b, ...]            SequenceEmpty()          = []
    SequenceAt(S, i)              = S[i]                   SequenceLength(S)        = len(S)
    SequenceInsert(S, t, i=end)   = S[:i] + [t] + S[i:]    SequenceErase(S, i=last) = S without S[i]
    SplitToSequence(x, split)     = the pieces of Split(x, split) as a sequence
    ConcatFromSequence(S)         = Concat(S) (or Stack when new_axis=1)
    SequenceMap(S..., body)       = [body(S[0]...), body(S[1]...), ...]
"""
import numpy as np

from .. import limits
from ..errors import InputError
from .registry import op


class Sequence(list):
    """A sequence value: a list of arrays."""


def _position(S, index, op_type, insert=False):
    """``index`` (a 0-d int tensor, negative counts from the end) as a list position, range-checked."""
    i = int(np.asarray(index).reshape(()))
    n = len(S)
    last = n if insert else n - 1
    if not -n <= i <= last:
        raise InputError("%s: position %d is out of range for a sequence of %d tensors" % (op_type, i, n))
    return i + n if i < 0 else i


@op("SequenceConstruct", 11)
def sequence_construct(*inputs):
    return Sequence(inputs)


@op("SequenceEmpty", 11)
def sequence_empty(*, dtype=1):
    # dtype (default float) only types the empty sequence; a list of arrays needs no declaration.
    return Sequence()


@op("SequenceAt", 11)
def sequence_at(input_sequence, position):
    return input_sequence[_position(input_sequence, position, "SequenceAt")]


@op("SequenceLength", 11)
def sequence_length(input_sequence):
    return np.array(len(input_sequence), dtype=np.int64)


@op("SequenceInsert", 11)
def sequence_insert(input_sequence, tensor, position=None):
    out = Sequence(input_sequence)
    if position is None:
        out.append(tensor)
    else:
        out.insert(_position(input_sequence, position, "SequenceInsert", insert=True), tensor)
    return out


@op("SequenceErase", 11)
def sequence_erase(input_sequence, position=None):
    out = Sequence(input_sequence)
    if position is None:
        out.pop()
    else:
        del out[_position(input_sequence, position, "SequenceErase")]
    return out


PIECE_BYTES = 256  # what one tensor of a sequence costs beyond its data (a numpy view, its shape...)


# SplitToSequence-24 only added types.
@op("SplitToSequence", 11, 24)
def split_to_sequence(input, split=None, *, axis=0, keepdims=1):
    size = input.shape[axis]
    # each piece is a Python object of a few hundred bytes: a 16 MB tensor split into 4M pieces took 2.6 GB
    if split is None:
        count = size
    elif np.ndim(split) == 0:
        count = -(-size // max(int(np.asarray(split)), 1))
    else:
        count = np.size(split)
    limits.check_count(count, PIECE_BYTES, "SplitToSequence (%d pieces)" % count)
    limits.spend(count * PIECE_BYTES, "SplitToSequence")
    if split is None:
        pieces = np.split(input, size, axis=axis)  # one per index along axis
        if not keepdims:
            pieces = [np.squeeze(p, axis=axis) for p in pieces]
        return Sequence(pieces)
    split = np.asarray(split)
    if split.ndim == 0:  # equal chunks of `split`; the last one may be shorter
        step = int(split)
        if step <= 0:
            raise InputError("SplitToSequence: split must be positive, got %d" % step)
        bounds = list(range(step, size, step))
    else:
        sizes = [int(s) for s in split]
        if sum(sizes) != size or min(sizes, default=0) < 0:
            raise InputError("SplitToSequence: split %s does not add up to axis %d of size %d" % (sizes, axis, size))
        bounds = list(np.cumsum(sizes)[:-1])
    return Sequence(np.split(input, bounds, axis=axis))


@op("ConcatFromSequence", 11)
def concat_from_sequence(input_sequence, *, axis, new_axis=0):
    if not input_sequence:
        raise InputError("ConcatFromSequence: the sequence is empty")
    limits.check_count(sum(limits.nominal_count(np.shape(x)) for x in input_sequence),
                       np.asarray(input_sequence[0]).itemsize, "ConcatFromSequence")
    if new_axis:
        return np.stack(input_sequence, axis=axis)
    return np.concatenate(input_sequence, axis=axis)


@op("SequenceMap", 17)
def sequence_map(input_sequence, *additional_inputs, body, _num_outputs=1):
    # Each extra input is a sequence (mapped along with the first) or a tensor (passed whole each time).
    count = len(input_sequence)
    for extra in additional_inputs:
        if isinstance(extra, Sequence) and len(extra) != count:
            raise InputError("SequenceMap: sequences of %d and %d tensors" % (count, len(extra)))
    results = [Sequence() for _ in range(_num_outputs)]
    for i in range(count):
        args = [input_sequence[i]] + [x[i] if isinstance(x, Sequence) else x for x in additional_inputs]
        limits.spend(limits.ITERATION_COST, "SequenceMap (element %d)" % i)
        outputs = body(*args)
        for seq, value in zip(results, outputs):
            seq.append(value)
    return tuple(results)
