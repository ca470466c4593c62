"""tinyrt.run / tinyrt.load on models made by the exporter and on a file laid out as MMEdu exports it.

The answers are compared with onnxruntime fed the very same network input (prepared once by tinyrt and
checked against BaseDT's preprocessing done by OpenCV), and MMEdu's answer is computed with torch."""
import json
import os
import shutil

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")

import tinyrt  # noqa: E402
from test_vision_models import CLASSES, DET_CLASSES, MMEDU_CLASSES, models  # noqa: E402
from basedt_reference import basedt_input  # noqa: E402

MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)


@pytest.fixture(scope="module")
def m():
    return models()


def reference_input(path, resize, crop=None):
    """BaseDT's preprocessing done by OpenCV (tests/basedt_reference.py): what XEduHub feeds MMEdu-layout files
    (every file our exporter writes is one). OpenCV's IPP path off: its float resize rounds differently."""
    import cv2
    cv2.ipp.setUseIPP(False)
    try:
        return basedt_input(path, size=(resize, resize), crop_size=(crop, crop) if crop else None)
    finally:
        cv2.ipp.setUseIPP(True)


def ort_run(path, x):
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"]).run(None, {"input": x})


def test_classifier_matches_onnxruntime(m):
    model = tinyrt.load(m["cls"])
    assert model.task == "classification" and model.classes == CLASSES
    x, _, rgb = model.prepare(m["jpeg"])
    assert np.array_equal(x, reference_input(m["jpeg"], 73, 64))        # 64 * 256 / 224 = 73, crop 64
    probs = ort_run(m["cls"], x)[0][0]
    result = tinyrt.run(m["cls"], m["jpeg"], topk=3)
    assert [p.label for p in result] == list(np.argsort(-probs, kind="stable")[:3])
    assert [p.name for p in result] == [CLASSES[i] for i in np.argsort(-probs, kind="stable")[:3]]
    assert np.allclose([p.score for p in result], np.sort(probs)[::-1][:3], atol=1e-4)
    assert (result.width, result.height) == (240, 180) and result.path == m["jpeg"]
    assert str(result).startswith(m["jpeg"] + " (240x180):\n  1. %s " % result[0].name)


def expected_detections(m, score):
    x = reference_input(m["jpeg"], 160)
    dets, labels = ort_run(m["det"], x)
    keep = (dets[0, :, 4] >= score) & (labels[0] >= 0) & (dets[0, :, 4] > 0)
    boxes = dets[0, keep, :4] * np.array([240 / 160.0, 180 / 160.0] * 2)
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, 240)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, 180)
    return x, labels[0, keep], dets[0, keep, 4], boxes


def test_detector_matches_onnxruntime(m):
    model = tinyrt.load(m["det"])
    assert model.task == "detection" and model.classes == DET_CLASSES
    assert (model.threshold, model.threshold_source) == (0.3, "the model file")   # the exporter's default
    x, labels, scores, boxes = expected_detections(m, 0.2)
    assert np.array_equal(model.prepare(m["jpeg"])[0], x)
    result = model.run(m["jpeg"], score=0.2)           # this seeded detector's best boxes score 0.2-0.3
    assert 1 <= len(result) < 10, "the test detector should find a few boxes, found %d" % len(result)
    assert [p.label for p in result] == labels.tolist()
    assert [p.name for p in result] == [DET_CLASSES[i] for i in labels]
    assert np.allclose([p.score for p in result], scores, atol=1e-4)
    assert np.allclose([p.box for p in result], boxes, atol=0.02)
    low = model.run(m["jpeg"], score=0.1)
    assert len(low) > len(result) and all(p.score >= 0.1 for p in low)
    zh = model.run(m["jpeg"], lang="zh", score=0.2)[0]
    assert set(zh) == {"标签", "置信度", "预测结果", "坐标"} and set(zh["坐标"]) == {"x1", "y1", "x2", "y2"}


def test_mmedu_file_runs_with_no_arguments(m):
    """input 'input' [1,3,224,224], output 'probs' softmaxed, MODEL_INFO only, opset 11, initializers as
    inputs: tinyrt.run(path, img) alone gives MMEdu's answer (BaseDT: normalise, cv2 resize 256, crop 224)."""
    proto = onnx.load(m["mmedu"])
    assert proto.opset_import[0].version == 11
    assert {p.key for p in proto.metadata_props} == {"MODEL_INFO"}
    inits = {t.name for t in proto.graph.initializer}
    assert len(inits) > 50 and inits <= {i.name for i in proto.graph.input}
    with torch.no_grad():
        probs = m["mmedu_module"](torch.from_numpy(reference_input(m["jpeg"], 256, 224))).numpy()[0]
    top = int(probs.argmax())
    result = tinyrt.run(m["mmedu"], m["jpeg"])
    assert len(result) == 1 and result[0].label == top and result[0].name == MMEDU_CLASSES[top]
    assert abs(result[0].score - probs[top]) < 1e-4
    zh = tinyrt.run(m["mmedu"], m["jpeg"], lang="zh")
    assert list(zh[0]) == ["标签", "置信度", "预测结果"]
    assert zh[0]["标签"] == top and zh[0]["预测结果"] == MMEDU_CLASSES[top]
    assert abs(zh[0]["置信度"] - probs[top]) < 1e-4
    x = zh.input
    assert np.allclose(ort_run(m["mmedu"], x)[0][0], probs, atol=1e-5)


