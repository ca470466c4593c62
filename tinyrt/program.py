"""The lean executor: a plan's run written out as straight-line Python, compiled once per input signature.

``Plan.run`` walks its steps in a loop, looking every value up in a dict and checking every result against
the session's limits. That costs a few microseconds a node: more than a small numpy op itself. So the
first run of a plan with a given *signature* (the shapes and dtypes of its inputs, and the session's
tensor limit) goes through that loop and records, for each step, whether its result sizes follow from
the signature alone; then tinyrt writes the run as a Python function::

    def run(I, O, R):
        t0, = I
        t1 = conv_kernel_2(t0, k1, k2, **a2)     # step 2, FusedConv
        del t0
        t3 = relu_3(t1)                          # step 3, Relu
        ...
        return (t9,)

and every later run with that signature calls it. What it saves:

* values live in local variables (``t<slot>``), not a dict; each is deleted straight after its last use;
* functions, weights and attributes are bound once, as globals of the generated function;
* a step whose output sizes follow from the signature (a conv, an add, a reshape to a constant shape...)
  was checked against the tensor limit on the first run; its work (bytes read and written, see
  ``limits``) is the same on every run, so the program spends the sum of those once, at the start, and
  checks nothing per node. A step whose sizes depend on data (NonZero, NonMaxSuppression, TopK with a
  computed k, Reshape to a computed shape, If, Loop...) is still checked and charged as it runs;
* the Shape of such a value is as long as the value's rank, which is the first run's on every run in
  practice: the program runs it, and the shape arithmetic after it (a detector's ``min(k, boxes)`` before
  its TopK), as static steps, and checks that one length on every run (``RankChanged``: should a rank ever
  differ, the plan runs that signature step by step from then on);
* RunOptions.terminate (``R``, set by another thread to stop a run) is looked at every few steps and
  before each subgraph, so a run with RunOptions runs the program too;
* a static step of a small op runs as a prepared call (``ops.registry.prepared``): ``np.add`` itself for
  an Add, ``data.reshape(dims)`` for an Unsqueeze of constant axes, a Gather's constant indices checked
  once; a kernel's geometry and entry point bound once (``specialize``, tinyrt/kernel_wrappers);
* a value's variable is reused once the value is dead, so the frame stays small (see ``_Slots``);
* a step whose *values* follow from the signature (Shape of a known shape, and the Gather / Concat /
  Unsqueeze arithmetic on it) is not run at all: the values of the first run become constants (``v<slot>``).

Security: no text from the model file appears in the source: identifiers are generated (``t7``, ``k3``,
``relu_3``: the function's own Python name and the step number), attribute keywords are those of the op's
signature (a model's unknown attributes are refused at load), and names, attribute values and constants
live in side tables (the function's globals). ``tinyrt code MODEL`` prints the source.

Errors: the program is not wrapped in a try per step. When it raises, the line it stopped at names the
step (a table from line to step), and the error is reported as ``steps.call`` would have reported it.
"""
import heapq
import re

import numpy as np

from . import limits
from .errors import InputError, ModelError, RunTerminated, TinyrtError
from .kernel_wrappers.segment import find as find_segments
from .ops.registry import TINYRT_DOMAIN
from .order import free_values, names_read
from .ownership import _memory_owner
from .program_checks import _checked, _checked_one, _fresh_outputs, _many, _one, checker
from .steps import _shapes, call

FILENAME = "<tinyrt program>"
MAX_PROGRAMS = 8          # signatures kept per plan (a dynamic batch fed 1, 2, ... sizes)
MIN_PROGRAM_STEPS = 2048  # a plan this long always gets programs (~28 MB); a longer one if the tensor limit allows:
PROGRAM_STEP_BYTES = 16384  # compiling costs ~12 KB a step, so steps * 16 KiB must fit in the tensor limit
MAX_FOLDED_ELEMENTS = 4096  # a value known from the signature becomes a constant up to this size
STOP_CHECK_EVERY = 4        # steps between two looks at RunOptions.terminate

