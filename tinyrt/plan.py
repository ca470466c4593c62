"""From a graph to something that runs: bind each node to its op, check everything at load, order the
nodes once, and know when each value is last used so it can be freed straight after.

``Plan.run`` is the whole executor: a loop over steps that calls plain numpy functions (or, from a
signature's second run, the compiled program of that signature: program.py).
"""
import os

import numpy as np

from . import limits, program
from .errors import ModelError
from .graph import Graph
from .ops import registry
from .order import graph_free_values, names_read, topological_order
from .steps import Step, _account, _same, _stopping, call, invoke, normalize, prepared_call

_STEP_BY_STEP = "step by step"  # a signature's entry in Plan._programs when its program cannot serve it


class Constants(dict):
    """A plan's constants by name; ``dequantized``: those constant folding made from 8-bit integers, with
    the integers (Graph.dequantized), where they are still that constant: for kernels that read them."""

    def __init__(self, values, dequantized):
        super().__init__(values)
        self.dequantized = {name: d for name, d in dequantized.items() if values.get(name) is d[0]}


class Plan:
    """A graph ready to run: steps in order, each freeing the values it used last."""

    def __init__(self, graph, outer_names=()):
        self.graph = graph
        self.constants = Constants(graph.initializers, graph.dequantized)
        self.input_names = [v.name for v in graph.inputs]
        self.output_names = [v.name for v in graph.outputs]
        self.free_names = graph_free_values(graph) if outer_names else []
        scope = None  # every name a subgraph may read from here (made for the first node with subgraphs)
        self.steps = []
        for node in topological_order(graph, outer_names):
            impl = registry.resolve(node.op_type, node.domain, node.opset)
            subplans = None
            for name, value in node.attrs.items() if node.attrs else ():
                if isinstance(value, Graph) or (isinstance(value, list) and value and isinstance(value[0], Graph)):
                    if scope is None:
                        scope = set(outer_names) | set(self.constants) | set(self.input_names)
                        scope.update(x for n in graph.nodes for x in n.outputs)
                    subplans = subplans or {}
                    subplans[name] = Plan(value, scope) if isinstance(value, Graph) else [Plan(g, scope) for g in value]
            self.steps.append(Step(node, impl, subplans))
        self._plan_frees()
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
        """Each step's ``free_after``: the values it is the last to read (or writes, when nobody reads them).
        Found from the end backwards: a value's last use is the first one met. ``later`` holds the values read
        after the step at hand and produced before it: once past a value's producer no step reads it any
        more (the order is topological), so the set stays as small as the values alive at once (a chain's:
        one), not every name of the graph (a million: 32 MB)."""
        kept = set(self.output_names) | set(self.constants)  # never freed
        later = set(kept)
        for step in reversed(self.steps):
            free = []
            for name in names_read(step.node):
                if name and name not in later:
                    later.add(name)
                    free.append(name)
            for name in step.outputs:
                if name and name not in later:
                    free.append(name)  # an output nobody reads is freed at once
                elif name not in kept:
                    later.discard(name)  # no step before its producer reads it
            step.free_after = tuple(free)  # (a node-step keeps nothing of its own when it is its inputs: a chain's)

    def run(self, feeds, outer_env=None, hook=None, stop=None, width=None):
        """Run with ``feeds`` {input name: array}; returns {output name: array}.

        Without a hook, the run is the plan's compiled program for the signature of its inputs (see
        ``tinyrt/program.py``); the first run of a signature goes through ``run_steps`` and makes it.

        ``hook(step, inputs, compute)``, when given, runs every step instead: it calls ``compute()`` for the
        step's outputs (a list) and returns them, and may time, print or keep them (profiling, tracing).
        ``step.node`` is the graph node, ``step.fn`` the function (a numba kernel wrapper on that path).

        ``stop``: the run's RunOptions; the run stops (RunTerminated) soon after its ``terminate`` is set.
        ``width``: the threads the kernels run on (numba path): programs are made per width, as their kernels'
        calls (and segments) are prepared for one.
        """
        if hook is not None or len(feeds) > len(self.input_names):  # (more: feeds overriding initializers)
            return self.run_steps(feeds, outer_env, _stopping(stop, hook))
        inputs = tuple(feeds[name] if name in feeds else self.constants.get(name) for name in self.input_names)
        outer = tuple(outer_env.get(name) for name in self.free_names) if outer_env is not None \
            else (None,) * len(self.free_names)
        key = (program.signature(inputs), program.signature(outer), limits.current().tensor_bytes, width)
        compiled = self._programs.get(key)
        if compiled is _STEP_BY_STEP:
            return self.run_steps(feeds, outer_env, _stopping(stop))
        if compiled is None:
            if self._mode == "off" or not self._program_fits(key[2]):
                return self.run_steps(feeds, outer_env, _stopping(stop))
            if self._mode == "check":
                return self._checked_first_run(key, feeds, outer_env, inputs, outer, stop)
            if key not in self._seen:  # once: a signature seen once may never come back (a Loop's growing
                if len(self._seen) >= 64:  # carried value), and making a program costs a few runs' time
                    self._seen.clear()
                self._seen.add(key)
                return self.run_steps(feeds, outer_env, _stopping(stop))
            return self._first_run(key, feeds, outer_env, inputs, outer, stop)
        try:
            return dict(zip(self.output_names, compiled.run(inputs, outer, stop)))
        except program.RankChanged:  # the program assumed the first run's ranks: step by step from now on
            self._programs[key] = _STEP_BY_STEP
            return self.run_steps(feeds, outer_env, _stopping(stop))

    def _program_fits(self, tensor_bytes):
        """Whether this plan is small enough for a program. Python compiles a program's source at about 12 KB
        a step, for a moment (a 1.2 MB file of 50,000 tiny nodes would take 580 MB on its second run): a
        plan of more than max(MIN_PROGRAM_STEPS, the tensor limit / PROGRAM_STEP_BYTES) steps runs step by
        step, so a program costs at most about the tensor limit (docs/limits.md)."""
        return not tensor_bytes or len(self.steps) <= max(program.MIN_PROGRAM_STEPS,
                                                          tensor_bytes // program.PROGRAM_STEP_BYTES)

    def _first_run(self, key, feeds, outer_env, inputs, outer, stop=None):
        """Run step by step, recording what the program of this signature needs; then make it."""
        kinds, fixed = program.classify(self, inputs, outer)
        costs = [None] * len(self.steps)
        lengths = {}  # step index -> the length of a "ranked" step's result (a Shape of a value sized by data)
        folded = {}
        special = {}  # step index -> (call, work): a call prepared for this signature (steps.prepared_call)
        # a dynamic step whose outputs were arrays -> each input's bytes where they are the same on every run
        # (absent, or its size follows from the signature: a name in ``sized``), else None
        plain = {}
        sized = set(self.constants)
        sized.update(name for name, v in zip(self.input_names + self.free_names, inputs + outer)
                     if type(v) is np.ndarray)
        sized.update(x for step, kind in zip(self.steps, kinds) if kind != "dynamic" for x in step.outputs)

        def record(step, args, compute):
            if stop is not None and stop.terminate:
                _stopping(stop)(step, args, compute)  # raises
            i = index[id(step)]
            results = normalize(step, invoke(step, args, step.bound_attrs(env_of[0])))
            costs[i] = _account(step, args, results)
            if kinds[i] == "fold" and all(type(r) is np.ndarray and r.size <= program.MAX_FOLDED_ELEMENTS
                                          for r in results):
                folded[i] = [r.copy() for r in results]  # (this run may hand views of its own to the caller)
            elif kinds[i] == "static":
                made = prepared_call(step, args, tuple(bool(x) and x in fixed for x in step.inputs))
                if made is not None:
                    special[i] = made
            elif kinds[i] == "ranked":
                lengths[i] = results[0].size
            elif kinds[i] == "dynamic" and not step.subplans and all(type(r) is np.ndarray for r in results):
                plain[i] = tuple(limits.nbytes(a) if not x or x in sized else None for x, a in zip(step.inputs, args))
            return results

        index = {id(step): i for i, step in enumerate(self.steps)}
        env_of = [None]
        results = self.run_steps(feeds, outer_env, record, env_of)
        if len(self._programs) >= program.MAX_PROGRAMS:
            self._programs.clear()
        self._programs[key] = self.last_program = program.Program(self, kinds, costs, folded, special, lengths, plain)
        return results

    def _checked_first_run(self, key, feeds, outer_env, inputs, outer, stop=None):
        """TINYRT_PROGRAM=check (the test suite): make the program at once and run it too; its results
        must be the loop's, bit for bit."""
        budget = limits.current()
        work = budget.work
        results = self._first_run(key, feeds, outer_env, inputs, outer, stop)
        if any(s.node.op_type in registry.RANDOM_OPS for s in self.steps):
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
        return [p.source for p in self._programs.values() if p is not _STEP_BY_STEP]

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
