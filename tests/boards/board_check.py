"""The script that runs ON the (emulated) board, next to a copied ``tinyrt/`` folder: no pip, no onnx.

    python3 board_check.py [--info MODEL] [--image JPEG] [--run 'MODEL JPEG ...'] [--numba-check] MODEL[:GOLDEN] ...

prints the platform (``platform.machine()``, Python, numpy, Pillow and numba versions), then for each model
runs tinyrt on the golden's feed and prints the largest relative difference from the golden that
onnxruntime recorded on x86, ``max |tinyrt - ort| / max(1, max |ort|)`` over the model's outputs (integer
outputs must match exactly; a mismatch counts as an infinite difference). A model without a golden is run
on a seeded random feed (dynamic dimensions 1), which shows that it loads and runs there, without a check.

``--info MODEL`` runs ``python -m tinyrt info MODEL`` in this interpreter (qemu-user cannot start a second
foreign interpreter without binfmt, so runpy stands in for the subprocess); ``--run 'MODEL IMAGE --json'``
runs ``python -m tinyrt run`` likewise (decoding with the board's Pillow, preprocessing, drawing with
``--save``). ``--image`` decodes a JPEG
with the board's Pillow. ``--numba-check`` compiles a small numba function. ``--warmup`` runs
``python -m tinyrt warmup`` first (compiling every kernel, or loading them from the cache), timed.
When the sessions ran on the numba path, the target numba compiled for is reported (``target``: triple,
CPU, features, native FMA or not).

The last line is ``RESULT {json}`` for the board tests. Standard library and numpy only (Python 3.9,
numpy 1.19): this file runs where tinyrt runs.
"""
import argparse
import contextlib
import hashlib
import io
import json
import os
import platform
import runpy
import sys
import time

import numpy as np

t0 = time.time()
import tinyrt  # noqa: E402  (the copied folder, next to this script)

IMPORT_SECONDS = time.time() - t0


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def feed_for(sess, golden):
    if golden is not None:
        shape = tuple(int(d) for d in golden["feed_shape"])
        x = np.random.RandomState(int(golden["feed_seed"])).standard_normal(shape).astype(np.float32)
        return {str(golden["feed_name"]): x}
    feeds = {}
    for i, arg in enumerate(sess.get_inputs()):
        shape = tuple(d if isinstance(d, int) and d > 0 else 1 for d in arg.shape)
        feeds[arg.name] = np.random.RandomState(i).standard_normal(shape).astype(np.float32)
    return feeds


def compare(outputs, golden):
    """(largest relative difference, per-output lines) against the golden."""
    names = [str(n) for n in golden["output_names"]]
    worst, lines = 0.0, []
    for i, (name, got) in enumerate(zip(names, outputs)):
        want = golden["output_%d" % i]
        if got.shape != want.shape or got.dtype != want.dtype:
            diff = float("inf")
            lines.append("    %s: got %s %s, golden %s %s" % (name, got.dtype, got.shape, want.dtype, want.shape))
        elif want.dtype.kind in "fc":
            scale = max(1.0, float(np.abs(want).max())) if want.size else 1.0
            diff = float(np.abs(got.astype(np.float64) - want).max()) / scale if want.size else 0.0
            lines.append("    %s %s: max rel diff %.2e" % (name, want.shape, diff))
        else:
            bad = int((got != want).sum())
            diff = float("inf") if bad else 0.0
            lines.append("    %s %s: %s" % (name, want.shape, "%d values differ" % bad if bad else "identical"))
        worst = max(worst, diff)
    if len(outputs) != len(names):
        worst = float("inf")
        lines.append("    %d outputs, golden has %d" % (len(outputs), len(names)))
    return worst, lines


def run_model(spec):
    path, _, golden_path = spec.partition(":")
    result = {"model": os.path.basename(path)}
    golden = None
    if golden_path:
        golden = np.load(golden_path, allow_pickle=False)
        result["sha256_ok"] = str(golden["sha256"]) == sha256(path)
    t = time.time()
    sess = tinyrt.InferenceSession(path)
    result["load_s"] = round(time.time() - t, 2)
    result["kernels"] = sess.kernels.name  # the path the session really runs on
    feeds = feed_for(sess, golden)
    t = time.time()
    outputs = sess.run(None, feeds)
    result["run_s"] = round(time.time() - t, 2)
    again = outputs
    for _ in range(2 if sess.kernels.name == "numba" else 0):  # the second run makes the compiled program, the
        again = sess.run(None, feeds)                          # third runs it (its segments: kernels/segment.py)
    result["program_same"] = all(a.shape == b.shape and a.tobytes() == b.tobytes() for a, b in zip(outputs, again))
    result["feed"] = {k: list(v.shape) for k, v in feeds.items()}
    result["outputs"] = {o.name: [str(a.dtype), list(a.shape)] for o, a in zip(sess.get_outputs(), outputs)}
    print("%s: load %.1f s, run %.1f s, feed %s" % (result["model"], result["load_s"], result["run_s"],
                                                    result["feed"]))
    if golden is not None:
        worst, lines = compare(outputs, golden)
        result["max_rel_diff"] = worst
        for line in lines:
            print(line)
        print("  largest relative difference from the golden (onnxruntime %s, x86): %.2e%s"
              % (golden["onnxruntime"], worst, "" if result["sha256_ok"] else "  (MODEL CHANGED: sha256 differs)"))
    return result


