"""From a graph to something that runs: bind each node to its op, check everything at load, order the
nodes once, and know when each value is last used so it can be freed straight after.

``Plan.run`` is the whole executor: a loop over steps that calls plain numpy functions.
"""
import heapq
import inspect
import os

import numpy as np

from . import dtypes, limits, program
from .errors import InputError, ModelError, RunTerminated, TinyrtError, UnsupportedError
from .graph import Graph
from .ops.sequence import Sequence
from .ops import registry

MAX_OPSET = 28       # the newest default-domain opset tinyrt knows (onnx 1.23)
MIN_OPSET = 7        # older files may still load: each op says which versions it implements
_NONDETERMINISTIC = {"RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Multinomial",
                     "Bernoulli"}


class Step:
    """One node, bound: the function to call and the names of its inputs and outputs."""

    def __init__(self, node, impl, subplans):
        self.node = node
        self.impl = impl
        self.fn = impl.fn
        self.inputs = node.inputs
        self.outputs = node.outputs
        self.subplans = subplans  # attribute name -> Plan or list of Plans
        self.attrs = {k: v for k, v in node.attrs.items() if k not in subplans}
        self.attrs.update(impl.executor_values(node, impl.wants))
        self.free_after = ()  # values whose last use is this step
        self.wanted = sum(1 for name in self.outputs if name)  # outputs someone reads
        self.last_wanted = max((i for i, name in enumerate(self.outputs) if name), default=-1)

    def bound_attrs(self, env):
        """Attributes for one call; graph attributes become functions that run the subgraph in ``env``."""
        if not self.subplans:
            return self.attrs
        attrs = dict(self.attrs)
        for name, plan in self.subplans.items():
            if isinstance(plan, list):
                attrs[name] = [p.as_function(env) for p in plan]
            else:
                attrs[name] = plan.as_function(env)
        return attrs


def check_support(graph, opsets):
    """Every reason this graph cannot run, as one UnsupportedError (or the first ModelError)."""
    problems = []
    for domain, version in opsets.items():
        if domain == "" and version > MAX_OPSET:
            problems.append("opset %d of the default domain is newer than tinyrt knows (%d)" % (version, MAX_OPSET))
    for node in graph.all_nodes():
        where = node.describe()
        if node.opset is None:
            problems.append("%s: its domain %r is not among the model's opset imports" % (where, node.domain))
            continue
        impl = registry.resolve(node.op_type, node.domain, node.opset)
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
        for g in node.subgraphs():
            for spec in _declared_values(g):
                yield spec


def topological_order(graph, outer_names=()):
    """The nodes in an order where each runs after everything it reads; ModelError names what is wrong."""
    available = set(graph.initializers) | {v.name for v in graph.inputs} | set(outer_names)
    producer = {}
    for node in graph.nodes:
        for out in node.outputs:
            if not out:
                continue
            if out in producer or out in graph.initializers or out in {v.name for v in graph.inputs}:
                raise ModelError("value %r is produced twice (again by %s)" % (out, node.describe()))
            producer[out] = node
    index = {id(node): i for i, node in enumerate(graph.nodes)}
    waiting = [0] * len(graph.nodes)               # how many producers each node still waits for
    readers = [[] for _ in graph.nodes]            # the nodes waiting for each node
    for i, node in enumerate(graph.nodes):
        reads = set(x for x in node.inputs if x) | set(free_values(node))
        for name in reads:
            if name not in available and name not in producer:
                raise ModelError("%s reads %r, which no node, input or initializer produces" % (node.describe(), name))
        needs = {index[id(producer[x])] for x in reads if x in producer and x not in available}
        waiting[i] = len(needs)
        for j in needs:
            readers[j].append(i)
    # Kahn's algorithm, always taking the ready node that comes first in the file: a file already in
    # topological order runs in its own order, and any order costs O(n log n), not O(n^2).
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(graph.nodes[i])
        for j in readers[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, j)
    if len(order) < len(graph.nodes):
        names = ", ".join([n.describe() for i, n in enumerate(graph.nodes) if waiting[i] > 0][:5])
        raise ModelError("the graph has a cycle through %s" % names)
    for spec in graph.outputs:
        if spec.name not in available and spec.name not in producer:
            raise ModelError("graph output %r is produced by nothing" % spec.name)
    return order


