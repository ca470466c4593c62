"""Static shape inference, just enough for constant folding.

Starting from inputs with fixed dimensions and from the initializers, shapes flow through the ops whose
output shape depends only on their input shapes (and on constant inputs): each such op registers its rule
beside it (``ops.registry.static_shape``). Any other op, an unknown first input, or any
symbolic dimension stops the flow: those values simply stay unknown and their Shape nodes run normally.
"""
import numpy as np

from ..ops import registry


def infer(graph):
    """{value name: tuple of ints} for every value whose shape is known before running."""
    known = {name: tuple(a.shape) for name, a in graph.initializers.items()}
    for spec in graph.inputs:
        if spec.shape is not None and all(isinstance(d, int) for d in spec.shape):
            known[spec.name] = tuple(spec.shape)
    for node in graph.nodes:
        if node.domain != "" or not node.outputs:
            continue
        shapes = [known.get(x) if x else None for x in node.inputs]
        rule = registry.static_shape_rule(node.op_type, node.opset)
        if rule is None or not shapes or shapes[0] is None:
            continue
        try:
            out = rule(node, shapes, graph.initializers)
        except (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError):
            out = None  # a malformed node: leave it to fail, with a clear error, when it runs
        if out is not None and all(isinstance(d, (int, np.integer)) and d >= 0 for d in out):
            known[node.outputs[0]] = tuple(int(d) for d in out)
    return known
