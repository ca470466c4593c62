"""tinyrt's graph IR: the ONNX messages turned into plain nodes, values and numpy initializers.

Model-local functions (torch's dynamo exporter writes them) are inlined here, so everything after this
module sees one flat graph of standard ops. Subgraphs (If/Loop/Scan bodies) are Graphs too.
"""
import itertools

from . import dtypes, limits
from .errors import ModelError, UnsupportedError
from .ops import registry
from .order import free_values, graph_free_values, names_read, topological_order  # noqa: F401 (from here too)
from .proto.onnx_messages import TypeProto
from .proto.tensors import ExternalFiles, tensor_to_array

MAX_INLINE_DEPTH = 50  # functions calling functions; deeper (or recursive) ones are refused
# Functions calling each other twice a level expand exponentially (depth 15 of a 1 KB file: 16,385 nodes,
# depth 41: billions): the nodes made by inlining are bounded in total, not just in depth.
MIN_INLINED_NODES = 50000     # at least this many ...
INLINED_NODES_PER_BYTE = 1.0 / 16  # ... or one for each 16 bytes of the file
SHARED_NAMES = 1 << 13  # names the graph builder keeps one string of at least (see _Builder.share)

# AttributeProto.AttributeType
FLOAT, INT, STRING, TENSOR, GRAPH, FLOATS, INTS, STRINGS, TENSORS, GRAPHS = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
SPARSE_TENSOR, SPARSE_TENSORS, TYPE_PROTO, TYPE_PROTOS = 11, 12, 13, 14
_FIELD_OF_TYPE = {FLOAT: "f", INT: "i", STRING: "s", TENSOR: "t", GRAPH: "g", FLOATS: "floats", INTS: "ints",
                  STRINGS: "strings", TENSORS: "tensors", GRAPHS: "graphs", SPARSE_TENSOR: "sparse_tensor",
                  SPARSE_TENSORS: "sparse_tensors", TYPE_PROTO: "tp", TYPE_PROTOS: "type_protos"}
ATTRIBUTE_TYPE_NAMES = {FLOAT: "float", INT: "int", STRING: "string", TENSOR: "tensor", GRAPH: "graph",
                        FLOATS: "floats", INTS: "ints", STRINGS: "strings", TENSORS: "tensors", GRAPHS: "graphs",
                        SPARSE_TENSOR: "sparse tensor", SPARSE_TENSORS: "sparse tensors",
                        TYPE_PROTO: "type", TYPE_PROTOS: "types"}


def canonical_domain(domain):
    return "" if domain in ("", "ai.onnx") else domain


class ValueSpec:
    """A declared graph input/output/value_info: name, element type code, shape (ints, str or None)."""

    __slots__ = ("name", "elem_type", "shape", "kind", "element")  # a file may declare a million of them

    def __init__(self, name, elem_type=None, shape=None, kind="tensor"):
        self.name = name
        self.elem_type = elem_type
        self.shape = shape
        self.kind = kind       # "tensor", "sequence", "optional", or what tinyrt does not support
        self.element = None    # for sequences and optionals: the ValueSpec of what they hold

    @property
    def type_string(self):
        """onnxruntime's way of writing the type: 'tensor(float)', 'seq(tensor(int64))'."""
        if self.kind == "sequence":
            return "seq(%s)" % self.element.type_string
        if self.kind == "optional":
            return "optional(%s)" % self.element.type_string
        if self.kind != "tensor":
            return self.kind
        return "tensor(%s)" % dtypes.type_name(self.elem_type) if self.elem_type else "tensor(undefined)"

    def __repr__(self):
        return "ValueSpec(%r, %s, %s)" % (self.name, self.type_string, self.shape)


class FrozenDict(dict):
    """An empty dict nobody may change: the attributes of every node that has none (a million tiny nodes
    would otherwise hold a million empty dicts). Give a node new attributes by assigning ``node.attrs``."""

    __slots__ = ()

    def _refuse(self, *args, **kwargs):
        raise TypeError("this dict is shared and read-only: assign a new one instead")

    __setitem__ = __delitem__ = update = setdefault = pop = popitem = clear = __ior__ = _refuse


NO_ATTRS = FrozenDict()


