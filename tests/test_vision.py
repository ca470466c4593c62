"""tinyrt.vision without a model: decoding, resizing, recipes from metadata, results, drawing."""
import io
import json
import os

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")

import tinyrt  # noqa: E402
from tinyrt.errors import InputError  # noqa: E402
from tinyrt.session import NodeArg  # noqa: E402
from tinyrt.graph import ValueSpec  # noqa: E402
from tinyrt.vision import draw, image, preprocess, resize, results  # noqa: E402


# ------------------------------------------------------------------------------------------------ resize

@pytest.mark.parametrize("shape,size", [((100, 150, 3), (256, 256)), ((480, 640, 3), (256, 256)),
                                        ((37, 53, 3), (320, 320)), ((300, 200, 3), (73, 73)),
                                        ((1000, 1333, 3), (224, 224)), ((5, 7, 3), (3, 2)),
                                        ((256, 256, 3), (224, 224)), ((50, 60), (20, 30))])
def test_numpy_resize_is_pillows(shape, size):
    """Without Pillow the numpy bilinear gives the same bytes as Pillow's, shrinking and enlarging."""
    a = np.random.RandomState(sum(shape)).randint(0, 256, shape).astype(np.uint8)
    want = np.asarray(Image.fromarray(a).resize((size[1], size[0]), Image.BILINEAR))
    got = resize.resize_numpy(a, size)
    assert got.shape == want.shape and got.dtype == np.uint8
    assert np.array_equal(got, want)
    assert np.array_equal(resize.resize(a, size), want)


def test_gray_is_pillows_L():
    a = np.random.RandomState(0).randint(0, 256, (40, 50, 3)).astype(np.uint8)
    assert np.array_equal(image.to_gray(a), np.asarray(Image.fromarray(a).convert("L")))


# ------------------------------------------------------------------------------------------------ decoding

def _save(im, tmp_path, name, **kw):
    path = str(tmp_path / name)
    im.save(path, **kw)
    return path


def test_exif_orientation_is_applied(tmp_path):
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20] = (255, 0, 0)                     # left half red
    im = Image.fromarray(a)
    exif = Image.Exif()
    exif[0x0112] = 6                            # "rotate 90 CW to view"
    path = _save(im, tmp_path, "rot.jpg", exif=exif, quality=95)
    got = image.read_image(path)
    assert got.shape == (40, 20, 3)             # upright: portrait
    assert got[5, 10, 0] > 200 and got[35, 10, 0] < 60   # the red half is now on top


def test_modes_become_rgb(tmp_path):
    gray = Image.fromarray(np.arange(0, 200, 2, dtype=np.uint8).reshape(10, 10))
    g = image.read_image(_save(gray, tmp_path, "g.png"))
    assert g.shape == (10, 10, 3) and np.array_equal(g[:, :, 0], g[:, :, 2]) and g[0, 1, 1] == 2
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 0                            # fully transparent
    p = _save(Image.fromarray(rgba, "RGBA"), tmp_path, "a.png")
    assert image.read_image(p)[0, 0].tolist() == [200, 0, 0]                              # alpha dropped
    assert image.read_image(p, background=(255, 255, 255))[0, 0].tolist() == [255, 255, 255]
    pal = Image.fromarray(np.full((3, 3, 3), (10, 20, 30), np.uint8)).quantize(4)
    assert image.read_image(_save(pal, tmp_path, "p.png"))[1, 1].tolist() == [10, 20, 30]
    deep = Image.fromarray(np.full((3, 3), 65535, np.uint16))
    d = image.read_image(_save(deep, tmp_path, "d16.png"))
    assert d.dtype == np.uint8 and d[0, 0].tolist() == [255, 255, 255]
    cmyk = Image.new("CMYK", (3, 3), (0, 255, 255, 0))      # red in CMYK
    c = image.read_image(_save(cmyk, tmp_path, "c.jpg", quality=95))
    assert c.shape == (3, 3, 3) and c[1, 1, 0] > 200 and c[1, 1, 1] < 60


def test_arrays_rgb_bgr_and_errors():
    a = np.zeros((2, 3, 3), np.uint8)
    a[..., 0] = 9
    assert image.read_image(a)[0, 0].tolist() == [9, 0, 0]
    assert image.read_image(a, color="BGR")[0, 0].tolist() == [0, 0, 9]
    assert image.read_image(np.zeros((2, 3), np.uint8)).shape == (2, 3, 3)
    with pytest.raises(InputError, match="uint8"):
        image.read_image(np.zeros((2, 3, 3), np.float32))
    with pytest.raises(InputError, match="1, 3 or 4 channels"):
        image.read_image(np.zeros((2, 3, 5), np.uint8))
    with pytest.raises(InputError, match="no such picture"):
        image.read_image("/nonexistent/cat.jpg")


def test_not_a_picture_and_bomb_guard(tmp_path):
    p = tmp_path / "x.jpg"
    p.write_bytes(b"not a jpeg at all")
    with pytest.raises(InputError, match="not a picture"):
        image.read_image(str(p))
    big = _save(Image.new("L", (300, 300)), tmp_path, "big.png")
    with pytest.raises(InputError, match="megapixels"):
        image.read_image(big, max_pixels=300 * 299)


