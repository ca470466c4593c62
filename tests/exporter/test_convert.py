"""convert(): every classification backbone, both exporters, torch == onnxruntime == tinyrt; failures leave
nothing behind; backends, opsets and the MMEdu-like API."""
import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import tinyrt  # noqa: E402
from oracle import tolerance  # noqa: E402
from exporter import (BackendError, Classifier, ConvertOptions, Detector, ExporterError,  # noqa: E402
                      MMClassification, VerificationError, convert)
from exporter.models import get_backbone  # noqa: E402
from exporter.models._layers import randomize  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::exporter.classes.ExporterWarning")

# small variants keep the run short; 224 / width 1.0 is covered by test_cli.py and test_checkpoints.py
CASES = {
    "MobileNet": dict(width_mult=0.35, input_size=64),
    "MobileNetV3_Small": dict(width_mult=0.5, input_size=64),
    "MobileNetV3_Large": dict(width_mult=0.35, input_size=64),
    "ResNet18": dict(width_mult=0.125, input_size=64),
    "LeNet": dict(width_mult=1.0, input_size=32),
}


tol = tolerance   # the project's: 1e-4 * max(1, max|ref|)


def make_checkpoint(path, backbone, num_classes, seed, width_mult, input_size):
    """Our module with seeded random weights and randomised BN statistics, saved as a plain state_dict."""
    spec = get_backbone(backbone)
    model = randomize(spec.build(num_classes, width_mult, input_size), seed,
                      (2, spec.channels, input_size, input_size))
    torch.save(model.state_dict(), str(path))
    return model


def run_all(path, x):
    a = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    b = tinyrt.InferenceSession(str(path)).run(None, {"input": x})[0]
    return a, b


# the exports of the bigger backbones take 10-70 s each on a busy 2-core machine; LeNet's a second or two
@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("backbone", [b if b == "LeNet" else pytest.param(b, marks=pytest.mark.slow) for b in CASES])
def test_every_backbone(tmp_path, backbone, opset):
    cfg = CASES[backbone]
    spec = get_backbone(backbone)
    model = make_checkpoint(tmp_path / "ck.pth", backbone, 5, seed=opset, **cfg)
    (tmp_path / "classes.txt").write_text("a\nb\nc\nd\ne\n", encoding="utf-8")
    result = convert(backbone, checkpoint=tmp_path / "ck.pth", out_file=tmp_path / "out" / "m.onnx",
                     class_path=tmp_path / "classes.txt", opset=opset, log=None, **cfg)
    assert result.report.ok and result.report.max_diff("tinyrt") is not None
    m = onnx.load(result.onnx_path)
    assert {o.domain: o.version for o in m.opset_import}[""] == opset
    assert [i.name for i in m.graph.input] == ["input"] and [o.name for o in m.graph.output] == ["probs"]

    x = np.random.RandomState(7).standard_normal((1, spec.channels, cfg["input_size"], cfg["input_size"]))
    x = x.astype(np.float32)
    with torch.no_grad():
        ref = torch.softmax(model(torch.from_numpy(x)), 1).numpy()
    assert ref.std() > 1e-3, "outputs must depend on the input"
    a, b = run_all(result.onnx_path, x)
    assert a.shape == b.shape == (1, 5)
    assert np.abs(a - ref).max() <= tol(ref)
    assert np.abs(b - ref).max() <= tol(ref)
    assert np.allclose(b.sum(1), 1, atol=1e-5)          # softmaxed
    meta = tinyrt.InferenceSession(result.onnx_path).get_modelmeta().custom_metadata_map
    assert json.loads(meta["tinyrt.classes"]) == list("abcde")
    assert meta["tinyrt.task"] == "classification"