class Node:
    """One node. ``inputs`` and ``outputs`` are tuples of value names ("" marks an absent optional input, or an
    output nobody wants); passes give a node new ones by assignment.

    Memory: a model of a million tiny nodes holds a million of these, so a node is eight ``__slots__`` (96
    bytes) and nothing else of its own. A node with one input (output) holds the name itself, not a 1-tuple
    (``inputs`` makes the tuple when read), so a chain's node and the node after it share one string. Its
    attributes are the shared ``NO_ATTRS`` when it has none. And a node is its own step in a plan
    (tinyrt/steps.py): planning binds it (``impl``, ``fn``, ``free_after``) instead of making a step object
    for it, unless its op is called with other attributes than its own (a ``StepWithAttributes``).
    """

    __slots__ = ("op_type", "_inputs", "_outputs", "attrs", "name", "domain", "opset", "_bound")
    subplans = NO_ATTRS  # (as a step: a node with subgraphs is a StepWithAttributes)

    def __init__(self, op_type, inputs, outputs, attrs=None, name="", domain="", opset=None):
        self.op_type = op_type
        self._inputs = _compact(inputs)
        self._outputs = _compact(outputs)
        self.attrs = dict(attrs) if attrs else NO_ATTRS  # name -> Python value; GRAPH attributes hold Graphs
        self.name = name
        self.domain = domain
        self.opset = opset             # the opset version of this node's domain
        self._bound = None             # in a plan: its OpImpl, or a _Binding (see ``bind``)

    @property
    def inputs(self):
        names = self._inputs
        return (names,) if names.__class__ is str else names

    @property
    def outputs(self):
        names = self._outputs
        return (names,) if names.__class__ is str else names

    inputs = inputs.setter(lambda self, names: setattr(self, "_inputs", _compact(names)))
    outputs = outputs.setter(lambda self, names: setattr(self, "_outputs", _compact(names)))

    def describe(self):
        """How errors name a node: op, domain, version and name."""
        domain = self.domain + "." if self.domain else ""
        return "%s%s-%s (node %r)" % (domain, self.op_type, self.opset, self.name or self.outputs[:1])

    def subgraphs(self):
        return _subgraphs(self.attrs)

    def __repr__(self):
        return "Node(%s, %s -> %s)" % (self.op_type, self.inputs, self.outputs)

    # --- the node as its own step of a plan (tinyrt/steps.py) -------------------------------------------------

    def bind(self, impl):
        """Make this node a step calling ``impl`` (``fn`` is ``impl.fn`` until a kernel is bound to it)."""
        self._bound = impl

    node = property(lambda self: self)
    impl = property(lambda self: self._bound.impl if self._bound.__class__ is _Binding else self._bound)
    # (an OpImpl's function, or a kernel bound in its place)
    fn = property(lambda self: self._bound.fn, lambda self, fn: self._rebind(fn, self.free_after))
    # the values whose last use is this step (Plan._plan_frees): by default its inputs (a chain's)
    free_after = property(lambda self: self._bound.free_after if self._bound.__class__ is _Binding else self.inputs,
                          lambda self, names: self._rebind(self.fn, names))

    def _rebind(self, fn, free_after):
        impl = self.impl
        free_after = tuple(free_after)
        if fn is impl.fn and free_after == self.inputs:
            self._bound = impl  # (what most nodes are: nothing of their own beside the OpImpl)
        else:
            self._bound = _Binding(impl, fn, free_after)

    @property
    def wanted(self):
        """How many outputs someone reads."""
        return sum(1 for name in self.outputs if name)

    @property
    def last_wanted(self):
        """The index of the last output someone reads (-1: none)."""
        outputs = self._outputs
        if outputs.__class__ is str:
            return 0 if outputs else -1
        return max((i for i, name in enumerate(outputs) if name), default=-1)

    def bound_attrs(self, env):
        """The attributes the op is called with (a node's own: one with subgraphs is a StepWithAttributes)."""
        return self.attrs


def _compact(names):
    """How a node holds a tuple of names: a single name as the string itself."""
    if names.__class__ is not tuple:
        names = tuple(names)
    return names[0] if len(names) == 1 else names


class _Binding:
    """A planned node's step, when it is not just its OpImpl: a kernel bound in place of the op's function,
    or values to free after it other than its inputs."""

    __slots__ = ("impl", "fn", "free_after")

    def __init__(self, impl, fn, free_after):
        self.impl = impl
        self.fn = fn
        self.free_after = free_after


