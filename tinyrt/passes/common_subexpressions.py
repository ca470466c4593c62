"""Common subexpressions: a node that repeats an earlier one (same op, same inputs, same attributes) is
dropped, and its readers read the earlier node's outputs.

Exporters write such repeats often: torchvision's detection post-processing calls ``torch.where(mask)``
twice per class, which becomes two NonZero nodes (and two Transposes of them) on the same mask, 180 of
each in SSDlite320. onnxruntime merges them too (its CommonSubexpressionElimination, a basic-level pass).

Not merged: ops whose result is random, ops with subgraphs (If, Loop, Scan), and a repeat whose outputs
are graph outputs or are read inside a subgraph (it keeps its own names there).
"""
import numpy as np

from ..ops.registry import RANDOM_OPS
from .cleanup import _read_in_subgraphs, drop, reads_in_order

MAX_ROUNDS = 16  # a round merges one level of repeats: the NonZeros, then the Transposes reading them, ...


def merge_common_subexpressions(graph):
    """Drop repeated nodes (see above), in rounds. True when something changed."""
    keep_names = {spec.name for spec in graph.outputs} | _read_in_subgraphs(graph)
    changed = False
    for _ in range(MAX_ROUNDS):
        if not _merge_once(graph, keep_names):
            break
        changed = True
    return changed


def _merge_once(graph, keep_names):
    """One round: each node that repeats an earlier one (in file order) is dropped, its readers renamed.

    Only a node whose first input has another reader can repeat one, so only nodes whose first input is read
    more than once (or is a graph input, an initializer, ...: ``reads_in_order``'s ``again``) are keyed: the
    keys are this pass's memory, and a million-node chain (every value read once) makes one."""
    _, shared, _ = reads_in_order(graph)
    seen, rename, dropped = {}, {}, set()
    for node in graph.nodes:
        if not node.inputs or node.inputs[0] not in shared:
            continue
        key = _key(node)
        if key is None:
            continue
        first = seen.setdefault(key, node)
        if first is not node and not any(out in keep_names for out in node.outputs if out):
            for mine, theirs in zip(node.outputs, first.outputs):
                if mine:
                    rename[mine] = theirs
            dropped.add(id(node))
    del shared, seen
    if not dropped:
        return False
    for node in graph.nodes:
        if any(x in rename for x in node.inputs):
            node.inputs = [rename.get(x, x) for x in node.inputs]
    return drop(graph, dropped)


def _key(node):
    """What makes two nodes compute the same values, or None for a node never merged."""
    # (Dropout: random when training; inference Dropout is removed before this pass)
    if node.op_type in RANDOM_OPS or node.op_type == "Dropout" or not node.outputs \
            or any(True for _ in node.subgraphs()):
        return None
    attrs = []
    for name in sorted(node.attrs):
        value = _value_key(node.attrs[name])
        if value is None:
            return None
        attrs.append((name, value))
    return (node.domain, node.op_type, node.opset, tuple(node.inputs), tuple(attrs),
            tuple(bool(out) for out in node.outputs))


def _value_key(value):
    """An attribute value as a hashable key that tells apart what computes differently (-0.0 from 0.0,
    float32 from float64 tensors), or None for a kind not compared."""
    if isinstance(value, bool) or isinstance(value, (int, str, bytes)):
        return (type(value).__name__, value)
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, (list, tuple)):
        items = [_value_key(v) for v in value]
        return None if any(i is None for i in items) else ("list", tuple(items))
    return None
