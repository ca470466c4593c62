"""Common subexpressions: a node that repeats an earlier one (same op, same inputs, same attributes) is
dropped, and its readers read the earlier node's outputs.

Exporters write such repeats often: torchvision's detection post-processing calls ``torch.where(mask)``
twice per class, which becomes two NonZero nodes (and two Transposes of them) on the same mask, 180 of
each in SSDlite320. onnxruntime merges them too (its CommonSubexpressionElimination, a basic-level pass).

Not merged: ops whose result is random, ops with subgraphs (If, Loop, Scan), and a repeat whose outputs
are graph outputs or are read inside a subgraph (it keeps its own names there).
"""
import numpy as np

from ..errors import ModelError
from ..graph import topological_order
from .cleanup import _read_in_subgraphs, drop

_RANDOM = {"RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Multinomial", "Bernoulli",
           "Dropout"}  # (Dropout: random when training; inference Dropout is removed before this pass)


def merge_common_subexpressions(graph):
    """Drop repeated nodes (see above). True when something changed."""
    try:
        order = topological_order(graph)
    except ModelError:
        return False  # a malformed graph: the plan reports it, as it would without this pass
    keep_names = {spec.name for spec in graph.outputs} | _read_in_subgraphs(graph)
    rename = {}
    seen = {}
    dropped = set()
    for node in order:
        if rename:
            node.inputs = [rename.get(x, x) for x in node.inputs]
        key = _key(node)
        if key is None:
            continue
        first = seen.get(key)
        if first is None:
            seen[key] = node
        elif not any(out in keep_names for out in node.outputs if out):
            for mine, theirs in zip(node.outputs, first.outputs):
                if mine:
                    rename[mine] = theirs
            dropped.add(id(node))
    return drop(graph, dropped)


def _key(node):
    """What makes two nodes compute the same values, or None for a node never merged."""
    if node.op_type in _RANDOM or not node.outputs or any(True for _ in node.subgraphs()):
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
