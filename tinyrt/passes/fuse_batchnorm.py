"""Folding BatchNormalization and per-channel Mul/Add/Sub/Div into the Conv in front of them.

A Conv is linear in its weights, so a per-output-channel affine map after it folds into W and B:

    BN(Conv(X, W, B)) = s * (Conv(X, W, B) - mean) + bias,   s = scale / sqrt(var + epsilon)
                      = Conv(X, W * s[m], (B - mean) * s + bias)
    Conv(X, W, B) * c = Conv(X, W * c[m], B * c[m])        Conv(X, W, B) / c  likewise with 1 / c
    Conv(X, W, B) + c = Conv(X, W, B + c[m])               Conv(X, W, B) - c  likewise with -c

where c is a constant that is the same over the spatial axes (a scalar or shaped like (1, M, 1, 1)).
The fold applies only when the Conv's output feeds nothing else and W (and B) are constants; a
BatchNormalization anywhere else stays and runs as itself. New weights get new names, so a weight shared
with another node is never changed under it. The arithmetic is done in float64 and rounded once.
"""
import numpy as np

from ..ops.registry import TINYRT_DOMAIN
from . import cleanup



# --- helpers shared with fuse_activation ------------------------------------------------------------------

readers = cleanup.readers  # name -> number of reads (nodes, subgraphs' outer reads, graph outputs)


def producers(graph):
    return {out: node for node in graph.nodes for out in node.outputs if out}


def is_conv(node):
    return (node.op_type == "Conv" and node.domain == "") or \
        (node.op_type == "FusedConv" and node.domain == TINYRT_DOMAIN)


def conv_has_tail(node):
    """True when a FusedConv already adds a residual or applies an activation (nothing linear can follow)."""
    if node.op_type != "FusedConv":
        return False
    has_z = len(node.inputs) > 3 and bool(node.inputs[3])
    return has_z or bool(node.attrs.get("activation", ""))


def input_at(node, i):
    return node.inputs[i] if len(node.inputs) > i else ""


class _Names:
    """``all_names(graph)``, made when first asked (a graph with nothing to fold never needs it)."""

    def __init__(self, graph):
        self.graph = graph
        self.names = None

    def __contains__(self, name):
        if self.names is None:
            self.names = all_names(self.graph)
        return name in self.names

    def add(self, name):
        if self.names is None:
            self.names = all_names(self.graph)
        self.names.add(name)


def fresh_name(graph, base, taken):
    """A value name not yet used in ``graph`` (``taken`` holds every name in use; it is updated)."""
    i = 0
    name = base
    while name in taken:
        i += 1
        name = "%s_%d" % (base, i)
    taken.add(name)
    return name


def all_names(graph):
    names = set(graph.initializers) | {v.name for v in graph.inputs} | {v.name for v in graph.outputs}
    for node in graph.nodes:
        names.update(x for x in node.inputs if x)
        names.update(x for x in node.outputs if x)
    return names


def sole_reader_conv(graph, name, reads, produced_by, constants):
    """The Conv (or tail-less FusedConv) producing ``name`` when it can absorb what follows, else None.

    Conditions: ``name`` is read once (by the node being folded) and is not a graph output, W is a
    constant float tensor, B is absent or constant.
    """
    conv = produced_by.get(name)
    if conv is None or not is_conv(conv) or conv_has_tail(conv) or conv.outputs[0] != name:
        return None
    if reads.get(name, 0) != 1:
        return None
    w_name, b_name = input_at(conv, 1), input_at(conv, 2)
    if w_name not in constants or constants[w_name].dtype.kind != "f" or constants[w_name].ndim < 3:
        return None
    if b_name and b_name not in constants:
        return None
    return conv


def set_weights(graph, conv, w, b, taken):
    """Give ``conv`` the new weights ``w`` and bias ``b`` under fresh names."""
    old_w = conv.inputs[1]
    dtype = graph.initializers[old_w].dtype
    w_name = fresh_name(graph, old_w + "_folded", taken)
    b_name = fresh_name(graph, (input_at(conv, 2) or old_w + "_bias") + "_folded", taken)
    graph.initializers[w_name] = np.ascontiguousarray(w.astype(dtype))
    graph.initializers[b_name] = np.ascontiguousarray(b.astype(dtype))
    inputs = list(conv.inputs) + [""] * (3 - len(conv.inputs))
    inputs[1], inputs[2] = w_name, b_name
    conv.inputs = inputs


