"""``python -m benchmarks.ratios``: tinyrt's latency as a ratio to onnxruntime's, quickly, one line a model.

    python -m benchmarks.ratios                                   every model, 1 thread, both tinyrt paths
    python -m benchmarks.ratios --models chain-1000 demo-detector --repeats 50
    python -m benchmarks.ratios --models MobileNetV2-224 --threads 0 1 --busy
                                  (0 = each runtime's default thread count; --busy keeps one core busy
                                  with another process, as a camera loop on a board would)

Runs are interleaved in one process (one run of each runtime at each thread count in turn, the order
rotated each round), medians taken; every runtime's pools are woken by an untimed run first, and above 1
thread the previous runtime's pool is let stop spinning before (runtimes.settle). All thread counts share
one rotation, so that a runtime at its default and at one thread run after the same neighbours: a run
after onnxruntime at two threads on a busy machine is slower whatever follows (its threads took the core
that is free), and with a rotation per thread count only the default runs paid for it (tinyrt's default
came out 1.15-1.20x its one thread that way, 1.02x in one rotation). chain-1000 is also given in
microseconds a node. Noisy on a shared machine: repeat, and read the ratios, not the milliseconds.
"""
import argparse
import subprocess
import sys
import time

import numpy as np

from . import models, runtimes


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.ratios", description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=list(models.MODELS), choices=list(models.MODELS))
    p.add_argument("--runtimes", nargs="+", default=["tinyrt-numba", "tinyrt-numpy"])
    p.add_argument("--threads", nargs="+", type=int, default=[1], help="0: each runtime's default")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--busy", action="store_true", help="one other process keeps one core busy meanwhile")
    p.add_argument("--cpu", action="store_true", help="CPU time of this process instead of wall time (a "
                   "steadier measure of 1-thread runs on a machine other jobs load)")
    args = p.parse_args(argv)
    busy = None
    if args.busy:
        busy = subprocess.Popen([sys.executable, "-c", "while 1: pass"])
    try:
        for model in args.models:
            models.ensure(model, lambda m: print(m, file=sys.stderr))
            measure(model, ["onnxruntime"] + args.runtimes, args.threads, args.repeats,
                    time.process_time if args.cpu else time.perf_counter)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()


def measure(model, names, thread_counts, repeats, clock=time.perf_counter):
    """One line per thread count: each runtime's median, and its ratio to onnxruntime's."""
    fns = {}
    for threads in thread_counts:
        for name in names:
            try:
                fns[name, threads] = runtimes.make(name, model, threads)
                fns[name, threads]()
            except Exception as e:
                print("%s %s: cannot run (%s: %s)" % (model, name, type(e).__name__, e), file=sys.stderr)
    keys = list(fns)
    if not keys:
        return
    settle = any(threads != 1 for threads in thread_counts)
    times = {k: [] for k in keys}
    for r in range(repeats):
        for key in keys[r % len(keys):] + keys[:r % len(keys)]:
            if settle:
                runtimes.settle()  # the previous runtime's pool may still spin (onnxruntime's for ~0.1 s)
            fns[key]()
            t0 = clock()
            fns[key]()
            times[key].append(clock() - t0)
    med = {k: float(np.median(v)) for k, v in times.items()}
    for threads in thread_counts:
        ort = med.get(("onnxruntime", threads))
        cells = []
        for name, t in keys:
            if t != threads:
                continue
            m = med[name, t]
            text = "%s %.2f ms" % (name, m * 1e3)
            if models.MODELS[model][0] == "chain":
                text += " (%.2f us a node)" % (m * 1e6 / 1000)
            if ort and name != "onnxruntime":
                text += " %.2fx" % (m / ort)
            cells.append(text)
        print("%-22s threads=%s  %s" % (model, threads or "default", " | ".join(cells)), flush=True)


if __name__ == "__main__":
    main()
