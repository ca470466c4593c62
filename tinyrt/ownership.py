"""Outputs the caller owns: an output that is a constant, an initializer, a fed input, or a view of one of
them is copied before ``run`` returns it, so writing into it never changes a later run."""
import numpy as np


def _memory_owner(a):
    """The object that owns an array's memory: the end of its ``.base`` chain."""
    while True:
        base = getattr(a, "base", None)
        if base is None:
            return a
        a = base


class Ownership:
    """Decides, per output and run, whether an output must be copied before the caller gets it.

    Copied: an output whose memory belongs to something that outlives the run (a constant: initializers,
    tensor attributes, folded values, in every subgraph), to a fed array (an input passed through, or a
    Reshape of it), or to an output already returned by this run. Everything else was computed by this
    run and nobody else holds it: it is returned as it is (no copy), made C-contiguous if it is not.
    """

    def __init__(self, graph, plan):
        self.constant_owners = {}  # id -> owner (kept alive, so the ids stay theirs)
        for a in _arrays_of_graph(graph):
            self._keep(a)
        for a in getattr(plan, "constants", {}).values():
            self._keep(a)
        for step in getattr(plan, "steps", ()):
            for value in getattr(step, "attrs", {}).values():
                for a in _arrays_in(value):
                    self._keep(a)

    def keep_graph(self, graph):
        self.keep_arrays(_arrays_of_graph(graph))

    def keep_arrays(self, arrays):
        for a in arrays:
            self._keep(a)

    def _keep(self, a):
        owner = _memory_owner(a)
        self.constant_owners[id(owner)] = owner

    def outputs(self, results, names, input_feed):
        fed = set()
        for value in input_feed.values():
            for a in _arrays_in(value):
                fed.add(id(_memory_owner(a)))
        returned = set()
        return [self._own(results[name], fed, returned) for name in names]

    def _own(self, value, fed, returned):
        if isinstance(value, np.ndarray):
            owner = id(_memory_owner(value))
            if owner in self.constant_owners or owner in fed or owner in returned:
                return np.array(value, order="C")      # a fresh copy
            returned.add(owner)
            return value if value.flags.c_contiguous else np.ascontiguousarray(value)
        if isinstance(value, list):                    # a sequence: a plain list of arrays the caller owns
            return [self._own(v, fed, returned) for v in value]
        return value


def _arrays_in(value):
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, np.ndarray)]
    return []


def _arrays_of_graph(graph):
    for a in graph.initializers.values():
        yield a
    for node in graph.nodes:
        for value in node.attrs.values():
            for a in _arrays_in(value):
                yield a
        for g in node.subgraphs():
            for a in _arrays_of_graph(g):
                yield a
