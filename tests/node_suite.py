"""Run ONNX's node conformance suite through tinyrt and tell what passes, fails and is refused.

The suite is generated in memory by ``onnx.backend.test.case.node.collect_testcases()`` (about 1,900 cases,
each a small ModelProto plus input/expected-output data sets). For every case:

- not-supported: the graph (subgraphs included) uses an op tinyrt does not register at all. Such cases are
  not counted among the supported cases.
- excluded: listed in ``tests/node_exclusions.py`` with the scope decision that excludes it (by name, or by
  an element type tinyrt refuses at load and has decided not to support).
- refused: tinyrt raised ``UnsupportedError`` while loading (an attribute value, opset or element type it
  refuses, e.g. bfloat16 or float8), or the case feeds/expects nested sequences, which cannot be fed.
  Sequences of tensors are fed and compared as lists of arrays, empty optionals as None.
- passed / failed: every output of every data set is compared with the expected one: same shape, the
  dtype the model declares, floats within ``|a-b| <= 1e-4 * max(1, max|b|)`` (NaN equals NaN), ints and
  bools exact. A tinyrt error at run time, a non-tinyrt exception or a timeout is a failure.

Oracle rule: onnxruntime is the project's oracle. When tinyrt disagrees with the suite's expected output,
the same model and inputs go through onnxruntime; where tinyrt agrees with onnxruntime the output passes
("passed via onnxruntime"). This matters because onnx's expected outputs are wrong for a few ops
(BatchNormalization 9-13, Softmax < 13, some Resize modes; see docs/DESIGN.md).

Use as a module (``run_suite()``, ``check_model()``, ``compare()``) or from the command line::

    python tests/node_suite.py [--op NAME ...] [--case SUBSTRING ...] [-v] [--by-op] [--timeout S]

``--op`` selects cases whose graph uses that op anywhere (case-insensitive), ``--case`` selects cases whose
name contains the substring. ``-v`` lists failures with reasons, cases passed via onnxruntime, refusals
grouped by reason and the ops tinyrt lacks ranked by the cases they would unlock.
"""
import argparse
import collections
import os
import sys
import threading
import time
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    # First, so the work tree's tinyrt is tested even when another copy is installed.
    sys.path.insert(0, ROOT)
HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.append(HERE)

TIMEOUT = 10.0          # seconds a case (load + every data set + the oracle) may take
RTOL = 1e-4             # the project's tolerance: |a-b| <= RTOL * max(1, max|b|)
RTOL_FLOAT16 = 1e-3     # float16 has ~1e-3 resolution near 1: one fp16 ulp must not count as a mismatch
DEFAULT_DOMAINS = ("", "ai.onnx")
STATUSES = ("passed", "failed", "refused", "excluded", "not-supported")


# ---------------------------------------------------------------------------------------------------------
# tinyrt access (kept lazy so this module imports even while tinyrt is half written)

def _tinyrt():
    import tinyrt
    return tinyrt


def _unsupported_error():
    tinyrt = _tinyrt()
    err = getattr(tinyrt, "UnsupportedError", None)
    if err is None:
        from tinyrt.errors import UnsupportedError as err
    return err


def _tinyrt_error():
    tinyrt = _tinyrt()
    err = getattr(tinyrt, "TinyrtError", None)
    if err is None:
        from tinyrt.errors import TinyrtError as err
    return err


def norm_domain(domain):
    return "" if domain in DEFAULT_DOMAINS else domain


def op_label(key):
    """'Conv' for the default domain, 'ai.onnx.ml.TreeEnsemble' otherwise."""
    domain, op_type = key
    return op_type if not domain else domain + "." + op_type


def tinyrt_ops():
    """Every (domain, op_type) tinyrt registers, the default domain spelled ''."""
    import tinyrt.ops
    return {(norm_domain(d), o) for d, o in tinyrt.ops.registered()}


# ---------------------------------------------------------------------------------------------------------
# What a model uses

def graph_ops(graph, acc=None):
    """Set of (domain, op_type) used by a GraphProto, subgraphs in attributes (If, Loop, Scan) included."""
    if acc is None:
        acc = set()
    for node in graph.node:
        acc.add((norm_domain(node.domain), node.op_type))
        for attr in node.attribute:
            if attr.HasField("g"):
                graph_ops(attr.g, acc)
            for sub in attr.graphs:
                graph_ops(sub, acc)
    return acc