def run_tinyrt(args):
    """``python -m tinyrt ARGS...``, in-process; {"exit", "stdout", "stderr"}."""
    out, err, argv = io.StringIO(), io.StringIO(), sys.argv
    sys.argv = ["tinyrt"] + list(args)
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_module("tinyrt", run_name="__main__", alter_sys=True)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = argv
    text = out.getvalue()
    print("python -m tinyrt %s (exit %d):" % (" ".join(args), code))
    print("  " + text.rstrip().replace("\n", "\n  "))
    if err.getvalue().strip():
        print("  stderr: " + err.getvalue().rstrip().replace("\n", "\n  "))
    return {"exit": code, "stdout": text, "stderr": err.getvalue()}


def run_info(model):
    """``python -m tinyrt info MODEL``, in-process."""
    return run_tinyrt(["info", model])


def run_image(path):
    from PIL import Image
    im = Image.open(path).convert("RGB")
    a = np.asarray(im)
    print("Pillow decoded %s: %dx%d, mean RGB %s" % (path, im.width, im.height,
                                                     np.round(a.reshape(-1, 3).mean(0), 1).tolist()))
    return {"size": [im.width, im.height], "mean": a.reshape(-1, 3).mean(0).tolist()}


def run_numba():
    """numba on this board: what tinyrt's kernels make of the CPU (kernels/_target.py, which configures
    numba before anything compiles, as a session on the numba path does), then a small function compiled.
    The order matters under qemu-arm with bookworm's numba: compiled first, the function's reference
    counting (numba's own atomics) aborted the interpreter with "Symbol not found: __sync_fetch_and_add_4"."""
    t = time.time()
    import numba
    imported = time.time() - t
    from kernels import _target  # the copied folder
    m = _target.machine()
    print("the kernels compile for %s: lock-free atomics %s, native FMA %s" % (m.describe(), m.atomics, m.fma))

    @numba.njit(cache=True)
    def dot(a, b):
        s = 0.0
        for i in range(a.shape[0]):
            s += a[i] * b[i]
        return s

    t = time.time()
    value = dot(np.arange(100.0), np.ones(100))
    compiled = time.time() - t
    print("numba %s: import %.1f s, first call (compile or cache) %.1f s, value %s"
          % (numba.__version__, imported, compiled, value))
    return {"version": numba.__version__, "import_s": round(imported, 2), "compile_s": round(compiled, 2),
            "ok": value == 4950.0, "target": {"triple": m.triple, "cpu": m.cpu, "features": m.features,
                                              "atomics": m.atomics, "fma": m.fma, "configured": m.configured}}


def versions():
    v = {"machine": platform.machine(), "python": platform.python_version(), "numpy": np.__version__,
         "tinyrt": tinyrt.__version__, "tinyrt_import_s": round(IMPORT_SECONDS, 2)}
    # numba is imported here, before any session: first what the kernels do before they import it (on 32-bit
    # Arm, numba 0.52 fixes its target while importing; kernels/_target.py), so the sessions get what a
    # script that only imports tinyrt gets
    from kernels import _target  # the copied folder (standard library only at import)
    _target.configure_import()
    for name in ("PIL", "numba"):
        try:
            v[name] = __import__(name).__version__
        except ImportError:
            v[name] = None
    return v


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="*", help="MODEL.onnx or MODEL.onnx:GOLDEN.npz")
    p.add_argument("--info", action="append", default=[], metavar="MODEL")
    p.add_argument("--image", action="append", default=[], metavar="JPEG")
    p.add_argument("--run", action="append", default=[], metavar="'MODEL IMAGE [OPTION...]'",
                   help="run `python -m tinyrt run MODEL IMAGE [OPTION...]` (one string) in-process")
    p.add_argument("--numba-check", action="store_true")
    p.add_argument("--warmup", action="store_true", help="run `python -m tinyrt warmup` first, timed")
    a = p.parse_args(argv)
    started = time.time()
    result = versions()
    print("board: %(machine)s, Python %(python)s, numpy %(numpy)s, Pillow %(PIL)s, numba %(numba)s" % result)
    result["models"], result["errors"] = [], []
    if a.warmup:
        t = time.time()
        result["warmup"] = run_tinyrt(["warmup"])
        result["warmup"]["seconds"] = round(time.time() - t, 1)
        if result["warmup"]["exit"] != 0:
            result["errors"].append("warmup: exit %d" % result["warmup"]["exit"])
    for spec in a.models:
        try:
            result["models"].append(run_model(spec))
        except Exception as e:  # report every model, then fail
            import traceback
            traceback.print_exc()
            result["errors"].append("%s: %s: %s" % (spec.split(":")[0], type(e).__name__, e))
    result["info"] = {m: run_info(m) for m in a.info}
    result["images"] = {}
    for path in a.image:
        try:
            result["images"][path] = run_image(path)
        except Exception as e:
            result["errors"].append("%s: %s: %s" % (path, type(e).__name__, e))
    result["runs"] = {}
    for spec in a.run:
        result["runs"][spec] = run_tinyrt(["run"] + spec.split())
    if "kernels" in sys.modules and any(m.get("kernels") == "numba" for m in result["models"]):
        from kernels import _target
        m = _target.machine()
        result["target"] = {"triple": m.triple, "cpu": m.cpu, "features": m.features, "fma": m.fma,
                            "configured": m.configured}
        print("numba compiled for %s; native FMA: %s" % (m.describe(), m.fma))
    if a.numba_check:
        try:
            result["numba_check"] = run_numba()
        except Exception as e:
            result["errors"].append("numba: %s: %s" % (type(e).__name__, e))
    result["total_s"] = round(time.time() - started, 1)
    print("RESULT " + json.dumps(result, sort_keys=True))
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
