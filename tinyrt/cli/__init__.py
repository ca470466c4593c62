"""The ``tinyrt`` command (also ``python -m tinyrt``).

    tinyrt run MODEL IMAGE...        the answers (--json, --save DIR, --topk, --score, --lang zh)
    tinyrt info MODEL                inputs, outputs, metadata, ops, parameters, MACs
    tinyrt profile MODEL [IMAGE]     time per node and per op type
    tinyrt trace MODEL [IMAGE]       every node in order with shapes and value ranges (--stop-at, --png)
    tinyrt code MODEL [IMAGE]        the Python program tinyrt runs for the model, one line a node
    tinyrt check MODEL [IMAGE]       tinyrt against onnxruntime, largest difference per output
    tinyrt bench MODEL               latency in tinyrt and onnxruntime (--threads, --kernels, --runs)
    tinyrt run MODEL --input x.npy   any model on tensors from .npy/.npz files
    tinyrt warmup [MODEL...]         compile the numba kernels now (all of them, or what the models need)
    tinyrt --version

Errors print one line and exit with status 2; ``--debug`` shows the traceback. One module per command.
"""
import argparse
import sys

from . import bench, check, code, info, profile, run, trace, warmup

COMMANDS = [
    ("run", run, "answers for pictures: classes or boxes, printed, as JSON, or drawn (--save)"),
    ("info", info, "inputs, outputs, metadata, op histogram, parameters and MACs of a model"),
    ("profile", profile, "time per node and per op type, with shares of the total"),
    ("trace", trace, "each node in order with its shapes and value ranges; stop at one and save it"),
    ("code", code, "the Python program tinyrt runs for a model, one line a node"),
    ("check", check, "run onnxruntime too and show the largest difference per output"),
    ("bench", bench, "latency of a model: median of interleaved runs in tinyrt and onnxruntime"),
    ("warmup", warmup, "compile the numba kernels ahead of time (all, or what the given models need)"),
]


def parser():
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback of an error")
    p = argparse.ArgumentParser(prog="tinyrt", parents=[debug],
                                description="Run and inspect ONNX models with tinyrt (numpy only).")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, module, text in COMMANDS:
        c = sub.add_parser(name, parents=[debug], help=text, description=(module.__doc__ or text).strip())
        c.formatter_class = argparse.RawDescriptionHelpFormatter
        module.add_arguments(c)
        c.set_defaults(func=module.command)
    return p


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    debug = getattr(args, "debug", False)
    if not getattr(args, "func", None):
        if args.command is None:
            p.print_help(sys.stderr)
            return 2
    try:
        code = args.func(args)
        return 0 if code is None else int(code)
    except KeyboardInterrupt:
        if debug:
            raise
        print("tinyrt: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:          # `tinyrt trace ... | head`
        return 0
    except Exception as e:
        if debug:
            raise
        print("tinyrt: error: %s" % _one_line(e), file=sys.stderr)
        return 2


def _version():
    import platform
    import numpy
    from .. import __version__
    return "tinyrt %s (Python %s, numpy %s, %s)" % (__version__, platform.python_version(), numpy.__version__,
                                                   platform.machine() or "?")


def _one_line(e):
    from ..errors import TinyrtError
    text = str(e).strip() or type(e).__name__
    if isinstance(e, TinyrtError):
        return text                  # our messages say what to do; multi-line ones list every problem
    if isinstance(e, OSError) and e.filename:
        return "%s: %s" % (e.filename, e.strerror or text)
    return "%s: %s (add --debug for the traceback)" % (type(e).__name__, text.splitlines()[0])
