"""One step of a plan: a node bound to its function, and how it is called: its exceptions named after the
node (``invoke``), its result normalised to one value per output (``normalize``), checked against the tensor
limit and charged to the run's work budget (``_account``). Shared by the step loop (plan.py) and the
compiled program (program.py)."""
import numpy as np

from . import limits
from .errors import InputError, ModelError, RunTerminated, TinyrtError
from .graph import NO_ATTRS
from .ops import registry
from .ops.sequence import Sequence


class Step:
    """A node bound to the function to call: what a plan runs. ``Step(node, impl, subplans)`` gives the node
    itself, bound (``node.impl``, ``node.fn``, ``node.free_after``: see graph.Node), when its op is called with
    the node's own attributes: a plan of a million tiny nodes holds no second million objects. A step whose op
    is called with other attributes than the node's is a StepWithAttributes (below), which holds its own.

    Either way a step has ``node``, ``impl``, ``fn`` (which a kernel wrapper may replace), ``free_after``
    (values whose last use is this step), ``attrs``, ``inputs``, ``outputs``, ``subplans``, ``wanted``,
    ``last_wanted`` and ``bound_attrs(env)``.
    """

    __slots__ = ()
    subplans = NO_ATTRS  # attribute name -> Plan or list of Plans (the subgraphs of If, Loop, Scan)

    def __new__(cls, node, impl, subplans):
        if cls is Step:
            if not (subplans or impl.wants):
                node.bind(impl)
                return node  # (not a Step: no __init__)
            cls = StepWithAttributes
        return object.__new__(cls)

    @property
    def inputs(self):
        return self.node.inputs

    @property
    def outputs(self):
        return self.node.outputs

    @property
    def wanted(self):
        """How many outputs someone reads."""
        return self.node.wanted

    @property
    def last_wanted(self):
        """The index of the last output someone reads (-1: none)."""
        return self.node.last_wanted

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


class StepWithAttributes(Step):
    """A step with attributes of its own: its graph attributes run as subplans (``bound_attrs``), or its op
    asks for executor values (``_num_outputs``, ``_opset``, ...: ops.registry.EXECUTOR_PARAMS)."""

    __slots__ = ("node", "impl", "fn", "free_after", "subplans", "attrs")

    def __init__(self, node, impl, subplans):
        self.node = node
        self.impl = impl
        self.fn = impl.fn
        self.free_after = ()  # values whose last use is this step
        self.subplans = subplans = subplans or NO_ATTRS
        self.attrs = {k: v for k, v in node.attrs.items() if k not in subplans}
        self.attrs.update(impl.executor_values(node, impl.wants))


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


def prepared_call(step, args, fixed):
    """A call of a static step prepared for one signature of the compiled program, as (call, work), or None.

    ``args``: the step's inputs on the signature's first run (later runs bring the same shapes and dtypes,
    and the same values where ``fixed[j]`` is true). A kernel wrapper prepares its kernel
    (``specialize``, tinyrt/kernel_wrappers); a plain op may offer its own prepared form (``prepared_form``, see
    ``ops.registry.prepared``). The call takes the inputs only, and computes what ``step.fn`` would.
    """
    try:
        if hasattr(step.fn, "specialize"):
            return step.fn.specialize(args, fixed)
        return registry.prepare(step.fn, args, fixed, step.attrs)
    except TinyrtError:
        raise
    except Exception as e:  # the op ran on these inputs: preparing it cannot fail but by a bug of ours
        raise ModelError("tinyrt bug: preparing %s for the compiled program failed (%s: %s)"
                         % (step.node.describe(), type(e).__name__, e)) from e


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
    limit = budget.tensor_bytes
    written = 0
    for r in results:  # (loops, not sum() over generators, and arrays first: this runs for every node)
        n = r.nbytes if type(r) is np.ndarray and r.size else limits.nbytes(r)
        if limit is not None and n > limit:
            limits.check_count(n, 1, step.node.describe())
        written += n
    read = 0
    for a in args:
        read += a.nbytes if type(a) is np.ndarray and a.size else limits.nbytes(a)
    cost = limits.STEP_COST + written + read
    if budget.work is not None:
        budget.work -= cost
        if budget.work < 0:
            limits.spend(0, step.node)  # over budget: raises, naming the node
    return cost


def _shapes(args):
    return ", ".join("None" if a is None else "%s%s" % (a.dtype, list(a.shape))
                     if isinstance(a, np.ndarray) else type(a).__name__ for a in args)
