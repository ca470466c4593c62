"""``python -m benchmarks``: tinyrt (numba and numpy paths) against onnxruntime and torch, one table.

    python -m benchmarks                       all models, 1 and 2 threads (into out/benchmarks/)
    python -m benchmarks --update              the same, into the committed benchmarks/results.md and .png
    python -m benchmarks --models MobileNetV2-224 --repeats 20 --no-rss

Latency: every runtime in this one process, runs interleaved (one run of each in turn, repeated; one
thread count after the other), medians, ratio to onnxruntime. Before each timed run the command waits until
the process's other threads are idle (OpenBLAS, onnxruntime and OpenMP pools spin for up to ~0.1 s after a
run and took the second core from the next runtime), then does one untimed run of the same runtime, so that
its own pools are awake as in a loop of runs; every runtime keeps its default settings.
onnx's reference evaluator runs at 1 thread only, a few times.
Cold start: a fresh process per runtime doing import, load and first result (the time from the
process's first line to the result; interpreter start-up excluded), median of --cold-repeats; for
tinyrt-numba once with a warm kernel cache and once with an empty one (the first model only).
Peak RSS: the same fresh processes (ru_maxrss after load and four results).

The table goes to stdout and to out/benchmarks/results.md, a bar chart to out/benchmarks/results.png;
``--update`` writes the committed benchmarks/results.md and results.png instead (the README quotes them):
the table at the top of results.md is replaced, the notes below it (each "### " section) are kept.
If OPENBLAS_CORETYPE or OPENBLAS_L2_SIZE are set, both are unset for the measurement (the command
re-executes itself without them): they pin OpenBLAS to kernels that may not suit this CPU.
"""
import os
import sys

_BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(v in os.environ for v in _BLAS_VARS) and not os.environ.get("TINYRT_BENCH_REEXEC"):
    env = {k: v for k, v in os.environ.items() if k not in _BLAS_VARS}
    env["TINYRT_BENCH_REEXEC"] = ",".join(v for v in _BLAS_VARS if v in os.environ)
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks"] + sys.argv[1:], env)

import argparse  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from . import models, runtimes  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def parser():
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=list(models.MODELS), choices=list(models.MODELS),
                   help="the models to measure (default: all; exported once, then cached)")
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="intra-op thread counts, one pair of "
                   "table columns each (default: 1 2)")
    p.add_argument("--repeats", type=int, default=30, help="timed runs per runtime and thread count "
                   "(default: 30)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs per runtime and thread count "
                   "first (default: 3)")
    p.add_argument("--cold-repeats", type=int, default=3, help="fresh processes per runtime for the cold start "
                   "(their median; default: 3)")
    p.add_argument("--no-cold", action="store_true", help="skip cold start (peak RSS is still measured, in one "
                   "fresh process per runtime)")
    p.add_argument("--no-rss", action="store_true", help="skip the fresh processes: no peak RSS and no cold start")
    p.add_argument("--no-reference", action="store_true", help="skip onnx's reference evaluator")
    p.add_argument("--runtimes", nargs="+", default=runtimes.RUNTIMES, choices=runtimes.RUNTIMES,
                   help="the runtimes to measure (default: all)")
    p.add_argument("--update", action="store_true", help="write the committed benchmarks/results.md and "
                   "results.png (the table the README quotes) instead of out/benchmarks/")
    p.add_argument("--out", default=None, help="where to write the markdown table (default: "
                   "out/benchmarks/results.md, or benchmarks/results.md with --update)")
    p.add_argument("--png", default=None, help="where to write the bar chart (default: out/benchmarks/results.png, "
                   "or benchmarks/results.png with --update)")
    return p


def parse(argv):
    args = parser().parse_args(argv)
    folder = HERE if args.update else os.path.join(models.ROOT, "out", "benchmarks")
    args.out = args.out or os.path.join(folder, "results.md")
    args.png = args.png or os.path.join(folder, "results.png")
    return args


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d cores, %s, Python %s" % (cpu, os.cpu_count() or 0, platform.system(),
                                             platform.python_version())


def loadavg():
    try:
        return "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "?"


def versions():
    out = []
    for mod in ("numpy", "numba", "onnxruntime", "torch", "onnx"):
        try:
            out.append("%s %s" % (mod, __import__(mod).__version__))
        except ImportError:
            pass
    return ", ".join(out)


def latency(model, names, threads, repeats, warmup, log):
    """{(runtime, threads): median seconds}, runs interleaved."""
    fns = {}
    for t in threads:
        for name in names:
            try:
                fns[(name, t)] = runtimes.make(name, model, t)
            except Exception as e:
                log("  %s at %d threads: cannot run (%s: %s)" % (name, t, type(e).__name__, e))
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {key: [] for key in fns}
    # one thread count at a time (a 2-thread runtime's idle threads spin for a while after each run and
    # would steal the second core from the next runtime), the runtimes interleaved within it
    for t in threads:
        keys = [key for key in fns if key[1] == t]
        for r in range(repeats):
            # rotate the order each round: no runtime always runs right after the same neighbour
            for key in keys[r % len(keys):] + keys[:r % len(keys)]:
                runtimes.settle()  # the previous runtime's thread pools spin for up to ~0.1 s after a run
                fns[key]()  # untimed: this runtime's own pools awake and its data in cache, as in a loop
                t0 = time.perf_counter()
                fns[key]()
                times[key].append(time.perf_counter() - t0)
    return {key: float(np.median(v)) for key, v in times.items()}


