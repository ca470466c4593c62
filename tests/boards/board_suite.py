"""Runs ON the board: every case of a node bundle (node_bundle.py) through the copied tinyrt, compared with
what tinyrt computed on x86.

    python3 board_suite.py BUNDLE.npz [-v]

Floats must agree within ``|a - b| <= 1e-4 * max(1, max|b|)`` (NaN equals NaN), everything else exactly, with
the same dtype and shape. Prints one line per disagreeing case, then ``RESULT {json}``. Standard library and
numpy only (Python 3.9, numpy 1.19).
"""
import json
import platform
import signal
import sys
import time
import traceback

import numpy as np

import tinyrt

TIMEOUT = 60  # seconds a case may take under emulation


def compare(got, want):
    if not isinstance(got, np.ndarray):
        return "output is %s, not an array" % type(got).__name__
    if got.dtype != want.dtype or got.shape != want.shape:
        return "got %s%s, x86 gave %s%s" % (got.dtype, got.shape, want.dtype, want.shape)
    if got.size == 0:
        return None
    if want.dtype.kind in "fc":
        a, b = got.astype(np.complex128 if want.dtype.kind == "c" else np.float64), want
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        finite = np.abs(b[np.isfinite(b)])
        scale = max(1.0, float(finite.max())) if finite.size else 1.0
        tol = (1e-3 if want.dtype == np.float16 else 1e-4) * scale
        with np.errstate(invalid="ignore"):
            ok = same | (np.abs(a - b) <= tol)
        if ok.all():
            return None
        return "%d/%d values differ (tolerance %.2g)" % (int((~ok).sum()), got.size, tol)
    bad = int((got != want).sum())
    return "%d/%d values differ" % (bad, got.size) if bad else None


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    kernels = sys.modules.get("kernels")
    if kernels is not None and kernels._jit.PROGRESS.compiling():  # a kernel's first compile (minutes under
        signal.alarm(TIMEOUT)                                        # emulation on a busy host) is not the case's
        return
    raise Timeout("still running after %d s" % TIMEOUT)


def where(exc):
    """The innermost frame inside tinyrt (file:line) of an exception: where a numpy API went missing."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "tinyrt" in f.filename]
    cause = exc.__cause__ or exc.__context__
    if cause is not None:
        inner = [f for f in traceback.extract_tb(cause.__traceback__) if "tinyrt" in f.filename]
        frames = inner or frames
    if not frames:
        return ""
    f = frames[-1]
    return " at %s:%d" % (f.filename[f.filename.rfind("tinyrt"):], f.lineno)


PATHS = {}  # kernel path (numba / numpy) -> sessions that ran on it


def run_case(bundle, i):
    c = "c%d_" % i
    sess = tinyrt.InferenceSession(bundle[c + "model"].tobytes())
    PATHS[sess.kernels.name] = PATHS.get(sess.kernels.name, 0) + 1
    feeds = [str(n) for n in bundle[c + "feeds"]]
    for k in range(int(bundle[c + "sets"])):
        ins = [bundle[c + "in%d_%d" % (k, j)] for j in range(len(feeds))]
        got = sess.run(None, dict(zip(feeds, ins)))
        n = int(bundle[c + "nout%d" % k])
        if len(got) != n:
            return "%d outputs, x86 gave %d" % (len(got), n)
        for j in range(n):
            why = compare(got[j], bundle[c + "out%d_%d" % (k, j)])
            if why:
                return "data set %d, output %d: %s" % (k, j, why)
    return None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    bundle = np.load(argv[0], allow_pickle=False)
    verbose = "-v" in argv
    names = [str(n) for n in bundle["names"]]
    print("board: %s, Python %s, numpy %s: %d node cases" % (platform.machine(), platform.python_version(),
                                                              np.__version__, len(names)))
    signal.signal(signal.SIGALRM, _alarm)
    failures = {}
    start = time.time()
    for i, name in enumerate(names):
        t = time.time()
        signal.alarm(TIMEOUT)
        try:
            with np.errstate(all="ignore"):
                why = run_case(bundle, i)
        except Exception as e:
            why = "%s: %s%s" % (type(e).__name__, " ".join(str(e).split())[:300], where(e))
        finally:
            signal.alarm(0)
        if why:
            failures[name] = why
            print("DIFFERS %s: %s" % (name, why))
        elif verbose:
            print("ok %s (%.2f s)" % (name, time.time() - t))
    result = {"machine": platform.machine(), "python": platform.python_version(), "numpy": np.__version__,
              "cases": len(names), "failures": failures, "seconds": round(time.time() - start, 1), "kernels": PATHS}
    print("%d of %d cases agree with x86 (%.0f s); sessions by kernel path: %s"
          % (len(names) - len(failures), len(names), result["seconds"], PATHS))
    print("RESULT " + json.dumps(result, sort_keys=True))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
