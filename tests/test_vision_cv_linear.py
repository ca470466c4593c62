"""tinyrt/vision/cv_linear.py and basedt.py against OpenCV itself (a test dependency only: tinyrt never imports it).

* ``resize_linear`` == ``cv2.resize(..., INTER_LINEAR)``: uint8 byte for byte, float32 exactly with OpenCV's IPP
  path off (OpenCV's own C++ code) and within 1e-4 of the largest value with IPP on (what pip's opencv does on
  x86: its float resize rounds its weights differently, by up to ~2e-5 of the value range);
* BaseDT's whole preparation (tests/basedt_reference.py, OpenCV) == ``tinyrt.vision.basedt`` on PNG (RGB, gray,
  transparent) and JPEG files and on OpenCV arrays.
"""
import os

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
Image = pytest.importorskip("PIL.Image")

from basedt_reference import basedt_input  # noqa: E402
from tinyrt.vision import basedt  # noqa: E402
from tinyrt.vision.cv_linear import resize_linear  # noqa: E402
from tinyrt.vision.preprocess import Geometry, Recipe  # noqa: E402

IN_SIZES = [(1, 1), (1, 7), (2, 3), (5, 7), (16, 16), (37, 53), (100, 150), (180, 240), (224, 224), (256, 256),
            (97, 31), (480, 640), (512, 384)]
OUT_SIZES = [(256, 256), (320, 320), (224, 224), (96, 96), (110, 110), (73, 73), (3, 2), (1, 1), (160, 160)]