@pytest.mark.slow  # the dynamo exporter: minutes on a busy machine
@pytest.mark.parametrize("backbone", ["MobileNet"])
def test_dynamo_dynamic_batch(tmp_path, backbone):
    cfg = CASES[backbone]
    model = make_checkpoint(tmp_path / "ck.pth", backbone, 3, seed=1, **cfg)
    result = convert(backbone, checkpoint=str(tmp_path / "ck.pth"), out_file=str(tmp_path / "d.onnx"),
                     dynamo=True, dynamic_batch=True, log=None, num_classes=3, **cfg)
    assert any("opset 18" in n for n in result.notes)
    for batch in (1, 3):
        x = np.random.RandomState(batch).standard_normal((batch, 3, 64, 64)).astype(np.float32)
        with torch.no_grad():
            ref = torch.softmax(model(torch.from_numpy(x)), 1).numpy()
        a, b = run_all(result.onnx_path, x)
        assert a.shape == b.shape == (batch, 3)
        assert np.abs(a - ref).max() <= tol(ref) and np.abs(b - ref).max() <= tol(ref)


def test_torchscript_dynamic_batch(tmp_path):
    result = convert("LeNet", out_file=tmp_path / "l.onnx", num_classes=4, dynamic_batch=True, log=None)
    x = np.random.RandomState(0).standard_normal((5, 1, 32, 32)).astype(np.float32)
    a, b = run_all(result.onnx_path, x)
    assert a.shape == (5, 4) and np.abs(a - b).max() <= tol(a)


def _broken_run(original):
    def run(self, output_names, feeds, *args, **kwargs):
        outs = original(self, output_names, feeds, *args, **kwargs)
        return [o + np.float32(1e-2) if o.dtype == np.float32 else o for o in outs]
    return run


@pytest.mark.parametrize("runtime", ["tinyrt", "onnxruntime"])
def test_broken_export_is_caught_and_leaves_nothing(tmp_path, monkeypatch, runtime):
    cls = tinyrt.InferenceSession if runtime == "tinyrt" else ort.InferenceSession
    monkeypatch.setattr(cls, "run", _broken_run(cls.run))
    out = tmp_path / "out"
    with pytest.raises(VerificationError) as e:
        convert("LeNet", out_file=out / "broken.onnx", num_classes=3, log=None)
    assert runtime in str(e.value) and "probs" in str(e.value)
    assert os.listdir(str(out)) == []        # no .onnx, no .py, no temporary files


def test_failed_export_overwrites_nothing(tmp_path, monkeypatch):
    (tmp_path / "m.onnx").write_bytes(b"old")
    monkeypatch.setattr(tinyrt.InferenceSession, "run", _broken_run(tinyrt.InferenceSession.run))
    with pytest.raises(VerificationError):
        convert("LeNet", out_file=tmp_path / "m.onnx", num_classes=3, log=None)
    assert sorted(os.listdir(str(tmp_path))) == ["m.onnx"] and (tmp_path / "m.onnx").read_bytes() == b"old"


@pytest.mark.parametrize("backend", ["NCNN", "TensorRT", "openvino", ""])
def test_unknown_backend(tmp_path, backend):
    with pytest.raises(BackendError) as e:
        convert("MobileNet", out_file=tmp_path / "m.onnx", num_classes=2, backend=backend, log=None)
    assert "ONNX" in str(e.value) and repr(backend) in str(e.value)
    assert os.listdir(str(tmp_path)) == []


def test_backend_is_case_insensitive(tmp_path):
    convert("LeNet", out_file=tmp_path / "m", num_classes=2, backend="onnx", log=None)
    assert sorted(os.listdir(str(tmp_path))) == ["m.onnx", "m.py"]


@pytest.mark.parametrize("opset", [10, 19, "x", None])
def test_bad_opset(tmp_path, opset):
    with pytest.raises(ExporterError, match="11..18"):
        convert("LeNet", out_file=tmp_path / "m.onnx", num_classes=2, opset=opset, log=None)


