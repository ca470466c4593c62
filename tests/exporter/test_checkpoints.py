"""Checkpoints: MMEdu (mmcls) and torchvision layouts load, export, and equal an independent network with the
same weights; bad checkpoints fail naming the key; class names and their counts."""
import json
import os
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mmcls_reference as ref_impl  # noqa: E402
import tinyrt  # noqa: E402
from oracle import tolerance  # noqa: E402
from exporter import CheckpointError, ClassesError, convert  # noqa: E402
from exporter.checkpoint import load_checkpoint  # noqa: E402
from exporter.classes import ExporterWarning  # noqa: E402
from exporter.models import get_backbone  # noqa: E402
from exporter.models._layers import randomize  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::exporter.classes.ExporterWarning")


tol = tolerance   # the project's: 1e-4 * max(1, max|ref|)


def outputs(path, x):
    a = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    b = tinyrt.InferenceSession(str(path)).run(None, {"input": x})[0]
    return a, b


def mmcls_checkpoint(path, num_classes=2, widen_factor=1.0, seed=0, classes=("cat", "dog"), real=False):
    """An MMEdu-style checkpoint of the independent reference network; returns the network."""
    net = None
    if real:
        net = ref_impl.real_mmcls_mobilenet_v2(num_classes, widen_factor)
        if net is None:
            pytest.skip("set TINYRT_MMCLS_WHEEL to an mmcls wheel (pip download --no-deps mmcls==0.25.0)")
    net = ref_impl.randomize_(net or ref_impl.reference_mobilenet_v2(num_classes, widen_factor), seed)
    torch.save({"meta": {"CLASSES": list(classes), "mmcv_version": "1.7.0", "epoch": 3},
                "state_dict": net.state_dict(), "optimizer": {"state": {}, "param_groups": []}}, str(path))
    return net


def to_torchvision_mobilenet_v2(sd):
    """Rename mmcls MobileNetV2 keys to torchvision's mobilenet_v2 keys (written independently of exporter)."""
    out = {}
    settings = [(1, 1), (6, 2), (6, 3), (6, 4), (6, 3), (6, 3), (6, 1)]  # (expand ratio, blocks) per layer
    index = 1
    names = {"backbone.conv1.conv": "features.0.0", "backbone.conv1.bn": "features.0.1"}
    for layer, (t, n) in enumerate(settings, 1):
        for j in range(n):
            src, dst = "backbone.layer%d.%d.conv." % (layer, j), "features.%d.conv." % index
            if t == 1:
                names.update({src + "0.conv": dst + "0.0", src + "0.bn": dst + "0.1", src + "1.conv": dst + "1",
                              src + "1.bn": dst + "2"})
            else:
                names.update({src + "0.conv": dst + "0.0", src + "0.bn": dst + "0.1", src + "1.conv": dst + "1.0",
                              src + "1.bn": dst + "1.1", src + "2.conv": dst + "2", src + "2.bn": dst + "3"})
            index += 1
    names.update({"backbone.conv2.conv": "features.18.0", "backbone.conv2.bn": "features.18.1",
                  "head.fc": "classifier.1"})
    for k, v in sd.items():
        module, leaf = k.rsplit(".", 1)
        out[names[module] + "." + leaf] = v
    return out


def reference_output(net, x):
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def test_mmcls_mobilenet_v2_224_equals_independent_reference(tmp_path):
    net = mmcls_checkpoint(tmp_path / "ck.pth")
    r = convert("MobileNet", checkpoint=tmp_path / "ck.pth", out_file=tmp_path / "catdog.onnx", log=None)
    assert r.classes == ["cat", "dog"]                  # from the checkpoint's meta
    x = np.random.RandomState(3).standard_normal((1, 3, 224, 224)).astype(np.float32)
    ref = reference_output(net, x)
    assert ref.std() > 1e-3
    a, b = outputs(r.onnx_path, x)
    assert np.abs(a - ref).max() <= tol(ref) and np.abs(b - ref).max() <= tol(ref)


