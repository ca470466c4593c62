"""The order a graph's nodes run in, and the values they read: the topological order (the file's own when it
is one), names read by a node, and the outer values a subgraph reads. (tinyrt/graph.py exports them too.)"""
import array
import heapq

import numpy as np

from .errors import ModelError


def topological_order(graph, outer_names=()):
    """The nodes in an order where each runs after everything it reads; ModelError names what is wrong."""
    order = _file_order(graph, outer_names)
    return order if order is not None else _sorted_order(graph, outer_names)


def in_file_order(graph, outer_names=()):
    """Whether the file's order of the nodes is one they can run in, nothing produced twice (see below)."""
    return _file_order(graph, outer_names) is not None


def _file_order(graph, outer_names):
    """The nodes in the file's own order when every node reads only what is produced before it and no value
    is produced twice (what exporters write); None when not (then ``_sorted_order`` sorts them and says what
    is wrong). It is the graph's own list, not a copy (a million nodes: 8 MB): not to be changed.

    No set of every name (a million-node chain's: 33 MB): one sweep from the end keeps the values read later
    and not produced yet (a chain's: one), and the values produced are told apart by sorting their hashes (8
    bytes each)."""
    given = set(graph.initializers)
    given.update(v.name for v in graph.inputs)
    given.update(outer_names)
    needed = {spec.name for spec in graph.outputs}  # read after the node at hand, produced before it
    hashes = array.array("q")
    produced = hashes.append
    for node in reversed(graph.nodes):
        for out in node.outputs:
            if out:
                if out in given:
                    return None  # shadowing a graph input, initializer or outer value: left to _sorted_order
                needed.discard(out)
                produced(hash(out))
        for name in node.inputs:
            if name:
                needed.add(name)
        if node.attrs:
            needed.update(free_values(node))
    if not needed <= given or not _distinct(hashes, graph.nodes):
        return None  # read before it is produced (or never produced), or produced twice
    return graph.nodes


def _distinct(hashes, nodes):
    """Whether the nodes produce no value twice, given the hashes of the values they produce."""
    if len(hashes) < 2:
        return True
    h = np.frombuffer(hashes, np.int64)
    h.sort()
    same = h[1:] == h[:-1]
    if not same.any():
        return True
    suspects = set(h[1:][same].tolist())  # (equal hashes: the same name, or rarely two names)
    seen = set()
    for node in nodes:
        for out in node.outputs:
            if out and hash(out) in suspects:
                if out in seen:
                    return False
                seen.add(out)
    return True


def _sorted_order(graph, outer_names):
    fed = set(graph.initializers) | {v.name for v in graph.inputs}
    available = fed | set(outer_names)
    producer = {}
    for node in graph.nodes:
        for out in node.outputs:
            if not out:
                continue
            if out in producer or out in fed:
                raise ModelError("value %r is produced twice (again by %s)" % (out, node.describe()))
            producer[out] = node
    index = {id(node): i for i, node in enumerate(graph.nodes)}
    waiting = [0] * len(graph.nodes)               # how many producers each node still waits for
    readers = [[] for _ in graph.nodes]            # the nodes waiting for each node
    for i, node in enumerate(graph.nodes):
        reads = set(x for x in node.inputs if x) | set(free_values(node))
        for name in reads:
            if name not in available and name not in producer:
                raise ModelError("%s reads %r, which no node, input or initializer produces" % (node.describe(), name))
        needs = {index[id(producer[x])] for x in reads if x in producer and x not in available}
        waiting[i] = len(needs)
        for j in needs:
            readers[j].append(i)
    # Kahn's algorithm, always taking the ready node that comes first in the file: a file already in
    # topological order runs in its own order, and any order costs O(n log n), not O(n^2).
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(graph.nodes[i])
        for j in readers[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, j)
    if len(order) < len(graph.nodes):
        names = ", ".join([n.describe() for i, n in enumerate(graph.nodes) if waiting[i] > 0][:5])
        raise ModelError("the graph has a cycle through %s" % names)
    for spec in graph.outputs:
        if spec.name not in available and spec.name not in producer:
            raise ModelError("graph output %r is produced by nothing" % spec.name)
    return order


def names_read(node):
    """Every name a node reads: its inputs ("" for an absent optional one) and the outer values its
    subgraphs read (a node without attributes has none: no list is made for it)."""
    return list(node.inputs) + free_values(node) if node.attrs else node.inputs


def free_values(node):
    """Names a node's subgraphs read from the enclosing scope."""
    names = []
    for g in node.subgraphs():
        names.extend(graph_free_values(g))
    return names


def graph_free_values(graph):
    """Names ``graph`` reads from an enclosing scope (a subgraph's outer values)."""
    defined = set(graph.initializers) | {v.name for v in graph.inputs}
    free = []
    for node in graph.nodes:
        for name in names_read(node):
            if name and name not in defined:
                free.append(name)
                defined.add(name)  # (listed once)
        defined.update(node.outputs)
    for spec in graph.outputs:
        if spec.name not in defined:
            free.append(spec.name)
            defined.add(spec.name)
    return free