def test_bad_arguments(tmp_path):
    with pytest.raises(ExporterError, match="unknown backbone 'VGG'.*MobileNet"):
        convert("VGG", out_file=tmp_path / "m.onnx", num_classes=2, log=None)
    with pytest.raises(ExporterError, match="32x32"):
        convert("LeNet", out_file=tmp_path / "m.onnx", num_classes=2, input_size=64, log=None)
    with pytest.raises(ExporterError, match="detection"):
        convert("LeNet", out_file=tmp_path / "m.onnx", num_classes=2, score_thr=0.5, log=None)
    with pytest.raises(ExporterError, match="out_file"):
        convert("LeNet", num_classes=2, log=None)
    assert os.listdir(str(tmp_path)) == []


def test_model_object_api(tmp_path):
    model = Classifier(backbone="LeNet")
    model.num_classes = 2
    (tmp_path / "c.txt").write_text("猫\n狗\n", encoding="utf-8")
    r = model.convert(checkpoint=None, backend="ONNX", out_file=str(tmp_path / "o" / "catdog.onnx"),
                      class_path=str(tmp_path / "c.txt"), log=None)
    assert r.classes == ["猫", "狗"] and os.path.exists(r.onnx_path) and os.path.exists(r.script_path)
    assert MMClassification is Classifier
    with pytest.raises(BackendError):
        model.convert(backend="NCNN", out_file=str(tmp_path / "x.onnx"))
    with pytest.raises(ExporterError, match="Detector"):
        Classifier(backbone="SSD_Lite")
    with pytest.raises(ExporterError, match="Classifier"):
        Detector(backbone="MobileNet")
    assert Detector().backbone == "SSD_Lite" and Classifier("mobilenet_v2").backbone == "MobileNet"


def test_options_object_and_keywords_are_the_same(tmp_path):
    options = ConvertOptions(opset=11, num_classes=3, log=None)
    a = convert("LeNet", out_file=tmp_path / "a.onnx", options=options)
    b = convert("LeNet", out_file=tmp_path / "b.onnx", opset=11, num_classes=3, log=None)
    assert a.opset == b.opset == 11 and a.classes == b.classes and len(a.classes) == 3
    assert a.metadata == b.metadata and a.input_shape == b.input_shape
    c = convert("LeNet", out_file=tmp_path / "c.onnx", options=options, opset=12)   # a keyword wins
    assert c.opset == 12 and options.opset == 11
    with pytest.raises(TypeError, match="opsett"):
        convert("LeNet", out_file=tmp_path / "d.onnx", opsett=11, log=None)
    assert not (tmp_path / "d.onnx").exists()


def test_compare_detections_tolerates_only_near_ties():
    from tinyrt.vision.detections import compare_detections
    dets = np.zeros((1, 6, 5), np.float32)
    labels = np.full((1, 6), -1, np.int64)
    dets[0, :4] = [[10, 10, 50, 50, 0.9], [20, 20, 80, 90, 0.5], [0, 0, 30, 30, 0.49999], [5, 5, 9, 9, 0.3]]
    labels[0, :4] = [0, 1, 2, 1]
    swapped_d, swapped_l = dets.copy(), labels.copy()
    swapped_d[0, [1, 2]], swapped_l[0, [1, 2]] = dets[0, [2, 1]], labels[0, [2, 1]]
    assert compare_detections(dets, labels, swapped_d, swapped_l, score_thr=0.02).ok    # tied: either order
    wrong = labels.copy()
    wrong[0, 0] = 1
    assert not compare_detections(dets, labels, dets, wrong, score_thr=0.02).ok
    moved = dets.copy()
    moved[0, 3, 0] += 0.5
    assert not compare_detections(dets, labels, moved, labels, score_thr=0.02).ok
    lost = dets.copy()
    lost[0, 3] = 0
    assert not compare_detections(dets, labels, lost, labels, score_thr=0.02).ok
    assert compare_detections(dets, labels, lost, labels, score_thr=0.29995).ok    # at the score threshold: excused
