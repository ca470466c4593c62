"""Removing what does nothing at inference: Identity, inference-mode Dropout, and nodes nobody reads."""
from ..plan import free_values


def readers(graph):
    """name -> number of reads by nodes (subgraph reads of outer values included) and graph outputs."""
    reads = {}
    for node in graph.nodes:
        for name in list(node.inputs) + free_values(node):
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
    rename = {}
    kept = []
    for node in graph.nodes:
        if _is_passthrough(node) and node.inputs and node.inputs[0] and node.outputs[0] not in outputs \
                and not _read_in_subgraphs(graph, node.outputs[0]):
            source = node.inputs[0]
            rename[node.outputs[0]] = rename.get(source, source)
        else:
            kept.append(node)
    if not rename:
        return False
    for node in kept:
        node.inputs = [rename.get(x, x) for x in node.inputs]
    graph.nodes = kept
    return True


def _read_in_subgraphs(graph, name):
    return any(name in free_values(node) for node in graph.nodes)


def remove_dead_nodes(graph):
    """Drop nodes none of whose outputs is read. True when something changed."""
    changed = False
    while True:
        reads = readers(graph)
        alive = [n for n in graph.nodes if any(out and out in reads for out in n.outputs)]
        if len(alive) == len(graph.nodes):
            break
        graph.nodes = alive
        changed = True
    used = set(reads)
    for name in list(graph.initializers):
        if name not in used:
            del graph.initializers[name]
            changed = True
    return changed
