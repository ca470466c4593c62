"""The semantic fuzzer: valid ONNX graphs built from tinyrt's op registry, with hostile attributes and
shapes. A byte mutator rarely makes a file that decodes into a *meaningful* graph; these do, and go
straight for the ops' arithmetic: huge strides, pads and kernels, broadcasts that multiply sizes,
sizes computed from the data, deep and wide functions, long chains, dead nodes.

``Semantic(base_seed).case(i)`` is case ``i`` of the stream (the same bytes everywhere), with the same
interface as ``mutators.Mutator``, so tests/fuzz/campaign.py runs it in its watched workers
(``campaign.run(..., generator="semantic")``; ``python -m tests.fuzz --semantic``) and checks that only
tinyrt.TinyrtError escapes, within the time and memory bounds.
"""
import inspect
import random

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from . import scale

F, I64 = TensorProto.FLOAT, TensorProto.INT64
OPSET = 18

HOSTILE_INTS = [0, 1, -1, 2, 3, 7, 255, 1 << 16, 1 << 31, 1 << 40, -(1 << 40), (1 << 63) - 1, -(1 << 63)]
HOSTILE_FLOATS = [0.0, -1.0, 0.5, 1e-30, 1e30, float("inf"), float("-inf"), float("nan")]
HOSTILE_STRINGS = ["", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", "constant", "reflect", "edge", "wrap",
                   "linear", "cubic", "nearest", "bilinear", "half_pixel", "asymmetric", "DCR", "CRD", "x" * 300]
LIST_ATTRIBUTES = ("strides", "pads", "dilations", "kernel_shape", "axes", "output_shape", "output_padding",
                   "sizes", "perm", "shape", "starts", "ends", "split", "repeats", "scales", "blocksize")
# ops that need graph attributes, a particular domain setup or run caller code: built by other kinds
SKIPPED_OPS = {"If", "Loop", "Scan", "SequenceMap", "Constant"}
UNARY = ["Identity", "Relu", "Neg", "Abs", "Sigmoid", "Tanh", "Floor", "Exp", "Sqrt"]
BINARY = ["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "PRelu", "Equal", "Greater", "Mod", "Sum", "Mean"]
WINDOWED = ["Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool"]


def _vi(name, shape, elem=F):
    return helper.make_tensor_value_info(name, elem, shape)


def _c(name, value, dtype=np.int64):
    return numpy_helper.from_array(np.array(value, dtype), name)


def _model(nodes, inputs, outputs, inits=(), functions=()):
    graph = helper.make_graph(nodes, "semantic", inputs, outputs, list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("local", 1)],
                          functions=list(functions))
    m.ir_version = 8
    return m.SerializeToString()


def _range(name, n):
    """Nodes and initializers making ``name`` = float32 Range(0, n): a size from the data, not the file."""
    return ([helper.make_node("Range", [name + "_0", name + "_n", name + "_1"], [name])],
            [_c(name + "_0", 0.0, np.float32), _c(name + "_n", float(n), np.float32), _c(name + "_1", 1.0, np.float32)])


def _shape(rng, rank=None):
    rank = rng.randint(1, 4) if rank is None else rank
    return [rng.choice([1, 1, 2, 3, 4]) for _ in range(rank)]


def _hostile_attribute(rng, name, default):
    if name in LIST_ATTRIBUTES or isinstance(default, list):
        if name == "scales":
            return [rng.choice(HOSTILE_FLOATS + [2.0, 1e6]) for _ in range(rng.randint(1, 4))]
        return [rng.choice(HOSTILE_INTS + [1, 2]) for _ in range(rng.choice([1, 2, 4, 8]))]
    if isinstance(default, bool) or isinstance(default, int):
        return rng.choice(HOSTILE_INTS)
    if isinstance(default, float):
        return rng.choice(HOSTILE_FLOATS)
    if isinstance(default, str):
        return rng.choice(HOSTILE_STRINGS)
    return None  # a tensor or unknown kind: left out