# op type -> the inputs whose *values* (not only shapes) size the output. An op listed here, with those
# inputs known (constants or values folded from the signature), gives results whose sizes follow from the
# sizes of its inputs. Ops not listed (NonZero, NonMaxSuppression, Compress, Unique, If, Loop, Scan,
# sequences, random ops, Dropout...) are checked as they run.
SIZED_BY = {}
for _op in ("Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization BitShift "
            "BitwiseAnd BitwiseNot BitwiseOr BitwiseXor Cast CastLike Ceil Celu Clip Concat Conv ConvTranspose Cos "
            "Cosh CumSum DepthToSpace Div Einsum Elu Equal Erf Exp Flatten Floor FusedConv Gather GatherElements "
            "GatherND Gelu Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual "
            "GroupNormalization HardSigmoid HardSwish Hardmax Identity InstanceNormalization IsInf IsNaN LRN "
            "LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax LpPool MatMul Max MaxPool Mean "
            "MeanVarianceNormalization Min Mish Mod Mul Neg Not Or PointwiseDepthwise PRelu Pow Reciprocal Relu "
            "Round ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Softmax Softplus Softsign "
            "SpaceToDepth Sqrt Sub Sum Tan Tanh ThresholdedRelu Transpose Trilu Where Xor "
            # the quantization ops are shaped like their data input (the integer convs / matmuls like Conv /
            # MatMul): unlisted, a QDQ model, whose first op rounds the input, ran every step checked
            "QuantizeLinear DequantizeLinear DynamicQuantizeLinear QLinearConv QLinearMatMul ConvInteger "
            "MatMulInteger QuantizeDequantize").split():
    SIZED_BY[_op] = ()
for _op in ("Reshape Squeeze Unsqueeze Split Expand Tile TopK OneHot Upsample ReduceL1 ReduceL2 ReduceLogSum "
            "ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare").split():
    SIZED_BY[_op] = (1,)
SIZED_BY.update({"Slice": (1, 2, 3, 4), "Pad": (1, 3), "Resize": (2, 3), "ConstantOfShape": (0,),
                 "Range": (0, 1, 2), "ConcatShuffle": (-2, -1)})  # (its last two inputs are shapes)
SIZED_BY["Constant"] = ()  # (the passes make a graph's Constants initializers, not a subgraph's: an If's)
SHAPE_OPS = {"Shape", "Size"}  # their values follow from their input's size alone
CONSTANT_OPS = {"Constant"}    # and theirs from their attributes
_DOMAINS = ("", TINYRT_DOMAIN)


def signature(values):
    """What a run's program is specialised on: each value's shape and dtype (or its kind)."""
    sig = []
    for v in values:
        if type(v) is np.ndarray:
            sig.append((v.shape, v.dtype))
        else:
            sig.append(type(v))
    return tuple(sig)


def classify(plan, inputs, outer):
    """For each step: "fold" (values follow from the signature), "static" (sizes do), "ranked" (a Shape or
    Size of a value whose size depends on data: its own size is that value's rank, assumed to be the first
    run's and checked on every run), or "dynamic"; and the set of names whose values are the same on every
    run of the signature (constants not fed, and what "fold" steps make).

    ``inputs`` and ``outer`` are the run's input and outer values (their types matter, not their data).
    """
    sized = set(plan.constants)     # names whose sizes follow from the signature
    valued = set(plan.constants)    # names whose values do
    for name, v in list(zip(plan.input_names, inputs)) + list(zip(plan.free_names, outer)):
        valued.discard(name)
        if type(v) is np.ndarray:
            sized.add(name)
        else:
            sized.discard(name)
    kinds = []
    for step in plan.steps:
        node = step.node
        rule = SIZED_BY.get(node.op_type) if node.domain in _DOMAINS else None
        used = [x for x in step.inputs if x]
        kind = "dynamic"
        if rule is not None and not step.subplans and all(x in sized for x in used) and all(
                i >= len(step.inputs) or not step.inputs[i] or step.inputs[i] in valued for i in rule):
            kind = "static"
            if node.op_type in SHAPE_OPS or node.op_type in CONSTANT_OPS or (used and all(x in valued for x in used)):
                kind = "fold"
        elif node.op_type in SHAPE_OPS and node.domain in _DOMAINS and not step.subplans:
            kind = "ranked"
        if kind != "dynamic":
            sized.update(x for x in step.outputs if x)
        if kind == "fold":
            valued.update(x for x in step.outputs if x)
        kinds.append(kind)
    return kinds, valued