class Graph:
    def __init__(self, name="", nodes=(), inputs=(), outputs=(), initializers=None, value_info=None):
        self.name = name
        self.nodes = list(nodes)
        self.inputs = list(inputs)          # ValueSpecs the caller feeds (initializers excluded)
        self.outputs = list(outputs)        # ValueSpecs
        self.initializers = dict(initializers or {})  # name -> numpy array
        self.value_info = dict(value_info or {})      # name -> ValueSpec
        self.dequantized = {}  # name -> (value, integers, scale, zero point, axis): see passes/fold_constants.py

    def all_nodes(self):
        """Every node, including those inside subgraphs."""
        for node in self.nodes:
            yield node
            if node.attrs:
                for g in node.subgraphs():
                    for inner in g.all_nodes():
                        yield inner


# --- from messages ---------------------------------------------------------------------------------------------

def value_spec(vi, notes=None):
    """ValueSpec of a ValueInfoProto; what was tolerated on the way is appended to ``notes`` (a list)."""
    return _type_spec(vi.name, vi.type, notes if notes is not None else [])


def _type_spec(name, t, notes):
    """ValueSpec of a TypeProto: a tensor (element type, shape), or a sequence of them.

    Two quirks of real exporters are read as onnxruntime reads them. A declared dimension below zero
    (old Paddle2ONNX writes the batch as ``dim_value: -1``) is a dynamic one. An empty type (torch writes
    If branch outputs so) declares nothing: a tensor whose element type and shape come from what
    produces it when the model runs. Declared types are never checked against what nodes produce.
    """
    if t is None or (not (t.present - {"denotation"}) and t.other is None):
        return ValueSpec(name)
    if t.tensor_type is not None:
        shape = None
        if t.tensor_type.shape is not None:
            shape = []
            for d in t.tensor_type.shape.dim:
                if "dim_value" in d.present:
                    if d.dim_value < 0:
                        notes.append("value %r declares dimension %d as %d: read as dynamic"
                                     % (name, len(shape), d.dim_value))
                        shape.append(None)
                        continue
                    if d.dim_value > limits.MAX_DIM:
                        raise ModelError("value %r has an absurd dimension %d (more than %d)"
                                         % (name, d.dim_value, limits.MAX_DIM))
                    shape.append(d.dim_value)
                else:
                    shape.append(d.dim_param or None)
        if shape is not None and len(shape) > limits.MAX_RANK:
            raise ModelError("value %r has rank %d; tinyrt (numpy) allows at most %d axes"
                             % (name, len(shape), limits.MAX_RANK))
        return ValueSpec(name, t.tensor_type.elem_type, shape)
    for kind in ("sequence", "optional"):
        container = getattr(t, kind + "_type")
        if container is not None:
            spec = ValueSpec(name, kind=kind)
            spec.element = _type_spec(name, container.elem_type, notes)
            return spec
    return ValueSpec(name, kind=t.other or "unknown type")