@pytest.mark.parametrize("widen_factor", [0.5, 1.4])
def test_mmcls_mobilenet_v2_real_mmcls_code(tmp_path, widen_factor):
    """mmcls's own mobilenet_v2.py (from a wheel, mmcv stubbed) builds the reference; skipped without one."""
    net = mmcls_checkpoint(tmp_path / "ck.pth", num_classes=3, widen_factor=widen_factor,
                           classes=("a", "b", "c"), real=True)
    r = convert("MobileNet", checkpoint=tmp_path / "ck.pth", out_file=tmp_path / "m.onnx", width_mult=widen_factor,
                input_size=96, log=None)
    x = np.random.RandomState(4).standard_normal((1, 3, 96, 96)).astype(np.float32)
    ref = reference_output(net, x)
    a, b = outputs(r.onnx_path, x)
    assert np.abs(a - ref).max() <= tol(ref) and np.abs(b - ref).max() <= tol(ref)


def test_torchvision_mobilenet_v2_layout(tmp_path):
    net = ref_impl.randomize_(ref_impl.reference_mobilenet_v2(4, 0.5), seed=5)
    torch.save(to_torchvision_mobilenet_v2(net.state_dict()), str(tmp_path / "tv.pth"))
    r = convert("MobileNet", checkpoint=tmp_path / "tv.pth", out_file=tmp_path / "tv.onnx", width_mult=0.5,
                input_size=64, log=None)
    x = np.random.RandomState(5).standard_normal((1, 3, 64, 64)).astype(np.float32)
    ref = reference_output(net, x)
    a, b = outputs(r.onnx_path, x)
    assert np.abs(a - ref).max() <= tol(ref) and np.abs(b - ref).max() <= tol(ref)