def test_without_pillow(monkeypatch):
    """No Pillow: arrays still run through the numpy resize; a path says how to install Pillow."""
    monkeypatch.setattr(image, "_pillow", [None])
    with pytest.raises(InputError, match="pip install Pillow.*python3-pil"):
        image.read_image(__file__)
    a = np.random.RandomState(1).randint(0, 256, (30, 40, 3)).astype(np.uint8)
    want = np.asarray(Image.fromarray(a).resize((16, 16), Image.BILINEAR))
    assert np.array_equal(resize.resize(a, (16, 16)), want)


# ------------------------------------------------------------------------------------------------ recipes

def arg(name, shape):
    return NodeArg(ValueSpec(name, 1, shape))


INPUTS = [arg("input", [1, 3, 224, 224])]
PROBS = [arg("probs", [1, 2])]


def test_recipe_from_model_info():
    meta = {"MODEL_INFO": json.dumps({"codebase": "MMCls", "modelname": "MobileNet", "classes": ["cat", "dog"]})}
    r = preprocess.build_recipe(meta, INPUTS, PROBS, {})
    assert (r.task, r.classes, r.resize, r.crop) == ("classification", ["cat", "dog"], (256, 256), (224, 224))
    assert r.mean == [123.675, 116.28, 103.53] and r.std == [58.395, 57.12, 57.375] and r.color == "RGB"
    det = {"MODEL_INFO": json.dumps({"codebase": "MMDet", "modelname": "SSD_Lite", "classes": ["a"]})}
    r = preprocess.build_recipe(det, [arg("input", [1, 3, 320, 320])], [arg("dets", [1, 200, 5]),
                                                                        arg("labels", [1, 200])], {})
    assert (r.task, r.resize, r.crop) == ("detection", (320, 320), None)
    lenet = {"MODEL_INFO": json.dumps({"codebase": "MMCls", "modelname": "LeNet", "classes": list("0123456789")})}
    r = preprocess.build_recipe(lenet, [arg("input", [1, 1, 32, 32])], [arg("probs", [1, 10])], {})
    assert (r.color, r.resize, r.crop, r.mean) == ("GRAY", (32, 32), None, [33.46])


def test_recipe_from_old_classes_key_and_overrides():
    r = preprocess.build_recipe({"CLASSES": "cat|dog"}, INPUTS, PROBS, {})
    assert r.classes == ["cat", "dog"] and r.crop == (224, 224)
    r = preprocess.build_recipe({"CLASSES": "cat|dog"}, INPUTS, PROBS,
                                {"classes": "a,b", "crop": False, "resize": 224, "mean": [0], "std": [1]})
    assert r.classes == ["a", "b"] and r.crop is None and r.resize == (224, 224) and r.mean == [0.0] * 3
    r = preprocess.build_recipe({"CLASSES": "cat|dog"}, [arg("input", [1, 3, "h", "w"])], PROBS, {"size": 112})
    assert (r.resize, r.crop) == ((128, 128), (112, 112))       # the 256/224 ratio kept


def test_no_metadata_names_the_arguments():
    with pytest.raises(InputError) as e:
        preprocess.build_recipe({}, INPUTS, PROBS, {})
    msg = str(e.value)
    for name in ("mean=", "std=", "classes="):                 # the input size is fixed: no size= asked
        assert name in msg
    assert "missing: mean=, std=" in msg
    with pytest.raises(InputError, match="missing: size=, mean=, std="):
        preprocess.build_recipe({}, [arg("x", ["N", 3, "H", "W"])], PROBS, {})
    r = preprocess.build_recipe({}, INPUTS, PROBS, {"mean": 127.5, "std": 127.5})
    assert r.resize == (224, 224) and r.classes == [] and r.name_of(1) == "1"


def test_size_that_does_not_fit_the_input():
    with pytest.raises(InputError, match="takes 224x224"):
        preprocess.build_recipe({"CLASSES": "a|b"}, INPUTS, PROBS, {"size": 160})


def test_prepare_and_geometry():
    r = preprocess.Recipe("detection", ["a"], "RGB", (320, 320), None, [0.0] * 3, [1.0] * 3)
    rgb = np.random.RandomState(0).randint(0, 256, (180, 240, 3)).astype(np.uint8)
    x, geo = r.prepare(rgb)
    assert x.shape == (1, 3, 320, 320) and x.dtype == np.float32 and x.flags.c_contiguous
    assert np.allclose(geo.to_picture([[0, 0, 320, 320], [160, 160, 320, 320]]),
                       [[0, 0, 240, 180], [120, 90, 240, 180]])
    lb = preprocess.Recipe("detection", ["a"], "RGB", (320, 320), None, [0.0] * 3, [1.0] * 3, policy="letterbox")
    x, geo = lb.prepare(rgb)                     # 240x180 -> 320x240, padded 40 above and below
    assert np.allclose(geo.to_picture([[0, 40, 320, 280]]), [[0, 0, 240, 180]])
    crop = preprocess.Recipe("classification", [], "RGB", (256, 256), (224, 224), [0.0] * 3, [1.0] * 3)
    x, geo = crop.prepare(rgb)
    want = np.asarray(Image.fromarray(rgb).resize((256, 256), Image.BILINEAR).crop((16, 16, 240, 240)))
    assert np.array_equal(x[0].transpose(1, 2, 0), want.astype(np.float32))


