"""Verification: push the same input through torch, onnxruntime (when installed) and tinyrt and compare.

Tolerance (docs/DESIGN.md): ``|a - b| <= 1e-4 * max(1, max|ref|)`` for float outputs, where ``ref`` is torch's
output; integer outputs (detection labels) must be equal. A mismatch raises VerificationError.
"""
import time

import numpy as np

from tinyrt.vision.detections import compare_detections

from .errors import VerificationError
from .evaluate import session

RTOL = 1e-4


def tolerance(ref):
    ref = np.asarray(ref)
    return RTOL * max(1.0, float(np.abs(ref).max()) if ref.size else 1.0)


def compare(ref, got):
    """``(max_abs_diff, tolerance, ok, detail)`` for one output."""
    ref, got = np.asarray(ref), np.asarray(got)
    if ref.shape != got.shape:
        return float("inf"), 0.0, False, "shape %s, torch gives %s" % (list(got.shape), list(ref.shape))
    if ref.dtype.kind in "iub" or got.dtype.kind in "iub":
        bad = int(np.count_nonzero(ref != got))
        diff = float(np.abs(ref.astype(np.int64) - got.astype(np.int64)).max()) if ref.size else 0.0
        return diff, 0.0, bad == 0, ("%d values differ" % bad) if bad else ""
    if not np.all(np.isfinite(got)):
        return float("inf"), tolerance(ref), False, "non-finite values"
    diff = float(np.abs(ref.astype(np.float64) - got.astype(np.float64)).max()) if ref.size else 0.0
    tol = tolerance(ref)
    return diff, tol, diff <= tol, ""


def _session(path, runtime):
    """The runtime's session for ``path``, or None when that runtime (onnxruntime) is not installed."""
    try:
        return session(path, runtime)
    except ImportError:
        return None


def run_torch(module, feeds):
    import torch
    with torch.no_grad():
        out = module(*[torch.from_numpy(np.ascontiguousarray(v)) for v in feeds.values()])
    if not isinstance(out, (tuple, list)):
        out = (out,)
    return [o.detach().cpu().numpy() for o in out]


class VerifyReport:
    def __init__(self):
        self.rows = []        # (runtime, output name, max diff, tolerance, ok, detail)
        self.skipped = []     # (runtime, reason)
        self.outputs = {}     # runtime -> list of arrays
        self.sessions = {}

    @property
    def ok(self):
        return all(r[4] for r in self.rows)

    def max_diff(self, runtime):
        diffs = [r[2] for r in self.rows if r[0] == runtime]
        return max(diffs) if diffs else None

    def lines(self):
        out = []
        for runtime, name, diff, tol, ok, detail in self.rows:
            out.append("  %-12s %-11s max |diff| vs torch %.3g (tolerance %.3g) %s%s"
                       % (runtime, name, diff, tol, "ok" if ok else "MISMATCH", (": " + detail) if detail else ""))
        for runtime, reason in self.skipped:
            out.append("  %-12s skipped: %s" % (runtime, reason))
        return out


def verify(onnx_path, module, feeds, output_names, log=print, runtimes=("onnxruntime", "tinyrt"), detection=None):
    """Compare torch ``module`` on ``feeds`` ({input name: array}) with the ONNX file in each runtime.

    ``detection``: the thresholds dict for a detector, whose outputs (dets, labels) are compared with
    :func:`tinyrt.vision.detections.compare_detections` (near-ties at the K cut and at ``score_thr``
    excused). Returns a VerifyReport; raises VerificationError naming the runtime and
    output when any output differs beyond tolerance (or a runtime cannot load or run the file).
    """
    report = VerifyReport()
    ref = run_torch(module, feeds)
    report.outputs["torch"] = ref
    if len(ref) != len(output_names):
        raise VerificationError("torch gives %d outputs, the file declares %d" % (len(ref), len(output_names)))
    for runtime in runtimes:
        try:
            sess = _session(onnx_path, runtime)
        except Exception as e:  # the file must load in every runtime we verify with
            raise VerificationError("%s cannot load the exported file: %s" % (runtime, _first_line(e)))
        if sess is None:
            report.skipped.append((runtime, "not installed"))
            continue
        report.sessions[runtime] = sess
        try:
            got = sess.run(list(output_names), dict(feeds))
        except Exception as e:
            raise VerificationError("%s cannot run the exported file: %s" % (runtime, _first_line(e)))
        report.outputs[runtime] = got
        if detection is not None:   # (dets, labels): compared as sets of rows, see compare_detections
            m = compare_detections(ref[0], ref[1], got[0], got[1], RTOL, score_thr=detection.get("score_thr"))
            report.rows.append((runtime, "dets+labels", max(m.box_diff, m.score_diff), m.box_tolerance, m.ok,
                                m.detail))
            continue
        for name, r, g in zip(output_names, ref, got):
            diff, tol, ok, detail = compare(r, g)
            report.rows.append((runtime, name, diff, tol, ok, detail))
    if log:
        log("verification (torch vs each runtime, input %s):" % ", ".join(
            "%s %s" % (k, list(v.shape)) for k, v in feeds.items()))
        for line in report.lines():
            log(line)
    if not report.ok:
        bad = [r for r in report.rows if not r[4]]
        runtime, name, diff, tol, _, detail = bad[0]
        raise VerificationError(
            "verification failed: %s's output %r differs from torch by %.3g (tolerance %.3g)%s; the export is "
            "wrong, nothing was written" % (runtime, name, diff, tol, (" (" + detail + ")") if detail else ""))
    return report


def benchmark(fn, repeats=5):
    """Median wall time in seconds of ``fn()`` over ``repeats`` runs (after one warm-up run)."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def _first_line(e):
    text = str(e).strip().splitlines()
    return "%s: %s" % (type(e).__name__, text[0] if text else "")
