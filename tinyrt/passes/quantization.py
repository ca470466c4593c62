"""Quantized (QDQ) models run as float models with their rounding kept.

onnxruntime's quantizer writes QDQ models as float ops between DequantizeLinear and QuantizeLinear nodes:

    weights (int8) -> DequantizeLinear -> Conv -> QuantizeLinear -> DequantizeLinear -> Conv -> ...

Constant folding (fold_constants.py) already turns each DequantizeLinear of a constant weight into float
weights, once, at load: the convs are then ordinary float convs (the numba kernels or BLAS run them).
What is left between two ops is an activation's QuantizeLinear followed by DequantizeLinear with the
same scale and zero point. This pass replaces each such pair (the Q and every DQ reading it) by one
``QuantizeDequantize`` node (domain ai.tinyrt, in ops/quantize.py) that computes, in float32,

    y = clip(round_half_even(x / scale), qmin - zp, qmax - zp) * scale

which is exactly DequantizeLinear(QuantizeLinear(x)) (the integers are exact in float32) in one new array
and four in-place sweeps, instead of an integer tensor, an int64 one and two float ones. Only per-tensor
pairs whose integer output nobody else reads are replaced.

A second pass (``fuse_rounding_into_conv``, after the activations are fused) moves a QuantizeDequantize
that rounds a conv's output into the conv itself, as FusedConv's activation ``QuantizeDequantize`` with
params [scale, low, high] (its tail record is in ops/quantize.py): the rounding is then done in place while the conv's result is
still in cache (numba path: block by block inside the conv kernel). onnxruntime's quantizer removes the
Relu / ReLU6 before a QuantizeLinear whose range already clips there; a Relu or Clip the conv still has is
folded into low / high: rounding is monotonic, so clip-then-round is round-then-clip at the rounded bounds.
A third (``fuse_add_into_rounding``) folds an Add whose only reader is a QuantizeDequantize into it (a QDQ
model's residual Add, which cannot join the conv before it: both addends are rounded first), as the
QuantizeDequantize's third input: one node and one new array instead of two.
A fourth (``drop_repeated_rounding``) removes a QuantizeDequantize of values that a rounding with the
same scale made already, through ops that only move or pick values (Flatten, Reshape, MaxPool...): the
quantizer writes a pair after each of those, and rounding k * scale again is the identity.
A fifth (``round_in_steps``) lets a conv's rounding whose values only convs read hand on the whole steps
k instead of k * scale (scale 1, 1/scale in its weights, scale in its readers' weights): the numpy path's
rounding is then clip and rint, with no multiply (a float rounding away from x / scale, like the numpy
path's Tail.fold; the tests hold each activation to one step of onnxruntime's).
And ``fuse_input_rounding`` gives the rounding of the model's input to the one conv that reads it
(FusedConv's ``input_rounding``): the numba path's stem kernel rounds the input rows as it reads them.
"""
import numpy as np

from ..graph import Node
from ..ops.registry import TINYRT_DOMAIN
from .cleanup import _read_in_subgraphs, bypass, drop, readers, renamed
from .fuse_batchnorm import all_names, fresh_name, is_conv, producers



def _scalar(graph, name):
    """The value of a constant single-element input, or None."""
    value = graph.initializers.get(name) if name else None
    if value is None or value.size != 1:
        return None
    return value.reshape(())


