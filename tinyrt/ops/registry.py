"""The op registry: which Python function computes which ONNX op at which opset version.

Each op is a plain function. Its positional parameters are the node's inputs, in ONNX order (an absent
optional input arrives as None); its keyword-only parameters are the ONNX attributes with the spec's
defaults, so the signature *is* the attribute list. A keyword-only parameter without a default is a
required attribute. Two keyword-only parameters are filled by the executor, not by the model:
``_num_outputs`` (how many outputs the node declares) and ``_opset`` (the opset of the node's domain).

Attribute values arrive as Python values: int, float, str (UTF-8 decoded), numpy array (TENSOR), lists of
those, and for GRAPH attributes a callable ``body(*inputs) -> list of arrays`` with the outer scope
already bound (If, Loop, Scan call it). A function may return one array or a tuple of arrays.

An op that supports only some values of an attribute passes ``check=``: a function taking the node's
attributes as keywords (as given in the file, without defaults filled in) that raises
``UnsupportedError`` naming what it refuses. It runs when the model is loaded, not when it runs; it may
also take ``_num_outputs`` and ``_opset`` as keywords, like the op itself.

The versions given to ``@op`` are the ONNX *since-versions* of the op's schema that the function
implements. The list of all schema versions an op has is known from those registrations, so an opset
resolves to the newest schema version at or below it, exactly as ONNX defines it.
"""
import inspect

import numpy as np

# ops whose results are random: never folded, merged or held to a second run of the same inputs
RANDOM_OPS = frozenset({"RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Multinomial",
                        "Bernoulli"})
TINYRT_DOMAIN = "ai.tinyrt"  # tinyrt's own ops (FusedConv, QuantizeDequantize), made by its passes

# (domain, op_type) -> {since_version: OpImpl}
_REGISTRY = {}
_RESOLVED = {}  # (op_type, domain, opset) -> what ``resolve`` found (a model asks once a node)

EXECUTOR_PARAMS = ("_num_outputs", "_opset")


class OpImpl:
    """A registered function together with what its signature says about the op."""

    def __init__(self, fn, op_type, domain, version, check=None):
        self.fn = fn
        self.check = check
        self.op_type = op_type
        self.domain = domain
        self.version = version
        params = inspect.signature(fn).parameters.values()
        kw = [p for p in params if p.kind == p.KEYWORD_ONLY]
        self.attributes = {p.name: p.default for p in kw if p.name not in EXECUTOR_PARAMS}
        self.required = {n for n, d in self.attributes.items() if d is inspect.Parameter.empty}
        self.wants = {p.name for p in kw if p.name in EXECUTOR_PARAMS}
        self.check_wants = set()
        if check is not None:
            self.check_wants = set(inspect.signature(check).parameters) & set(EXECUTOR_PARAMS)

    def executor_values(self, node, wanted):
        """The executor-filled keywords (``_num_outputs``, ``_opset``) that ``wanted`` names, for ``node``."""
        values = {"_num_outputs": len(node.outputs), "_opset": node.opset}
        return {name: values[name] for name in wanted}

    def __repr__(self):
        return "<op %s%s-%d: %s>" % (self.domain + "." if self.domain else "", self.op_type,
                                     self.version, self.fn.__module__ + "." + self.fn.__name__)


def op(op_type, *versions, domain="", check=None):
    """Register ``fn`` as the implementation of ``op_type`` for the given schema since-versions."""
    if not versions:
        raise ValueError("op(%r) needs at least one since-version" % op_type)

    def register(fn):
        table = _REGISTRY.setdefault((domain, op_type), {})
        for v in versions:
            if v in table:
                raise ValueError("%s-%d registered twice (%s and %s)" % (op_type, v, table[v].fn, fn))
            table[v] = OpImpl(fn, op_type, domain, v, check)
        _RESOLVED.clear()
        return fn

    return register


def _attach(name, fns):
    """A decorator that hangs what it decorates on each op function of ``fns`` as attribute ``name``."""
    def register(value):
        for fn in fns:
            setattr(fn, name, value)
        return value
    return register


def prepared(*fns):
    """``@prepared(op_fn, ...)``: ``make(fn, args, fixed, attrs)`` prepares calls of those ops for the compiled
    program (tinyrt/program.py), where the per-node toll matters most: a tiny op costs less than its checks.

    ``args`` are a step's inputs on the first run of an input signature: its later runs bring inputs of the
    same shapes and dtypes, with the same values where ``fixed[j]`` is true (constants, shape arithmetic);
    the first run has checked them. ``make`` returns a function of the inputs alone (no attributes) that
    computes exactly what the op computes for such inputs, with what follows from them worked out once
    (an axis, a bound, validated indices); or None where it has nothing to gain.
    """
    return _attach("prepared_form", fns)


