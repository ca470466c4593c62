"""Two runs' detections compared as sets of rows: ``tinyrt check``, the exporter's verification and the tests.

A detector's outputs ``dets [N, K, 5]`` (x1, y1, x2, y2, score; rows with score 0 are padding) and
``labels [N, K]`` cannot be compared element by element: two boxes whose scores differ by float noise
(1e-7) come out in either order, and a runtime's TopK may order equal scores differently. So per picture,
each real row of the expected output is matched with its own row of the other output: the same label, box
corners within ``rtol * max(1, max|expected box|)`` and score within ``rtol`` (scores are at most 1); of
several candidates the nearest is taken.

``near_ties``: a row left without a partner is excused when its score is within the score tolerance of a
cut, where a near-tie decides which of two boxes makes the list: the K-th row of a full list, or the
graph's ``score_thr`` when it is given. Without ``near_ties`` every row must find its partner.
"""
import numpy as np


class DetectionMatch:
    """The comparison: ``ok``, the largest box and score differences over matched rows, the tolerances, the
    number of rows excused as near-ties, and what went wrong (``detail``, empty when ok)."""

    def __init__(self, ok, box_diff, score_diff, box_tolerance, score_tolerance, excused=0, detail=""):
        self.ok, self.detail, self.excused = ok, detail, excused
        self.box_diff, self.score_diff = box_diff, score_diff
        self.box_tolerance, self.score_tolerance = box_tolerance, score_tolerance

    def __repr__(self):
        return "DetectionMatch(ok=%r, box_diff=%.3g, score_diff=%.3g%s)" % (
            self.ok, self.box_diff, self.score_diff, ", " + self.detail if self.detail else "")


def compare_detections(want_dets, want_labels, got_dets, got_labels, rtol=1e-4, score_thr=None, near_ties=True,
                       score_tolerance=None):
    """``got`` held to ``want`` (the reference: torch, or onnxruntime), row set by row set: a DetectionMatch."""
    want_dets, got_dets = np.asarray(want_dets, np.float64), np.asarray(got_dets, np.float64)
    want_labels, got_labels = np.asarray(want_labels), np.asarray(got_labels)
    box_tol = rtol * max(1.0, float(np.abs(want_dets[..., :4]).max()) if want_dets.size else 1.0)
    score_tol = rtol if score_tolerance is None else score_tolerance
    if want_dets.shape != got_dets.shape or want_labels.shape != got_labels.shape:
        return DetectionMatch(False, float("inf"), float("inf"), box_tol, score_tol, detail="shapes %s/%s, expected "
                              "%s/%s" % (list(got_dets.shape), list(got_labels.shape), list(want_dets.shape),
                                         list(want_labels.shape)))
    if not np.all(np.isfinite(got_dets)):
        return DetectionMatch(False, float("inf"), float("inf"), box_tol, score_tol, detail="non-finite values")
    worst_box = worst_score = 0.0
    excused, problems = 0, []
    for n in range(want_dets.shape[0]):
        want_rows = [r for r in range(want_dets.shape[1]) if want_dets[n, r, 4] > 0]
        free = [g for g in range(got_dets.shape[1]) if got_dets[n, g, 4] > 0]
        full = len(want_rows) == want_dets.shape[1] or len(free) == got_dets.shape[1]
        lowest = min([want_dets[n, r, 4] for r in want_rows] or [0.0])
        lost = []
        for r in want_rows:
            best, best_cost = None, None
            for g in free:
                if got_labels[n, g] != want_labels[n, r]:
                    continue
                box = float(np.abs(got_dets[n, g, :4] - want_dets[n, r, :4]).max())
                score = abs(float(got_dets[n, g, 4] - want_dets[n, r, 4]))
                if box <= box_tol and score <= score_tol:
                    cost = max(box / box_tol, score / score_tol if score_tol else 0.0)
                    if best is None or cost < best_cost:
                        best, best_cost, pair = g, cost, (box, score)
            if best is None:
                lost.append(float(want_dets[n, r, 4]))
            else:
                free.remove(best)
                worst_box, worst_score = max(worst_box, pair[0]), max(worst_score, pair[1])
        extra = [float(got_dets[n, g, 4]) for g in free]

        def at_a_cut(score):
            return near_ties and ((full and abs(score - lowest) <= score_tol)
                                  or (score_thr is not None and abs(score - score_thr) <= score_tol))
        bad_lost = [s for s in lost if not at_a_cut(s)]
        bad_extra = [s for s in extra if not at_a_cut(s)]
        excused += len(lost) + len(extra) - len(bad_lost) - len(bad_extra)
        if bad_lost or bad_extra:
            problems.append("image %d: %d expected rows without a partner (scores %s), %d rows not expected%s"
                            % (n, len(bad_lost), ", ".join("%.4f" % s for s in bad_lost[:3]), len(bad_extra),
                               (" (scores %s)" % ", ".join("%.4f" % s for s in bad_extra[:3])) if bad_extra else ""))
    if problems:
        return DetectionMatch(False, worst_box, worst_score, box_tol, score_tol, excused, "; ".join(problems))
    return DetectionMatch(True, worst_box, worst_score, box_tol, score_tol, excused)