def op_case(rng, op_type, impl):
    """One node of ``op_type``: float inputs of small shapes (some shape-like int64 initializers with
    hostile values), hostile values for some of its attributes."""
    params = [p for p in inspect.signature(impl.fn).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    variadic = any(p.kind == p.VAR_POSITIONAL for p in inspect.signature(impl.fn).parameters.values())
    count = len(params) + (rng.randint(1, 3) if variadic else 0)
    names, inputs, inits = [], [], []
    for k in range(count):
        optional = k < len(params) and params[k].default is not inspect.Parameter.empty
        if optional and rng.random() < 0.4:
            names.append("")
            continue
        name = "in%d" % k
        if k > 0 and rng.random() < 0.4:  # a shape-like input: ints from the hostile list
            inits.append(_c(name, [rng.choice(HOSTILE_INTS[:9]) for _ in range(rng.randint(0, 4))]))
        else:
            inputs.append(_vi(name, _shape(rng)))
        names.append(name)
    while names and names[-1] == "":
        names.pop()
    attrs = {}
    for attr, default in impl.attributes.items():
        if attr in impl.required or rng.random() < 0.5:
            value = _hostile_attribute(rng, attr, None if default is inspect.Parameter.empty else default)
            if value is not None:
                attrs[attr] = value
    outputs = ["out%d" % k for k in range(rng.choice([1, 1, 2]))]
    node = helper.make_node(op_type, names, outputs, **attrs)
    return _model([node], inputs, [_vi(o, None) for o in outputs], inits)


def broadcast_case(rng):
    """A column and a row of n (from Range: the file holds one number) through an elementwise op."""
    n = rng.choice([100, 4096, 20000, 1 << 20])
    nodes, inits = _range("r", n)
    nodes += [helper.make_node("Reshape", ["r", "c"], ["col"]), helper.make_node("Reshape", ["r", "w"], ["row"])]
    inits += [_c("c", [-1, 1]), _c("w", [1, -1])]
    op = rng.choice(BINARY + ["LayerNormalization", "Einsum", "MatMul", "Where"])
    if op == "LayerNormalization":
        nodes.append(helper.make_node(op, ["col", "row"], ["y"], axis=-1))
    elif op == "Einsum":
        nodes.append(helper.make_node(op, ["r", "r"], ["y"], equation=rng.choice(["i,j", "i,j->ij", "...i,...j"])))
    elif op == "Where":
        nodes += [helper.make_node("Greater", ["col", "row"], ["m"]), helper.make_node(op, ["m", "col", "row"], ["y"])]
    else:
        nodes.append(helper.make_node(op, ["col", "row"], ["y"]))
    return _model(nodes, [_vi("x", [1])], [_vi("y", None)], inits)


def size_from_data_case(rng):
    """An allocating op whose size comes from computed data (Shape, ReduceSum, a product)."""
    n = rng.choice([3, 1000, 1 << 20, 1 << 31])
    nodes, inits = _range("r", 4)
    nodes += [helper.make_node("ReduceSum", ["r"], ["s"], keepdims=1),       # 6
              helper.make_node("Cast", ["s"], ["si"], to=I64),
              helper.make_node("Mul", ["si", "k"], ["size"])]                # 6 * n
    inits.append(_c("k", [n]))
    op = rng.choice(["ConstantOfShape", "Expand", "Tile", "Pad", "Range", "OneHot", "TopK", "Resize", "Split"])
    if op == "ConstantOfShape":
        nodes += [helper.make_node("Concat", ["size", "size"], ["shape"], axis=0), helper.make_node(op, ["shape"], ["y"])]
    elif op == "Expand":
        nodes += [helper.make_node("Concat", ["size", "size"], ["shape"], axis=0), helper.make_node(op, ["x", "shape"], ["y"])]
    elif op == "Tile":
        nodes.append(helper.make_node(op, ["x", "size"], ["y"]))
    elif op == "Pad":
        nodes += [helper.make_node("Concat", ["size", "size"], ["pads"], axis=0), helper.make_node(op, ["x", "pads"], ["y"])]
    elif op == "Range":
        nodes += [helper.make_node("Cast", ["size"], ["sf"], to=F), helper.make_node("Squeeze", ["sf"], ["end"]),
                  helper.make_node(op, ["zero", "end", "one"], ["y"])]
        inits += [_c("zero", 0.0, np.float32), _c("one", 1.0, np.float32)]
    elif op == "OneHot":
        nodes.append(helper.make_node(op, ["idx", "size", "vals"], ["y"]))
        inits += [_c("idx", [0, 1]), _c("vals", [0.0, 1.0], np.float32)]
    elif op == "TopK":
        nodes.append(helper.make_node(op, ["x", "size"], ["y", "i"]))
    elif op == "Resize":
        nodes += [helper.make_node("Concat", ["one4", "size"], ["sizes"], axis=0),
                  helper.make_node(op, ["x", "", "", "sizes"], ["y"], mode=rng.choice(["nearest", "linear", "cubic"]))]
        inits.append(_c("one4", [1]))
    else:
        nodes.append(helper.make_node(op, ["x", "size"], ["y"]))
    return _model(nodes, [_vi("x", [2])], [_vi("y", None)], inits)


def window_case(rng):
    """Conv / ConvTranspose / pools with huge strides, dilations, pads, kernels and groups."""
    op = rng.choice(WINDOWED)
    C = rng.choice([1, 2, 4])
    big = [1, 2, 3, 1 << 12, 1 << 20, 1 << 40]
    attrs = {}
    for name in ("strides", "dilations", "pads"):
        if rng.random() < 0.6:
            attrs[name] = [rng.choice(big) for _ in range(4 if name == "pads" else 2)]
    inits, inputs = [], ["x"]
    if op in ("Conv", "ConvTranspose"):
        group = rng.choice([1, C])
        kh, kw = rng.choice([1, 2, 3]), rng.choice([1, 2, 3])
        shape = (C, C // group, kh, kw) if op == "Conv" else (C, rng.choice([1, 2]), kh, kw)
        inits.append(_c("w", np.ones(shape), np.float32))
        inputs.append("w")
        if rng.random() < 0.5:  # a bias, sometimes of the wrong length (item 1 of issue 21)
            inits.append(_c("b", np.ones(rng.choice([shape[0], 1, shape[0] + 1])), np.float32))
            inputs.append("b")
        attrs["group"] = group
        if op == "ConvTranspose" and rng.random() < 0.3:
            attrs["output_shape"] = [rng.choice(big), rng.choice(big)]
    else:
        attrs["kernel_shape"] = [rng.choice([1, 2, 3, 1 << 12]), rng.choice([1, 2, 3])]
    x_shape = [rng.choice([1, 2]), C, rng.choice([1, 5, 16]), rng.choice([1, 5, 16])]
    return _model([helper.make_node(op, inputs, ["y"], **attrs)], [_vi("x", x_shape)], [_vi("y", None)], inits)


def doubling_functions(depth, width=2):
    """f0 calls f1 ``width`` times, f1 calls f2 ``width`` times, ..., f_depth is a Relu: width^depth Relus."""
    functions = []
    for level in range(depth):
        names = ["x"] + ["t%d" % k for k in range(width - 1)] + ["y"]
        calls = [helper.make_node("f%d" % (level + 1), [names[k]], [names[k + 1]], domain="local") for k in range(width)]
        functions.append(helper.make_function("local", "f%d" % level, ["x"], ["y"], calls,
                                              [helper.make_opsetid("", OPSET), helper.make_opsetid("local", 1)]))
    functions.append(helper.make_function("local", "f%d" % depth, ["x"], ["y"], [helper.make_node("Relu", ["x"], ["y"])],
                                          [helper.make_opsetid("", OPSET)]))
    return _model([helper.make_node("f0", ["x"], ["y"], domain="local")], [_vi("x", [2])], [_vi("y", None)],
                  functions=functions)


def functions_case(rng):
    width = rng.choice([1, 2, 3, 8])
    depth = rng.choice([1, 3, 8, 12, 30, 60]) if width > 1 else rng.choice([10, 49, 50, 51, 200])
    return doubling_functions(depth, width)


def graph_case(rng):
    """Long chains, dead nodes, wide fan-out: the load must stay near-linear."""
    kind = rng.choice(["chain", "dead", "fan_out"])
    n = rng.choice([10, 1000, 5000])
    return getattr(scale, kind)(n, rng.choice(UNARY) if kind != "fan_out" else rng.choice(["Relu", "Neg"]))


class Semantic:
    """The stream of semantic cases of ``base_seed``; ``case(i)`` -> (kind, model bytes)."""

    KINDS = ("op", "op", "op", "broadcast", "size from data", "window", "window", "functions", "graph")

    def __init__(self, base_seed=0):
        from tinyrt.ops import registry
        self.base_seed = base_seed
        self.ops = [(op_type, registry.resolve(op_type, "", OPSET)) for domain, op_type in registry.registered()
                    if domain == "" and op_type not in SKIPPED_OPS and registry.resolve(op_type, "", OPSET)]
        self.seeds = [broadcast_case(random.Random(1)), window_case(random.Random(2))]  # warm-up

    def case(self, i):
        rng = random.Random(self.base_seed * 1000003 + i)
        kind = rng.choice(self.KINDS)
        if kind == "op":
            op_type, impl = rng.choice(self.ops)
            try:
                return "op " + op_type, op_case(rng, op_type, impl)
            except (ValueError, TypeError):  # an attribute value onnx.helper cannot write: the plain op
                return "op " + op_type, _model([helper.make_node(op_type, ["x"], ["y"])], [_vi("x", [2])], [_vi("y", None)])
        make = {"broadcast": broadcast_case, "size from data": size_from_data_case, "window": window_case,
                "functions": functions_case, "graph": graph_case}[kind]
        return kind, make(rng)
