"""``tinyrt info MODEL``: what is in a model file, and what it costs.

Inputs, outputs, metadata, how ``tinyrt.run`` would prepare a picture, the op histogram of the file as
written and after tinyrt's passes, the parameter count, and the multiply-accumulates (MACs) of the ops that
count them, each beside its op (``ops.registry.counts_macs``: Conv, FusedConv, ConvTranspose, Gemm, MatMul),
measured by running the file once on seeded noise: shapes are then known.

Any ONNX file is shown, also one tinyrt cannot run (a custom-domain op, an op or attribute it does not
implement): those ops are marked in the histogram, and only the parts that need a run are left out."""
import collections
import os

import numpy as np

from ..errors import InputError, TinyrtError, UnsupportedError
from ..ops.registry import mac_count
from ..support import MAX_OPSET, check_support
from .common import random_feeds, run_with_hook, session


def add_arguments(p):
    p.add_argument("model", help="the .onnx file")
    p.add_argument("--no-macs", action="store_true", help="skip the run that measures MACs")


def human(n):
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return "%.2f %s" % (n / size, unit)
    return "%d" % n


def command(args):
    from .. import graph as graph_ir
    from ..proto import load_model
    from ..proto.diagnose import name_the_file
    from ..session import NodeArg

    if not os.path.exists(args.model):
        raise InputError("no such model file: %s" % args.model)
    message, folder = load_model(args.model)
    print("model: %s  (IR version %d, producer %s)" % (
        args.model, message.ir_version, " ".join(filter(None, [message.producer_name, message.producer_version]))
        or "?"))
    try:
        model = graph_ir.build(message, folder)   # no session: what cannot run is marked, not refused
    except UnsupportedError as e:          # e.g. a value type tinyrt has no use for: still list the ops
        print("tinyrt cannot read this model's graph: %s" % " ".join(str(e).split()))
        _raw_ops(message)
        return 0
    except TinyrtError as e:
        raise name_the_file(e, args.model) from None
    print("opsets: " + ", ".join("%s %d" % (d or "ai.onnx", v) for d, v in sorted(model.opsets.items())))
    for note in model.notes[:10]:  # quirks of the file that tinyrt read the way onnxruntime does
        print("note: " + note)
    if len(model.notes) > 10:
        print("note: ... and %d more" % (len(model.notes) - 10))
    for title, specs in (("inputs", model.graph.inputs), ("outputs", model.graph.outputs)):
        print(title + ":")
        for a in map(NodeArg, specs):
            print("  %-20s %-16s %s" % (a.name, a.type, a.shape))
    if model.metadata:
        print("metadata:")
        for key, value in sorted(model.metadata.items()):
            print("  %s = %s" % (key, value if len(value) < 120 else value[:117] + "..."))

    problems = unsupported_nodes(model)
    counts = collections.Counter(_op_name(node) for node in model.graph.nodes)
    print("ops in the file: %d nodes" % len(model.graph.nodes))
    for op_type, n in counts.most_common():
        mark = problems.get(op_type)
        print("  %-24s %d%s" % (op_type, n, "   <- tinyrt cannot run: " + mark if mark else ""))
    inner = [op for op in problems if op not in counts]
    for op_type in inner:
        print("  %-24s (in a subgraph)   <- tinyrt cannot run: %s" % (op_type, problems[op_type]))
    arrays = [a for a in model.graph.initializers.values() if isinstance(a, np.ndarray)]
    params = sum(int(a.size) for a in arrays)
    nbytes = sum(int(a.nbytes) for a in arrays)
    print("parameters: %s (%d), %.2f MB" % (human(params), params, nbytes / 1e6))
    if problems or model.opsets.get("", 0) > MAX_OPSET:
        what = ", ".join(sorted(problems)) or "opset %d" % model.opsets[""]
        print("tinyrt cannot run this model (%s); `tinyrt.supported_ops()` lists what it runs" % what)
        return 0
    del model, message
    try:
        sess = session(args.model, optimized=False)
    except TinyrtError as e:
        print("tinyrt cannot run this model: %s" % e)
        return 0
    _recipe(sess, args.model)
    opt = session(args.model, optimized=True)
    opt_counts = collections.Counter(step.node.op_type for step in opt.plan.steps)
    print("after tinyrt's passes: %d nodes (%s)" % (len(opt.plan.steps), ", ".join(opt.applied_passes) or "no pass"))
    print("  " + ", ".join("%s %d" % kv for kv in opt_counts.most_common()))
    if not args.no_macs:
        _macs(sess)
    return 0


def _op_name(node):
    return "%s.%s" % (node.domain, node.op_type) if node.domain and node.domain != "ai.onnx" else node.op_type


def unsupported_nodes(model):
    """{op name: why tinyrt cannot run it} for every node of the model (subgraphs too) it cannot run, found by
    the same check a session makes at load, one node at a time."""
    from ..graph import Graph
    problems = {}
    for node in model.graph.all_nodes():
        name = _op_name(node)
        if name in problems:
            continue
        try:
            check_support(Graph(nodes=[node]), model.opsets)
        except UnsupportedError as e:
            problems[name] = str(e).split(":", 1)[-1].strip().split(": ", 1)[-1].replace("\n", " ")
        except TinyrtError as e:
            problems[name] = "malformed node (%s)" % e
    return problems


def _raw_ops(message):
    """The op histogram straight from the file's message, for graphs tinyrt cannot even read."""
    nodes = message.graph.node if message.graph else []
    counts = collections.Counter("%s.%s" % (n.domain, n.op_type) if n.domain else n.op_type for n in nodes)
    print("ops in the file: %d nodes" % len(nodes))
    for op_type, n in counts.most_common():
        print("  %-24s %d" % (op_type, n))


def _recipe(sess, path):
    from ..api import Model
    try:
        m = Model(sess)
    except TinyrtError as e:
        print("tinyrt.run: cannot prepare pictures from the metadata alone (%s)"
              % str(e).split(";")[-1].strip())
        return
    names = ", ".join(m.recipe.classes[:10]) + (" ..." if len(m.recipe.classes) > 10 else "")
    print("tinyrt.run: %s, %d classes (%s); settings from %s" % (m.task, len(m.recipe.classes), names,
                                                                m.recipe.source))
    print("  picture -> %s" % m.recipe.describe())
    if m.task == "detection":
        print("  objects scoring at least %g (%s)" % (m.threshold, m.threshold_source))


def _macs(sess):
    per_op = collections.Counter()

    def hook(step, args, compute):
        out = compute()
        per_op[step.node.op_type] += mac_count(step.impl, args, out, step.node.attrs)
        return out
    try:
        feeds = random_feeds(sess)
        run_with_hook(sess, feeds, hook)
    except TinyrtError as e:
        print("MACs: not measured (the run on seeded noise failed: %s)" % e)
        return
    total = sum(per_op.values())
    shapes = ", ".join("%s %s" % (k, list(v.shape)) for k, v in feeds.items())
    print("MACs (multiply-accumulates, one run on %s): %s (%d)" % (shapes, human(total), total))
    for op_type, n in per_op.most_common():
        if n:
            print("  %-24s %s  %5.1f%%" % (op_type, human(n), 100.0 * n / total))