def _per_tensor(graph, node):
    """(scale, zero point) of a Q/DQ node with constant per-tensor parameters, else None."""
    if node.domain != "" or len(node.inputs) < 2 or node.attrs.get("block_size", 0):
        return None
    scale = _scalar(graph, node.inputs[1])
    zp = _scalar(graph, node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    if scale is None or scale.dtype != np.float32 or (len(node.inputs) > 2 and node.inputs[2] and zp is None):
        return None
    if zp is None:
        if node.attrs.get("output_dtype", 0) not in (0, 2):
            return None
        zp = np.uint8(0)
    if zp.dtype.kind not in "iu" or zp.dtype.itemsize > 2:
        return None
    return scale, zp


def _facts(graph):
    """What these passes ask of a graph: (how many node inputs read each value, the values its subgraphs
    read, each value's producer, its outputs' names)."""
    return readers(graph), _read_in_subgraphs(graph), producers(graph), {spec.name for spec in graph.outputs}


def _users(graph):
    """name -> [(node, input index)] of the nodes that read it as an input (subgraph reads not included:
    ``readers`` counts those too, so a pass that wants one reader asks both)."""
    users = {}
    for node in graph.nodes:
        for i, name in enumerate(node.inputs):
            if name:
                users.setdefault(name, []).append((node, i))
    return users


def fuse_quantize_dequantize(graph):
    """Replace QuantizeLinear -> DequantizeLinear pairs by QuantizeDequantize. True when something changed."""
    if not _has(graph, "QuantizeLinear", ""):
        return False
    reads, in_subgraphs, _, outputs = _facts(graph)
    dequants = {}   # Q output name -> the DequantizeLinear nodes reading it
    for node in graph.nodes:
        if node.op_type == "DequantizeLinear" and node.domain == "" and node.inputs and node.inputs[0]:
            dequants.setdefault(node.inputs[0], []).append(node)
    replaced = {}   # id(Q node) -> its replacement;  DQ nodes to drop
    dropped = set()
    rename = {}
    for node in graph.nodes:
        if node.op_type != "QuantizeLinear" or node.domain != "" or not node.outputs[0]:
            continue
        q = node.outputs[0]
        readers_of_q = dequants.get(q, [])
        params = _per_tensor(graph, node)
        if params is None or not readers_of_q or q in outputs or reads.get(q, 0) != len(readers_of_q):
            continue
        scale, zp = params
        if any(_per_tensor(graph, dq) is None or not _same(_per_tensor(graph, dq), params) for dq in readers_of_q):
            continue
        # the first DQ's output names the result; the other DQs' readers are routed to it
        kept_name = next((dq.outputs[0] for dq in readers_of_q if dq.outputs[0] in outputs), readers_of_q[0].outputs[0])
        if sum(dq.outputs[0] in outputs for dq in readers_of_q) > 1 or \
                any(dq.outputs[0] in in_subgraphs for dq in readers_of_q if dq.outputs[0] != kept_name):
            continue
        info = np.iinfo(zp.dtype)
        replaced[id(node)] = Node("QuantizeDequantize", [node.inputs[0], node.inputs[1]], [kept_name],
                                  {"low": float(info.min - int(zp)), "high": float(info.max - int(zp))},
                                  name=node.name, domain=TINYRT_DOMAIN, opset=1)
        for dq in readers_of_q:
            dropped.add(id(dq))
            if dq.outputs[0] != kept_name:
                rename[dq.outputs[0]] = kept_name
    if not replaced:
        return False
    nodes = []
    for node in graph.nodes:
        if id(node) in dropped:
            continue
        node = replaced.get(id(node), node)
        renamed(node, rename)
        nodes.append(node)
    graph.nodes = nodes
    return True


def _has(graph, op_type, domain):
    """Whether some node of ``graph`` is an ``op_type``: a pass with nothing to do maps nothing."""
    return any(node.op_type == op_type and node.domain == domain for node in graph.nodes)


def _same(a, b):
    return a[0] == b[0] and a[1].dtype == b[1].dtype and int(a[1]) == int(b[1])


def _rounded(bound, scale):
    """round_half_even(bound / scale) in float32, as QuantizeDequantize computes it (inf stays inf)."""
    with np.errstate(over="ignore"):
        return float(np.rint(np.float32(bound) / np.float32(scale)))


def fuse_rounding_into_conv(graph):
    """Conv / FusedConv (no activation, or one that is a clip: Relu, Clip) -> QuantizeDequantize becomes one
    FusedConv with the activation QuantizeDequantize. True when something changed."""
    from ..ops.tails import TAILS
    if not _has(graph, "QuantizeDequantize", TINYRT_DOMAIN):
        return False
    reads, _, produced_by, outputs = _facts(graph)
    dropped = set()
    for node in graph.nodes:
        if node.op_type != "QuantizeDequantize" or node.domain != TINYRT_DOMAIN or not node.inputs[0]:
            continue
        conv = produced_by.get(node.inputs[0])
        scale = _scalar(graph, node.inputs[1])
        if conv is None or not is_conv(conv) or conv.outputs[0] != node.inputs[0] or node.inputs[0] in outputs \
                or reads.get(node.inputs[0], 0) != 1 or scale is None or scale.dtype != np.float32 \
                or not np.isfinite(scale) or scale <= 0:
            continue
        tail = TAILS.get(conv.attrs.get("activation", ""))
        if tail is None or tail.clip is None:
            continue
        lo, hi = tail.clip(*(conv.attrs.get("activation_params") or []))
        low, high = max(node.attrs["low"], _rounded(lo, scale)), min(node.attrs["high"], _rounded(hi, scale))
        if conv.op_type == "Conv":
            conv.op_type, conv.domain, conv.opset = "FusedConv", TINYRT_DOMAIN, 1
        conv.attrs = dict(conv.attrs, activation="QuantizeDequantize",
                          activation_params=[float(scale), float(low), float(high)])
        conv.outputs = list(node.outputs)
        dropped.add(id(node))
    return drop(graph, dropped)


def fuse_input_rounding(graph):
    """A QuantizeDequantize (no addend) of a graph input that one conv alone reads, as its X, becomes that
    conv's ``input_rounding`` [scale, low, high] (FusedConv, ops/fused.py): a QDQ model's rounding of its
    picture, which the numba path's stem kernel then does on the rows it reads, as it reads them, instead
    of a sweep that writes a rounded copy of the whole input first. True when something changed."""
    if not _has(graph, "QuantizeDequantize", TINYRT_DOMAIN):
        return False
    reads, in_subgraphs, produced_by, outputs = _facts(graph)
    inputs = {spec.name for spec in graph.inputs}
    users = _users(graph)
    dropped = set()
    for node in graph.nodes:
        if node.op_type != "QuantizeDequantize" or node.domain != TINYRT_DOMAIN or len(node.inputs) != 2:
            continue
        x, y = node.inputs[0], node.outputs[0]
        scale = _scalar(graph, node.inputs[1])
        us = users.get(y, [])
        if x not in inputs or x in produced_by or y in outputs or y in in_subgraphs or len(us) != 1 \
                or reads.get(y, 0) != 1 or scale is None or scale.dtype != np.float32 or not np.isfinite(scale) \
                or scale <= 0:
            continue
        conv, i = us[0]
        if i != 0 or not is_conv(conv) or conv.attrs.get("input_rounding") is not None:
            continue
        if conv.op_type == "Conv":
            conv.op_type, conv.domain, conv.opset = "FusedConv", TINYRT_DOMAIN, 1
        conv.attrs = dict(conv.attrs, input_rounding=[float(scale), float(node.attrs["low"]),
                                                      float(node.attrs["high"])])
        conv.inputs = [x] + list(conv.inputs[1:])
        dropped.add(id(node))
    return drop(graph, dropped)


def fuse_add_into_rounding(graph):
    """Add(a, b) -> QuantizeDequantize becomes QuantizeDequantize(a, scale, b). True when something changed."""
    if not _has(graph, "QuantizeDequantize", TINYRT_DOMAIN):
        return False
    reads, in_subgraphs, produced_by, outputs = _facts(graph)
    dropped = set()
    for node in graph.nodes:
        if node.op_type != "QuantizeDequantize" or node.domain != TINYRT_DOMAIN or len(node.inputs) != 2:
            continue
        add = produced_by.get(node.inputs[0])
        name = node.inputs[0]
        if add is None or add.op_type != "Add" or add.domain != "" or len(add.inputs) != 2 or not all(add.inputs) \
                or name in outputs or name in in_subgraphs or reads.get(name, 0) != 1 or add.outputs[0] != name:
            continue
        node.inputs = [add.inputs[0], node.inputs[1], add.inputs[1]]
        dropped.add(id(add))
    return drop(graph, dropped)


# ops whose output holds some of their data input's values, unchanged (MaxPool: its first output)
_SAME_VALUES = ("Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Identity", "MaxPool")


def _rounded_by(graph, produced_by, name):
    """(scale, low, high) of the rounding that made the values of ``name``, through ops that only move or
    pick values (_SAME_VALUES); None when they are not all such roundings' values."""
    for _ in range(32):
        node = produced_by.get(name)
        if node is None:
            return None
        if node.domain == TINYRT_DOMAIN and node.op_type == "QuantizeDequantize":
            scale = _scalar(graph, node.inputs[1])
            if scale is None or scale.dtype != np.float32:
                return None
            return float(scale), node.attrs["low"], node.attrs["high"]
        if node.domain == TINYRT_DOMAIN and node.op_type == "FusedConv" \
                and node.attrs.get("activation") == "QuantizeDequantize":
            return tuple(node.attrs["activation_params"])
        if node.domain != "" or node.op_type not in _SAME_VALUES or node.outputs[0] != name or not node.inputs[0]:
            return None
        name = node.inputs[0]
    return None


def drop_repeated_rounding(graph):
    """Remove a QuantizeDequantize of values a rounding with the same scale already made, within bounds
    as wide (a QDQ model's pair after a Flatten, Reshape or MaxPool of rounded values): rounding k * s
    again gives k * s (for |k| < 2^22, float32(k * s) / s is within k * 2^-23 of k), so it is the
    identity. True when something changed."""
    if not _has(graph, "QuantizeDequantize", TINYRT_DOMAIN):
        return False
    _, in_subgraphs, produced_by, outputs = _facts(graph)
    rename = {}
    kept = []
    for node in graph.nodes:
        if node.op_type == "QuantizeDequantize" and node.domain == TINYRT_DOMAIN and len(node.inputs) == 2 \
                and node.inputs[0] and node.outputs[0] not in outputs and node.outputs[0] not in in_subgraphs:
            scale = _scalar(graph, node.inputs[1])
            before = _rounded_by(graph, produced_by, node.inputs[0])
            if scale is not None and scale.dtype == np.float32 and before is not None \
                    and before[0] == float(scale) and node.attrs["low"] <= before[1] \
                    and before[2] <= node.attrs["high"] and max(-before[1], before[2]) < 2 ** 22:
                rename[node.outputs[0]] = rename.get(node.inputs[0], node.inputs[0])
                continue
        kept.append(node)
    return bypass(graph, kept, rename)


def _rounding_conv(graph, node):
    """(scale, W name, B name) of a FusedConv whose tail is a rounding, with constant float32 weights and
    no residual input; else None."""
    if node.op_type != "FusedConv" or node.domain != TINYRT_DOMAIN or node.attrs.get("activation") != "QuantizeDequantize":
        return None
    return _conv_weights(graph, node, node.attrs["activation_params"][0])


def _conv_weights(graph, node, scale=None):
    """(scale, W name, B name) of a conv with constant float32 weights (and bias) and no residual input."""
    names = list(node.inputs) + ["", "", ""]
    W = graph.initializers.get(names[1]) if names[1] else None
    B = graph.initializers.get(names[2]) if names[2] else None
    if W is None or W.dtype != np.float32 or (names[2] and (B is None or B.dtype != np.float32)) or names[3]:
        return None
    return scale, names[1], names[2]


def round_in_steps(graph):
    """A conv's rounding whose values only convs read (as their input X) hands on whole steps k, not k * s:
    the conv's weights and bias take 1/s and its rounding's scale becomes 1 (clip to [low, high] and
    rint: no multiply by s), and each reader's weights take s. Zero padding pads 0 steps, which is 0 * s.
    A float rounding away from the rounding's x / s (as folding a BatchNormalization is): a near-tie may
    move by one step. On a QDQ MobileNetV2 that is every conv but those before a residual Add. True
    when something changed."""
    if not _has(graph, "FusedConv", TINYRT_DOMAIN):
        return False
    reads, in_subgraphs, _, outputs = _facts(graph)
    users = _users(graph)
    factor = {}   # id(conv) -> [input scale, output scale]
    for node in graph.nodes:
        info = _rounding_conv(graph, node)
        if info is None or not np.isfinite(info[0]) or info[0] <= 0 or info[0] == 1.0:
            continue
        v = node.outputs[0]
        us = users.get(v, [])
        if v in outputs or v in in_subgraphs or not us or reads.get(v, 0) != len(us) or any(
                i != 0 or not is_conv(u) or _conv_weights(graph, u) is None or u.inputs[1] == v for u, i in us):
            continue
        factor.setdefault(id(node), [1.0, 1.0])[1] = info[0]
        for u, _ in us:
            factor.setdefault(id(u), [1.0, 1.0])[0] = info[0]
    new = []
    for node in graph.nodes:
        f = factor.get(id(node))
        if f is None:
            continue
        s_in, s_out = f
        _, w, b = _conv_weights(graph, node)
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            W = (graph.initializers[w].astype(np.float64) * (s_in / s_out)).astype(np.float32)
            B = None if not b else (graph.initializers[b].astype(np.float64) / s_out).astype(np.float32)
        if not np.isfinite(W).all() or (B is not None and not np.isfinite(B).all()):
            return False  # scales far out of range: nothing changed
        new.append((node, s_out, w, W, b, B))
    taken = all_names(graph)
    for node, s_out, w, W, b, B in new:
        ins = list(node.inputs)
        ins[1] = _new_initializer(graph, w, W, taken)
        if B is not None:
            ins[2] = _new_initializer(graph, b, B, taken)
        node.inputs = ins
        if s_out != 1.0:
            _, low, high = node.attrs["activation_params"]
            node.attrs = dict(node.attrs, activation_params=[1.0, float(low), float(high)])
            # a value in steps is another value than the file's (k, not k * s): it gets its own name, so a
            # trace, a profile or a hook never shows steps under the name of the real values
            v = node.outputs[0]
            steps = fresh_name(graph, v + " (in steps)", taken)
            node.outputs = (steps,) + tuple(node.outputs[1:])
            for u, i in users[v]:
                u.inputs = tuple(steps if j == i else x for j, x in enumerate(u.inputs))
    return True


def _new_initializer(graph, like, value, taken):
    """A new constant named after ``like`` ("<like>_steps0", or a name no value has yet) holding ``value``;
    returns its name."""
    name = fresh_name(graph, like + "_steps0", taken)
    graph.initializers[name] = value
    return name