class Program:
    """One plan's run, compiled for one signature: ``run(inputs, outer)`` -> list of outputs."""

    def __init__(self, plan, kinds, costs, folded, special=None, lengths=None, plain=()):
        self.plan = plan
        self.lines = {}           # line of the source -> step index
        self.static_cost = 0
        self.first_static = None
        out_names = set(plan.output_names)
        slots = self.slots = _Slots()  # value name -> its local variable's number
        g = {"_ndarray": np.ndarray, "_one": _one, "_many": _many, "_checked": _checked,
             "_checked_one": _checked_one, "_spend": self._spend,
             "_stop": self._stop, "_rank_changed": _rank_changed}
        self.globals = g
        const_ids = {}

        def ref(name):
            """The expression that reads value ``name`` in the program."""
            if name in folded_names:
                return folded_names[name]
            if name in local:
                return "t%d" % slots[name]
            if name in plan.constants:
                if name not in const_ids:
                    const_ids[name] = "k%d" % len(const_ids)
                    g[const_ids[name]] = plan.constants[name]
                    self.idents[name] = const_ids[name]
                return const_ids[name]
            return "None"  # an outer value the enclosing run did not have (as Plan.run: a missing value)

        folded_names = {}
        kept = {}  # id -> the memory owner of a folded value (kept alive by the program's globals)
        local = set()
        self.idents = {}          # value name -> identifier (for the legend)
        self.called = {}          # step index -> the function's identifier
        src = ["def run(I, O, R):"]
        for names, what in ((plan.input_names, "I"), (plan.free_names, "O")):
            if names:
                for name in names:
                    local.add(name)
                    slots.take(name)
                src.append("    %s = %s" % (", ".join(_target(slots, n, local) for n in names) + ",", what))
        src.append("    _spend()")
        last_use = _last_uses(plan)
        emitted = 0
        unrun = {i for i in folded if kinds[i] == "fold" and  # (constants: no line of the program)
                 all(name not in out_names for name in plan.steps[i].outputs if name)}
        segments = find_segments(plan, special, unrun) if special else {}
        inside = {i: first for first, seg in segments.items() for i in seg.steps[1:]}
        for i, step in enumerate(plan.steps):
            kind = kinds[i]
            if i in inside or i in segments:
                self.static_cost += costs[i] + special[i][1]
                if self.first_static is None:
                    self.first_static = step.node
                if i in segments:  # the first conv of a segment: the call that runs them all
                    seg = segments[i]
                    fname = "segment_%d" % i
                    g[fname] = seg
                    for name in seg.results:  # the last layer's output (and the values read after it too)
                        local.add(name)
                        slots.take(name)
                    src.append("    %s = %s(%s)  # steps %d-%d, %s in one compiled call"
                               % (", ".join(_target(slots, name, local) for name in seg.results), fname,
                                  ref(seg.input), i, seg.steps[-1], seg.op_type))
                    self.lines[len(src)] = i
                self.called[i] = "segment_%d" % inside.get(i, i)
                self._free(src, last_use.get(i, ()), local, out_names)
                continue
            if i in unrun:
                for name, value in zip(step.outputs, folded[i]):
                    if name:
                        vid = "v%d" % len(folded_names)
                        g[vid] = value
                        folded_names[name] = vid
                        owner = _memory_owner(value)
                        kept[id(owner)] = owner
                        self.idents[name] = vid
                continue
            if kind != "dynamic":
                self.static_cost += costs[i]
                if self.first_static is None:
                    self.first_static = step.node
            if not emitted % STOP_CHECK_EVERY or step.subplans:  # RunOptions.terminate, set by another thread
                src.append("    if R is not None and R.terminate: _stop(%d)" % i)
                self.lines[len(src)] = i
            emitted += 1
            fn, bound = step.fn, getattr(step.fn, "attributes_bound", False)
            if i in (special or {}):  # a kernel specialised to this signature: its work is known too
                fn, work = special[i]
                self.static_cost += work
                bound = True
            fname = "%s_%d" % (_py_name(fn), i)
            g[fname] = fn
            self.called[i] = fname
            args = [ref(x) if x else "None" for x in step.inputs]
            first_line = len(src) + 1
            if step.subplans:
                g["_sub_%d" % i] = _subplan_caller(step, plan)
                outer = [ref(x) for x in _outer_names(step)]
                call = "_sub_%d((%s), (%s))" % (i, _tuple(args), _tuple(outer))
            else:
                keywords = []
                attrs = {} if bound else step.attrs
                for j, (key, value) in enumerate(sorted(attrs.items())):
                    own = _own_keyword(step, key)
                    g["a%d_%d" % (i, j)] = value
                    keywords.append("%s=a%d_%d" % (own, i, j))
                call = "%s(%s)" % (fname, ", ".join(args + keywords))
                g["s%d" % i] = step
                one = len(step.outputs) == 1 and step.outputs[0]
                if kind == "dynamic" and i in plain:  # checked and charged knowing what it reads (checker)
                    g["_checked_%d" % i] = checker(step, plain[i], one)
                    call = "_checked_%d(%s, (%s))" % (i, call, _tuple(args))
                elif kind == "dynamic":
                    call = "%s(s%d, %s, (%s))" % ("_checked_one" if one else "_checked", i, call, _tuple(args))
                elif len(step.outputs) != 1:
                    call = "_many(s%d, %s)" % (i, call)
            outs = [x for x in step.outputs]
            for x in outs:
                if x:
                    local.add(x)
                    slots.take(x)
            if step.subplans or (kind == "dynamic" and not one) or len(outs) != 1:
                src.append("    r = %s  # step %d, %s" % (call, i, step.impl.op_type))
                for j, x in enumerate(outs):
                    if x:
                        src.append("    %s = r[%d]" % (_target(slots, x, local), j))
            else:
                t = _target(slots, outs[0], local)
                src.append("    %s = %s  # step %d, %s" % (t, call, i, step.impl.op_type))
                if kind != "dynamic":
                    src.append("    if %s.__class__ is not _ndarray: %s = _one(s%d, %s)" % (t, t, i, t))
                if kind == "ranked":  # the shape of a value sized by data: as long as on the first run?
                    src.append("    if %s.size != %d: _rank_changed(%d)" % (t, lengths[i], i))
            self._free(src, last_use.get(i, ()), local, out_names)
            for line in range(first_line, len(src) + 1):
                self.lines[line] = i
        if kept:  # an output may be a view of a folded value (an Unsqueeze of a Shape): the caller gets a copy
            g["_fresh"] = _fresh_outputs(kept)
            src.append("    return _fresh((%s))" % _tuple([ref(x) for x in plan.output_names]))
        else:
            src.append("    return (%s)" % _tuple([ref(x) for x in plan.output_names]))
        self.source = "\n".join(src) + "\n"
        for name, ident in _value_idents(slots.of).items():
            self.idents.setdefault(name, ident)
        code = compile(self.source, FILENAME, "exec")
        exec(code, g)  # our own generated source: identifiers and references to g only (see above)
        self.fn = g["run"]
        self.code = g["run"].__code__

    def _free(self, src, names, local, out_names):
        """``del`` the variables of values read for the last time (their numbers are free again)."""
        gone = [x for x in names if x in local and x not in out_names]
        if gone:
            src.append("    del " + ", ".join("t%d" % self.slots[x] for x in gone))
            local.difference_update(gone)
            self.slots.release(gone)

    def legend(self):
        """(identifier, what it is) for the program's values and steps: the model's names, kept out of the
        source (a reader's aid, printed by ``tinyrt code``)."""
        rows = []
        for name, ident in sorted(self.idents.items(), key=lambda kv: (kv[1][0], int(kv[1][1:]))):
            rows.append((ident, repr(name)))
        for i, step in enumerate(self.plan.steps):
            if i in self.called:
                fn = step.fn
                kind = getattr(fn, "__module__", "") + "." + (getattr(fn, "__name__", None) or type(fn).__name__)
                rows.append((self.called[i], "%s -> %s" % (step.node.describe(), kind)))
        return rows

    def _stop(self, i):
        raise RunTerminated("the run stopped before %s: its RunOptions.terminate was set"
                            % self.plan.steps[i].node.describe())

    def _spend(self):
        if self.static_cost and limits.current().work is not None:
            limits.spend(self.static_cost, self.first_static)

    def run(self, inputs, outer, stop=None):
        """The outputs for ``inputs`` and ``outer``; ``stop``: RunOptions, whose ``terminate`` is looked at
        every few steps (and before each subgraph)."""
        try:
            return self.fn(inputs, outer, stop)
        except (TinyrtError, RankChanged):
            raise
        except BaseException as e:
            step, args = self._where(e)
            if step is None:
                raise
            raise _as_tinyrt(step, args, e) from e

    def _where(self, error):
        """The step the program stopped in, and its inputs, from the traceback of ``error``."""
        tb = error.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code is self.code:
                i = self.lines.get(tb.tb_lineno)
                if i is None:
                    return None, None
                step = self.plan.steps[i]
                values = tb.tb_frame.f_locals
                args = []
                for x in step.inputs:
                    if not x:
                        args.append(None)
                    elif x in self.plan.constants:
                        args.append(self.plan.constants[x])
                    else:
                        args.append(values.get("t%d" % self.slots.of.get(x, -1)))
                return step, args
            tb = tb.tb_next
        return None, None


