"""The checks of a compiled program (program.py) on what its steps return: a result that is not an array
made one (``_one``), and a step whose sizes depend on data checked against the tensor limit and charged to
the run's work budget as ``steps._account`` does (``_checked_one``, ``_checked``), or, for a step whose inputs
and outputs were arrays on the first run, by a ``checker`` made for it: the bytes of its inputs whose sizes
follow from the signature summed once, only the others looked at as it runs."""
import numpy as np

from . import limits
from .ownership import _memory_owner
from .steps import _account, normalize


def _one(step, result):
    """A single-output step's result that is not an ndarray (a scalar, a list, a sequence), normalised."""
    if isinstance(result, np.generic):  # (the usual one: a ufunc of 0-d arrays gives a numpy scalar)
        return np.asarray(result)
    return normalize(step, result)[0]


def _many(step, result):
    return normalize(step, result)


def _checked(step, result, args):
    """A step whose sizes depend on data: normalised, checked and charged as ``steps.call`` does."""
    if result.__class__ is tuple and len(result) == len(step.node.outputs) and \
            all(r.__class__ is np.ndarray for r in result):
        results = list(result)  # what normalize makes of it (a TopK's values and indices), without its tests
    else:
        results = normalize(step, result)
    _account(step, args, results)
    return results


def _checked_one(step, result, args):
    """``_checked`` for a step with one output, its result returned: the usual case (an array) without
    normalising it into a list (a detector's post-processing runs a thousand of these a run)."""
    if result.__class__ is not np.ndarray:
        return _checked(step, result, args)[0]
    _account(step, args, (result,))
    return result


def checker(step, sizes, one):
    """``check(result, args)``: ``_checked_one`` (``one``) or ``_checked`` for ``step``, whose inputs' bytes
    are ``sizes`` (one per input: the same on every run, or None: read as it runs), as ``steps._account``
    counts them; empty arrays at their nominal bytes (``limits.nbytes``)."""
    fixed = limits.STEP_COST + sum(n for n in sizes if n is not None)
    varying = tuple(j for j, n in enumerate(sizes) if n is None)
    outputs = len(step.node.outputs)
    current = limits.current

    def spend(budget, written, args):
        """Spend ``written`` and what ``args`` read; LimitError, naming the node, past the budget."""
        for j in varying:
            a = args[j]
            if a.__class__ is np.ndarray:
                written += a.nbytes or _nominal_bytes(a)
            else:  # (None, a sequence)
                written += limits.nbytes(a)
        budget.work -= written + fixed
        if budget.work < 0:
            limits.spend(0, step.node)  # (raises)

    def check_one(result, args):  # (the usual case written out: hundreds of calls a run)
        if result.__class__ is not np.ndarray:
            return _checked(step, result, args)[0]
        n = result.nbytes or _nominal_bytes(result)
        budget = current()
        limit = budget.tensor_bytes
        if limit is not None and n > limit:
            limits.check_count(n, 1, step.node.describe())  # (raises)
        if budget.work is not None:
            if varying:
                spend(budget, n, args)
            else:
                budget.work -= n + fixed
                if budget.work < 0:
                    limits.spend(0, step.node)  # (raises)
        return result

    def check(result, args):
        if result.__class__ is not tuple or len(result) != outputs or \
                not all(r.__class__ is np.ndarray for r in result):
            return _checked(step, result, args)
        budget = current()
        limit = budget.tensor_bytes
        written = 0
        for r in result:
            n = r.nbytes or _nominal_bytes(r)
            if limit is not None and n > limit:
                limits.check_count(n, 1, step.node.describe())  # (raises)
            written += n
        if budget.work is not None:
            spend(budget, written, args)
        return result

    return check_one if one else check


def _nominal_bytes(a):
    """``limits.nbytes`` of an array whose ``nbytes`` is 0 (an empty one: its dims counted as at least 1):
    a detector's classes with no box above the threshold make hundreds a run."""
    n = a.itemsize
    for d in a.shape:
        if d > 1:
            n *= d
    return n


def _fresh_outputs(kept):
    """``fresh(outputs)``: the outputs, each one whose memory is a value the program folded (``kept``: id ->
    owner) copied. A folded value is the same array on every run: an output that is a view of it (an
    Unsqueeze of a Shape, a subgraph's Constant) handed on as it is could be written by the caller, and
    every later run would read what was written (the session's Ownership knows the graph's constants,
    not what a program folds)."""
    def fresh(outputs):
        return tuple(_fresh_copy(v, kept) for v in outputs)
    return fresh


def _fresh_copy(value, kept):
    if value.__class__ is np.ndarray:
        return np.array(value) if id(_memory_owner(value)) in kept else value
    if isinstance(value, list) and any(v.__class__ is np.ndarray and id(_memory_owner(v)) in kept for v in value):
        return type(value)(_fresh_copy(v, kept) for v in value)  # a sequence holding one (its own kind kept)
    return value