def reference_latency(model, log):
    try:
        fn = runtimes.make("onnx-reference", model, 1)
        t0 = time.perf_counter()
        fn()
        first = time.perf_counter() - t0
        if first > 20:
            return first
        t0 = time.perf_counter()
        fn()
        return min(first, time.perf_counter() - t0)
    except Exception as e:
        log("  onnx-reference: cannot run (%s: %s)" % (type(e).__name__, str(e)[:200]))
        return None


def fresh_process(runtime, model, threads, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    root = models.ROOT
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-m", "benchmarks.runtimes", runtime, model, str(threads)], cwd=root,
                         env=env, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed")
    line = [l for l in out.stdout.splitlines() if l.startswith("cold=")][-1]
    parts = dict(p.split("=") for p in line.split())
    return float(parts["cold"]), float(parts["rss"])


def cold_and_rss(model, names, repeats, empty_cache, log):
    """{runtime: (cold s, peak RSS MB)} plus the numba empty-cache cold start (or None)."""
    results = {}
    warm_cache = os.path.join(models.folder(), "kernel-cache")
    for name in names:
        env = {"TINYRT_CACHE_DIR": warm_cache} if name == "tinyrt-numba" else {}
        try:
            if name == "tinyrt-numba":
                fresh_process(name, model, 1, env)  # fill the cache
            runs = [fresh_process(name, model, 1, env) for _ in range(repeats)]
            results[name] = (float(np.median([c for c, _ in runs])), float(np.median([r for _, r in runs])))
        except Exception as e:
            log("  %s fresh process failed: %s" % (name, e))
    empty = None
    if empty_cache and "tinyrt-numba" in names:
        folder = tempfile.mkdtemp(prefix="tinyrt-empty-cache-")
        try:
            empty = fresh_process("tinyrt-numba", model, 1, {"TINYRT_CACHE_DIR": folder})[0]
        except Exception as e:
            log("  tinyrt-numba empty cache failed: %s" % e)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return results, empty


def table(rows, threads):
    head = ["model", "runtime"]
    for t in threads:
        head += ["%d thread%s ms" % (t, "s" if t > 1 else ""), "x ort"]
    head += ["cold start s", "peak RSS MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], r["runtime"]]
        for t in threads:
            ms = r["lat"].get(t)
            ort = r["ort"].get(t)
            cells.append("%.1f" % (ms * 1e3) if ms else "")
            cells.append("%.2f" % (ms / ort) if ms and ort else "")
        cold = r.get("cold")
        text = "%.2f" % cold if cold is not None else ""
        if r.get("cold_empty") is not None:
            text += " (empty cache %.1f)" % r["cold_empty"]
        cells += [text, "%.0f" % r["rss"] if r.get("rss") else ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    args = parse(argv if argv is not None else sys.argv[1:])
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    started = loadavg()
    rows = []
    for model in args.models:
        models.ensure(model, log)
        log("%s: latency (%s threads, %d interleaved repeats)" % (model, args.threads, args.repeats))
        lat = latency(model, args.runtimes, args.threads, args.repeats, args.warmup, log)
        ort = {t: lat.get(("onnxruntime", t)) for t in args.threads}
        cold = {}
        empty = None
        if not args.no_rss:
            log("%s: %speak RSS (fresh processes)" % (model, "" if args.no_cold else "cold start and "))
            cold, empty = cold_and_rss(model, args.runtimes, 1 if args.no_cold else args.cold_repeats,
                                       model == args.models[0] and not args.no_cold, log)
        for name in args.runtimes:
            row = {"model": model, "runtime": name, "ort": ort,
                   "lat": {t: lat[(name, t)] for t in args.threads if (name, t) in lat}}
            if name in cold:
                row["cold"], row["rss"] = cold[name]
                if args.no_cold:
                    row["cold"] = None
            if name == "tinyrt-numba":
                row["cold_empty"] = empty
            rows.append(row)
        if not args.no_reference:
            log("%s: onnx reference evaluator, 1 thread" % model)
            ref = reference_latency(model, log)
            if ref is not None:
                rows.append({"model": model, "runtime": "onnx-reference", "ort": ort, "lat": {1: ref}})
    note = ""
    if os.environ.get("TINYRT_BENCH_REEXEC"):
        note = " (%s unset for the run)" % os.environ["TINYRT_BENCH_REEXEC"]
    header = ("Machine: %s%s. Load average %s at the start, %s at the end. %s. Batch 1, fp32, random "
              "weights; latency = median of %d interleaved runs in one process (each once the other "
              "runtimes' threads were idle, after one untimed run); cold start = fresh process, "
              "import + load + first result; peak RSS = fresh process, 1 thread."
              % (machine(), note, started, loadavg(), versions(), args.repeats))
    text = header + "\n\n" + table(rows, args.threads) + "\n"
    print(text)
    for path in (args.out, args.png):
        if os.path.dirname(os.path.abspath(path)):
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_table(args.out, text)
    try:
        from .chart import bar_chart
        bar_chart(rows, args.threads, args.png)
        log("saved %s and %s" % (args.out, args.png))
    except ImportError as e:
        log("saved %s (no chart: %s)" % (args.out, e))


def write_table(path, text):
    """Write ``text`` (the header and the table) to ``path``, over the table a file there starts with: the
    notes below it (the committed results.md keeps each session's measurements under "### " headings) are
    kept."""
    from tinyrt.files import atomic_write
    notes = ""
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
        at = old.find("\n### ")
        notes = old[at + 1:] if at >= 0 else ""
    atomic_write(path, lambda f: f.write(text + ("\n" + notes if notes else "")), mode="w")


if __name__ == "__main__":
    main()