class _Slots:
    """The program's local variables, ``t0``, ``t1``, ...: a value takes the lowest number free when it is
    made and gives it back after its last use (its ``del``), as a register allocator would.

    Why reuse them: the frame of a Python function holds all its locals, and CPython 3.11+ keeps frames on
    a stack of 16 KB chunks that it allocates (mmap) when a frame does not fit and frees when that frame
    returns. A detector of 3,000 nodes written with one variable a value has a frame of 14 KB: whether the
    functions it calls fit behind it then depends on how deep the caller's stack is, and when they do not,
    every call maps and unmaps a chunk (seen: the same run at 27 ms or 60 ms depending on the script that
    called it). With reuse the frame holds only the values alive at once: tens, not thousands.
    """

    def __init__(self):
        self.of = {}     # value name -> number (a name keeps its number while it is alive)
        self._free = []  # numbers given back, reused lowest first
        self.count = 0   # numbers used in all

    def __getitem__(self, name):
        return self.of[name]

    def take(self, name):
        if name in self.of:
            return
        if self._free:
            self.of[name] = heapq.heappop(self._free)
        else:
            self.of[name] = self.count
            self.count += 1

    def release(self, names):
        for name in names:
            heapq.heappush(self._free, self.of[name])


def _as_tinyrt(step, args, e):
    if isinstance(e, MemoryError):
        return limits.LimitError("%s ran out of memory (inputs %s)" % (step.node.describe(), _shapes(args)))
    if isinstance(e, RecursionError):
        return ModelError("%s nests too deeply (Python's recursion limit)" % step.node.describe())
    if not isinstance(e, Exception):
        return e
    return InputError("%s failed on inputs (%s): %s: %s" % (step.node.describe(), _shapes(args), type(e).__name__, e))