def model_ops(model):
    """Ops a ModelProto needs, with calls to its model-local functions replaced by the functions' bodies."""
    used = graph_ops(model.graph)
    functions = {(norm_domain(f.domain), f.name): f for f in model.functions}
    seen = set()
    todo = [k for k in used if k in functions]
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        body = set()
        for node in functions[key].node:
            body.add((norm_domain(node.domain), node.op_type))
            for attr in node.attribute:
                if attr.HasField("g"):
                    graph_ops(attr.g, body)
                for sub in attr.graphs:
                    graph_ops(sub, body)
        used |= body
        todo.extend(k for k in body if k in functions)
    return {k for k in used if k not in functions}


# Attributes that name an element type (Cast 'to', RandomNormal/EyeLike 'dtype', QuantizeLinear
# 'output_dtype', ...); their values count as types the model uses.
_TYPE_ATTRIBUTES = ("to", "dtype", "output_dtype", "stash_type", "output_datatype")


def _graph_elem_types(graph, acc):
    def add_type(tp):
        which = tp.WhichOneof("value")
        if which == "tensor_type":
            acc.add(tp.tensor_type.elem_type)
        elif which == "sparse_tensor_type":
            acc.add(tp.sparse_tensor_type.elem_type)
        elif which == "sequence_type":
            add_type(tp.sequence_type.elem_type)
        elif which == "optional_type":
            add_type(tp.optional_type.elem_type)
        elif which == "map_type":
            acc.add(tp.map_type.key_type)
            add_type(tp.map_type.value_type)

    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        if vi.HasField("type"):
            add_type(vi.type)
    for t in graph.initializer:
        acc.add(t.data_type)
    for node in graph.node:
        for attr in node.attribute:
            if attr.name in _TYPE_ATTRIBUTES and attr.type == 2:      # INT
                acc.add(attr.i)
            if attr.HasField("t"):
                acc.add(attr.t.data_type)
            if attr.HasField("g"):
                _graph_elem_types(attr.g, acc)
            for sub in attr.graphs:
                _graph_elem_types(sub, acc)
    return acc


def model_elem_types(model):
    """Every tensor element type code the model mentions (values, initializers, type attributes)."""
    acc = _graph_elem_types(model.graph, set())
    acc.discard(0)   # UNDEFINED: an unset field, not a type
    return acc


def unsupported_elem_types(model):
    """Names of the element types the model uses that tinyrt.dtypes does not map to numpy."""
    from tinyrt import dtypes
    return sorted(dtypes.type_name(c) for c in model_elem_types(model) if not dtypes.is_supported(c))


def declared_dtypes(graph):
    """numpy dtype each graph output declares (None when not a plain tensor or not numpy-expressible)."""
    from onnx import helper
    out = []
    for vi in graph.output:
        dt = None
        tp = vi.type
        if tp.HasField("optional_type"):      # an optional's value must have its element type
            tp = tp.optional_type.elem_type
        if tp.HasField("sequence_type"):      # a sequence's elements must have its element type
            tp = tp.sequence_type.elem_type
        if tp.HasField("tensor_type") and tp.tensor_type.elem_type:
            try:
                dt = np.dtype(helper.tensor_dtype_to_np_dtype(tp.tensor_type.elem_type))
            except Exception:
                dt = None
        out.append(dt)
    return out


# ---------------------------------------------------------------------------------------------------------
# Comparing outputs