def test_mmcls_resnet18_layout(tmp_path):
    spec = get_backbone("ResNet18")
    model = randomize(spec.build(3, 0.125), 2)
    sd = {("head." + k if k.startswith("fc.") else "backbone." + k): v for k, v in model.state_dict().items()}
    torch.save({"state_dict": sd, "meta": {"CLASSES": ["x", "y", "z"]}}, str(tmp_path / "r.pth"))
    r = convert("ResNet18", checkpoint=tmp_path / "r.pth", out_file=tmp_path / "r.onnx", width_mult=0.125,
                input_size=64, log=None)
    x = np.random.RandomState(6).standard_normal((1, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        ref = torch.softmax(model(torch.from_numpy(x)), 1).numpy()
    a, b = outputs(r.onnx_path, x)
    assert np.abs(a - ref).max() <= tol(ref) and np.abs(b - ref).max() <= tol(ref)


def test_wrappers_and_prefixes(tmp_path):
    model = randomize(get_backbone("LeNet").build(3), 0)
    sd = model.state_dict()
    for i, obj in enumerate([sd, {"model": sd}, {"state_dict": {"module." + k: v for k, v in sd.items()}}]):
        torch.save(obj, str(tmp_path / ("%d.pth" % i)))
        loaded, meta = load_checkpoint(str(tmp_path / ("%d.pth" % i)))
        assert list(loaded) == list(sd) and meta == {}


def _mmcls_sd(tmp_path):
    mmcls_checkpoint(tmp_path / "good.pth", widen_factor=0.35)
    return torch.load(str(tmp_path / "good.pth"), weights_only=True)


@pytest.mark.parametrize("damage", ["missing", "renamed", "wrong_shape"])
def test_bad_checkpoints_name_the_key(tmp_path, damage):
    ck = _mmcls_sd(tmp_path)
    sd = ck["state_dict"]
    key = "backbone.layer3.1.conv.1.bn.weight"
    if damage == "missing":
        del sd[key]
    elif damage == "renamed":
        sd["backbone.layer3.1.conv.1.norm.weight"] = sd.pop(key)
    else:
        sd[key] = torch.zeros(7)
    torch.save(ck, str(tmp_path / "bad.pth"))
    out = tmp_path / "out"
    with pytest.raises(CheckpointError) as e:
        convert("MobileNet", checkpoint=tmp_path / "bad.pth", out_file=out / "m.onnx", width_mult=0.35, log=None)
    msg = str(e.value)
    assert key in msg
    if damage == "missing":
        assert e.value.missing == [key] and "missing" in msg
    elif damage == "renamed":
        assert e.value.missing == [key] and e.value.unexpected == ["backbone.layer3.1.conv.1.norm.weight"]
        assert "unexpected" in msg and "norm.weight" in msg
    else:
        assert e.value.wrong_shape[0][0] == key and "[7]" in msg
    assert not out.exists() or os.listdir(str(out)) == []


def test_width_mismatch_hint(tmp_path):
    mmcls_checkpoint(tmp_path / "ck.pth", widen_factor=0.5)
    with pytest.raises(CheckpointError, match="width_mult"):
        convert("MobileNet", checkpoint=tmp_path / "ck.pth", out_file=tmp_path / "m.onnx", log=None)


def test_numpy_scores_in_meta_are_data(tmp_path):
    """mmcv keeps numpy scores in meta.hook_msgs: numpy arrays/scalars load, nothing else does."""
    model = randomize(get_backbone("LeNet").build(2), 0)
    torch.save({"meta": {"CLASSES": ["a", "b"], "hook_msgs": {"best_score": np.float64(0.93), "x": np.arange(3)}},
                "state_dict": model.state_dict()}, str(tmp_path / "np.pth"))
    sd, meta = load_checkpoint(str(tmp_path / "np.pth"))
    assert meta["CLASSES"] == ["a", "b"] and float(meta["hook_msgs"]["best_score"]) == 0.93
    torch.save({"meta": {"best": np.float64(1.0), "hook": ref_impl.StubConvModule(1, 1, 1)},
                "state_dict": model.state_dict()}, str(tmp_path / "mixed.pth"))
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_checkpoint(str(tmp_path / "mixed.pth"))


def test_pickled_code_is_refused(tmp_path):
    torch.save({"state_dict": {"w": torch.zeros(1)}, "trainer": ref_impl.StubConvModule(1, 1, 1)},
               str(tmp_path / "code.pth"))
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        convert("LeNet", checkpoint=tmp_path / "code.pth", out_file=tmp_path / "m.onnx", log=None)
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_checkpoint(str(tmp_path / "text.pth"))
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(str(tmp_path / "none.pth"))


def test_class_counts(tmp_path):
    mmcls_checkpoint(tmp_path / "ck.pth", widen_factor=0.35)      # 2 classes in weights and meta
    (tmp_path / "three.txt").write_text("a\nb\nc\n", encoding="utf-8")
    with pytest.raises(ClassesError) as e:
        convert("MobileNet", checkpoint=tmp_path / "ck.pth", out_file=tmp_path / "m.onnx", width_mult=0.35,
                class_path=tmp_path / "three.txt", log=None)
    assert "3" in str(e.value) and "2" in str(e.value)
    with pytest.raises(ClassesError, match="3 classes but num_classes is 2"):
        convert("LeNet", out_file=tmp_path / "m.onnx", num_classes=2, class_path=tmp_path / "three.txt", log=None)
    with pytest.raises(ClassesError, match="the checkpoint's meta lists 2 classes but num_classes is 5"):
        convert("MobileNet", checkpoint=tmp_path / "ck.pth", out_file=tmp_path / "m.onnx", width_mult=0.35,
                num_classes=5, log=None)
    torch.save(torch.load(str(tmp_path / "ck.pth"), weights_only=True)["state_dict"], str(tmp_path / "plain.pth"))
    with pytest.raises(ClassesError, match="num_classes is 5 but the checkpoint's classifier has 2"):
        convert("MobileNet", checkpoint=tmp_path / "plain.pth", out_file=tmp_path / "m.onnx", width_mult=0.35,
                num_classes=5, log=None)
    assert sorted(os.listdir(str(tmp_path))) == ["ck.pth", "plain.pth", "three.txt"]


def test_class_names_precedence_and_utf8(tmp_path):
    model = randomize(get_backbone("LeNet").build(3), 0)
    torch.save({"meta": {"CLASSES": ["m0", "m1", "m2"]}, "state_dict": model.state_dict()}, str(tmp_path / "c.pth"))
    # a Notepad-style file: BOM, CRLF, blank lines and spaces
    (tmp_path / "zh.txt").write_bytes("\ufeff猫\r\n\r\n 狗 \r\n兔子|白\r\n\r\n".encode("utf-8"))
    r = convert("LeNet", checkpoint=tmp_path / "c.pth", out_file=tmp_path / "a.onnx", class_path=tmp_path / "zh.txt",
                log=None)
    meta = ort.InferenceSession(r.onnx_path, providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    assert json.loads(meta["tinyrt.classes"]) == ["猫", "狗", "兔子|白"]
    assert json.loads(meta["MODEL_INFO"]) == {"codebase": "MMCls", "modelname": "LeNet",
                                              "classes": ["猫", "狗", "兔子|白"]}
    assert "CLASSES" not in meta                      # a name contains "|": the |-joined key would be wrong
    r = convert("LeNet", checkpoint=tmp_path / "c.pth", out_file=tmp_path / "b.onnx", log=None)
    assert r.classes == ["m0", "m1", "m2"] and r.metadata["CLASSES"] == "m0|m1|m2"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.save(model.state_dict(), str(tmp_path / "plain.pth"))
        r = convert("LeNet", checkpoint=tmp_path / "plain.pth", out_file=tmp_path / "c.onnx", log=None)
    assert r.classes == ["class_0", "class_1", "class_2"]     # count from the classifier's weights
    assert any(issubclass(w.category, ExporterWarning) and "class_0" in str(w.message) for w in caught)


def test_mmdet_ssdlite_checkpoint_through_the_detector_api(tmp_path):
    from exporter import Detector
    from exporter.detection import DetectionExport
    from tinyrt.vision.detections import compare_detections
    model = randomize(get_backbone("SSD_Lite").build(2, 0.25, 320), 4, (2, 3, 320, 320))
    torch.save({"meta": {"CLASSES": ("person", "car")}, "state_dict": model.state_dict()}, str(tmp_path / "s.pth"))
    det = Detector(backbone="SSD_Lite", width_mult=0.25)
    r = det.convert(checkpoint=str(tmp_path / "s.pth"), out_file=str(tmp_path / "s.onnx"), score_thr=0.1,
                    max_per_image=50, log=None)
    assert r.classes == ["person", "car"] and r.metadata["tinyrt.max_per_image"] == "50"
    x = np.random.RandomState(2).standard_normal((1, 3, 320, 320)).astype(np.float32)
    with torch.no_grad():
        ref = [t.numpy() for t in DetectionExport(model, score_threshold=0.1, max_per_image=50).eval()(
            torch.from_numpy(x))]
    assert (ref[0][0, :, 4] > 0).sum() > 0
    a = ort.InferenceSession(r.onnx_path, providers=["CPUExecutionProvider"]).run(None, {"input": x})
    b = tinyrt.InferenceSession(r.onnx_path).run(None, {"input": x})
    assert a[0].shape == b[0].shape == (1, 50, 5) and b[1].dtype == np.int64
    for got in (a, b):
        assert compare_detections(ref[0], ref[1], got[0], got[1], score_thr=0.1).ok
    assert compare_detections(a[0], a[1], b[0], b[1], score_thr=0.1).ok     # onnxruntime == tinyrt