def free_values(node):
    """Names a node's subgraphs read from the enclosing scope."""
    names = []
    for g in node.subgraphs():
        names.extend(_graph_free_values(g))
    return names


def _graph_free_values(graph):
    defined = set(graph.initializers) | {v.name for v in graph.inputs}
    free = []
    for node in graph.nodes:
        for name in list(node.inputs) + free_values(node):
            if name and name not in defined and name not in free:
                free.append(name)
        defined.update(node.outputs)
    for spec in graph.outputs:
        if spec.name not in defined and spec.name not in free:
            free.append(spec.name)
    return free


class Plan:
    """A graph ready to run: steps in order, each freeing the values it used last."""

    def __init__(self, graph, outer_names=()):
        self.graph = graph
        self.constants = dict(graph.initializers)
        self.input_names = [v.name for v in graph.inputs]
        self.output_names = [v.name for v in graph.outputs]
        self.free_names = _graph_free_values(graph) if outer_names else []
        known = set(outer_names) | set(self.constants) | set(self.input_names)
        scope = known | set(x for n in graph.nodes for x in n.outputs)
        self.steps = []
        for node in topological_order(graph, outer_names):
            impl = registry.resolve(node.op_type, node.domain, node.opset)
            subplans = {}
            for name, value in node.attrs.items():
                if isinstance(value, Graph):
                    subplans[name] = Plan(value, scope)
                elif isinstance(value, list) and value and isinstance(value[0], Graph):
                    subplans[name] = [Plan(g, scope) for g in value]
            self.steps.append(Step(node, impl, subplans))
        self._plan_frees()
        self._index = {id(step): i for i, step in enumerate(self.steps)}
        self._programs = {}  # signature -> program.Program (see ``run``)
        self._seen = set()   # signatures run once so far
        self.last_program = None
        # TINYRT_PROGRAM: "" (programs from a signature's second run on), "off" (never: always the loop),
        # "check" (from the first run, each checked against the loop: the test suite's setting)
        self._mode = os.environ.get("TINYRT_PROGRAM", "").strip().lower()
        # A graph input, outer value or output named "" (which ONNX uses for "absent") has no variable in a
        # program: such a graph always runs step by step.
        if "" in self.input_names or "" in self.free_names or "" in self.output_names:
            self._mode = "off"

    def _plan_frees(self):
        keep = set(self.output_names) | set(self.constants)
        last_use = {}
        for i, step in enumerate(self.steps):
            for name in list(step.inputs) + free_values(step.node):
                if name:
                    last_use[name] = i
            for name in step.outputs:  # an output nobody reads is freed at once
                if name and name not in last_use:
                    last_use[name] = i
        frees = {}
        for name, i in last_use.items():
            if name not in keep:
                frees.setdefault(i, []).append(name)
        for i, step in enumerate(self.steps):
            step.free_after = tuple(frees.get(i, ()))

    def run(self, feeds, outer_env=None, hook=None, stop=None):
        """Run with ``feeds`` {input name: array}; returns {output name: array}.

        Without a hook, the run is the plan's compiled program for the signature of its inputs (see
        ``tinyrt/program.py``); the first run of a signature goes through ``run_steps`` and makes it.

        ``hook(step, inputs, compute)``, when given, runs every step instead: it calls ``compute()`` for the
        step's outputs (a list) and returns them, and may time, print or keep them (profiling, tracing).
        ``step.node`` is the graph node, ``step.fn`` the function (a numba kernel wrapper on that path).

        ``stop``: the run's RunOptions; the run stops (RunTerminated) soon after its ``terminate`` is set.
        """
        if hook is not None or len(feeds) > len(self.input_names):  # (more: feeds overriding initializers)
            return self.run_steps(feeds, outer_env, _stopping(stop, hook))
        inputs = tuple(feeds[name] if name in feeds else self.constants.get(name) for name in self.input_names)
        outer = tuple(outer_env.get(name) for name in self.free_names) if outer_env is not None \
            else (None,) * len(self.free_names)
        key = (program.signature(inputs), program.signature(outer), limits.current().tensor_bytes)
        compiled = self._programs.get(key)
        if compiled is None:
            if self._mode == "off":
                return self.run_steps(feeds, outer_env, _stopping(stop))
            if self._mode == "check":
                return self._checked_first_run(key, feeds, outer_env, inputs, outer, stop)
            if key not in self._seen:  # once: a signature seen once may never come back (a Loop's growing
                if len(self._seen) >= 64:  # carried value), and making a program costs a few runs' time
                    self._seen.clear()
                self._seen.add(key)
                return self.run_steps(feeds, outer_env, _stopping(stop))
            return self._first_run(key, feeds, outer_env, inputs, outer, stop)
        return dict(zip(self.output_names, compiled.run(inputs, outer, stop)))

    def _first_run(self, key, feeds, outer_env, inputs, outer, stop=None):
        """Run step by step, recording what the program of this signature needs; then make it."""
        kinds = program.classify(self, inputs, outer)
        costs = [None] * len(self.steps)
        folded = {}
        special = {}  # step index -> (call, work): a kernel specialised to this signature (kernels_select)

        def record(step, args, compute):
            if stop is not None and stop.terminate:
                _stopping(stop)(step, args, compute)  # raises
            i = self._index[id(step)]
            results = normalize(step, invoke(step, args, step.bound_attrs(env_of[0])))
            costs[i] = _account(step, args, results)
            if kinds[i] == "fold" and all(type(r) is np.ndarray and r.size <= program.MAX_FOLDED_ELEMENTS
                                          for r in results):
                folded[i] = results
            elif kinds[i] == "static" and hasattr(step.fn, "specialize"):
                made = step.fn.specialize(args)
                if made is not None:
                    special[i] = made
            return results

        env_of = [None]
        results = self.run_steps(feeds, outer_env, record, env_of)
        if len(self._programs) >= program.MAX_PROGRAMS:
            self._programs.clear()
        self._programs[key] = self.last_program = program.Program(self, kinds, costs, folded, special)
        return results

    def _checked_first_run(self, key, feeds, outer_env, inputs, outer, stop=None):
        """TINYRT_PROGRAM=check (the test suite): make the program at once and run it too; its results
        must be the loop's, bit for bit."""
        budget = limits.current()
        work = budget.work
        results = self._first_run(key, feeds, outer_env, inputs, outer, stop)
        if any(s.node.op_type in _NONDETERMINISTIC for s in self.steps):
            return results
        spent = None if work is None else work - budget.work
        if work is not None:
            budget.work = work  # the program spends the same again: count it once
        again = dict(zip(self.output_names, self._programs[key].run(inputs, outer, stop)))
        if work is not None:
            budget.work = work - spent
        for name in self.output_names:
            if not _same(results[name], again[name]):
                raise ModelError("tinyrt bug: the compiled program of graph %r gives another %r than the "
                                 "step-by-step run" % (self.graph.name, name))
        return again

    def program_source(self):
        """The source of the programs made so far, one per signature (``tinyrt code`` prints them)."""
        return [p.source for p in self._programs.values()]

    def run_steps(self, feeds, outer_env=None, hook=None, env_of=None):
        """The executor as a loop over the steps, values in a dict (with a hook; and on a first run)."""
        env = dict(self.constants)
        if env_of is not None:
            env_of[0] = env
        if outer_env is not None:
            for name in self.free_names:
                if name in outer_env:
                    env[name] = outer_env[name]
        env.update(feeds)
        for step in self.steps:
            args = [env[x] if x else None for x in step.inputs]
            if hook is None:
                results = call(step, args, step.bound_attrs(env))
            else:
                results = hook(step, args, lambda: call(step, args, step.bound_attrs(env)))
            for name, value in zip(step.outputs, results):
                if name:
                    env[name] = value
            for name in step.free_after:
                env.pop(name, None)
        return {name: env[name] for name in self.output_names}

    def as_function(self, outer_env):
        """This (sub)graph as a function of its inputs, reading outer values from ``outer_env``."""
        def body(*inputs):
            if len(inputs) != len(self.input_names):
                raise ModelError("subgraph %r takes %d inputs, got %d"
                                 % (self.graph.name, len(self.input_names), len(inputs)))
            feeds = dict(zip(self.input_names, inputs))
            results = self.run(feeds, outer_env)
            return [results[name] for name in self.output_names]
        return body