def compare(got, expected, declared=None):
    """None when ``got`` matches ``expected`` under the project's rule, else a one-line reason.

    ``declared`` is the dtype the model declares for this output; when given, ``got`` must have it (the
    suite's expected arrays occasionally carry another dtype, e.g. float64 for a float output).
    """
    if expected is None or got is None:       # an empty optional
        if expected is None and got is None:
            return None
        return "got an empty optional" if got is None else "expected an empty optional, got %s" % type(got).__name__
    if isinstance(expected, list):            # a sequence: element by element
        if not isinstance(got, (list, tuple)):
            return ("output is %s, expected a sequence (list) of %d arrays"
                    % (type(got).__name__, len(expected)))
        if len(got) != len(expected):
            return "sequence of %d arrays, expected %d" % (len(got), len(expected))
        for i, (g, e) in enumerate(zip(got, expected)):
            why = compare(g, e, declared)
            if why is not None:
                return "sequence element %d: %s" % (i, why)
        return None
    if not isinstance(got, np.ndarray):
        return "output is %s, not a numpy array" % type(got).__name__
    expected = np.asarray(expected)
    want_dtype = declared if declared is not None else expected.dtype
    if got.dtype != want_dtype:
        return "dtype %s, expected %s" % (got.dtype, want_dtype)
    if got.shape != expected.shape:
        return "shape %s, expected %s" % (got.shape, expected.shape)
    if got.size == 0:
        return None
    if got.dtype.kind in "fc":
        a = got.astype(np.float64)
        b = expected.astype(np.float64)
        same = (a == b) | (np.isnan(a) & np.isnan(b))   # equal infinities and NaN==NaN
        finite = np.abs(b[np.isfinite(b)])
        scale = max(1.0, float(finite.max())) if finite.size else 1.0
        rtol = RTOL_FLOAT16 if got.dtype == np.float16 else RTOL
        with np.errstate(invalid="ignore"):
            ok = same | (np.abs(a - b) <= rtol * scale)
        if ok.all():
            return None
        bad = int((~ok).sum())
        idx = np.unravel_index(int(np.argmax(~ok)), got.shape)
        with np.errstate(invalid="ignore"):
            bad_diff = np.abs(a - b)[~ok]
        finite_bad = bad_diff[np.isfinite(bad_diff)]
        maxdiff = float(finite_bad.max()) if finite_bad.size else float("nan")
        return ("%d/%d values differ (max |diff| %.3g, tol %.3g); first at %s: got %r, expected %r"
                % (bad, got.size, maxdiff, rtol * scale, tuple(int(i) for i in idx),
                   got[idx].item(), expected[idx].item()))
    if got.dtype.kind in "OSU":
        eq = np.asarray(got == expected.astype(got.dtype))
    else:
        eq = got == expected.astype(got.dtype)
    if np.all(eq):
        return None
    bad = int((~eq).sum())
    idx = np.unravel_index(int(np.argmax(~eq)), got.shape)
    return ("%d/%d values differ; first at %s: got %r, expected %r"
            % (bad, got.size, tuple(int(i) for i in idx), got[idx].item(), expected[idx].item()))


# ---------------------------------------------------------------------------------------------------------
# The oracle

def ort_run(model_bytes, feeds_by_position):
    """Run onnxruntime on the model with inputs given in graph order; returns a list of arrays."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 4
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return sess.run(None, dict(zip(names, feeds_by_position)))


# ---------------------------------------------------------------------------------------------------------
# Running one model

def _normalize(item):
    """The suite's data sets may hold TensorProto objects: turn them into arrays."""
    import onnx
    from onnx import numpy_helper
    if isinstance(item, onnx.TensorProto):
        return numpy_helper.to_array(item)
    if isinstance(item, np.generic):   # e.g. Clip's bounds given as np.float32 scalars: 0-d tensors
        return np.asarray(item)
    return item


def _is_array(x):
    """A value the session can take or give: an array, a sequence (list) of arrays, or None (an empty
    optional)."""
    if x is None:
        return True
    if isinstance(x, list):
        return all(isinstance(v, np.ndarray) for v in x)
    return isinstance(x, np.ndarray)


def _oneline(text):
    """Multi-line messages (tinyrt lists every problem on its own line) as one line."""
    lines = [" ".join(line.split()) for line in str(text).splitlines() if line.strip()]
    out = ""
    for line in lines:
        out += ("" if not out else " " if out.endswith(":") else "; ") + line
    return out


def _short(exc, limit=300):
    text = _oneline("%s: %s" % (type(exc).__name__, exc))
    return text if len(text) <= limit else text[:limit] + "..."