class _Builder:
    """Turns a Model message into a Graph, inlining model-local functions on the way."""

    def __init__(self, model, folder):
        self.folder = folder
        self.opsets = self._opsets(model.opset_import)
        self.functions = {}
        for f in model.functions:
            self.functions[(canonical_domain(f.domain), f.name, f.overload)] = f
        self.fresh = itertools.count()
        self.inlining = 0   # > 0 while a function body is being inlined
        self.inlined = 0    # nodes made while inlining (bodies and their subgraphs)
        self.max_inlined = max(MIN_INLINED_NODES, int(getattr(model, "file_size", 0) * INLINED_NODES_PER_BYTE))
        self.external = ExternalFiles()  # what was read from external data files (the model's size counts it)
        self.notes = []          # quirks of the file that were tolerated (``tinyrt info`` shows them)
        # Each name once: the file repeats a value's name in every node that reads it (and op types in
        # every node); the graph keeps one string of each name read soon after it was last seen (see
        # ``share``). Dropped with the builder.
        self.recent, self.older = {}, {}
        self.last_output = None  # the one output of the node built last: the next node of a chain reads it

    @staticmethod
    def _opsets(imports):
        opsets = {}
        for imp in imports:
            opsets[canonical_domain(imp.domain)] = imp.version
        if not opsets:  # very old files (IR version < 3) carry no opset import: ONNX says opset 1
            opsets[""] = 1
        return opsets

    def share(self, name):
        """The string kept for ``name``: the one met last, when it was met among the last SHARED_NAMES to
        SHARED_NAMES * 2 names (a name read much later is kept twice: a map of every name of a million-node
        graph would cost more than the strings it saves)."""
        found = self.recent.get(name)
        if found is None:
            found = self.older.get(name, name)
            self.recent[found] = found
            if len(self.recent) >= SHARED_NAMES:
                self.older, self.recent = self.recent, {}
        return found

    def tensor(self, t, what):
        return tensor_to_array(t, self.folder, what, self.external)

    def graph(self, g, opsets, depth=0):
        initializers = {}
        for t in g.initializer:
            if not t.name:
                raise ModelError("graph %r has an initializer without a name" % g.name)
            initializers[t.name] = self.tensor(t, "initializer %r" % t.name)
        if g.sparse_initializer:
            raise UnsupportedError("graph %r has sparse initializers, which tinyrt does not support" % g.name)
        nodes = []
        for proto in g.node:  # each NodeProto is decoded as it is read here, and dropped once built
            nodes.extend(self.node(proto, opsets, {}, depth))
        # Old exporters list initializers among the inputs too; those are not for the caller to feed.
        inputs = [value_spec(vi, self.notes) for vi in g.input if vi.name not in initializers]
        outputs = [value_spec(vi, self.notes) for vi in g.output]
        value_info = {vi.name: value_spec(vi, self.notes) for vi in g.value_info}
        graph = Graph(g.name, (), inputs, outputs, initializers, value_info)
        graph.nodes = nodes  # (not a copy: a million nodes' list is 8 MB)
        return graph

    def node(self, n, opsets, call_attrs, depth, rename=None):
        """The nodes that NodeProto ``n`` becomes: itself, or a function's body inlined."""
        domain = canonical_domain(n.domain)
        attrs = {}
        for a in n.attribute:
            if a.ref_attr_name:  # inside a function: the caller's attribute, or nothing
                if a.ref_attr_name in call_attrs:
                    attrs[a.name] = call_attrs[a.ref_attr_name]
                continue
            if a.name in attrs:
                raise ModelError("node %r (%s) has attribute %r twice" % (n.name, n.op_type, a.name))
            attrs[a.name] = self.attribute(a, n, opsets, depth)
        inputs = n.input
        outputs = n.output
        if rename is not None:
            inputs = [rename.get(x, x) if x else x for x in inputs]
            outputs = [rename.get(x, x) if x else x for x in outputs]
            for g in _subgraphs(attrs):
                _rename_free_values(g, rename)
        share = self.share
        if len(inputs) == 1 and inputs[0] == self.last_output:
            inputs = (self.last_output,)  # a chain: the very string the node before holds
        else:
            inputs = tuple([share(x) for x in inputs])
        outputs = tuple([share(x) for x in outputs])
        function = self.functions.get((domain, n.op_type, n.overload))
        if function is not None and domain == "" and registry.versions(n.op_type):
            function = None  # a function never shadows a standard op (onnxruntime runs the op)
        if function is None:
            if self.inlining:
                self.inlined += 1
                if self.inlined > self.max_inlined:
                    raise ModelError("model-local functions expand to more than %d nodes (functions calling "
                                     "functions several times each?); see docs/limits.md" % self.max_inlined)
            self.last_output = outputs[0] if len(outputs) == 1 else None
            return [Node(share(n.op_type), inputs, outputs, attrs, n.name, share(domain), opsets.get(domain))]
        self.inlining += 1
        try:
            return self.inline(function, n, inputs, outputs, attrs, depth)
        finally:
            self.inlining -= 1

    def inline(self, f, call, inputs, outputs, attrs, depth):
        if depth >= MAX_INLINE_DEPTH:
            raise ModelError("function %r is nested more than %d deep (recursive?)" % (f.name, MAX_INLINE_DEPTH))
        if len(inputs) > len(f.input) or len(outputs) > len(f.output):
            raise ModelError("node %r calls function %r with %d inputs / %d outputs; it takes %d / %d"
                             % (call.name, f.name, len(inputs), len(outputs), len(f.input), len(f.output)))
        call_attrs = {}
        for a in f.attribute_proto:  # defaults of the function's attributes
            call_attrs[a.name] = self.attribute(a, call, self.opsets, depth)
        call_attrs.update(attrs)
        prefix = "%s/%s#%d/" % (call.name or f.name, f.name, next(self.fresh))
        rename = {}
        for formal, actual in zip(f.input, list(inputs) + [""] * len(f.input)):
            rename[formal] = actual
        for formal, actual in zip(f.output, list(outputs) + [""] * len(f.output)):
            rename[formal] = actual
        for inner in f.node:
            for out in inner.output:
                if out and out not in rename:
                    rename[out] = prefix + out
        opsets = dict(self.opsets)
        opsets.update(self._opsets(f.opset_import) if f.opset_import else {})
        nodes = []
        for inner in f.node:
            nodes.extend(self.node(inner, opsets, call_attrs, depth + 1, rename))
        return nodes

    def attribute(self, a, node, opsets, depth):
        kind = a.type
        if kind == 0:  # files before IR version 2 do not say: find the one field that is set
            present = [t for t, field in _FIELD_OF_TYPE.items() if field in a.present]
            if len(present) != 1:
                raise ModelError("attribute %r of node %r (%s) has no type and %d values"
                                 % (a.name, node.name, node.op_type, len(present)))
            kind = present[0]
        where = "attribute %r of node %r (%s)" % (a.name, node.name, node.op_type)
        if kind == FLOAT:
            return float(a.f)
        if kind == INT:
            return int(a.i)
        if kind == STRING:
            return _text(a.s, where)
        if kind == TENSOR:
            if a.t is None:
                raise ModelError("%s is a tensor attribute without a tensor" % where)
            return self.tensor(a.t, where)
        if kind == GRAPH:
            if a.g is None:
                raise ModelError("%s is a graph attribute without a graph" % where)
            return self.graph(a.g, opsets, depth)
        if kind == FLOATS:
            return [float(v) for v in a.floats]
        if kind == INTS:
            return [int(v) for v in a.ints]
        if kind == STRINGS:
            return [_text(s, where) for s in a.strings]
        if kind == TENSORS:
            return [self.tensor(t, where) for t in a.tensors]
        if kind == GRAPHS:
            return [self.graph(g, opsets, depth) for g in a.graphs]
        if kind == TYPE_PROTO and a.tp is not None:  # Optional's `type`: a ValueSpec (named after the attribute)
            return _type_spec(a.name, TypeProto.decode(memoryview(a.tp), 0, len(a.tp)), self.notes)
        if kind in ATTRIBUTE_TYPE_NAMES:
            raise UnsupportedError("%s is of type %s, which tinyrt does not support"
                                   % (where, ATTRIBUTE_TYPE_NAMES[kind]))
        raise ModelError("%s has unknown attribute type %d" % (where, kind))