def _stopping(stop, hook=None):
    """``hook`` (None: just compute), stopping the run before a step once ``stop.terminate`` is set."""
    if stop is None:
        return hook

    def stopping(step, inputs, compute):
        if stop.terminate:
            raise RunTerminated("the run stopped before %s: its RunOptions.terminate was set"
                                % step.node.describe())
        return compute() if hook is None else hook(step, inputs, compute)
    return stopping


def call(step, args, attrs):
    """Call one op; returns a list with one array per declared output.

    Each call spends from the run's work budget what it reads and writes (see ``limits``), and no result
    may be bigger than the session's limit on one tensor.
    """
    results = normalize(step, invoke(step, args, attrs))
    _account(step, args, results)
    return results


def invoke(step, args, attrs):
    """``step.fn(*args, **attrs)``, its exceptions turned into tinyrt's errors naming the node."""
    try:
        return step.fn(*args, **attrs)
    except TinyrtError:
        raise
    except MemoryError:
        raise limits.LimitError("%s ran out of memory (inputs %s)" % (step.node.describe(), _shapes(args))) from None
    except RecursionError:
        raise ModelError("%s nests too deeply (Python's recursion limit)" % step.node.describe()) from None
    except Exception as e:
        raise InputError("%s failed on inputs (%s): %s: %s"
                         % (step.node.describe(), _shapes(args), type(e).__name__, e)) from e