def conv_weights64(graph, conv):
    w = graph.initializers[conv.inputs[1]].astype(np.float64)
    b_name = input_at(conv, 2)
    b = graph.initializers[b_name].astype(np.float64) if b_name else np.zeros(w.shape[0])
    return w, b


def absorb(graph, conv, node, produced_by):
    """``conv`` now produces what ``node`` produced; ``node`` goes."""
    conv.outputs = [node.outputs[0]] + list(conv.outputs[1:])
    produced_by[node.outputs[0]] = conv


# --- BatchNormalization ------------------------------------------------------------------------------------

def _bn_params(graph, node):
    """(scale, bias, mean, var, eps) in float64 when this BN is an inference-mode, per-channel one."""
    if node.op_type != "BatchNormalization" or node.domain != "" or len(node.inputs) < 5:
        return None
    if node.attrs.get("training_mode", 0) != 0 or node.attrs.get("spatial", 1) != 1:
        return None
    if node.attrs.get("is_test", 1) == 0 and (node.opset or 0) < 7:
        return None
    if any(node.outputs[1:]):  # running statistics asked for: training graph
        return None
    consts = graph.initializers
    if not all(x in consts for x in node.inputs[1:5]):
        return None
    scale, bias, mean, var = [consts[x].astype(np.float64).reshape(-1) for x in node.inputs[1:5]]
    return scale, bias, mean, var, float(node.attrs.get("epsilon", 1e-5))


def _per_channel(c, m, rank):
    """The constant ``c`` as an (m,) vector when ``x op c`` with x of rank ``rank`` (N, M, spatial...) is a
    per-channel operation that keeps x's shape; else None."""
    shape = c.shape
    if len(shape) > rank:
        return None
    aligned = (1,) * (rank - len(shape)) + tuple(shape)
    if any(d != 1 for d in aligned[2:]) or aligned[0] != 1 or aligned[1] not in (1, m):
        return None
    v = c.astype(np.float64).reshape(-1)
    return np.full(m, v[0]) if v.size == 1 else v


def fold_batchnorm(graph):
    """Fold every BatchNormalization and constant per-channel Mul/Add/Sub/Div that follows a Conv."""
    if not any(is_conv(node) for node in graph.nodes):
        return False  # nothing to fold into (and no maps of a big graph's values made for nothing)
    changed = False
    reads = readers(graph)
    produced_by = producers(graph)
    taken = _Names(graph)
    consts = graph.initializers
    kept = []
    for node in graph.nodes:
        if node.domain != "" or node.op_type not in ("BatchNormalization", "Mul", "Add", "Sub", "Div") \
                or not node.inputs or not node.outputs[0]:
            kept.append(node)
            continue
        folded = False
        if node.op_type == "BatchNormalization":
            params = _bn_params(graph, node)
            conv = params and sole_reader_conv(graph, node.inputs[0], reads, produced_by, consts)
            if conv is not None and params is not None and params[0].size == consts[conv.inputs[1]].shape[0]:
                scale, bias, mean, var, eps = params
                w, b = conv_weights64(graph, conv)
                s = scale / np.sqrt(var + eps)
                set_weights(graph, conv, w * s.reshape((-1,) + (1,) * (w.ndim - 1)), (b - mean) * s + bias, taken)
                folded = True
        elif len(node.inputs) == 2:
            x_name, c_name = node.inputs
            if node.op_type in ("Mul", "Add") and x_name in consts and c_name not in consts:
                x_name, c_name = c_name, x_name  # commutative: the constant may come first
            conv = sole_reader_conv(graph, x_name, reads, produced_by, consts) if c_name in consts else None
            if conv is not None:
                w, b = conv_weights64(graph, conv)
                c = consts[c_name]
                v = _per_channel(c, w.shape[0], w.ndim) if c.dtype == consts[conv.inputs[1]].dtype else None
                if v is not None and not (node.op_type == "Div" and np.any(v == 0)):
                    wshape = (-1,) + (1,) * (w.ndim - 1)
                    if node.op_type == "Mul":
                        w, b = w * v.reshape(wshape), b * v
                    elif node.op_type == "Div":
                        w, b = w / v.reshape(wshape), b / v
                    elif node.op_type == "Add":
                        b = b + v
                    else:
                        b = b - v
                    set_weights(graph, conv, w, b, taken)
                    folded = True
        if folded:
            absorb(graph, conv, node, produced_by)
            changed = True
        else:
            kept.append(node)
    graph.nodes = kept
    return changed
