"""Fusing what follows a Conv into one ``FusedConv`` node (domain ai.tinyrt, see ``tinyrt/ops/fused.py``).

    Conv -> Add(., Z)                        FusedConv(Z)                  residual add (before activation)
    Conv -> an activation with a tail        FusedConv(activation=...)     the activation (ops/tails.py:
            record (Relu, Clip, ...)                                       which ops, and their params)
    Conv -> HardSigmoid(1/6, 1/2) -> Mul     FusedConv(activation=HardSwish)   torch's HardSwish below opset 14
            (Mul reads the Conv output too)

The fused node takes the place of the last node it replaces, so every input it reads (Z too) is ready
by then. A Conv output that anything else reads, or that is a graph output, is never fused away.
"""
from ..ops.registry import TINYRT_DOMAIN
from ..ops.tails import TAILS
from .fuse_batchnorm import conv_has_tail, input_at, is_conv, producers, readers


def _activation(node, consts):
    """(name, params) of an activation node FusedConv can apply, or None."""
    tail = TAILS.get(node.op_type) if node.domain == "" else None
    return tail.from_node(node, consts) if tail is not None else None


def _to_fused(conv, outputs, activation=None, params=None, z=None):
    """Rewrite ``conv`` in place as a FusedConv producing ``outputs``."""
    if conv.op_type == "Conv":
        conv.op_type, conv.domain, conv.opset = "FusedConv", TINYRT_DOMAIN, 1
    inputs = list(conv.inputs) + [""] * (4 - len(conv.inputs))
    if z is not None:
        inputs[3] = z
    conv.inputs = inputs
    if activation is not None:
        conv.attrs = dict(conv.attrs, activation=activation, activation_params=list(params))
    conv.outputs = list(outputs)


def _fusable_conv(name, reads, produced_by, graph_outputs, allow_z=True, times_read=1):
    conv = produced_by.get(name)
    if conv is None or not is_conv(conv) or conv.outputs[0] != name or name in graph_outputs:
        return None
    if reads.get(name, 0) != times_read or conv.attrs.get("activation", ""):
        return None
    if not allow_z and input_at(conv, 3):
        return None
    return conv


def fuse_activation(graph):
    """Fuse residual Adds, then activations, into the Conv in front of them. True when something changed."""
    if not any(is_conv(node) for node in graph.nodes):
        return False  # nothing to fuse into (and no maps of a big graph's values made for nothing)
    changed = False
    graph_outputs = {spec.name for spec in graph.outputs}
    consts = graph.initializers
    reads = readers(graph)
    produced_by = producers(graph)
    place = {}    # id(conv) -> id of the node whose place in the order it takes
    gone = set()  # ids of the nodes that go (the fused ones; a moved conv is put back at its place)

    def move(conv, target, *removed):
        place[id(conv)] = id(target)
        gone.update(id(n) for n in (conv, target) + removed)
    for node in graph.nodes:
        if id(node) in gone or not node.outputs or not node.outputs[0]:
            continue
        # residual add: Conv -> Add(conv_out, Z)
        if node.op_type == "Add" and node.domain == "" and len(node.inputs) == 2 and all(node.inputs) \
                and node.inputs[0] != node.inputs[1]:
            for i in (0, 1):
                x, z = node.inputs[i], node.inputs[1 - i]
                conv = _fusable_conv(x, reads, produced_by, graph_outputs, allow_z=False)
                if conv is not None and not conv_has_tail(conv) and z not in consts:
                    _to_fused(conv, node.outputs[:1], z=z)
                    produced_by[node.outputs[0]] = conv
                    move(conv, node)
                    changed = True
                    break
            continue
        act = _activation(node, consts)
        if act is None or not node.inputs:
            continue
        # torch's HardSwish below opset 14: HardSigmoid(x; 1/6, 1/2) -> Mul(x, h)
        if act[0] == "HardSigmoid" and abs(act[1][0] - 1.0 / 6) < 1e-6 and act[1][1] == 0.5:
            mul = _hardswish_mul(graph, node, reads)
            conv = mul and _fusable_conv(node.inputs[0], reads, produced_by, graph_outputs, times_read=2)
            if conv is not None and mul is not None:
                _to_fused(conv, mul.outputs[:1], "HardSwish", [])
                produced_by[mul.outputs[0]] = conv
                move(conv, mul, node)
                changed = True
                continue
        conv = _fusable_conv(node.inputs[0], reads, produced_by, graph_outputs)
        if conv is not None:
            _to_fused(conv, node.outputs[:1], act[0], act[1])
            produced_by[node.outputs[0]] = conv
            move(conv, node)
            changed = True
    if changed:
        convs = {id(n): n for n in graph.nodes}
        at = {target: convs[c] for c, target in place.items()}
        nodes = []
        for node in graph.nodes:
            if id(node) in at:
                nodes.append(at[id(node)])
            elif id(node) not in gone:
                nodes.append(node)
        graph.nodes = nodes
    return changed


def _hardswish_mul(graph, hsig, reads):
    """The Mul(x, HardSigmoid(x)) reading ``hsig``'s output, when that is its only reader."""
    h, x = hsig.outputs[0], hsig.inputs[0]
    if reads.get(h, 0) != 1:
        return None
    for node in graph.nodes:
        if node.op_type == "Mul" and node.domain == "" and len(node.inputs) == 2 and h in node.inputs \
                and x in node.inputs and node.inputs[0] != node.inputs[1]:
            return node
    return None
