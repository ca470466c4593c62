"""Limits: how big one tensor may get, and how much work one run may do, before tinyrt refuses.

A model file is full of numbers that size things: dims, shape tensors, pads, repeats, scales, sizes,
trip counts, k. A 1 KB file must not make tinyrt allocate a gigabyte (boards have 1 GB) or loop for
ever because one of those numbers says so. So:

* every op that allocates from such a number calls ``check_shape`` / ``check_count`` *before* it
  allocates, and the executor checks every result it gets (``Plan.run``);
* every run has a work budget: each step spends the bytes it reads and writes (plus a fixed cost),
  matrix products and convolutions spend their multiply-adds, each Loop/Scan iteration a fixed cost;
  a run that overspends stops with ``LimitError``.

The limit on one tensor, in bytes, while a session loads and runs (``tensor_limit``):

    SessionOptions.max_tensor_bytes when set (0 or a negative number: no limit at all)
    else  min(1 GiB, max(16 MiB, 64 x (bytes of the model + bytes fed to this run)))

so a 1 KB model fed a 600 KB image may make tensors of up to 38 MB, and a 14 MB MobileNet up to 896 MB.
The work budget of one run (``work_budget``), in bytes touched (a multiply-add counts 1/16 byte), is the
largest of 1 GiB, 64 x (bytes of the model + bytes fed) and 4 x the tensor limit: about a second of numpy
work for a tiny model, many times what a real CNN needs for a real model. ``LimitError`` is a ``ModelError``: raise ``max_tensor_bytes`` if a model you
trust needs more. docs/limits.md lists every limit.

The limits of the calling thread live in a thread-local ``Budget`` (``scope``), so sessions used from
several threads at once each keep their own. Outside any scope (ops called directly) the absolute
``DEFAULT_MAX_TENSOR_BYTES`` applies and work is not counted.
"""
import threading

import numpy as np

from .errors import ModelError

DEFAULT_MAX_TENSOR_BYTES = 1 << 30   # absolute cap of the automatic limit: 1 GiB
FLOOR_BYTES = 16 << 20               # the automatic limit is never below 16 MiB
MODEL_FACTOR = 64                    # ... nor below 64 x (model bytes + bytes fed)
WORK_FLOOR = 1 << 30                 # work budget of one run: at least 1 GiB (bytes touched)...
WORK_FACTOR = 64                     # ... or 64 x (model bytes + bytes fed), or 4 x the tensor limit
STEP_COST = 1 << 14                  # what running one node costs at least (~10 us of Python)
ITERATION_COST = 1 << 16             # one Loop/Scan/SequenceMap iteration or NMS class (~50-100 us)
LOOP_COST = 1 << 12                  # one Python-level iteration inside an op (a kernel tap, a class)
MAC_COST = 1.0 / 16                  # what one multiply-add costs, in bytes touched
MAX_RANK = 32                        # numpy 1.19 arrays have at most 32 axes
MAX_DIM = 1 << 32                    # a dimension above this, in a file, is absurd: refused at load


class LimitError(ModelError):
    """The model asks for a tensor bigger, or for more work, than the session's limits allow."""


class Budget:
    """The limits of one load or one run: ``tensor_bytes`` (None: none), ``work`` left (None: not counted)."""

    def __init__(self, tensor_bytes, work=None):
        self.tensor_bytes = tensor_bytes
        self.work = work


_local = threading.local()
_DEFAULT = Budget(DEFAULT_MAX_TENSOR_BYTES)


def current():
    return getattr(_local, "budget", None) or _DEFAULT


class scope:
    """``with scope(tensor_bytes, work):`` - the limits of the calling thread inside the block."""

    def __init__(self, tensor_bytes, work=None):
        self.budget = Budget(tensor_bytes, work)
        self.previous = None

    def __enter__(self):
        self.previous = getattr(_local, "budget", None)
        _local.budget = self.budget
        return self.budget

    def __exit__(self, *exc):
        _local.budget = self.previous
        return False


def tensor_limit(option, model_bytes, feed_bytes=0):
    """The byte limit on one tensor: ``option`` (SessionOptions.max_tensor_bytes) when set, else automatic."""
    if option is not None:
        number = isinstance(option, (int, float, np.integer, np.floating)) and not isinstance(option, bool)
        if not number or (isinstance(option, (float, np.floating)) and not np.isfinite(option)):
            from .errors import InputError
            raise InputError("SessionOptions.max_tensor_bytes=%r: give a number of bytes (0: no limit), or None "
                             "for the automatic limit" % (option,))
        option = int(option)
        return option if option > 0 else None
    return min(DEFAULT_MAX_TENSOR_BYTES, max(FLOOR_BYTES, MODEL_FACTOR * (int(model_bytes) + int(feed_bytes))))


def work_budget(tensor_bytes, model_bytes=0, feed_bytes=0):
    """The work one run may do: max(1 GiB, 64 x (model + feeds), 4 x the tensor limit); None without limit.

    About a second of numpy work for a small model; a real CNN uses a few percent of its budget.
    """
    if tensor_bytes is None:
        return None
    return max(WORK_FLOOR, WORK_FACTOR * (int(model_bytes) + int(feed_bytes)), 4 * tensor_bytes)