def cases():
    for h, w in IN_SIZES:
        outs = OUT_SIZES + [(2 * h, 2 * w), (max(1, h // 2), max(1, w // 2)), (3 * h + 1, w), (h, max(1, w // 3))]
        for oh, ow in outs:
            yield (h, w), (oh, ow)


def channels_of(i):
    return (None, 1, 3, 4)[i % 4]


def _picture(shape, dtype, seed):
    rs = np.random.RandomState(seed)
    if dtype == np.uint8:
        return rs.randint(0, 256, shape).astype(np.uint8)
    return (rs.standard_normal(shape) * 2).astype(np.float32)


def _cv(a, size):
    out = cv2.resize(a, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return out.reshape(out.shape[:2] + a.shape[2:])          # cv2 drops a last axis of 1


@pytest.fixture
def no_ipp():
    cv2.ipp.setUseIPP(False)
    yield
    cv2.ipp.setUseIPP(True)


def test_uint8_is_opencv_byte_for_byte():
    n = 0
    for i, (ins, outs) in enumerate(cases()):
        c = channels_of(i)
        a = _picture(ins + ((c,) if c else ()), np.uint8, i)
        want, got = _cv(a, outs), resize_linear(a, outs)
        assert got.dtype == np.uint8 and got.shape == want.shape, (ins, outs, c)
        assert np.array_equal(got, want), "%s -> %s, %s channels: %d bytes differ (max %d)" % (
            ins, outs, c, int((got != want).sum()), int(np.abs(got.astype(int) - want).max()))
        n += 1
    assert n > 150


def test_float32_is_opencv(no_ipp):
    for i, (ins, outs) in enumerate(cases()):
        c = channels_of(i)
        a = _picture(ins + ((c,) if c else ()), np.float32, i)
        want, got = _cv(a, outs), resize_linear(a, outs)
        assert got.dtype == np.float32 and got.shape == want.shape
        assert np.abs(got - want).max() <= 1e-6 * max(1.0, np.abs(want).max()), (ins, outs, c)


def test_float32_is_opencv_with_ipp_within_1e4():
    cv2.ipp.setUseIPP(True)
    worst = 0.0
    for i, (ins, outs) in enumerate(cases()):
        a = _picture(ins + (3,), np.float32, i)
        want = _cv(a, outs)
        worst = max(worst, float(np.abs(resize_linear(a, outs) - want).max() / max(1.0, np.abs(want).max())))
    assert worst <= 1e-4


def test_exact_halving_is_the_2x2_mean():
    a = _picture((64, 48, 3), np.uint8, 1)
    assert np.array_equal(resize_linear(a, (32, 24)), _cv(a, (32, 24)))
    f = a.astype(np.float32)
    assert np.array_equal(resize_linear(f, (32, 24)), (f[0::2, 0::2] + f[0::2, 1::2] + (f[1::2, 0::2] + f[1::2, 1::2]))
                          * np.float32(0.25))


# ------------------------------------------------------------------------------------ BaseDT's whole path

def _files(tmp_path):
    rs = np.random.RandomState(3)
    y, x = np.mgrid[0:150, 0:200]
    rgb = np.stack([x * 255 // 199, y * 255 // 149, (x * y) % 256], -1).astype(np.uint8)
    rgb[40:90, 60:140] = rs.randint(0, 256, (50, 80, 3))
    paths = {}
    for name, im, kw in (("pic.png", Image.fromarray(rgb), {}), ("pic.jpg", Image.fromarray(rgb), {"quality": 90}),
                         ("gray.png", Image.fromarray(rgb[:, :, 1]), {}),
                         ("gray.jpg", Image.fromarray(rgb[:, :, 0]), {"quality": 90}),
                         ("alpha.png", Image.fromarray(np.dstack([rgb, (x % 256).astype(np.uint8)])), {})):
        paths[name] = str(tmp_path / name)
        im.save(paths[name], **kw)
    return paths


def _recipe(backbone):
    mean, std = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
    if backbone == "MobileNet":
        return Recipe("classification", [], "RGB", (256, 256), (224, 224), mean, std, pipeline="basedt")
    if backbone == "SSD_Lite":
        return Recipe("detection", [], "RGB", (320, 320), None, mean, std, pipeline="basedt")
    return Recipe("classification", [], "GRAY", (32, 32), None, [33.46], [78.87], pipeline="basedt")


@pytest.mark.parametrize("backbone", ["MobileNet", "SSD_Lite", "LeNet"])
def test_basedt_preparation_is_opencvs(tmp_path, no_ipp, backbone):
    recipe = _recipe(backbone)
    for name, path in sorted(_files(tmp_path).items()):
        if backbone == "LeNet" and name == "alpha.png":
            continue       # BaseDT's _rgb2gray fails on 4 channels (np.dot shapes); tinyrt composites on white first
        want = basedt_input(path, backbone)
        pic = basedt.read_unrotated(path)
        assert np.array_equal(basedt.three_channels(pic), cv2.cvtColor(
            basedt_input_uint8(path), cv2.COLOR_BGR2RGB)), name        # the decoded picture, as OpenCV's
        got = basedt.prepare(pic, recipe, Geometry(pic.shape[1], pic.shape[0]))
        assert got.shape == want.shape and got.dtype == np.float32, name
        assert np.abs(got - want).max() <= 1e-5, "%s: %g" % (name, np.abs(got - want).max())


def basedt_input_uint8(path):
    """OpenCV's decoding and BaseDT's _to3channel (BGR uint8), for the comparison above."""
    from basedt_reference import imread
    img = imread(path)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        a = img[:, :, 3].astype(np.float32) / 255.0
        return np.stack([img[:, :, c] * a + (1.0 - a) * 255 for c in range(3)], -1).astype(np.uint8)
    return img


def test_opencv_arrays_are_bgr(tmp_path, no_ipp):
    path = _files(tmp_path)["pic.png"]
    bgr = cv2.imread(path)
    pic = basedt.read_unrotated(bgr, color="BGR")
    got = basedt.prepare(pic, _recipe("SSD_Lite"), Geometry(pic.shape[1], pic.shape[0]))
    assert np.abs(got - basedt_input(bgr, "SSD_Lite")).max() <= 1e-5


def test_no_exif_rotation(tmp_path):
    """OpenCV's imdecode(..., -1) ignores EXIF orientation; so does the basedt reader (tinyrt's other reader
    applies it)."""
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = str(tmp_path / "rot.jpg")
    Image.fromarray(a).save(path, exif=exif, quality=95)
    assert basedt.read_unrotated(path).shape == (20, 40, 3) == cv2.imdecode(
        np.fromfile(path, np.uint8), -1).shape


def test_tinyrt_never_imports_opencv(tmp_path):
    """The BaseDT path and tinyrt.hub run without OpenCV: nothing in tinyrt imports cv2."""
    import subprocess
    import sys
    path = _files(tmp_path)["pic.jpg"]
    code = ("import sys; import tinyrt, tinyrt.hub; from tinyrt.vision import basedt, cv_linear, preprocess\n"
            "pic = basedt.read_unrotated(%r)\n"
            "r = preprocess.Recipe('detection', [], 'RGB', (320, 320), None, [0, 0, 0], [1, 1, 1], pipeline='basedt')\n"
            "basedt.prepare(pic, r, preprocess.Geometry(1, 1))\n"
            "assert 'cv2' not in sys.modules, 'cv2 was imported'\n" % path)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True)
    assert out.returncode == 0, out.stdout


def test_converting_only_the_rows_read_gives_the_same_numbers():
    mean, inv = np.float32([123.675, 116.28, 103.53]), np.float32([1 / 58.395, 1 / 57.12, 1 / 57.375])

    def normalise(p):
        return (p.astype(np.float32) - mean) * inv
    for i, (ins, outs) in enumerate(cases()):
        a = _picture(ins + (3,), np.uint8, i)
        assert np.array_equal(resize_linear(a, outs, convert=normalise), resize_linear(normalise(a), outs)), (ins, outs)
