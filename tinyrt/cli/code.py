"""``tinyrt code MODEL [IMAGE]``: the Python program tinyrt runs for a model, as it runs it.

tinyrt writes each run out as straight-line Python (tinyrt/program.py), one line a node: ``t12 = relu_7(t11)``
calls step 7's function on value 12, and ``del t11`` frees a value after its last use. The program is made
for the shapes of one input (here the picture, or seeded noise), so it can leave out what those shapes
already decide: values computed from shapes alone are folded into constants (``v...``), and the size
checks of nodes whose sizes follow from the input's are done once, not per node.

Below the program, a legend maps its identifiers back to the model: values (``t``, ``k``: weights and
other constants of the file, ``v``: values folded for these shapes) to their names in the file, steps to
their nodes and the kernel or op function each calls."""
from .common import feeds_for, session
from .run import add_recipe_arguments


def add_arguments(p):
    p.add_argument("model", help="the .onnx file")
    p.add_argument("image", nargs="?", help="a picture to feed (default: seeded noise)")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    p.add_argument("--as-written", action="store_true", help="the file as written (no graph passes)")
    p.add_argument("--no-legend", action="store_true", help="the program only")
    add_recipe_arguments(p)


def command(args):
    sess = session(args.model, optimized=not args.as_written, threads=args.threads)
    feeds, what = feeds_for(sess, args.image, args)
    names = [o.name for o in sess.get_outputs()]
    sess.plan.last_program = None
    for _ in range(2):  # a program is made on the second run of an input signature
        sess.run(names, feeds)
    program = sess.plan.last_program
    if program is None:
        from ..errors import InputError
        raise InputError("no program was made (TINYRT_PROGRAM=off?)")
    print("# the program tinyrt runs for %s on %s" % (args.model, what))
    print("# (%d nodes; kernels: %s)" % (len(sess.plan.steps), sess.kernels.name))
    print(program.source)
    if args.no_legend:
        return 0
    print("# legend")
    for ident, text in program.legend():
        print("#   %-10s %s" % (ident, text))
    return 0
