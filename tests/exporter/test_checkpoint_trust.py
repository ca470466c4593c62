"""The exporter trusts the checkpoint (width, input size, backbone from its meta; disagreeing flags refused,
naming both values), and one detection threshold, stored in the model, is used by the demo, ``tinyrt run``,
the sample script and ``tinyrt.run`` alike."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("PIL")

import tinyrt  # noqa: E402
from exporter import Classifier, Detector, ExporterError, convert  # noqa: E402
from exporter.checkpoint import checkpoint_settings  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PRETRAINED = os.path.join(ROOT, "exporter", "pretrained")
CLS = os.path.join(PRETRAINED, "shapes_cls.pth")
DET = os.path.join(PRETRAINED, "shapes_det.pth")
SAMPLES = os.path.join(PRETRAINED, "samples")


def test_settings_from_our_meta_and_from_mmcv_configs():
    got = checkpoint_settings({"backbone": "MobileNet", "width_mult": 0.35, "input_size": 96, "CLASSES": ["a"]})
    assert {k: v[0] for k, v in got.items()} == {"backbone": "MobileNet", "width_mult": 0.35, "input_size": 96}
    mmcls = ("model = dict(\n    type='ImageClassifier',\n    backbone=dict(type='MobileNetV2', widen_factor=0.5),"
             "\n    neck=dict(type='GlobalAveragePooling'),\n    head=dict(type='LinearClsHead', num_classes=2))\n"
             "test_pipeline = [dict(type='Resize', size=(256, -1)), dict(type='CenterCrop', crop_size=192)]\n")
    got = checkpoint_settings({"config": mmcls}, {"head.fc.weight": None})
    assert {k: v[0] for k, v in got.items()} == {"backbone": "MobileNet", "width_mult": 0.5, "input_size": 192,
                                                 "task": "classification"}
    mmdet = ("input_size = 320\nmodel = dict(\n    type='SingleStageDetector',\n    backbone=dict(\n        "
             "type='MobileNetV2',\n        out_indices=(4, 7),\n        widen_factor=1.0),\n    bbox_head=dict("
             "type='SSDHead', num_classes=80))\n")
    got = checkpoint_settings({"config": mmdet}, {"bbox_head.cls_convs.0.1.weight": None})
    assert {k: v[0] for k, v in got.items()} == {"backbone": "SSD_Lite", "width_mult": 1.0, "input_size": 320,
                                                 "task": "detection"}


@pytest.mark.parametrize("kwargs,needles", [
    (dict(backbone="MobileNet", checkpoint=CLS, input_size=224), ["input_size (--input-size) 224", "input_size 96"]),
    (dict(backbone="MobileNet", checkpoint=CLS, width_mult=1.0), ["width_mult (--width-mult) 1", "width_mult 0.35"]),
    (dict(backbone="SSD_Lite", checkpoint=DET, input_size=320), ["input_size (--input-size) 320", "input_size 160"]),
    (dict(backbone="MobileNet", checkpoint=DET), ["SSD_Lite", "--backbone SSD_Lite", "Detector"]),
    (dict(backbone="SSD_Lite", checkpoint=CLS), ["MobileNet", "--backbone MobileNet", "Classifier"]),
    (dict(backbone="ResNet18", checkpoint=CLS), ["MobileNet", "--backbone MobileNet"]),
])
def test_disagreeing_arguments_are_refused_naming_both(tmp_path, kwargs, needles):
    out = tmp_path / "x.onnx"
    with pytest.raises(ExporterError) as e:
        convert(out_file=out, log=None, **kwargs)
    for needle in needles:
        assert needle in str(e.value), str(e.value)
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.slow  # 46 s on a busy machine
def test_model_objects_and_the_command_line_refuse_too(tmp_path):
    with pytest.raises(ExporterError, match="input_size .*224.* input_size 96"):
        Classifier(backbone="MobileNet", input_size=224).convert(checkpoint=CLS, out_file=str(tmp_path / "a.onnx"))
    with pytest.raises(ExporterError, match="--backbone SSD_Lite"):
        Classifier(backbone="MobileNet").convert(checkpoint=DET, out_file=str(tmp_path / "a.onnx"))
    with pytest.raises(ExporterError, match="input_size .*320.* input_size 160"):
        Detector(backbone="SSD_Lite", input_size=320).convert(checkpoint=DET, out_file=str(tmp_path / "a.onnx"))
    code, out, err = exporter_cli("convert", "--backbone", "MobileNet", "--checkpoint", CLS, "--width-mult", "0.35",
                                  "--input-size", "224", "--out", tmp_path / "b.onnx")
    assert code == 2 and "224" in err and "input_size 96" in err, err
    assert os.listdir(str(tmp_path)) == []


def exporter_cli(*args):
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONIOENCODING="utf-8")
    out = subprocess.run([sys.executable, "-m", "exporter"] + [str(a) for a in args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    return out.returncode, out.stdout.decode("utf-8"), out.stderr.decode("utf-8")


def run_script(script, image):
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONIOENCODING="utf-8")
    out = subprocess.run([sys.executable, str(script), str(image)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env)
    assert out.returncode == 0, out.stderr.decode("utf-8", "replace")
    return out.stdout.decode("utf-8")


SCRIPT_ROW = re.compile(r"label (\d+) \((\w+)\), score ([0-9.]+), box \(([-0-9., ]+)\)")


@pytest.mark.slow
def test_readme_convert_without_size_flags_and_one_threshold_everywhere(tmp_path, capsys):
    from exporter.demo import convert_pretrained, match_truth, sample_answers
    from tinyrt.cli import main as tinyrt_main
    with open(os.path.join(SAMPLES, "samples.json"), encoding="utf-8") as f:
        truth = json.load(f)
    # the README's convert, without --input-size: the checkpoint's 96 and 0.35
    code, out, err = exporter_cli("convert", "--backbone", "MobileNet", "--checkpoint", CLS,
                                  "--out", tmp_path / "nosize.onnx")
    assert code == 0, err
    assert "from the checkpoint: width_mult 0.35 (meta['width_mult']), input_size 96 (meta['input_size'])" in out
    cls = tinyrt.load(str(tmp_path / "nosize.onnx"))
    assert cls.session.get_inputs()[0].shape == [1, 3, 96, 96]
    assert cls.metadata["tinyrt.width_mult"] == "0.35" and cls.recipe.pipeline == "basedt"
    for name, res in sample_answers(cls, truth):
        assert match_truth(res, truth[name])[0], (name, res)
        top = re.search(r"top-1: label (\d+) \((\w+)\), score ([0-9.]+)", run_script(tmp_path / "nosize.py",
                                                                                   os.path.join(SAMPLES, name)))
        assert int(top.group(1)) == res[0].label and abs(float(top.group(3)) - res[0].score) <= 1e-4
    # the demo's detector (converted without size flags: 160 and 0.35 from the checkpoint), its threshold
    det_path = convert_pretrained(str(tmp_path), log=lambda *a: None, which=("detector",))["detector"].onnx_path
    det = tinyrt.load(det_path)
    assert det.session.get_inputs()[0].shape == [1, 3, 160, 160]
    assert (det.threshold, det.threshold_source) == (0.15, "the model file")
    for name, demo in sample_answers(det, truth):
        picture = os.path.join(SAMPLES, name)
        assert match_truth(demo, truth[name])[0], (name, demo)
        want = [(p.label, p.score, p.box) for p in demo]
        run = tinyrt.run(det_path, picture)
        assert [(p.label, p.score, p.box) for p in run] == want
        assert run.threshold == 0.15 and "score >= 0.15, from the model file" in str(run)
        assert tinyrt_main(["run", det_path, picture, "--json"]) == 0
        (entry,) = json.loads(capsys.readouterr().out)
        assert entry["score_threshold"] == 0.15
        assert [(p["label"], p["score"], tuple(p["box"])) for p in entry["predictions"]] == want
        text = run_script(os.path.splitext(det_path)[0] + ".py", picture)
        assert "objects scoring at least 0.15 (the model file's threshold" in text
        rows = [SCRIPT_ROW.match(line) for line in text.splitlines() if line.startswith("label")]
        assert [int(r.group(1)) for r in rows] == [p.label for p in demo], text
        for r, p in zip(rows, demo):
            assert abs(float(r.group(3)) - p.score) <= 1e-4
            assert np.allclose([float(v) for v in r.group(4).split(",")], p.box, atol=0.06)
