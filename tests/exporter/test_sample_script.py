"""The sample script written beside the model: run as a subprocess on a JPEG, it prints tinyrt's top result."""
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

import tinyrt  # noqa: E402
from exporter import convert  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::exporter.classes.ExporterWarning")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))
TOP1 = re.compile(r"top-1: label (\d+) \((.*)\), score ([0-9.]+)")


def jpeg(path, size=(150, 100), seed=0):
    rs = np.random.RandomState(seed)
    small = (rs.rand(size[1] // 10, size[0] // 10, 3) * 255).astype(np.uint8)
    Image.fromarray(small).resize(size, Image.BILINEAR).save(str(path), quality=92)
    return str(path)


def run_script(script, image, *flags):
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONIOENCODING="utf-8")
    out = subprocess.run([sys.executable, str(script), str(image)] + list(flags), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, cwd=os.path.dirname(str(image)))
    assert out.returncode == 0, out.stderr.decode("utf-8", "replace")
    return out.stdout.decode("utf-8")


def reference_input(image, resize, crop, mean, std, gray=False):
    """BaseDT's preprocessing done by OpenCV (tests/basedt_reference.py), independently of the script; OpenCV's
    IPP path off (its float resize rounds differently)."""
    import cv2
    from basedt_reference import basedt_input
    cv2.ipp.setUseIPP(False)
    try:
        return basedt_input(image, size=(resize, resize), crop_size=(crop, crop) if crop else None,
                            to_rgb=not gray, mean=mean, std=std)
    finally:
        cv2.ipp.setUseIPP(True)


def tinyrt_top1(model_path, image, resize, crop, mean, std, gray=False):
    """Preprocess here (independently of the script) and run tinyrt."""
    x = reference_input(image, resize, crop, mean, std, gray)
    probs = tinyrt.InferenceSession(model_path).run(None, {"input": x})[0][0]
    return int(probs.argmax()), float(probs.max())


def check(stdout, classes, label, score):
    found = TOP1.search(stdout)
    assert found, stdout
    assert int(found.group(1)) == label and found.group(2) == classes[label]
    assert abs(float(found.group(3)) - score) <= 1e-4


def test_classification_script(tmp_path):
    (tmp_path / "classes.txt").write_text("cat\ndog\nbird\n", encoding="utf-8")
    r = convert("MobileNet", out_file=tmp_path / "out" / "pets.onnx", class_path=tmp_path / "classes.txt",
                width_mult=0.35, input_size=64, log=None)
    assert os.path.basename(r.script_path) == "pets.py"
    image = jpeg(tmp_path / "pic.jpg")
    label, score = tinyrt_top1(r.onnx_path, image, 73, 64, [123.675, 116.28, 103.53], [58.395, 57.12, 57.375])
    check(run_script(r.script_path, image), r.classes, label, score)
    check(run_script(r.script_path, image, "--ort"), r.classes, label, score)
    text = open(r.script_path, encoding="utf-8").read()
    assert "import tinyrt as ort" in text and "import onnxruntime as ort" in text and "torch" not in text


def test_grayscale_script_follows_a_replaced_model(tmp_path):
    """The script reads classes and preprocessing from the file: replacing the model keeps it right."""
    (tmp_path / "c1.txt").write_text("零\n一\n", encoding="utf-8")
    (tmp_path / "c2.txt").write_text("a\nb\nc\nd\n", encoding="utf-8")
    r1 = convert("LeNet", out_file=tmp_path / "one" / "digits.onnx", class_path=tmp_path / "c1.txt", log=None)
    r2 = convert("LeNet", out_file=tmp_path / "two" / "other.onnx", class_path=tmp_path / "c2.txt", seed=3, log=None)
    image = jpeg(tmp_path / "pic.jpg", seed=1)
    label, score = tinyrt_top1(r1.onnx_path, image, 32, None, [33.46], [78.87], gray=True)
    check(run_script(r1.script_path, image), r1.classes, label, score)
    shutil.copy(r2.onnx_path, r1.onnx_path)
    label, score = tinyrt_top1(r1.onnx_path, image, 32, None, [33.46], [78.87], gray=True)
    check(run_script(r1.script_path, image), r2.classes, label, score)


def test_detection_script(tmp_path):
    (tmp_path / "c.txt").write_text("person\ncar\n", encoding="utf-8")
    r = convert("SSD_Lite", out_file=tmp_path / "det.onnx", class_path=tmp_path / "c.txt", width_mult=0.25,
                score_thr=0.3, log=None)
    image = jpeg(tmp_path / "pic.jpg", size=(160, 120))
    out = run_script(r.script_path, image)
    assert "objects scoring at least 0.3 (the model file's threshold" in out
    # the same through tinyrt here: BaseDT's preprocessing to 320x320, boxes scaled back to 160x120
    x = reference_input(image, 320, None, [123.675, 116.28, 103.53], [58.395, 57.12, 57.375])
    dets, labels = tinyrt.InferenceSession(r.onnx_path).run(None, {"input": x})
    keep = dets[0, :, 4] >= 0.3
    lines = [line for line in out.splitlines() if line.startswith("label")]
    assert len(lines) == int(keep.sum())
    if lines:
        first = re.match(r"label (\d+) \((\w+)\), score ([0-9.]+), box \(([-0-9., ]+)\)", lines[0])
        assert int(first.group(1)) == labels[0, 0] and abs(float(first.group(3)) - dets[0, 0, 4]) <= 1e-4
        box = [float(v) for v in first.group(4).split(",")]
        assert np.allclose(box, dets[0, 0, :4] * [0.5, 0.375, 0.5, 0.375], atol=0.06)
    else:
        assert "no objects found" in out
    low = run_script(r.script_path, image, "--thr", "0.35")
    assert "objects scoring at least 0.35 (--thr)" in low
    assert len([line for line in low.splitlines() if line.startswith("label")]) == int((dets[0, :, 4] >= 0.35).sum())
