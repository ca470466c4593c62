"""Verification: push the same input through torch, onnxruntime (when installed) and tinyrt and compare.

Tolerance (DESIGN.md): ``|a - b| <= 1e-4 * max(1, max|ref|)`` for float outputs, where ``ref`` is torch's
output; integer outputs (detection labels) must be equal. A mismatch raises VerificationError.
"""
import time

import numpy as np

from .errors import VerificationError

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


def _ort_session(path):
    try:
        import onnxruntime
    except ImportError:
        return None
    opts = onnxruntime.SessionOptions()
    opts.log_severity_level = 3
    return onnxruntime.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def _tinyrt_session(path):
    import tinyrt
    return tinyrt.InferenceSession(path)


def run_torch(module, feeds):
    import torch
    with torch.no_grad():
        out = module(*[torch.from_numpy(np.ascontiguousarray(v)) for v in feeds.values()])
    if not isinstance(out, (tuple, list)):
        out = (out,)
    return [o.detach().cpu().numpy() for o in out]


def compare_detections(ref_dets, ref_labels, got_dets, got_labels, score_thr=None):
    """Compare detection outputs up to the order of near-tied scores.

    Rows are matched greedily: a torch row (box, score, label) matches an unmatched runtime row with the same
    label and box and score within tolerance. Scores that tie within tolerance may come out in either order
    in different runtimes (TopK on float32 scores that differ in the last bits), and at the K-th row or at
    score_thr a near-tied box may be in one output and not the other; such rows are accepted. Anything else
    unmatched is a mismatch. Returns ``(max box/score diff over matched rows, tolerance, ok, detail)``.
    """
    ref_dets, got_dets = np.asarray(ref_dets), np.asarray(got_dets)
    ref_labels, got_labels = np.asarray(ref_labels), np.asarray(got_labels)
    if ref_dets.shape != got_dets.shape or ref_labels.shape != got_labels.shape:
        return float("inf"), 0.0, False, "shapes %s/%s, torch gives %s/%s" % (
            list(got_dets.shape), list(got_labels.shape), list(ref_dets.shape), list(ref_labels.shape))
    if not np.all(np.isfinite(got_dets)):
        return float("inf"), 0.0, False, "non-finite values"
    tol_box = tolerance(ref_dets[..., :4])
    tol_score = RTOL
    worst, problems = 0.0, []
    for b in range(ref_dets.shape[0]):
        r_rows = [i for i in range(ref_dets.shape[1]) if ref_dets[b, i, 4] > 0]
        g_rows = [i for i in range(got_dets.shape[1]) if got_dets[b, i, 4] > 0]
        unmatched = set(g_rows)
        lost = []
        for i in r_rows:
            best, best_diff = None, None
            for j in unmatched:
                if got_labels[b, j] != ref_labels[b, i]:
                    continue
                if abs(float(got_dets[b, j, 4]) - float(ref_dets[b, i, 4])) > tol_score:
                    continue
                d = float(np.abs(got_dets[b, j, :4].astype(np.float64) - ref_dets[b, i, :4]).max())
                if d <= tol_box and (best is None or d < best_diff):
                    best, best_diff = j, d
            if best is None:
                lost.append(float(ref_dets[b, i, 4]))
            else:
                unmatched.discard(best)
                worst = max(worst, best_diff, abs(float(got_dets[b, best, 4]) - float(ref_dets[b, i, 4])))
        extra = [float(got_dets[b, j, 4]) for j in unmatched]
        full = len(r_rows) == ref_dets.shape[1] or len(g_rows) == got_dets.shape[1]
        low = min([float(ref_dets[b, i, 4]) for i in r_rows] or [0.0])

        def excused(score):
            at_cut = full and abs(score - low) <= tol_score
            at_thr = score_thr is not None and abs(score - score_thr) <= tol_score
            return at_cut or at_thr
        bad_lost = [sc for sc in lost if not excused(sc)]
        bad_extra = [sc for sc in extra if not excused(sc)]
        if bad_lost or bad_extra:
            problems.append("image %d: %d torch boxes not found (scores %s), %d boxes torch does not give%s"
                            % (b, len(bad_lost), ", ".join("%.4f" % sc for sc in bad_lost[:3]), len(bad_extra),
                               (" (scores %s)" % ", ".join("%.4f" % sc for sc in bad_extra[:3])) if bad_extra else ""))
    if problems:
        return max(worst, float("inf")), tol_box, False, "; ".join(problems)
    return worst, tol_box, True, ""


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
    :func:`compare_detections`. Returns a VerifyReport; raises VerificationError naming the runtime and
    output when any output differs beyond tolerance (or a runtime cannot load or run the file).
    """
    report = VerifyReport()
    ref = run_torch(module, feeds)
    report.outputs["torch"] = ref
    if len(ref) != len(output_names):
        raise VerificationError("torch gives %d outputs, the file declares %d" % (len(ref), len(output_names)))
    for runtime in runtimes:
        try:
            sess = _ort_session(onnx_path) if runtime == "onnxruntime" else _tinyrt_session(onnx_path)
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
        if detection is not None:   # (dets, labels): compared as sets of boxes, see compare_detections
            diff, tol, ok, detail = compare_detections(ref[0], ref[1], got[0], got[1], detection.get("score_thr"))
            report.rows.append((runtime, "dets+labels", diff, tol, ok, detail))
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
