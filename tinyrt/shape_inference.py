"""Element types and shapes of graph outputs the file leaves undeclared, for ``get_outputs()``.

onnxruntime runs ONNX's shape inference at load, so its NodeArg for an output the file gives no shape (or
no type) still says e.g. ``tensor(float)`` and ``['N', 3]``. tinyrt does not need shapes to run, so this
is only for what the session reports: dimensions flow from the inputs' declarations and the initializers
through the ops that register an output types rule beside them (``ops.registry.infers``; rules shared by
many ops are in ops/_infer_types.py), as ints, symbolic names ('N') or None (unknown); an op without one
leaves its outputs unknown (None, as before). Nothing here changes how the model runs.
"""
import numpy as np

from .ops import registry
from .ops._infer_types import code


def infer(graph):
    """{value name: (element type code or None, shape list or None)} for the values of ``graph``."""
    known = {}
    constants = dict(graph.initializers)
    for name, a in graph.initializers.items():
        known[name] = (code(a.dtype), list(a.shape))
    for spec in graph.inputs:
        if spec.kind == "tensor":
            known[spec.name] = (spec.elem_type or None, None if spec.shape is None else list(spec.shape))
    for node in graph.nodes:
        if node.domain not in ("", "ai.onnx"):
            continue
        ins = [known.get(x, (None, None)) if x else (None, None) for x in node.inputs]
        rule = registry.types_rule(node.op_type, node.opset)
        try:
            outs = rule(node, ins, [constants.get(x) for x in node.inputs]) if rule else None
        except (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError, OverflowError):
            outs = None  # a malformed node: leave it unknown, running it will say what is wrong
        for name, value in zip(node.outputs, outs or ()):
            if name and value is not None:
                known[name] = value
        if node.op_type == "Constant" and node.outputs and isinstance(node.attrs.get("value"), np.ndarray):
            constants[node.outputs[0]] = node.attrs["value"]
    return known
