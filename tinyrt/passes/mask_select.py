"""torch's ``data[mask]`` as one node: GatherND(data, Transpose(NonZero(mask))) -> GatherNonZero(data, mask).

torch's exporter writes boolean indexing as three nodes: NonZero makes the [rank, n] positions where mask
is true, Transpose turns them into n index tuples, and GatherND picks those elements of data. A detector's
post-processing does it twice per class (the scores above the threshold, then their boxes), so SSDlite320
runs 360 such nodes a run, each paying the executor's toll. GatherNonZero (ops/gather_scatter.py) computes
the same in one numpy call, ``data[mask]``. The NonZero and Transpose stay where something else reads
their results; otherwise the last dead-node sweep removes them.
"""
from ..graph import Node
from ..ops.registry import TINYRT_DOMAIN
from .fuse_batchnorm import producers


def fuse_mask_select(graph):
    """Replace each GatherND of Transpose(NonZero(mask)) by GatherNonZero. True when something changed."""
    if not any(node.op_type == "NonZero" and node.domain == "" for node in graph.nodes):
        return False
    made_by = producers(graph)
    changed = False
    for k, node in enumerate(graph.nodes):
        if node.op_type != "GatherND" or node.domain != "" or int(node.attrs.get("batch_dims", 0)) != 0 \
                or len(node.inputs) != 2:
            continue
        transpose = made_by.get(node.inputs[1])
        if transpose is None or transpose.op_type != "Transpose" or transpose.domain != "" or \
                list(transpose.attrs.get("perm", [1, 0])) != [1, 0]:
            continue  # (NonZero's result has rank 2: no perm reverses it, which is [1, 0])
        nonzero = made_by.get(transpose.inputs[0])
        if nonzero is None or nonzero.op_type != "NonZero" or nonzero.domain != "":
            continue
        graph.nodes[k] = Node("GatherNonZero", (node.inputs[0], nonzero.inputs[0]), node.outputs,
                              name=node.name, domain=TINYRT_DOMAIN, opset=1)
        changed = True
    return changed