def test_every_kind_of_picture(m, tmp_path):
    model = tinyrt.load(m["cls"], topk=3)
    want = model.run(m["jpeg"])
    rgb = np.asarray(Image.open(m["jpeg"]).convert("RGB"))
    same = [model.run(rgb), model.run(rgb[:, :, ::-1].copy(), color="BGR"),
            model.run(Image.open(m["jpeg"])), model.run([m["jpeg"]])[0]]
    folder = tmp_path / "pics"
    folder.mkdir()
    shutil.copy(m["jpeg"], str(folder / "a.jpg"))
    shutil.copy(m["jpeg"], str(folder / "b.JPG"))
    (folder / "notes.txt").write_text("not a picture")
    batch = model.run(str(folder))
    assert len(batch) == 2 and [os.path.basename(r.path) for r in batch] == ["a.jpg", "b.JPG"]
    same += list(batch)
    for r in same:
        assert [(p.label, round(p.score, 6)) for p in r] == [(p.label, round(p.score, 6)) for p in want]
    assert str(batch).count("\n") == 2 * 4 - 1
    assert json.loads(json.dumps(batch.as_dict()))[1]["predictions"][0]["name"] == want[0].name


def test_model_as_bytes_or_session(m):
    want = tinyrt.run(m["cls"], m["jpeg"])[0]
    with open(m["cls"], "rb") as f:
        data = f.read()
    for model in (data, tinyrt.InferenceSession(m["cls"]),
                  ort.InferenceSession(m["cls"], providers=["CPUExecutionProvider"])):
        got = tinyrt.run(model, m["jpeg"])[0]
        assert got.label == want.label and abs(got.score - want.score) < 1e-4


def test_no_metadata_says_which_arguments(m, tmp_path):
    proto = onnx.load(m["cls"])
    del proto.metadata_props[:]
    bare = str(tmp_path / "bare.onnx")
    onnx.save(proto, bare)
    with pytest.raises(tinyrt.InputError, match=r"mean=.*std=.*classes=.*missing: mean=, std="):
        tinyrt.run(bare, m["jpeg"])
    got = tinyrt.run(bare, m["jpeg"], mean=MEAN.tolist(), std=STD.tolist(), resize=73, crop=64, classes=CLASSES,
                     pipeline="basedt")
    want = tinyrt.run(m["cls"], m["jpeg"])
    assert got[0].name == want[0].name and abs(got[0].score - want[0].score) < 1e-6
    assert tinyrt.run(bare, m["jpeg"], mean=127, std=64)[0].name in ("0", "1", "2")
    with pytest.raises(tinyrt.InputError, match="unknown option sizes="):
        tinyrt.run(m["cls"], m["jpeg"], sizes=3)


def test_save_draws_boxes_only_near_their_edges(m, tmp_path):
    result = tinyrt.run(m["det"], m["jpeg"], save=str(tmp_path / "out.png"), score=0.2)
    assert result.saved == str(tmp_path / "out.png")
    before = np.asarray(Image.open(m["jpeg"]).convert("RGB")).astype(int)
    after = np.asarray(Image.open(result.saved)).astype(int)
    check_drawn(before, after, result, exact=True)


def check_drawn(before, after, result, exact):
    """Pixels change along every box edge, and nowhere far from the boxes and their labels."""
    assert after.shape == before.shape
    changed = np.abs(after - before).max(axis=2) > (0 if exact else 25)   # JPEG noise < 25
    h, w = changed.shape
    near = np.zeros_like(changed)
    band = 4 if exact else 12          # JPEG re-encoding smears changes over its 8x8 blocks
    label_h = max(11, int(round(min(w, h) / 28.0))) * 2 + band
    for p in result:
        x1, y1, x2, y2 = [int(round(v)) for v in p.box]
        for xa, ya, xb, yb in ((x1, y1, x2, y1), (x1, y2, x2, y2), (x1, y1, x1, y2), (x2, y1, x2, y2)):
            near[max(0, ya - band):yb + band + 1, max(0, xa - band):xb + band + 1] = True
            across = changed[max(0, ya - 3):yb + 4, max(0, xa - 3):xb + 4]   # the edge, +-3 pixels across it
            along = across.any(axis=0 if ya == yb else 1)
            assert along.mean() > 0.9, "box %s: its edge is not drawn" % (p.box,)
        near[max(0, y1 - label_h):y1 + label_h, max(0, x1 - band):w] = True    # the label by the top edge
    far = changed & ~near
    assert not far.any(), "%d pixels changed far from every box, e.g. at %s" % (
        far.sum(), np.argwhere(far)[:3].tolist())
    assert changed.any()


def test_load_repr_and_reuse(m):
    model = tinyrt.load(m["mmedu"])
    text = repr(model)
    assert "classification" in text and "resize 256x256" in text and "centre crop 224x224" in text
    assert model(m["jpeg"])[0].name == model.run(m["jpeg"])[0].name
