"""tinyrt.hub.Workflow runs XEduHub's student code for task='mmedu' and gives XEduHub's answers.

XEduHub's answer is computed by tests/basedt_reference.py (BaseDeploy's steps with OpenCV and onnxruntime) on
MMEdu-layout files: a classifier laid out as MMEdu's convert writes it (MODEL_INFO only, 224x224) and the board
SSD-Lite (MODEL_INFO MMDet SSD_Lite, 320x320; its seeded weights score low, hence the low thr)."""
import os
import shutil

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
pytest.importorskip("onnxruntime")
Image = pytest.importorskip("PIL.Image")

import tinyrt  # noqa: E402
from basedt_reference import xeduhub_answer  # noqa: E402
from test_vision_models import MMEDU_CLASSES, models, picture  # noqa: E402
from tinyrt.hub import Workflow as wf  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SSD = os.path.join(HERE, "boards", "models", "ssdlite_op11.onnx")
THR = 0.025


@pytest.fixture(scope="module")
def m():
    return models()


@pytest.fixture(autouse=True)
def no_ipp():
    cv2.ipp.setUseIPP(False)       # OpenCV's own float resize (IPP's rounds its weights differently, ~1e-5)
    yield
    cv2.ipp.setUseIPP(True)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hub")
    jpg = picture(str(folder / "a.jpg"), size=(240, 180))
    png = str(folder / "b.png")
    Image.open(jpg).resize((200, 260)).save(png)
    return jpg, png


def same(got, want):
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want)
        for g, w in zip(got, want):
            same(g, w)
        return
    assert list(got) == list(want)                      # the same keys, in XEduHub's order
    assert got["标签"] == want["标签"]
    assert abs(float(got["置信度"]) - float(want["置信度"])) <= 1e-4
    assert got.get("预测结果") == want.get("预测结果")
    if "坐标" in want:
        assert {k: int(v) for k, v in got["坐标"].items()} == {k: int(v) for k, v in want["坐标"].items()}


def test_student_code_classifier(m, pictures, capsys):
    model = wf(task='mmedu', checkpoint=m["mmedu"])
    for path in pictures:
        result, img = model.inference(data=path, img_type='cv2')
        want = xeduhub_answer(m["mmedu"], path)
        same(result, want)
        assert result["预测结果"] in MMEDU_CLASSES
        h, w = cv2.imread(path).shape[:2]
        assert img.shape == (h, w, 3) and img.dtype == np.uint8
        assert model.format_output(lang='zh') is result and model.format_output(lang='en') is result
        assert "'标签'" in capsys.readouterr().out
    plain = model.inference(data=pictures[0])                      # img_type None: the result alone
    same(plain, xeduhub_answer(m["mmedu"], pictures[0]))
    # tinyrt.run with no arguments gives the same class and score
    r = tinyrt.run(m["mmedu"], pictures[0])
    assert r[0].label == plain["标签"] and abs(r[0].score - float(plain["置信度"])) <= 1e-4


def test_student_code_detector(pictures):
    model = wf(task='mmedu', checkpoint=SSD)
    for path in pictures:
        result, img = model.inference(data=path, img_type='cv2', thr=THR)
        want = xeduhub_answer(SSD, path, thr=THR)
        assert len(want) >= 2, "the test needs objects"
        same(result, want)
        assert model.format_output(lang='zh') is result
        h, w = cv2.imread(path).shape[:2]
        assert img.shape == (h, w, 3) and img.dtype == np.uint8
        assert np.abs(img.astype(int) - cv2.imread(path).astype(int)).max() > 50      # boxes were drawn
        _, pil = model.inference(data=path, img_type='pil', thr=THR)
        assert np.array_equal(pil, img[:, :, ::-1])
        # tinyrt.run: the same objects (boxes unrounded, within a pixel of XEduHub's truncated ones)
        r = tinyrt.run(SSD, path, score=THR)
        assert [p.label for p in r] == [int(x["标签"]) for x in want]
        assert np.allclose([p.score for p in r], [float(x["置信度"]) for x in want], atol=1e-4)
        for p, x in zip(r, want):
            assert np.all(np.abs(np.array(p.box) - [x["坐标"][k] for k in ("x1", "y1", "x2", "y2")]) <= 1.0)


def test_arrays_are_opencv_pictures_and_folders_give_lists(m, pictures, tmp_path):
    model = wf(task='mmedu', checkpoint=SSD)
    same(model.inference(data=cv2.imread(pictures[0]), thr=THR), xeduhub_answer(SSD, pictures[0], thr=THR))
    folder = tmp_path / "pics"
    folder.mkdir()
    for p in pictures:
        shutil.copy(p, str(folder / os.path.basename(p)))
    (folder / "notes.txt").write_text("not a picture")
    cls = wf(task='mmedu', checkpoint=m["mmedu"])
    results, imgs = cls.inference(data=str(folder), img_type='cv2')
    order = [f for f in os.listdir(str(folder)) if f.endswith((".jpg", ".png"))]
    assert len(results) == len(imgs) == 2
    for name, result in zip(order, results):
        same(result, xeduhub_answer(m["mmedu"], str(folder / name)))


def test_clear_errors(m, tmp_path):
    with pytest.raises(tinyrt.InputError, match="task='mmedu'"):
        wf(task='cls_imagenet')
    with pytest.raises(tinyrt.InputError, match="no such model file"):
        wf(task='mmedu', checkpoint=str(tmp_path / "missing.onnx"))
    model = wf(task='mmedu', checkpoint=m["mmedu"])
    with pytest.raises(tinyrt.InputError, match="before format_output"):
        model.format_output()
    with pytest.raises(tinyrt.InputError, match="img_type"):
        model.inference(data=str(tmp_path), img_type='png')
