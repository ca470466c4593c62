"""What tinyrt can run, checked at load: every node's op and opset, its attribute types, and the value types
the graph declares. ``check_support`` gathers every reason a graph cannot run into one UnsupportedError."""
import inspect

import numpy as np

from . import dtypes
from .errors import ModelError, TinyrtError, UnsupportedError
from .graph import Graph
from .ops import registry

MAX_OPSET = 28       # the newest default-domain opset tinyrt knows (onnx 1.23)
MIN_OPSET = 7        # older files may still load: each op says which versions it implements


def check_support(graph, opsets):
    """Every reason this graph cannot run, as one UnsupportedError (or the first ModelError)."""
    problems = []
    for domain, version in opsets.items():
        if domain == "" and version > MAX_OPSET:
            problems.append("opset %d of the default domain is newer than tinyrt knows (%d)" % (version, MAX_OPSET))
    for node in graph.all_nodes():
        impl = registry.resolve(node.op_type, node.domain, node.opset) if node.opset is not None else None
        if impl is not None and not node.attrs and not impl.required and impl.check is None:
            continue  # nothing more to check (most nodes of a big graph)
        where = node.describe()
        if node.opset is None:
            problems.append("%s: its domain %r is not among the model's opset imports" % (where, node.domain))
            continue
        if impl is None:
            known = registry.versions(node.op_type, node.domain)
            if known:
                problems.append("%s: tinyrt implements %s from opset %d on, not opset %d"
                                % (where, node.op_type, known[0], node.opset))
            else:
                problems.append("%s: unknown op %s in domain %r" % (where, node.op_type, node.domain or "ai.onnx"))
            continue
        unknown = sorted(set(node.attrs) - set(impl.attributes))
        if unknown:
            problems.append("%s: attribute%s %s not implemented" % (where, "s" if len(unknown) > 1 else "",
                                                                    ", ".join(repr(a) for a in unknown)))
            continue
        missing = sorted(impl.required - set(node.attrs))
        if missing:
            raise ModelError("%s: required attribute %s is missing" % (where, ", ".join(map(repr, missing))))
        check_attribute_types(node, impl)
        for name in ("to", "dtype"):
            code = node.attrs.get(name)
            if isinstance(code, int) and not dtypes.is_supported(code) and name in impl.attributes:
                problems.append("%s: attribute %s=%s asks for element type %s, which tinyrt does not support"
                                % (where, name, code, dtypes.type_name(code)))
        if impl.check is not None:
            try:
                impl.check(**dict(node.attrs, **impl.executor_values(node, impl.check_wants)))
            except UnsupportedError as e:
                problems.append("%s: %s" % (where, e))
            except TinyrtError:
                raise
            except Exception as e:  # a check choking on a malformed attribute value
                raise ModelError("%s: invalid attributes %s (%s: %s)"
                                 % (where, _attrs_text(node.attrs), type(e).__name__, e)) from None
    for spec in _declared_values(graph):
        reason = _unsupported_type(spec)
        if reason:
            problems.append("value %r %s" % (spec.name, reason))
    if problems:
        raise UnsupportedError("tinyrt cannot run this model:\n  " + "\n  ".join(problems))


def _kind(value):
    """The attribute kind of a Python value as the graph builder makes it (see graph.Builder.attribute)."""
    if isinstance(value, Graph):
        return "graph"
    if isinstance(value, bool) or isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, np.ndarray):
        return "tensor"
    if isinstance(value, (list, tuple)):
        kinds = set(_kind(v) for v in value)
        if not kinds:
            return "list"  # an empty list fits any list attribute
        return (kinds.pop() + "s") if len(kinds) == 1 else "mixed list"
    return type(value).__name__


def _fits(kind, expected):
    if kind == expected:
        return True
    if kind == "list" and expected.endswith("s"):
        return True
    return expected == "list" and kind.endswith("s")


def check_attribute_types(node, impl):
    """Each attribute must be of the kind its default is (an INT where an INT belongs, INTS where INTS...).

    The op's signature defaults tell the expected kind; attributes without a default (required ones) or
    with a None default are checked by the op itself. A mismatch is a ModelError naming node and attribute.
    """
    for name, value in node.attrs.items():
        default = impl.attributes.get(name)
        if default is None or default is inspect.Parameter.empty:
            continue
        expected, kind = _kind(default), _kind(value)
        if not _fits(kind, expected):
            raise ModelError("%s: attribute %r is of type %s, but %s expects %s"
                             % (node.describe(), name, _kind_name(kind), node.op_type, _kind_name(expected)))


def _kind_name(kind):
    return {"int": "INT", "float": "FLOAT", "string": "STRING", "tensor": "TENSOR", "graph": "GRAPH",
            "ints": "INTS", "floats": "FLOATS", "strings": "STRINGS", "tensors": "TENSORS", "graphs": "GRAPHS",
            "list": "a list"}.get(kind, kind)


def _attrs_text(attrs):
    text = ", ".join("%s=%s" % (k, "<graph>" if isinstance(v, Graph) else repr(v)) for k, v in sorted(attrs.items()))
    return text if len(text) < 300 else text[:300] + "..."


def _unsupported_type(spec):
    """Why tinyrt cannot hold a value of this type, or None when it can."""
    if spec.kind in ("sequence", "optional"):
        return _unsupported_type(spec.element)
    if spec.kind != "tensor":
        return "is a%s %s; tinyrt supports tensors, sequences and optionals of them" % (
            "n" if spec.kind[0] in "aeiou" else "", spec.type_string)
    if spec.elem_type and not dtypes.is_supported(spec.elem_type):
        return "has element type %s, which tinyrt does not support" % dtypes.type_name(spec.elem_type)
    return None


def _declared_values(graph):
    for spec in list(graph.inputs) + list(graph.outputs) + list(graph.value_info.values()):
        yield spec
    for node in graph.nodes:
        for g in node.subgraphs() if node.attrs else ():
            for spec in _declared_values(g):
                yield spec