def check_model(model_bytes, data_sets, declared=None, use_ort=True):
    """Load ``model_bytes`` with tinyrt and check every (inputs, expected_outputs) data set.

    Inputs are given in the order of the graph's non-initializer inputs. Returns (status, reason, via_ort)
    with status one of 'passed', 'failed', 'refused'.
    """
    tinyrt = _tinyrt()
    Unsupported = _unsupported_error()
    TinyrtError = _tinyrt_error()
    # The onnx wheel's light_* models build hundreds of MB of weights at run time from a few KB of file,
    # which tinyrt's automatic limits refuse on purpose (docs/limits.md); these suites test op semantics,
    # so they run with an explicit 1 GiB limit, as a user who trusts such a file would.
    options = tinyrt.SessionOptions()
    options.max_tensor_bytes = 1 << 30
    try:
        sess = tinyrt.InferenceSession(model_bytes, options)
    except Unsupported as e:
        return "refused", _oneline(str(e)), False
    except TinyrtError as e:
        return "failed", "load: " + _short(e), False
    except Exception as e:  # a bare Python error means a tinyrt bug, not a refusal
        return "failed", "load (non-tinyrt exception): " + _short(e), False

    data_sets = [([_normalize(x) for x in ins], [_normalize(x) for x in outs]) for ins, outs in data_sets]
    data_sets = [([[_normalize(v) for v in x] if isinstance(x, list) else x for x in ins],
                  [[_normalize(v) for v in x] if isinstance(x, list) else x for x in outs])
                 for ins, outs in data_sets]
    for ins, outs in data_sets:
        odd = [x for x in list(ins) + list(outs) if not _is_array(x)]
        if odd:
            kinds = sorted({"nested sequence" if isinstance(x, list)
                            else type(x).__name__ for x in odd})
            return ("refused", "harness: the case feeds or expects %s values, which are neither arrays nor "
                    "lists of arrays (tinyrt loaded the model; it should refuse it at load)"
                    % ", ".join(kinds), False)

    try:
        names = [i.name for i in sess.get_inputs()]
    except Exception as e:
        return "failed", "get_inputs: " + _short(e), False

    via_ort = False
    ort_failed = None   # why onnxruntime could not serve as oracle, once known
    for k, (ins, outs) in enumerate(data_sets):
        tag = "data set %d: " % k if len(data_sets) > 1 else ""
        if len(names) != len(ins):
            return ("failed", "%ssession lists %d inputs %s, the case feeds %d"
                    % (tag, len(names), names, len(ins)), False)
        try:
            got = sess.run(None, dict(zip(names, ins)))
        except TinyrtError as e:
            return "failed", tag + "run: " + _short(e), False
        except Exception as e:
            return "failed", tag + "run (non-tinyrt exception): " + _short(e), False
        got = list(got)
        if len(got) != len(outs):
            return "failed", "%s%d outputs, expected %d" % (tag, len(got), len(outs)), False
        decl = list(declared) if declared is not None else [None] * len(outs)
        decl += [None] * (len(outs) - len(decl))
        mismatches = [(i, compare(g, e, d)) for i, (g, e, d) in enumerate(zip(got, outs, decl))]
        mismatches = [(i, why) for i, why in mismatches if why is not None]
        if not mismatches:
            continue
        # Oracle: does onnxruntime agree with tinyrt where the suite does not?
        ort_outs = None
        if use_ort and ort_failed is None:
            try:
                ort_outs = ort_run(model_bytes, ins)
            except Exception as e:
                ort_failed = _short(e, 150)
        still = []
        for i, why in mismatches:
            if ort_outs is not None and i < len(ort_outs):
                ref = ort_outs[i] if isinstance(ort_outs[i], list) else np.asarray(ort_outs[i])
                why_ort = compare(got[i], ref, decl[i])
                if why_ort is None:
                    via_ort = True
                    continue
                still.append("output %d: %s; onnxruntime also differs: %s" % (i, why, why_ort))
            else:
                note = ("; onnxruntime unavailable: %s" % ort_failed) if use_ort and ort_failed else ""
                still.append("output %d: %s%s" % (i, why, note))
        if still:
            return "failed", tag + " | ".join(still), False
    return "passed", "", via_ort


