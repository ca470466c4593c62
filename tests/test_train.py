"""Training, saving, converting and running still connect: one short epoch on a tiny synthetic split.

Also: the dataset generator is deterministic and writes MMEdu's layouts, and the SSD target coder inverts the
exporter's decoder.
"""
import filecmp
import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("PIL")

from exporter import Classifier, Detector  # noqa: E402
from exporter.data import (CLASSES, make_classification_dataset, make_detection_dataset,  # noqa: E402
                           read_classification_split, read_detection_split)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    cls = make_classification_dataset(str(root / "cls"), seed=3, train=32, val=8, test=8)
    det = make_detection_dataset(str(root / "det"), seed=3, train=16, val=4, test=4, width=160, height=160)
    return cls, det


def test_generator_layouts(datasets):
    cls, det = datasets
    assert open(os.path.join(cls, "classes.txt")).read().split() == list(CLASSES)
    for folder in ("training_set", "val_set", "test_set"):
        assert sorted(os.listdir(os.path.join(cls, folder))) == sorted(CLASSES)
    items, classes = read_classification_split(cls, "train")
    assert len(items) == 32 and classes == list(CLASSES)
    assert all(os.path.basename(os.path.dirname(p)) == classes[lab] for p, lab in items)
    with open(os.path.join(cls, "val.txt")) as f:
        assert len(f.read().split("\n")) >= 8
    coco = json.load(open(os.path.join(det, "annotations", "train.json")))
    assert [c["name"] for c in coco["categories"]] == list(CLASSES)
    assert len(coco["images"]) == 16 and coco["annotations"]
    for a in coco["annotations"]:
        x, y, w, h = a["bbox"]
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= 160.01 and y + h <= 160.01
    items, _ = read_detection_split(det, "val")
    assert len(items) == 4 and all(len(b) == len(lab) >= 1 for _, b, lab in items)


def test_same_seed_same_dataset(datasets, tmp_path):
    cls, det = datasets
    again = make_classification_dataset(str(tmp_path / "cls"), seed=3, train=32, val=8, test=8)
    for folder in ("training_set", "test_set"):
        cmp = filecmp.dircmp(os.path.join(cls, folder), os.path.join(again, folder))
        for c in CLASSES:
            sub = cmp.subdirs[c]
            assert not sub.left_only and not sub.right_only and not sub.diff_files
    other = make_detection_dataset(str(tmp_path / "det"), seed=4, train=4, val=0, test=0, width=160, height=160)
    a = json.load(open(os.path.join(det, "annotations", "train.json")))["annotations"]
    b = json.load(open(os.path.join(other, "annotations", "train.json")))["annotations"]
    assert a[:3] != b[:3]


def test_box_coder_round_trip():
    from exporter.detection import delta2bbox
    from exporter.train_ssd import assign_anchors, bbox2delta
    anchors = torch.tensor([[0, 0, 48, 48], [16, 16, 80, 64], [100, 90, 150, 160]], dtype=torch.float32)
    gt = torch.tensor([[4, 6, 50, 40], [20, 10, 70, 70], [90, 100, 160, 150]], dtype=torch.float32)
    back = delta2bbox(anchors, bbox2delta(anchors, gt))
    assert torch.allclose(back, gt, atol=1e-3)
    small = torch.tensor([[2, 2, 30, 30]], dtype=torch.float32)   # IoU 0.34 with its best anchor
    labels, targets, pos = assign_anchors(anchors, small, torch.tensor([2]), num_classes=4)
    # the box's best anchor is positive even below IoU 0.5; the others stay background (label 4)
    assert pos.tolist() == [True, False, False] and labels.tolist() == [2, 4, 4]


def test_one_epoch_train_save_convert_run(datasets, tmp_path):
    """Classifier and detector: one epoch, an MMEdu checkpoint, the exporter, tinyrt on a test picture."""
    import tinyrt
    from exporter.evaluate import evaluate_classifier, evaluate_detector
    cls, det = datasets
    lines = []
    model = Classifier(backbone="MobileNet", width_mult=0.35, input_size=64)
    model.load_dataset(cls)
    model.save_fold = str(tmp_path / "cls")
    ckpt = model.train(epochs=1, lr=0.01, batch_size=8, threads=1, log=lines.append)
    saved = torch.load(ckpt, weights_only=True)
    assert saved["meta"]["CLASSES"] == list(CLASSES) and "state_dict" in saved
    assert os.path.basename(ckpt).startswith("best_accuracy_top-1_epoch_1")
    assert any(line.startswith("epoch 1/1: loss") for line in lines)
    out = model.convert(checkpoint=ckpt, out_file=str(tmp_path / "cls.onnx"), log=None)
    acc, n = evaluate_classifier(out.onnx_path, cls, "test", "tinyrt")
    assert n == 8 and 0.0 <= acc <= 1.0
    res = tinyrt.run(out.onnx_path, read_classification_split(cls, "test")[0][0][0])
    assert res[0].name in CLASSES

    model = Detector(backbone="SSD_Lite", width_mult=0.2, input_size=96)
    model.load_dataset(det)
    model.save_fold = str(tmp_path / "det")
    ckpt = model.train(epochs=1, lr=0.01, batch_size=4, threads=1, limit=8, log=lines.append)
    assert torch.load(ckpt, weights_only=True)["meta"]["CLASSES"] == list(CLASSES)
    out = model.convert(checkpoint=ckpt, out_file=str(tmp_path / "det.onnx"), log=None)
    m, aps, n = evaluate_detector(out.onnx_path, det, "test", "tinyrt")
    assert n == 4 and 0.0 <= m <= 1.0 and len(aps) == len(CLASSES)
