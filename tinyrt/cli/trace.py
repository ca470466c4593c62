"""``tinyrt trace MODEL [IMAGE]``: watch the picture go through the network, one node at a time.

Each node in execution order: its op, the shapes of what it reads (``w`` marks weights stored in the file)
and of what it makes, and the range of its output (min, max, mean). ``--stop-at NODE`` stops after that node
(a node name, an output name, or its number) and saves its output as .npy; ``--png`` also draws it as a
grid of feature maps, one tile per channel."""
import os
import re

import numpy as np

from ..errors import InputError
from ..files import atomic_write
from ..kernels_select import kernel_label
from .common import (feature_grid, feeds_for, node_label, run_with_hook, session, shape_text, table,
                     value_range, write_png)
from .run import add_recipe_arguments


class _Stop(Exception):
    pass


def add_arguments(p):
    p.add_argument("model", help="the .onnx file")
    p.add_argument("image", nargs="?", help="a picture (default: seeded noise)")
    p.add_argument("--optimized", action="store_true", help="trace tinyrt's plan after its graph passes "
                   "(fused nodes) instead of the file as written")
    p.add_argument("--stop-at", metavar="NODE", help="stop after this node (name, output name or number) "
                   "and save its output")
    p.add_argument("--out", metavar="FILE.npy", help="where --stop-at saves the output (default "
                   "trace_<number>_<op>.npy; none with --png alone)")
    p.add_argument("--png", metavar="FILE.png", help="with --stop-at: also save the output as a grid of "
                   "feature maps")
    p.add_argument("--names", action="store_true", help="show output value names too")
    p.add_argument("--constants", action="store_true", help="list Constant nodes too (hidden by default: "
                   "they only hold numbers, e.g. Clip's 0 and 6)")
    add_recipe_arguments(p)


def _matches(spec, i, step):
    if spec is None:
        return False
    s = spec.lstrip("#")
    if s.isdigit():
        return int(s) == i + 1
    return spec == step.node.name or spec in step.outputs


def _input_text(v, is_weight):
    """How an input shows in the table: ``[1,16,112,112]``, ``w[16,3,3,3]`` for weights, ``=6`` for a
    number."""
    if isinstance(v, np.ndarray) and v.size == 1 and v.ndim <= 1:
        x = v.reshape(-1)[0]
        return "=%g" % x if v.dtype.kind in "biuf" else "=%s" % x
    return ("w" if is_weight else "") + shape_text(v)


def command(args):
    sess = session(args.model, optimized=args.optimized)
    if (args.png or args.out) and not args.stop_at:    # else nothing would be written, silently
        raise InputError("--%s saves the output of the node --stop-at names: add --stop-at NODE (a name, output "
                         "name or the number in the trace's first column)" % ("png" if args.png else "out"))
    feeds, what = feeds_for(sess, args.image, args)
    steps = sess.plan.steps
    if args.stop_at and not any(_matches(args.stop_at, i, s) for i, s in enumerate(steps)):
        raise InputError("--stop-at %s: no node of that name, output or number (1..%d); see the trace without "
                         "--stop-at for the names" % (args.stop_at, len(steps)))
    constants = set(sess.plan.constants)
    print("trace of %s on %s" % (args.model, what))
    print("%d nodes, %s" % (len(steps), "after tinyrt's passes (--optimized)" if args.optimized
                            else "the file as written (add --optimized for tinyrt's fused plan)"))
    for name, x in feeds.items():
        lo, hi, mean = value_range(x)
        print("input %s %s %s: min %s max %s mean %s" % (name, x.dtype, shape_text(x), lo, hi, mean))
    rows, stopped, hidden = [], {}, []
    index = {id(s): i for i, s in enumerate(steps)}

    def hook(step, a, compute):
        out = compute()
        i = index[id(step)]
        ins = " ".join(_input_text(v, n in constants) for n, v in zip(step.inputs, a) if n)
        first = out[0] if out else None
        if step.node.op_type == "Constant" and not args.constants:
            hidden.append(i)
            if _matches(args.stop_at, i, step):
                stopped.update(index=i, step=step, value=first)
                raise _Stop()
            return out
        lo, hi, mean = value_range(first)
        outs = " ".join(shape_text(o) for o, n in zip(out, step.outputs) if n)
        row = [str(i + 1), step.node.op_type, ins, outs, lo, hi, mean, node_label(step.node), kernel_label(step)]
        if args.names:
            row.append(",".join(n for n in step.outputs if n))
        rows.append(row)
        if _matches(args.stop_at, i, step):
            stopped.update(index=i, step=step, value=first)
            raise _Stop()
        return out

    try:
        outputs = run_with_hook(sess, feeds, hook)
    except _Stop:
        outputs = None
    header = ["#", "op", "inputs (w = weights)", "output", "min", "max", "mean", "node", "kernel"]
    if args.names:
        header.append("output names")
    table(rows, header, ["r", "l", "l", "l", "r", "r", "r", "l", "l"] + ["l"] * args.names)
    if hidden:
        print("(%d Constant nodes not listed: their numbers show in the inputs as =value; --constants lists them)"
              % len(hidden))
    if outputs is not None:
        print("outputs:")
        for name, v in outputs.items():
            lo, hi, mean = value_range(v)
            print("  %s %s %s: min %s max %s mean %s" % (name, getattr(v, "dtype", ""), shape_text(v), lo, hi, mean))
            if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.ndim == 2 and v.shape[0] == 1 and v.shape[1] <= 1000:
                top = np.argsort(-v[0], kind="stable")[:5]
                print("    largest: " + ", ".join("[%d] %.4f" % (j, v[0, j]) for j in top))
        return 0
    i, step, value = stopped["index"], stopped["step"], stopped["value"]
    stem = "trace_%d_%s" % (i + 1, re.sub(r"[^A-Za-z0-9_.-]+", "_", step.node.op_type))
    out = args.out or (None if args.png else stem + ".npy")      # --png alone: the picture, no stray .npy
    if out:
        if not out.endswith(".npy"):
            out += ".npy"  # as np.save names it
        atomic_write(out, lambda f: np.save(f, value))  # a failure half-way leaves no truncated file
    print("stopped after #%d %s (%s): output %s%s" % (i + 1, step.node.op_type, node_label(step.node),
                                                      shape_text(value), " saved to %s" % out if out else ""))
    if args.png:
        grid = feature_grid(value)
        write_png(args.png, grid)
        n = value.shape[-3] if value.ndim >= 3 else 1
        print("feature maps (%d of %d channels, each stretched to black..white) drawn in %s"
              % (min(64, n), n, args.png))
    elif value is not None and value.ndim == 4:
        print("(add --png maps.png to see its %d channels as pictures)" % value.shape[1])
    return 0
