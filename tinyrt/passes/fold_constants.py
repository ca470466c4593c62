"""Constant folding: a node whose inputs are all known at load is computed once, at load.

torch's exporters leave chains like Shape -> Gather -> Unsqueeze -> Concat -> Reshape; with static input
shapes the whole chain becomes one constant (see ``shapes.py`` for how Shape learns its input's shape).
"""
import numpy as np

from .. import limits
from ..ops import registry
from ..graph import topological_order
from ..steps import Step, call
from . import shapes

_NEVER_FOLD = {"RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Multinomial",
               "Bernoulli"}
# A folded result may not be much larger than what it came from: folding must not blow up memory.
_MAX_GROWTH_ELEMENTS = 1 << 16


def fold_constants(graph):
    """Fold every foldable node, in order. True when something changed."""
    constants = graph.initializers
    # Folding starts from a node that reads only constants, or a Shape: without one, nothing folds (a graph of
    # a million Relus needs no order found, and no shapes)
    if not any(n.op_type == "Shape" or all(not x or x in constants for x in n.inputs) for n in graph.nodes):
        return False
    known_shapes = shapes.infer(graph) if any(n.op_type == "Shape" for n in graph.nodes) else {}
    kept = []
    changed = False
    work = [limits.WORK_FLOOR]  # what all the folds of one load may spend together (see tinyrt/limits.py)
    weights = {n.inputs[1] for n in graph.nodes if n.op_type in ("Gemm", "MatMul") and n.domain == ""
               and len(n.inputs) > 1}
    for node in topological_order(graph):
        value = _fold(node, constants, known_shapes, work)
        if value is None:
            kept.append(node)
            continue
        for name, array in zip(node.outputs, value):
            if name:
                constants[name] = array
        if node.op_type == "DequantizeLinear" and node.domain == "" and node.outputs[0] in weights:
            _keep_integers(graph, node, value[0])
        changed = True
    graph.nodes = kept
    return changed


def _fold(node, constants, known_shapes, work):
    """The outputs of ``node`` computed now, or None when they cannot (or should not) be."""
    if node.op_type in _NEVER_FOLD or (node.attrs and any(True for _ in node.subgraphs())):
        return None
    if node.op_type == "Shape" and node.domain == "" and node.inputs[0] not in constants:
        shape = known_shapes.get(node.inputs[0])
        if shape is None:
            return None
        args = [_zeros_like_shape(shape)]
    elif all(not x or x in constants for x in node.inputs):
        args = [constants[x] if x else None for x in node.inputs]
    else:
        return None
    impl = registry.resolve(node.op_type, node.domain, node.opset)
    if impl is None:
        return None
    # The size budget is set *before* computing: ops check it before they allocate (see tinyrt/limits.py),
    # so a node that would blow up (ConstantOfShape of a huge shape, say) is left to run time, where the
    # session's limits refuse it, instead of allocating here.
    budget = max(_MAX_GROWTH_ELEMENTS, sum(a.size for a in args if isinstance(a, np.ndarray)))
    outer = limits.current().tensor_bytes
    nbytes = budget * 8 if outer is None else min(outer, budget * 8)
    step = Step(node, impl, {})
    try:
        with limits.scope(nbytes, max(work[0], 0)) as spent:
            try:
                results = call(step, args, step.attrs)
            finally:
                work[0] = spent.work
    except limits.LimitError:
        return None
    if not all(isinstance(r, np.ndarray) for r in results):
        return None  # sequences stay values computed at run time: initializers are tensors
    if any(r.size > budget for r in results):
        return None
    return results


def _keep_integers(graph, node, value):
    """Note in ``graph.dequantized`` the 8-bit integers, scale, zero point and axis a folded DequantizeLinear
    made ``value`` from (whoever reads them checks that ``value`` is still the constant of that name)."""
    args = [graph.initializers.get(x) if x else None for x in node.inputs] + [None]
    q, scale, zp = args[:3]
    if q is None or q.dtype not in (np.int8, np.uint8) or node.attrs.get("block_size", 0) or scale is None:
        return
    graph.dequantized[node.outputs[0]] = (value, q, scale, zp, node.attrs.get("axis", 1))


def _zeros_like_shape(shape):
    """A stand-in with the right shape for Shape to read, costing no memory."""
    return np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), shape=tuple(shape), strides=(0,) * len(shape))