def _text(raw, where):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelError("%s is not valid UTF-8" % where) from None


def _subgraphs(attrs):
    for value in attrs.values():
        if isinstance(value, Graph):
            yield value
        elif isinstance(value, list):
            for v in value:
                if isinstance(v, Graph):
                    yield v


def _rename_free_values(graph, rename):
    """Inside an inlined function, a subgraph may use the function's values from the outer scope."""
    local = set(graph.initializers) | {v.name for v in graph.inputs}
    for node in graph.nodes:
        node.inputs = [x if (not x or x in local) else rename.get(x, x) for x in node.inputs]
        local.update(node.outputs)
        for g in node.subgraphs():
            _rename_free_values(g, {k: v for k, v in rename.items() if k not in local})
    for spec in graph.outputs:
        if spec.name not in local:
            spec.name = rename.get(spec.name, spec.name)


class ModelIR:
    """A loaded model: its graph plus what the file says about itself."""

    def __init__(self, graph, opsets, metadata, ir_version, producer, doc_string, domain, model_version):
        self.graph = graph
        self.opsets = opsets
        self.metadata = metadata
        self.ir_version = ir_version
        self.producer = producer
        self.doc_string = doc_string
        self.domain = domain
        self.model_version = model_version
        self.nbytes = 0  # the file's size plus its external data (``build`` sets it); limits scale with it
        self.notes = []  # quirks of the file tinyrt tolerated, e.g. a negative declared dimension


def build(model, folder=None, files_in_memory=None):
    """ModelIR of a decoded Model message. ``files_in_memory`` ({location: bytes}) holds external data files
    the caller gives instead of the files beside the model (SessionOptions.add_external_initializers_from_files_in_memory)."""
    builder = _Builder(model, folder)
    builder.external.in_memory = dict(files_in_memory or {})
    graph = builder.graph(model.graph, builder.opsets)
    metadata = {e.key: e.value for e in model.metadata_props}
    producer = (model.producer_name + " " + model.producer_version).strip()
    ir = ModelIR(graph, builder.opsets, metadata, model.ir_version, producer, model.doc_string,
                 model.domain, model.model_version)
    ir.nbytes = (getattr(model, "file_size", 0) + builder.external.nbytes    # the model's size, for limits
                 + sum(len(d) for d in builder.external.in_memory.values()))
    ir.notes = builder.notes
    return ir

