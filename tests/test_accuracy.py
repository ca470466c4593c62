"""Accuracy of the committed models (exporter/pretrained/), measured after export through tinyrt, with
onnxruntime beside it, on the held-out synthetic test split (regenerated here from its seed); the annotated
sample pictures against the generator's ground truth; and the mAP implementation itself.

Bars (issue 8): classifier top-1 >= 95%, detector mAP@0.5 >= 0.80 through tinyrt, and onnxruntime within
0.5 percentage points of tinyrt.
"""
import json
import os

import numpy as np
import pytest

from exporter.evaluate import average_precision, mean_average_precision

TOP1_BAR = 0.95
MAP_BAR = 0.80
AGREE_PP = 0.5


# ------------------------------------------------------------------------------------- mAP, by hand


def test_average_precision_all_point():
    # detections TP, FP, TP over 2 ground truths: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    # envelope: 1 up to recall 1/2, then 2/3 -> AP = 0.5 * 1 + 0.5 * 2/3
    assert average_precision([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3.0]) == pytest.approx(0.5 + 1 / 3.0)
    assert average_precision([], []) == 0.0
    assert average_precision([1.0], [1.0]) == 1.0


def test_map_perfect_duplicates_and_misses():
    gt = [(np.array([[0, 0, 10, 10], [20, 20, 40, 40]]), np.array([0, 1])),
          (np.array([[5, 5, 25, 25]]), np.array([0]))]
    perfect = [(b, np.ones(len(b)), lab) for b, lab in gt]
    m, aps = mean_average_precision(perfect, gt, num_classes=3)
    assert m == 1.0 and aps[:2] == [1.0, 1.0] and np.isnan(aps[2])    # class 2 has no ground truth: left out
    # a duplicate of a matched box is a false positive; here it scores lowest, so it costs nothing
    dup = [(np.array([[0, 0, 10, 10], [20, 20, 40, 40], [0, 0, 10, 10]]), np.array([0.9, 0.9, 0.1]),
            np.array([0, 1, 0])), perfect[1]]
    assert mean_average_precision(dup, gt, 3)[0] == 1.0
    # ... ranked above a true positive, it lowers that one's precision
    dup_first = [(np.array([[0, 0, 10, 10], [1, 0, 10, 10]]), np.array([0.9, 0.95]), np.array([0, 0])),
                 (np.array([[5, 5, 25, 25]]), np.array([0.5]), np.array([0]))]
    m0 = mean_average_precision(dup_first, [(gt[0][0][:1], gt[0][1][:1]), gt[1]], 1)[0]
    # [1,0,10,10] (IoU 0.9) is the TP, [0,0,10,10] then finds its truth taken: TP, FP, TP
    assert m0 == pytest.approx(0.5 * 1 + 0.5 * 2 / 3.0)
    # IoU below 0.5 is a miss; a wrong class is a miss
    shifted = [(np.array([[6, 6, 16, 16]]), np.array([1.0]), np.array([0])),
               (np.array([[5, 5, 25, 25]]), np.array([1.0]), np.array([1]))]
    gt1 = [(gt[0][0][:1], gt[0][1][:1]), gt[1]]
    assert mean_average_precision(shifted, gt1, 2)[0] == 0.0
    # one of two found, with a false positive scored above it: recall 1/2 at precision 1/2
    half = [(np.array([[50, 50, 60, 60], [0, 0, 10, 10]]), np.array([0.9, 0.8]), np.array([0, 0])),
            (np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))]
    assert mean_average_precision(half, gt1, 1)[0] == pytest.approx(0.25)


# ------------------------------------------------------------------------- the committed models

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("PIL")


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """The committed checkpoints converted once per session (with the exporter's verification)."""
    from exporter.demo import convert_pretrained
    out = tmp_path_factory.mktemp("pretrained_onnx")
    results = convert_pretrained(str(out), log=lambda *a: None)
    return {k: r.onnx_path for k, r in results.items()}


@pytest.fixture(scope="session")
def test_splits(tmp_path_factory):
    """The held-out test splits of the datasets the models were trained on (seed 0; see MAKE.md)."""
    from exporter.data import make_classification_dataset, make_detection_dataset
    root = tmp_path_factory.mktemp("shapes_test")
    cls = make_classification_dataset(str(root / "cls"), seed=0, train=0, val=0, test=400)
    det = make_detection_dataset(str(root / "det"), seed=0, train=0, val=0, test=200)
    return cls, det


def test_classifier_top1_through_tinyrt(exported, test_splits):
    from exporter.evaluate import evaluate_classifier
    acc_rt, n = evaluate_classifier(exported["classifier"], test_splits[0], "test", "tinyrt")
    acc_ort, _ = evaluate_classifier(exported["classifier"], test_splits[0], "test", "onnxruntime")
    print("\nclassifier top-1 on %d test pictures: tinyrt %.2f%%, onnxruntime %.2f%%" % (n, 100 * acc_rt,
                                                                                       100 * acc_ort))
    assert n == 400
    assert acc_rt >= TOP1_BAR
    assert abs(acc_rt - acc_ort) * 100 <= AGREE_PP


def test_detector_map_through_tinyrt(exported, test_splits):
    from exporter.evaluate import evaluate_detector
    m_rt, aps, n = evaluate_detector(exported["detector"], test_splits[1], "test", "tinyrt")
    m_ort, _, _ = evaluate_detector(exported["detector"], test_splits[1], "test", "onnxruntime")
    print("\ndetector mAP@0.5 on %d test pictures: tinyrt %.4f (per class %s), onnxruntime %.4f"
          % (n, m_rt, ", ".join("%.3f" % a for a in aps), m_ort))
    assert n == 200
    assert m_rt >= MAP_BAR
    assert abs(m_rt - m_ort) * 100 <= AGREE_PP


def test_annotated_samples_match_ground_truth(exported, tmp_path):
    """tinyrt.run(..., save=) on the committed sample pictures: the answers (what is drawn) are the truth."""
    import tinyrt
    from PIL import Image
    from exporter.demo import SAMPLES, match_truth
    with open(os.path.join(SAMPLES, "samples.json")) as f:
        truth = json.load(f)
    assert sum(t["task"] == "classification" for t in truth.values()) >= 4
    assert sum(t["task"] == "detection" for t in truth.values()) >= 3
    for name, t in sorted(truth.items()):
        model = exported["classifier" if t["task"] == "classification" else "detector"]
        target = str(tmp_path / name)
        res = tinyrt.run(model, os.path.join(SAMPLES, name), save=target)      # the threshold in the file
        ok, text = match_truth(res, t)
        assert ok, "%s: %s; tinyrt says %s" % (name, text, res)
        drawn = np.asarray(Image.open(target).convert("RGB"), dtype=np.int16)
        original = np.asarray(Image.open(os.path.join(SAMPLES, name)).convert("RGB"), dtype=np.int16)
        assert drawn.shape == original.shape and np.abs(drawn - original).max() > 50   # something was drawn
