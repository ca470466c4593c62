"""``tinyrt bench MODEL``: how long one run of a model takes, in tinyrt and, when installed, onnxruntime.

The model runs on seeded noise (or ``--input`` tensors). Each runtime first runs ``--warmup`` times (not
timed: tinyrt's numba kernels compile on the first run), then the runtimes take turns, one run each, ``--runs``
times, so a change in the machine's load hits both alike; between two runs the command waits until the
other runtime's threads stop spinning. The times printed are medians, with the fastest and slowest run.
Only this process is measured: start-up and loading are printed apart (load) and not in the medians."""
import os
import threading
import time

import numpy as np

from ..errors import InputError, UnsupportedError
from .common import positive_int, random_feeds


def add_arguments(p):
    p.add_argument("model", help="the .onnx file")
    p.add_argument("--runs", type=positive_int, default=20, help="timed runs of each runtime (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs of each runtime first (default 3)")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads for both runtimes (default 0: all "
                   "cores)")
    p.add_argument("--kernels", choices=["numba", "numpy"], default=None, help="tinyrt's path (default: numba "
                   "when it imports, as TINYRT_KERNELS says otherwise)")
    p.add_argument("--input", action="append", metavar="FILE", help="feed these tensors (as `tinyrt run "
                   "--input`: x.npy, x.npz or NAME=x.npy) instead of seeded noise")
    p.add_argument("--no-ort", action="store_true", help="time tinyrt alone, even when onnxruntime is installed")


def command(args):
    from ..session import InferenceSession, SessionOptions
    if not os.path.exists(args.model):
        raise InputError("no such model file: %s" % args.model)
    if args.threads < 0:
        raise InputError("--threads takes 0 (all cores) or more, got %d" % args.threads)
    opts = SessionOptions()
    opts.intra_op_num_threads = args.threads
    if args.kernels:
        opts.kernels = args.kernels
    runners, loads, notes = {}, {}, []
    t = time.perf_counter()
    try:
        sess = InferenceSession(args.model, opts)
    except UnsupportedError as e:      # still worth timing onnxruntime, and saying why tinyrt is missing
        if args.no_ort:
            raise
        sess = None
        notes.append("tinyrt cannot run this model: %s"
                     % " ".join(str(e).replace("tinyrt cannot run this model:", "").split()))
    else:
        loads["tinyrt"] = time.perf_counter() - t
    ort_sess, ort_note, ort_load = (None, None, 0) if args.no_ort else _onnxruntime(args.model, args.threads)
    if ort_note:
        notes.append(ort_note)
    if sess is None and ort_sess is None:
        raise UnsupportedError("; ".join(notes))
    either = sess or ort_sess
    if args.input:
        from .tensors import load_feeds
        feeds = load_feeds(args.input, either)
        what = "the --input tensors"
    else:
        feeds = random_feeds(either)
        what = "seeded noise"
    if sess is not None:
        kernels = type(sess.kernels).__name__.replace("Backend", "").lower()
        runners["tinyrt-%s" % kernels] = lambda: sess.run(None, feeds)
    if ort_sess is not None:
        try:
            ort_sess.run(None, feeds)
        except Exception as e:
            notes.append("onnxruntime cannot run this model: %s" % str(e).splitlines()[0])
        else:
            runners["onnxruntime"] = lambda: ort_sess.run(None, feeds)
            loads["onnxruntime"] = ort_load
    if not runners:
        raise UnsupportedError("; ".join(notes))
    print("%s on %s (%s), %s, %d runs each after %d warm-up, interleaved" % (
        args.model, what, ", ".join("%s %s" % (k, list(v.shape)) for k, v in feeds.items()),
        "%d thread%s" % (args.threads, "" if args.threads == 1 else "s") if args.threads else "all cores",
        args.runs, args.warmup))
    first = {}
    for name, run in runners.items():
        t = time.perf_counter()
        run()
        first[name] = time.perf_counter() - t
        for _ in range(max(0, args.warmup - 1)):
            run()
    times = {name: [] for name in runners}
    for _ in range(args.runs):
        for name, run in runners.items():
            _settle()
            t = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t)
    base = np.median(times["onnxruntime"]) if "onnxruntime" in times else None
    print("  %-14s %10s %9s %9s %8s %9s %10s" % ("runtime", "median ms", "min ms", "max ms", "x ort", "load s",
                                               "first ms"))
    for name, ts in times.items():
        med = np.median(ts)
        ratio = "%.2f" % (med / base) if base else "-"
        loaded = "tinyrt" if name.startswith("tinyrt") else name
        print("  %-14s %10.2f %9.2f %9.2f %8s %9.2f %10.1f" % (name, 1000 * med, 1000 * min(ts), 1000 * max(ts),
                                                             ratio, loads[loaded], 1000 * first[name]))
    for note in notes:
        print(note)
    return 0


def _onnxruntime(path, threads):
    """(an onnxruntime session or None, a note for the reader or None, load seconds)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None, "onnxruntime is not installed: tinyrt timed alone (pip install onnxruntime to compare)", 0
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    t = time.perf_counter()
    try:
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    except Exception as e:       # onnxruntime refusing a model is an answer, not a failure of the command
        return None, "onnxruntime cannot load this model: %s" % str(e).splitlines()[0], 0
    return sess, None, time.perf_counter() - t


def _settle(limit=0.5, window=0.005):
    """Wait until this process's other threads stop using the CPU (at most ``limit`` s): thread pools spin
    for up to ~0.1 s after a run and would take a core from the runtime timed next. Linux only (/proc)."""
    t0 = time.perf_counter()
    before = _others_cpu_ns()
    while before is not None and time.perf_counter() - t0 < limit:
        time.sleep(window)
        now = _others_cpu_ns()
        if now is None or now - before < 0.05 * window * 1e9:
            return
        before = now


def _others_cpu_ns():
    me = threading.get_native_id()
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return None
    total = 0
    for tid in tids:
        if int(tid) == me:
            continue
        try:
            with open("/proc/self/task/%s/schedstat" % tid) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total