# ------------------------------------------------------------------------------------------------ results

class _R:
    classes = ["cat", "dog"]
    softmax = None

    def name_of(self, i):
        return self.classes[i] if 0 <= i < len(self.classes) else str(i)


def test_classification_results_and_zh_keys():
    preds = results.classification(np.array([0.2, 0.8], np.float32), _R(), 2, "en")
    assert [p["name"] for p in preds] == ["dog", "cat"] and preds[0].label == 1
    assert abs(preds[0].score - 0.8) < 1e-6
    zh = results.classification(np.array([0.2, 0.8]), _R(), 1, "zh")[0]
    assert set(zh) == {"标签", "置信度", "预测结果"} and zh["预测结果"] == "dog" and zh.name == "dog"
    assert repr(zh) == "{'标签': 1, '置信度': 0.8000, '预测结果': 'dog'}"
    logits = results.classification(np.array([1.0, 3.0]), _R(), 1, "en")[0]     # not probabilities: softmax
    assert abs(logits.score - 1 / (1 + np.exp(-2.0))) < 1e-9


def test_detection_results_skip_padding_and_map_boxes():
    dets = np.zeros((4, 5), np.float32)
    dets[0] = [32, 32, 64, 64, 0.9]
    dets[1] = [0, 0, 320, 320, 0.2]
    labels = np.array([1, 0, -1, -1])
    geo = preprocess.Geometry(640, 480, 0.5, 320 / 480.0)
    preds = results.detection(dets, labels, geo, _R(), 0.3, "en")
    assert len(preds) == 1 and preds[0].name == "dog" and preds[0].box == (64.0, 48.0, 128.0, 96.0)
    both = results.detection(dets, labels, geo, _R(), 0.0, "zh")
    assert len(both) == 2 and both[1]["坐标"] == {"x1": 0.0, "y1": 0.0, "x2": 640.0, "y2": 480.0}
    r = results.ImageResult(preds, "detection", path="a.jpg", width=640, height=480)
    assert str(r) == "a.jpg (640x480): 1 object\n  1. dog 0.9000 (label 1)  box (64.0, 48.0, 128.0, 96.0)"
    assert str(results.ImageResult([], "detection", path="b.jpg", width=1, height=1)).endswith("no objects found")


# ------------------------------------------------------------------------------------------------ drawing

def test_label_colours_contrast():
    assert draw.text_color((255, 255, 0)) == (0, 0, 0)
    assert draw.text_color((0, 0, 128)) == (255, 255, 255)
    cols = [draw.color_of(i) for i in range(60)]
    assert len(set(cols)) == 60


def test_chinese_names_draw_without_crashing(monkeypatch):
    """With a CJK font the name is drawn; without one (forced here) '#label' stands in for it."""
    rgb = np.full((120, 160, 3), 128, np.uint8)
    preds = [results.Prediction(0, 0.9, "猫", box=(10, 40, 80, 100))]
    r = results.ImageResult(preds, "detection", width=160, height=120, image=rgb)
    im = r.draw()
    assert im.size == (160, 120) and (np.asarray(im) != rgb).any()
    monkeypatch.setattr(draw, "_font_files", {"cjk": None})
    font, can = draw.load_font(12, cjk=True)
    assert not can and draw.label_text(preds[0], can) == "#0 0.90"
    assert (np.asarray(r.draw()) != rgb).any()


def test_output_path(tmp_path):
    assert draw.output_path(str(tmp_path), "/x/cat.jpg") == os.path.join(str(tmp_path), "cat.jpg")
    assert draw.output_path(str(tmp_path / "out.png"), "/x/cat.jpg") == str(tmp_path / "out.png")
    assert draw.output_path(str(tmp_path / "new") + "/", None, index=3).endswith("image_3.png")


def test_import_tinyrt_does_not_import_pillow():
    import subprocess
    import sys
    code = "import sys, tinyrt; tinyrt.load; print('PIL' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, universal_newlines=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.stdout.strip() == "False"


def test_model_info_read_as_basedt_reads_it():
    """BaseDT's ModelData: json.loads(codecs.decode(MODEL_INFO, 'unicode_escape')); raw UTF-8 read as JSON."""
    want = {"codebase": "MMCls", "modelname": "MobileNet", "classes": ["猫", "狗"]}
    ascii_escaped = json.dumps(want)
    twice = ascii_escaped.replace("\\", "\\\\")
    for text in (ascii_escaped, twice, json.dumps(want, ensure_ascii=False)):
        assert preprocess.model_info({"MODEL_INFO": text}) == want
    r = preprocess.build_recipe({"MODEL_INFO": twice}, INPUTS, PROBS, {})
    assert r.classes == ["猫", "狗"] and r.pipeline == "basedt"