def nbytes(value):
    """What a value costs: the bytes of an array, or of a sequence (a list) of them plus 64 a tensor.

    An empty array costs as if its zero dims were 1: a [10**9, 0] tensor holds nothing, but an op that
    walks its first axis (splits it, loops over it) would still make 10**9 of something.
    """
    if isinstance(value, np.ndarray):
        if value.size == 0:
            return nominal_count(value.shape) * value.itemsize
        return value.nbytes
    if isinstance(value, (list, tuple)):
        return sum(nbytes(v) + 64 for v in value)
    return 0


def product(values):
    """The exact product of ints as a Python int (np.prod wraps around, and dtype=object fails on numpy 1.19)."""
    result = 1
    for v in values:
        result *= int(v)
    return result


def nominal_count(shape):
    """Elements of ``shape`` with every 0 counted as 1 (Python ints: no overflow)."""
    count = 1
    for d in shape:
        if d > 1:  # (not max(int(d), 1): this runs for every empty result of a detector's post-processing)
            count *= int(d)
    return count


def _size(n):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return ("%d %s" % (n, unit)) if unit == "bytes" else ("%.1f %s" % (n, unit))
        n /= 1024.0
    return "%d" % n


def check_count(count, itemsize, what):
    """Refuse, before allocating, a tensor of ``count`` elements of ``itemsize`` bytes over the limit."""
    limit = current().tensor_bytes
    nbytes = int(count) * int(itemsize)
    if limit is not None and nbytes > limit:
        raise LimitError("%s would make a tensor of %s, more than this session's limit of %s per tensor "
                         "(SessionOptions.max_tensor_bytes; see docs/limits.md)" % (what, _size(nbytes), _size(limit)))


def check_shape(shape, dtype, what):
    """Refuse, before allocating, a tensor of ``shape`` and ``dtype`` over the limit (or of negative dims)."""
    for d in shape:  # (a loop, not any() over a generator: every op that allocates calls this)
        if int(d) < 0:
            raise ModelError("%s: negative dimension in shape %s" % (what, list(shape)))
    count = nominal_count(shape)  # an empty tensor of huge dims is refused too (see ``nbytes``)
    if len(shape) > MAX_RANK:
        raise ModelError("%s: a tensor of rank %d; tinyrt (numpy) allows at most %d axes"
                         % (what, len(shape), MAX_RANK))
    check_count(count, np.dtype(dtype).itemsize, what)


MAX_SHAPE_ENTRIES = 1024  # a shape, axes, pads, starts... input never needs more (ranks stop at 32)


def shape_list(a, what):
    """A shape-like tensor (shape, axes, pads, repeats, starts...) as a list of Python ints.

    Refused beyond MAX_SHAPE_ENTRIES entries: no rank is that high, and converting a 16 MB tensor into
    Python ints one by one would take seconds.
    """
    a = np.asarray(a)
    if a.size > MAX_SHAPE_ENTRIES:
        from .errors import InputError
        raise InputError("%s: a shape-like input of %d entries (ranks stop at %d)" % (what, a.size, MAX_RANK))
    if a.dtype.kind in "iu":  # (the usual int64 shape: tolist gives the same Python ints, ten times faster)
        return a.reshape(-1).tolist()
    return [int(v) for v in a.reshape(-1)]


def broadcast_shape(*shapes):
    """The shape numpy broadcasting makes of ``shapes``, computed without allocating (ValueError when
    they do not broadcast). numpy 1.19 has no np.broadcast_shapes."""
    rank = max(len(s) for s in shapes)
    out = []
    for axis in range(rank):
        sizes = {int(s[axis - rank + len(s)]) for s in shapes if axis - rank + len(s) >= 0} - {1}
        if len(sizes) > 1:
            raise ValueError("shapes %s do not broadcast" % (list(shapes),))
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def check_broadcast(what, *arrays):
    """Refuse, before computing, an elementwise result that broadcasting would make too big.

    Two inputs of 4096 elements each, shaped [4096, 1] and [1, 4096], broadcast to 16M elements.
    Shapes that do not broadcast are left to the op, which reports them.
    """
    limit = current().tensor_bytes
    if limit is None:
        return
    itemsize = max(np.asarray(a).itemsize for a in arrays)
    bound = itemsize  # the result has at most the product of the inputs' (nominal) counts: most calls stop here
    for a in arrays:
        size = np.size(a)
        bound *= size if size else nominal_count(np.shape(a))
    if bound <= limit:
        return
    shapes = [np.shape(a) for a in arrays]
    if all(s == shapes[0] for s in shapes[1:]):
        return
    rank = max(len(s) for s in shapes)
    out = [max(s[axis - rank + len(s)] if axis - rank + len(s) >= 0 else 1 for s in shapes) for axis in range(rank)]
    check_count(nominal_count(out), itemsize, what)


def spend(units, what):
    """Spend ``units`` (bytes touched) of this run's work budget; LimitError once it is spent.

    ``what`` names the spender: a string, or a graph node (described only if the error is raised: the
    executor spends once per node, and formatting a name each time would cost more than the check).
    """
    budget = current()
    if budget.work is None:
        return
    budget.work -= units
    if budget.work < 0:
        if hasattr(what, "describe"):
            what = what.describe()
        raise LimitError("%s: this run has done more work than this session allows (a loop that runs too "
                         "long, or sizes taken from the file?); see SessionOptions.max_tensor_bytes and "
                         "docs/limits.md" % what)


def spend_macs(macs, what):
    spend(int(macs * MAC_COST), what)
