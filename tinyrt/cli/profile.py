"""``tinyrt profile MODEL [IMAGE]``: where the time goes, node by node and op type by op type.

The model runs ``--warmup`` times (not counted: compiling kernels, warming caches), then ``--runs`` times;
each node's time is the median of its runs, and its share is that median over the sum of all medians."""
import collections
import time

import numpy as np

from .. import profiling
from .common import feeds_for, node_label, positive_int, run_with_hook, session, shape_text, table
from .run import add_recipe_arguments
from ..kernels_select import kernel_label


def add_arguments(p):
    p.add_argument("model", help="the .onnx file")
    p.add_argument("image", nargs="?", help="a picture to feed (default: seeded noise)")
    p.add_argument("--runs", type=positive_int, default=10, help="timed runs (default 10)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    p.add_argument("--top", type=int, default=15, help="rows of the per-node table (default 15; 0: all)")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (default 0: all cores)")
    p.add_argument("--as-written", action="store_true", help="profile the file as written (no graph passes)")
    p.add_argument("--trace", metavar="FILE.json", help="also write the timed runs as a Chrome trace, the file "
                   "InferenceSession.end_profiling() writes (open it in ui.perfetto.dev)")
    add_recipe_arguments(p)


def command(args):
    sess = session(args.model, optimized=not args.as_written, threads=args.threads)
    feeds, what = feeds_for(sess, args.image, args)
    steps = sess.plan.steps
    index = {id(s): i for i, s in enumerate(steps)}
    times = [[] for _ in steps]
    shapes = [""] * len(steps)

    def hook(step, a, compute):
        t = time.perf_counter()
        out = compute()
        i = index[id(step)]
        times[i].append(time.perf_counter() - t)
        if not shapes[i]:
            shapes[i] = shape_text(out[0] if out else None)
        return out

    for _ in range(max(0, args.warmup)):
        run_with_hook(sess, feeds, None)
    totals = []
    runs = max(1, args.runs)
    tracer = profiling.Profiler("") if args.trace else None
    if tracer is not None:
        hook = _around(tracer.node_hook(), hook)
    for _ in range(runs):
        t = time.perf_counter()
        started = time.monotonic_ns()
        run_with_hook(sess, feeds, hook)
        totals.append(time.perf_counter() - t)
        if tracer is not None:
            tracer.add_session_event("model_run", started, time.monotonic_ns())
    if tracer is not None:
        profiling.write_trace(args.trace, tracer.events)
        print("trace written to %s" % args.trace)
    med = [float(np.median(t)) if t else 0.0 for t in times]
    whole = sum(med) or 1e-12
    print("profile of %s on %s" % (args.model, what))
    print("%d runs after %d warm-up, kernels %s, %s; %d nodes%s" % (
        runs, args.warmup, type(sess.kernels).__name__.replace("Backend", "").lower(),
        "%d thread%s" % (args.threads, "" if args.threads == 1 else "s") if args.threads else "all cores", len(steps),
        " (file as written)" if args.as_written else " (after tinyrt's passes)"))
    print("time per run: median %.2f ms (min %.2f, max %.2f); sum of node medians %.2f ms"
          % (1e3 * np.median(totals), 1e3 * min(totals), 1e3 * max(totals), 1e3 * whole))

    by_op = collections.OrderedDict()
    for step, m in zip(steps, med):
        n, t = by_op.get(step.node.op_type, (0, 0.0))
        by_op[step.node.op_type] = (n + 1, t + m)
    rows = [[op, str(n), "%.3f" % (1e3 * t), "%.1f%%" % (100 * t / whole)]
            for op, (n, t) in sorted(by_op.items(), key=lambda kv: -kv[1][1])]
    print("\nper op type:")
    table(rows, ["op", "nodes", "ms", "share"], ["l", "r", "r", "r"])

    order = sorted(range(len(steps)), key=lambda i: -med[i])
    if args.top:
        order = order[:args.top]
    rows = [["%d" % (i + 1), steps[i].node.op_type, node_label(steps[i].node), kernel_label(steps[i]), shapes[i],
             "%.3f" % (1e3 * med[i]), "%.1f%%" % (100 * med[i] / whole)] for i in order]
    print("\nper node (slowest first%s; # = position in the run order):"
          % (", top %d of %d" % (len(order), len(steps)) if args.top and len(steps) > args.top else ""))
    table(rows, ["#", "op", "node", "kernel", "output", "ms", "share"], ["r", "l", "l", "l", "l", "r", "r"])
    return 0


def _around(outer, inner):
    """Two run hooks as one: ``outer`` around ``inner``."""
    return lambda step, inputs, compute: outer(step, inputs, lambda: inner(step, inputs, compute))