class RankChanged(Exception):
    """A value sized by data came with another rank than on the program's first run (a Shape of it is
    longer or shorter): ``Plan.run`` runs this signature step by step from then on."""


def _rank_changed(i):
    raise RankChanged(i)


def _subplan_caller(step, plan):
    names = _outer_names(step)

    def run(args, outer):
        return call(step, list(args), step.bound_attrs(dict(zip(names, outer))))
    return run


def _outer_names(step):
    seen = []
    for name in free_values(step.node):
        if name not in seen:
            seen.append(name)
    return seen


def _last_uses(plan):
    """step index -> names read for the last time there (or made there and never read)."""
    last = {}
    for i, step in enumerate(plan.steps):
        for name in names_read(step.node):
            if name:
                last[name] = i
        for name in step.outputs:
            if name and name not in last:
                last[name] = i
    for name in plan.input_names + plan.free_names:
        last.setdefault(name, -1)
    by_step = {}
    for name, i in last.items():
        by_step.setdefault(i, []).append(name)
    return by_step


def _target(slots, name, local):
    return "t%d" % slots[name] if name else "_"


def _value_idents(slots):
    return {name: "t%d" % i for name, i in slots.items()}


def _tuple(items):
    return ", ".join(items) + ("," if len(items) == 1 else "")


def _py_name(fn):
    name = getattr(fn, "__name__", None) or type(fn).__name__
    name = re.sub(r"[^0-9A-Za-z_]", "_", name).strip("_").lower() or "op"
    return name if name[0].isalpha() else "op_" + name


def _own_keyword(step, key):
    """The keyword as tinyrt's op signature spells it (a model's unknown attributes were refused at load)."""
    for own in list(step.impl.attributes) + ["_num_outputs", "_opset"]:
        if own == key and own.isidentifier():
            return own
    raise ModelError("%s: attribute %r is not one tinyrt's %s takes" % (step.node.describe(), key, step.impl.op_type))