def _load_only(model_bytes):
    """('refused', why) / ('failed', why) / ('loaded', '') for a model tinyrt should refuse."""
    tinyrt = _tinyrt()
    try:
        tinyrt.InferenceSession(model_bytes)
    except _unsupported_error() as e:
        return "refused", _oneline(str(e)), False
    except Exception as e:
        return "failed", "load: " + _short(e), False
    return "loaded", "", False


def run_with_timeout(fn, timeout):
    """fn() in a daemon thread; ('failed', 'timeout ...', False) when it overruns.

    A thread, not a signal: it works from any thread (pytest plugins, IDEs). An overrunning case keeps its
    thread until the process exits; it cannot be killed, only abandoned.
    """
    box = {}

    def target():
        try:
            with np.errstate(all="ignore"):
                box["result"] = fn()
        except BaseException as e:   # noqa: B902 - reported, not swallowed
            box["result"] = ("failed", "harness error: " + _short(e), False)

    worker = threading.Thread(target=target, name="tinyrt-case", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        return "failed", "timeout: still running after %g s" % timeout, False
    return box["result"]


# ---------------------------------------------------------------------------------------------------------
# The node suite

_CASES = None


def collect_cases():
    """The node conformance cases (cached: generating them takes a few seconds)."""
    global _CASES
    if _CASES is None:
        from onnx.backend.test.case.node import collect_testcases
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            _CASES = list(collect_testcases())
    return _CASES


def primary_ops(cases):
    """case name -> the op the case is about: its single node's op, or for '<case>_expanded[_verN]' the op
    of '<case>'; a multi-node case without a plain twin gets its ops '+'-joined."""
    single = {}
    for c in cases:
        nodes = c.model.graph.node
        if len(nodes) == 1:
            single[c.name] = op_label((norm_domain(nodes[0].domain), nodes[0].op_type))
    out = {}
    for c in cases:
        base = c.name.split("_expanded")[0]   # an expanded case is about the op of its plain twin
        if base in single:
            out[c.name] = single[base]
        elif c.name in single:
            out[c.name] = single[c.name]
        else:
            ops = sorted({op_label((norm_domain(n.domain), n.op_type)) for n in c.model.graph.node})
            out[c.name] = "+".join(ops) if ops else "(empty graph)"
    return out


class CaseResult(object):
    __slots__ = ("name", "status", "reason", "ops", "primary", "via_ort", "seconds")

    def __init__(self, name, status, reason="", ops=(), primary="", via_ort=False, seconds=0.0):
        self.name = name
        self.status = status
        self.reason = reason
        self.ops = frozenset(ops)
        self.primary = primary
        self.via_ort = via_ort
        self.seconds = seconds

    def __repr__(self):
        return "CaseResult(%r, %r, %r)" % (self.name, self.status, self.reason)


class SuiteResult(object):
    """All case results plus the numbers the tests assert on."""

    def __init__(self, results, seconds=0.0, total_cases=None):
        self.results = list(results)
        self.seconds = seconds
        self.total_cases = len(self.results) if total_cases is None else total_cases
        self.by_status = collections.defaultdict(list)
        for r in self.results:
            self.by_status[r.status].append(r)

    def count(self, status):
        return len(self.by_status.get(status, ()))

    @property
    def supported(self):
        """Cases whose ops tinyrt registers: passed + failed + refused + excluded."""
        return sum(self.count(s) for s in ("passed", "failed", "refused", "excluded"))

    @property
    def passed_via_ort(self):
        return [r for r in self.by_status.get("passed", ()) if r.via_ort]

    @property
    def exercised_ops(self):
        ops = set()
        for r in self.by_status.get("passed", ()):
            ops |= r.ops
        return sorted(op_label(k) for k in ops)

    def summary(self):
        sup = self.supported

        def pct(n):
            return "%5.1f%% of supported" % (100.0 * n / sup) if sup else ""
        lines = [
            "tinyrt ONNX node conformance: %d cases selected, %d supported (every op registered by tinyrt)"
            % (len(self.results), sup),
            "  passed        %5d  %s  (of which %d via onnxruntime)"
            % (self.count("passed"), pct(self.count("passed")), len(self.passed_via_ort)),
            "  failed        %5d  %s" % (self.count("failed"), pct(self.count("failed"))),
            "  refused       %5d  %s" % (self.count("refused"), pct(self.count("refused"))),
            "  excluded      %5d  %s" % (self.count("excluded"), pct(self.count("excluded"))),
            "  not-supported %5d  (they use an op tinyrt lacks; not counted as supported)"
            % self.count("not-supported"),
            "  distinct ops exercised by passing cases: %d" % len(self.exercised_ops),
            "  time: %.1f s" % self.seconds,
        ]
        return "\n".join(lines)

    def missing_ops(self):
        """op -> (cases it alone blocks, cases it blocks together with other missing ops)."""
        have = tinyrt_ops()
        alone = collections.Counter()
        anyc = collections.Counter()
        for r in self.by_status.get("not-supported", ()):
            miss = [k for k in r.ops if k not in have]
            if not miss:
                continue
            for k in miss:
                anyc[op_label(k)] += 1
            if len(miss) == 1:
                alone[op_label(miss[0])] += 1
        return {k: (alone[k], anyc[k]) for k in anyc}

    def details(self, missing=True):
        lines = []
        failed = sorted(self.by_status.get("failed", ()), key=lambda r: (r.primary, r.name))
        if failed:
            lines.append("\nFAILED (%d), by op:" % len(failed))
            for r in failed:
                lines.append("  [%s] %s: %s" % (r.primary, r.name, r.reason))
        via = sorted(self.passed_via_ort, key=lambda r: (r.primary, r.name))
        if via:
            lines.append("\nPASSED VIA ONNXRUNTIME (tinyrt == onnxruntime != onnx's expected output) (%d):"
                         % len(via))
            for r in via:
                lines.append("  [%s] %s" % (r.primary, r.name))
        refused = self.by_status.get("refused", ())
        if refused:
            groups = collections.defaultdict(list)
            for r in refused:
                groups[r.reason].append(r.name)
            lines.append("\nREFUSED (%d), grouped by reason:" % len(refused))
            for reason, names in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
                lines.append("  %d x %s" % (len(names), reason))
                lines.append("      " + ", ".join(sorted(names)))
        excluded = self.by_status.get("excluded", ())
        if excluded:
            lines.append("\nEXCLUDED (%d):" % len(excluded))
            for r in sorted(excluded, key=lambda r: r.name):
                lines.append("  %s: %s" % (r.name, r.reason))
        if missing and self.count("not-supported"):
            ranked = sorted(self.missing_ops().items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
            lines.append("\nOPS TINYRT LACKS (cases it alone blocks / cases it blocks):")
            lines.append("  " + ", ".join("%s %d/%d" % (k, a, n) for k, (a, n) in ranked))
        return "\n".join(lines)

    def by_op(self):
        table = collections.defaultdict(collections.Counter)
        for r in self.results:
            table[r.primary][r.status] += 1
        lines = ["\n%-32s %6s %6s %7s %8s %6s" % ("op", "passed", "failed", "refused", "excluded", "n/s")]
        for k in sorted(table):
            c = table[k]
            lines.append("%-32s %6d %6d %7d %8d %6d" % (k, c["passed"], c["failed"], c["refused"],
                                                        c["excluded"], c["not-supported"]))
        return "\n".join(lines)


def select_cases(cases, ops=None, substrings=None):
    wanted = {o.lower() for o in ops} if ops else None
    out = []
    for c in cases:
        if substrings and not any(s in c.name for s in substrings):
            continue
        if wanted is not None:
            used = {op_type.lower() for _, op_type in model_ops(c.model)}
            if not (used & wanted):
                continue
        out.append(c)
    return out


def run_case(case, have, primary="", timeout=TIMEOUT, use_ort=True, excluded=None):
    """Run one node case; returns a CaseResult."""
    if excluded is None:
        from node_exclusions import EXCLUDED as excluded
    ops = model_ops(case.model)
    missing = sorted(op_label(k) for k in ops if k not in have)
    if missing:
        return CaseResult(case.name, "not-supported", "tinyrt lacks " + ", ".join(missing), ops, primary)
    if case.name in excluded:
        return CaseResult(case.name, "excluded", excluded[case.name], ops, primary)
    t0 = time.time()
    model_bytes = case.model.SerializeToString()
    odd_types = unsupported_elem_types(case.model)
    if odd_types:
        # Element types outside tinyrt's table (bfloat16, float8, 4-/2-bit, string): the op is supported, so
        # the case counts. tinyrt must refuse it cleanly at load: then it is refused, or excluded where
        # node_exclusions.EXCLUDED_ELEMENT_TYPES records the scope decision for that type. If tinyrt loads the
        # model anyway, the case runs and counts like any other.
        from node_exclusions import EXCLUDED_ELEMENT_TYPES
        verdict = run_with_timeout(lambda: _load_only(model_bytes), timeout)
        if verdict[0] == "refused":
            scoped = [t for t in odd_types if t in EXCLUDED_ELEMENT_TYPES]
            if scoped:
                return CaseResult(case.name, "excluded", EXCLUDED_ELEMENT_TYPES[scoped[0]], ops, primary,
                                  False, time.time() - t0)
            return CaseResult(case.name, "refused", "element type %s (refused at load)" % ", ".join(odd_types),
                              ops, primary, False, time.time() - t0)
        if verdict[0] == "failed":
            return CaseResult(case.name, "failed", "element type %s should be refused at load; %s"
                              % (", ".join(odd_types), verdict[1]), ops, primary, False, time.time() - t0)
    declared = declared_dtypes(case.model.graph)
    data_sets = [(list(i), list(o)) for i, o in case.data_sets]
    status, reason, via = run_with_timeout(
        lambda: check_model(model_bytes, data_sets, declared, use_ort=use_ort), timeout)
    return CaseResult(case.name, status, reason, ops, primary, via, time.time() - t0)


def run_suite(ops=None, substrings=None, timeout=TIMEOUT, use_ort=True, progress=None):
    """Run the (selected) node suite through tinyrt; returns a SuiteResult."""
    from node_exclusions import EXCLUDED
    t0 = time.time()
    cases = collect_cases()
    primary = primary_ops(cases)
    chosen = select_cases(cases, ops, substrings)
    have = tinyrt_ops()
    results = []
    for case in chosen:
        r = run_case(case, have, primary.get(case.name, ""), timeout, use_ort, EXCLUDED)
        results.append(r)
        if progress is not None:
            progress(r)
    return SuiteResult(results, time.time() - t0, total_cases=len(cases))


def main(argv=None):
    p = argparse.ArgumentParser(description="Run ONNX's node conformance suite through tinyrt.")
    p.add_argument("--op", action="append", default=[], metavar="NAME",
                   help="only cases whose graph uses this op (repeatable, case-insensitive)")
    p.add_argument("--case", action="append", default=[], metavar="SUBSTRING",
                   help="only cases whose name contains SUBSTRING (repeatable)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="list failures, cases passed via onnxruntime, refusals by reason, missing ops")
    p.add_argument("--by-op", action="store_true", help="print a per-op table of statuses")
    p.add_argument("--progress", action="store_true", help="print each case's status as it finishes")
    p.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds per case (default %(default)s)")
    p.add_argument("--no-ort", action="store_true", help="do not consult onnxruntime on mismatches")
    p.add_argument("--json", metavar="PATH", help="also write every case's result to PATH as JSON")
    args = p.parse_args(argv)

    def progress(r):
        if r.status != "not-supported":
            print("%-13s %-60s %.2fs %s" % (r.status + ("*" if r.via_ort else ""), r.name, r.seconds,
                                            r.reason[:150]), flush=True)

    res = run_suite(args.op, args.case, args.timeout, not args.no_ort,
                    progress if args.progress else None)
    if args.verbose:
        print(res.details(missing=not args.op and not args.case))
    if args.by_op:
        print(res.by_op())
    if args.json:
        import json
        with open(args.json, "w") as f:
            json.dump([{"name": r.name, "op": r.primary, "status": r.status, "reason": r.reason,
                        "via_onnxruntime": r.via_ort, "seconds": round(r.seconds, 4),
                        "ops": sorted(op_label(k) for k in r.ops)} for r in res.results], f, indent=1)
    print()
    print(res.summary())
    return 1 if res.count("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