def normalize(step, result):
    """What an op returned as a list of values, one per declared output (arrays, or sequences)."""
    if type(result) is np.ndarray and step.last_wanted == 0:  # the common case, checked quickly
        return [result]
    if isinstance(result, Sequence) or not isinstance(result, (tuple, list)):
        result = (result,)  # one output (a sequence is one value, not a list of outputs)
    if len(result) <= step.last_wanted:
        raise ModelError("%s gives %d outputs, the node declares %d"
                         % (step.node.describe(), len(result), step.wanted))
    return [r if r is None or isinstance(r, (np.ndarray, Sequence)) else np.asarray(r)  # None: an empty optional
            for r in result[:len(step.outputs)]]


def _same(a, b):
    """Bit for bit the same value (arrays, sequences of arrays)."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and (a.tobytes() == b.tobytes() or np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b)


def _account(step, args, results):
    """Check the results against the tensor limit; spend what the step read and wrote. Returns that cost."""
    budget = limits.current()
    written = 0
    for r in results:
        n = limits.nbytes(r)
        if budget.tensor_bytes is not None and n > budget.tensor_bytes:
            limits.check_count(n, 1, step.node.describe())
        written += n
    read = 0
    for a in args:  # (a loop, not sum() over a generator: this runs for every node)
        read += a.nbytes if type(a) is np.ndarray and a.size else limits.nbytes(a)
    cost = limits.STEP_COST + written + read
    if budget.work is not None:
        limits.spend(cost, step.node)
    return cost


def _shapes(args):
    return ", ".join("None" if a is None else "%s%s" % (a.dtype, list(a.shape))
                     if isinstance(a, np.ndarray) else type(a).__name__ for a in args)