def prepare(fn, args, fixed, attrs):
    """Op ``fn``'s prepared call for these first-run inputs (see ``prepared``) as (call, work = 0), or None
    where it has no prepared form or nothing to gain."""
    make = getattr(fn, "prepared_form", None)
    made = None if make is None else make(fn, args, fixed, attrs)
    return None if made is None else (made, 0)


def counts_macs(*fns):
    """``@counts_macs(op_fn, ...)``: ``count(args, out, attrs) -> int`` is how many multiply-accumulates one
    call of those ops made, from its inputs ``args``, its first output ``out`` (an array) and the node's
    attributes as written in the file (no defaults filled in). ``tinyrt info`` sums them (``mac_count``);
    an op without a count costs 0 there.
    """
    return _attach("mac_count", fns)


def mac_count(impl, args, outputs, attrs):
    """Multiply-accumulates of one call of ``impl`` (an ``OpImpl``) that returned ``outputs`` (see
    ``counts_macs``); 0 for an op without a count or whose first output is not an array."""
    count = getattr(impl.fn, "mac_count", None)
    out = outputs[0] if outputs else None
    if count is None or not isinstance(out, np.ndarray):
        return 0
    return int(count(args, out, attrs))


def static_shape(*fns):
    """``@static_shape(op_fn, ...)``: ``rule(node, shapes, constants) -> tuple or None`` is the output shape of
    those ops known before running (for constant folding, ``passes/shapes.py``): ``shapes`` are the input
    shapes (tuples of ints, None where unknown; the first one is known), ``constants`` the graph's constant
    values, ``node.attrs`` the attributes as written in the file. None: not known. A rule may raise
    ValueError, TypeError, IndexError, KeyError or ZeroDivisionError on a malformed node: it means None.
    Every function registered for one op type carries the same rule.
    """
    return _attach("static_shape", fns)


def static_shape_rule(op_type, opset):
    """The static shape rule of the ONNX op ``op_type`` (see ``static_shape``), or None.

    From the implementation ``opset`` resolves to; a node at an opset below the op's first version (which
    a session refuses at load) still finds its op's rule, as the rule does not depend on the version.
    """
    return _rule(op_type, opset, "static_shape")


def infers(*fns):
    """``@infers(op_fn, ...)``: ``rule(node, ins, constants) -> list or None`` gives the element types and
    shapes of those ops' outputs that ``get_outputs()`` reports for a file that leaves them out
    (``tinyrt/shape_inference.py``): ``ins`` are the inputs' (element type code or None, shape or None), a
    shape a list of ints, symbolic names or None; ``constants`` the inputs' constant values (None where not
    constant); ``node.attrs`` the attributes as written in the file. It returns one (element type or None,
    shape or None) per output, or None: nothing known. A rule may raise ValueError, TypeError, IndexError,
    KeyError, ZeroDivisionError or OverflowError on a malformed node: it means None. Every function
    registered for one op type carries the same rule.
    """
    return _attach("infer_types", fns)


def types_rule(op_type, opset):
    """The output types rule of the ONNX op ``op_type`` (see ``infers``), or None; found as
    ``static_shape_rule`` finds its rule."""
    return _rule(op_type, opset, "infer_types")


def _rule(op_type, opset, name):
    table = _REGISTRY.get(("", op_type))
    if not table:
        return None
    impl = resolve(op_type, "", opset) if opset is not None else None
    return getattr((impl or table[max(table)]).fn, name, None)


def fixed_after(args, fixed, first=1):
    """True when every input given from ``first`` on has the same value on every run (see ``prepared``)."""
    return all(f for x, f in zip(args[first:], fixed[first:]) if x is not None)


def resolve(op_type, domain, opset):
    """The implementation ONNX opset ``opset`` means for this op, or None when tinyrt has none.

    An opset resolves to the newest registered since-version at or below it. Since the registrations
    list every schema version from the oldest one we support, nothing newer can hide in between.
    """
    key = (op_type, domain, opset)
    found = _RESOLVED.get(key)
    if found is None:
        table = _REGISTRY.get((domain, op_type))
        usable = [v for v in table if v <= opset] if table else ()
        found = table[max(usable)] if usable else False
        if len(_RESOLVED) < 4096:  # (op types come from the file: a bounded cache)
            _RESOLVED[key] = found
    return found or None


def versions(op_type, domain=""):
    """The schema since-versions registered for an op, oldest first."""
    return sorted(_REGISTRY.get((domain, op_type), {}))


def registered():
    """Every (domain, op_type) with at least one implementation."""
    return sorted(_REGISTRY)
