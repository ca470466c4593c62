"""``tinyrt warmup [MODEL ...]``: compile the numba kernels now, e.g. while setting up a board, so that
the first real run does not wait for them.

With MODELs, runs each once on seeded noise (on all cores unless ``--threads``), which compiles every
kernel it needs (numba compiles a kernel per argument types, not per shape: one run is enough). Without
one, runs tinyrt's own warmup model (``tinyrt/data/warmup.onnx``: one node for every kernel), which
compiles them all. The kernels are cached on disk (where: the first line printed), so this is done once
per machine and version of tinyrt. Where numba is missing there is nothing to compile: tinyrt runs its
numpy ops, and this says so.
"""
import os
import sys
import time

from ..errors import InputError
from ..session import InferenceSession, SessionOptions
from .common import random_feeds

WARMUP_MODEL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "warmup.onnx")


def add_arguments(p):
    p.add_argument("models", nargs="*", metavar="MODEL",
                   help="the .onnx files to compile for (default: every kernel, via tinyrt's warmup model)")
    p.add_argument("--threads", type=int, default=0,
                   help="the thread count the runs will use (0: all cores, the default); 1 also compiles less")


def command(args):
    from .. import kernels_select
    models = args.models or [WARMUP_MODEL]
    for path in models:
        if not os.path.exists(path):
            raise InputError("no such model file: %s" % path)
    opts = SessionOptions()
    opts.kernels = "numba"
    opts.intra_op_num_threads = args.threads
    try:
        kernels = kernels_select._import_kernels()
    except ImportError as e:
        print("tinyrt warmup: the numba kernels are not available here (%s): tinyrt runs its numpy ops, "
              "which need no compiling" % e)
        return 0
    progress = kernels._jit.PROGRESS
    before = len(progress.compiled)
    started = time.time()
    for path in models:
        sess = InferenceSession(path, opts)
        sess.run(None, random_feeds(sess, seed=0))
        print("tinyrt warmup: %s ready" % os.path.basename(path))
    kernels.segment.compile_now(kernels._sync.counters(1))  # what runs a model's convs once its program is made
    done = progress.compiled[before:]
    if done:
        print("tinyrt warmup: compiled %d kernels in %.1f s, cached in %s"
              % (len(done), time.time() - started, kernels.cache_folder()))
    else:
        print("tinyrt warmup: nothing to compile: the kernels were cached already (in %s)" % kernels.cache_folder())
    sys.stdout.flush()
    return 0
