"""The ``tinyrt`` command line (also ``python -m tinyrt``)."""
import argparse
import collections
import sys

from . import InferenceSession, TinyrtError


def info(args):
    sess = InferenceSession(args.model)
    model = sess.model
    print("model: %s  (IR version %d, producer %s)" % (args.model, model.ir_version, model.producer or "?"))
    print("opsets: " + ", ".join("%s %d" % (d or "ai.onnx", v) for d, v in sorted(model.opsets.items())))
    for title, args_ in (("inputs", sess.get_inputs()), ("outputs", sess.get_outputs())):
        print(title + ":")
        for a in args_:
            print("  %-20s %-16s %s" % (a.name, a.type, a.shape))
    if model.metadata:
        print("metadata:")
        for key, value in sorted(model.metadata.items()):
            print("  %s = %s" % (key, value if len(value) < 120 else value[:117] + "..."))
    counts = collections.Counter(step.node.op_type for step in sess.plan.steps)
    params = sum(a.size for a in sess.plan.constants.values())
    print("nodes after passes: %d  (%s)" % (len(sess.plan.steps), ", ".join(sess.applied_passes) or "no pass"))
    for op_type, n in counts.most_common():
        print("  %-24s %d" % (op_type, n))
    print("parameters: %d" % params)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tinyrt", description="Run and inspect ONNX models with tinyrt.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("info", help="inputs, outputs, metadata and ops of a model")
    p.add_argument("model")
    p.set_defaults(func=info)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except TinyrtError as e:
        if args.debug:
            raise
        print("tinyrt: error: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
