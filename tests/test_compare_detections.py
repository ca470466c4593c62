"""tinyrt/vision/detections.py: the one comparison of two runs' detections (``tinyrt check``, the exporter's
verification, the demo and the exporter tests use it). Exact expected verdicts on small hand-made outputs."""
import numpy as np

from tinyrt.vision.detections import compare_detections


def _outputs(rows, k):
    """dets [1, k, 5] and labels [1, k] holding ``rows`` (x1, y1, x2, y2, score, label), the rest padding."""
    dets = np.zeros((1, k, 5), np.float32)
    labels = np.full((1, k), -1, np.int64)
    for i, row in enumerate(rows):
        dets[0, i], labels[0, i] = row[:5], row[5]
    return dets, labels


ROWS = [(10, 10, 50, 50, 0.9, 0), (20, 20, 80, 90, 0.5, 1), (0, 0, 30, 30, 0.4, 2)]
TIED = (5, 5, 9, 9, 0.4 + 5e-5, 1)          # within the score tolerance of the last row's 0.4


def test_same_rows_in_another_order_agree():
    want = _outputs(ROWS, 5)
    got = _outputs(ROWS[::-1], 5)
    m = compare_detections(*want, *got)
    assert m.ok and m.box_diff == 0 and m.score_diff == 0 and m.excused == 0


def test_box_beyond_the_tolerance_or_another_label_differs():
    want = _outputs(ROWS, 5)
    moved = [list(r) for r in ROWS]
    moved[1][2] += 0.05                       # 0.05 > 1e-4 * 90
    assert not compare_detections(*want, *_outputs(moved, 5)).ok
    near = [list(r) for r in ROWS]
    near[1][2] += 0.005                       # within 1e-4 * 90 = 0.009
    m = compare_detections(*want, *_outputs(near, 5))
    assert m.ok and 0.004 < m.box_diff < 0.006
    relabelled = [list(r) for r in ROWS]
    relabelled[0][5] = 1
    m = compare_detections(*want, *_outputs(relabelled, 5))
    assert not m.ok and "without a partner" in m.detail


def test_a_near_tie_at_the_cut_of_a_full_list_is_excused():
    want = _outputs(ROWS, 3)                  # full: 3 rows of 3
    got = _outputs(ROWS[:2] + [TIED], 3)      # the tied box made the list instead
    m = compare_detections(*want, *got)
    assert m.ok and m.excused == 2
    assert not compare_detections(*want, *got, near_ties=False).ok


def test_a_near_tie_is_not_excused_where_the_list_is_not_full():
    want = _outputs(ROWS, 5)
    got = _outputs(ROWS[:2] + [TIED], 5)
    assert not compare_detections(*want, *got).ok
    lost = _outputs(ROWS[:2], 5)
    assert not compare_detections(*want, *lost).ok
    assert compare_detections(*want, *lost, score_thr=0.4 + 5e-5).ok    # at the graph's score threshold


def test_shapes_and_non_finite_values_are_mismatches():
    want = _outputs(ROWS, 5)
    m = compare_detections(*want, *_outputs(ROWS, 4))
    assert not m.ok and "shapes" in m.detail
    dets, labels = _outputs(ROWS, 5)
    dets[0, 0, 0] = np.nan
    m = compare_detections(*want, dets, labels)
    assert not m.ok and "non-finite" in m.detail
