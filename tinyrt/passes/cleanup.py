"""Removing what does nothing at inference: Identity, inference-mode Dropout, and nodes nobody reads."""
from ..order import free_values, in_file_order, names_read


def readers(graph):
    """name -> number of reads by nodes (subgraph reads of outer values included) and graph outputs."""
    reads = {}
    for node in graph.nodes:
        for name in names_read(node):
            if name:
                reads[name] = reads.get(name, 0) + 1
    for spec in graph.outputs:
        reads[spec.name] = reads.get(spec.name, 0) + 1
    return reads


def _is_passthrough(node):
    if node.domain != "":
        return False
    if node.op_type == "Identity":
        return True
    if node.op_type == "Dropout":
        # Dropout passes its input through at inference unless told to train, or asked for its mask.
        training = len(node.inputs) > 2 and node.inputs[2]
        wants_mask = len(node.outputs) > 1 and node.outputs[1]
        return not training and not wants_mask and not node.attrs.get("is_test", 1) == 0
    return False


def remove_identities(graph):
    """Route readers of an Identity's (or Dropout's) output to its input. True when something changed."""
    outputs = {spec.name for spec in graph.outputs}
    in_subgraphs = _read_in_subgraphs(graph)  # once: asking per Identity made 12,000 of them take 34 s
    rename = {}
    kept = []
    for node in graph.nodes:
        if _is_passthrough(node) and node.inputs and node.inputs[0] and node.outputs[0] not in outputs \
                and node.outputs[0] not in in_subgraphs:
            source = node.inputs[0]
            rename[node.outputs[0]] = rename.get(source, source)
        else:
            kept.append(node)
    return bypass(graph, kept, rename)


def bypass(graph, kept, rename):
    """The graph's nodes become ``kept``, their inputs routed through ``rename`` ({output of a node left out:
    the value it passed on}); True when any node was left out."""
    if not rename:
        return False
    for node in kept:
        renamed(node, rename)
    graph.nodes = kept
    return True


def drop(graph, dropped):
    """Remove the nodes whose ids are in ``dropped`` from ``graph``; True when there were any (a pass's
    answer to "did something change")."""
    if not dropped:
        return False
    graph.nodes = [node for node in graph.nodes if id(node) not in dropped]
    return True


def renamed(node, rename):
    """Route ``node``'s inputs through ``rename`` ({old name: new name}); untouched when none is renamed (a
    graph of a million nodes gets no million new tuples)."""
    if any(x in rename for x in node.inputs):
        node.inputs = tuple([rename.get(x, x) for x in node.inputs])


def _read_in_subgraphs(graph):
    """The outer values that some node's subgraphs read."""
    names = set()
    for node in graph.nodes:
        if node.attrs:
            names.update(free_values(node))
    return names


def remove_dead_nodes(graph):
    """Drop nodes none of whose outputs is read, and initializers nobody reads. True when something changed.

    The live nodes are found the cheapest way that applies: none is dead (one sweep in file order, the common
    case); a graph in file order (one sweep from the end); else a count of every value's reads, where removing
    a node takes one read off each of its inputs and a producer left unread is removed in turn (a worklist,
    not a pass per dead node: 12,000 dead nodes took 61 s)."""
    live, read = None, _names_read_if_no_node_is_dead(graph)
    if read is None:
        live, read = _live_nodes_from_the_end(graph) or _live_nodes_by_count(graph)
    changed = live is not None and len(live) < len(graph.nodes)
    if changed:
        graph.nodes = live
    unread = [name for name in graph.initializers if name not in read]
    for name in unread:
        del graph.initializers[name]
    return changed or bool(unread)


def _live_nodes_by_count(graph):
    """(the nodes someone reads, in order; the count of reads of every value read by them or by the graph's
    outputs): the worklist of ``remove_dead_nodes``, for any graph."""
    reads = readers(graph)
    work = []
    for i, node in enumerate(graph.nodes):
        for out in node.outputs:
            if out and out in reads:
                break
        else:
            work.append(i)
    producer = {}
    if work:  # (most graphs have no dead node: no map of producers then)
        for i, node in enumerate(graph.nodes):
            for out in node.outputs:
                if out:
                    producer[out] = i
    dead = set()
    while work:
        i = work.pop()
        if i in dead:
            continue
        dead.add(i)
        node = graph.nodes[i]
        for name in names_read(node):
            if not name:
                continue
            reads[name] -= 1
            if reads[name] == 0:
                del reads[name]
                j = producer.get(name)
                if j is not None and j not in dead and \
                        not any(out and out in reads for out in graph.nodes[j].outputs):
                    work.append(j)
    live = [n for i, n in enumerate(graph.nodes) if i not in dead] if dead else graph.nodes
    return live, reads


def _live_nodes_from_the_end(graph):
    """For a graph in file order (every node reads what is produced before it, nothing is produced twice):
    (its nodes that someone reads, in order; the names those read that no node produces, and the graph's
    outputs), in one sweep from the end keeping the values read later and not produced yet (a chain of dead
    nodes': none); None for a graph not in file order."""
    if not in_file_order(graph):
        return None
    needed = {spec.name for spec in graph.outputs}
    live = []
    for node in reversed(graph.nodes):
        outputs = node.outputs
        if any(out and out in needed for out in outputs):
            for out in outputs:
                needed.discard(out)  # (produced once: nothing before this node reads it from another)
            needed.update(name for name in names_read(node) if name)
            live.append(node)
    live.reverse()
    return live, needed


def reads_in_order(graph):
    """One sweep in file order, keeping the set of values produced and not read yet (``pending``): small for a
    graph in file order (a chain's holds one name at a time), where a count of every value's reads maps them
    all (a million-node chain: 30 MB). Returns (``pending`` at the end: the values nothing reads after they
    are produced, ``again``: the names a node read when they were not pending - graph inputs, initializers,
    outer values, a value read a second time or before it is produced -, whether some node writes no value)."""
    pending, again, writes_none = set(), set(), False
    for node in graph.nodes:
        for name in names_read(node):
            if name:
                if name in pending:
                    pending.remove(name)
                else:
                    again.add(name)
        produced = False
        for out in node.outputs:
            if out:
                pending.add(out)
                produced = True
        writes_none = writes_none or not produced
    return pending, again, writes_none


def _names_read_if_no_node_is_dead(graph):
    """The names read before they are produced (or again) and the graph's outputs, when every node has an
    output someone reads (so none is dead); None when some node may be dead."""
    pending, read, writes_none = reads_in_order(graph)
    read.update(spec.name for spec in graph.outputs)
    if writes_none or any(name not in read for name in pending):
        return None
    if graph.initializers and any(out in graph.initializers for node in graph.nodes for out in node.outputs):
        return None  # a node writing an initializer's name: left to the full count (and to the error it is)
    return read
