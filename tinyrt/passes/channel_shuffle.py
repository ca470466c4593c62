"""ShuffleNet's channel shuffle as one node: Reshape(Transpose(Reshape(Concat(...)))) -> ConcatShuffle.

torch's exporter writes ``channel_shuffle`` (view as groups, swap the group axes, flatten) after each
unit's Concat: four nodes, two of them copies, and the convs after it copy the result to channels-last
memory again. ConcatShuffle (ops/concat_split.py) computes the same in one node that copies each input
once, to its shuffled places, in the memory layout the convs read. The nodes stay where something else
reads their results; otherwise the last dead-node sweep removes them.
"""
from ..graph import Node
from ..ops.registry import TINYRT_DOMAIN
from .cleanup import readers
from .fuse_batchnorm import producers


def _made_by(op_type, name, made_by, reads):
    """The standard ``op_type`` node that makes ``name``, when nothing else reads ``name``; else None."""
    node = made_by.get(name)
    if node is None or node.op_type != op_type or node.domain != "" or reads.get(name) != 1:
        return None
    return node


def fuse_channel_shuffle(graph):
    """Replace each Reshape of Transpose of Reshape of Concat by ConcatShuffle. True when something changed."""
    if not any(node.op_type == "Transpose" and node.domain == "" for node in graph.nodes):
        return False
    made_by, reads = producers(graph), readers(graph)
    changed = False
    for k, node in enumerate(graph.nodes):
        if node.op_type != "Reshape" or node.domain != "" or len(node.inputs) != 2:
            continue
        transpose = _made_by("Transpose", node.inputs[0], made_by, reads)
        if transpose is None or "perm" not in transpose.attrs:
            continue
        grouped = _made_by("Reshape", transpose.inputs[0], made_by, reads)
        if grouped is None or len(grouped.inputs) != 2:  # (Reshape-1 had its shape as an attribute)
            continue
        concat = _made_by("Concat", grouped.inputs[0], made_by, reads)
        if concat is None or "axis" not in concat.attrs or not concat.inputs:
            continue
        attrs = {"axis": int(concat.attrs["axis"]), "perm": [int(p) for p in transpose.attrs["perm"]],
                 "allowzero": int(grouped.attrs.get("allowzero", 0)),
                 "allowzero_after": int(node.attrs.get("allowzero", 0))}
        graph.nodes[k] = Node("ConcatShuffle", concat.inputs + (grouped.inputs[1], node.inputs[1]), node.outputs,
                              attrs, name=node.name, domain=TINYRT_DOMAIN, opset=1)
        changed = True
    return changed
