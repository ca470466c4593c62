"""``python -m exporter``: help, the convert end to end (the issue's must-show: an mmcls MobileNetV2 checkpoint
with 2 classes, converted from the command line, equals the original network), errors, the demo."""
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mmcls_reference as ref_impl  # noqa: E402
import tinyrt  # noqa: E402
from exporter.cli import main  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::exporter.classes.ExporterWarning")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONIOENCODING="utf-8")
    out = subprocess.run([sys.executable, "-m", "exporter"] + [str(a) for a in args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, cwd=str(cwd) if cwd else None)
    return out.returncode, out.stdout.decode("utf-8"), out.stderr.decode("utf-8")


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit) as e:
        main(["convert", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for needle in ("--backbone", "--checkpoint", "--classes", "--out", "--opset", "--dynamic-batch", "--dynamo",
                   "--score-thr", "--iou-thr", "--max-per-image", "examples:", "MobileNet", "SSD_Lite", "LeNet"):
        assert needle in text, needle
    assert main([]) == 2


@pytest.mark.slow  # a MobileNetV2 converted twice: 90 s on a busy machine
def test_mmcls_checkpoint_from_the_command_line(tmp_path):
    net = ref_impl.randomize_(ref_impl.reference_mobilenet_v2(2), seed=11)
    torch.save({"meta": {"CLASSES": ["cat", "dog"]}, "state_dict": net.state_dict()}, str(tmp_path / "ck.pth"))
    (tmp_path / "classes.txt").write_text("cat\ndog\n", encoding="utf-8")
    code, out, err = cli("convert", "--backbone", "MobileNet", "--checkpoint", "ck.pth", "--classes", "classes.txt",
                         "--out", "out/catdog.onnx", cwd=tmp_path)
    assert code == 0, err
    assert "tinyrt" in out and "onnxruntime" in out and "MISMATCH" not in out
    assert sorted(os.listdir(str(tmp_path / "out"))) == ["catdog.onnx", "catdog.py"]
    path = str(tmp_path / "out" / "catdog.onnx")
    x = np.random.RandomState(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    a = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    b = tinyrt.InferenceSession(path).run(None, {"input": x})[0]
    assert a.shape == (1, 2)
    assert np.abs(a - ref).max() <= 1e-4 and np.abs(b - ref).max() <= 1e-4
    meta = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    assert meta["CLASSES"] == "cat|dog" and meta["tinyrt.input_size"] == "[224,224]"


def test_errors_are_one_line(tmp_path):
    code, out, err = cli("convert", "--backbone", "MobileNet", "--checkpoint", "missing.pth", "--out", "o.onnx",
                         cwd=tmp_path)
    assert code == 2 and err.strip().count("\n") == 0 and err.startswith("error: checkpoint missing.pth")
    assert "Traceback" not in err
    code, _, err = cli("convert", "--backbone", "MobileNet", "--out", "o.onnx", "--backend", "NCNN", cwd=tmp_path)
    assert code == 2 and "ONNX" in err and "NCNN" in err and err.strip().count("\n") == 0
    code, _, err = cli("--debug", "convert", "--backbone", "Nope", "--out", "o.onnx", cwd=tmp_path)
    assert code != 0 and "Traceback" in err and "unknown backbone" in err
    assert os.listdir(str(tmp_path)) == []


def test_wrong_shape_names_the_key(tmp_path, capsys):
    net = ref_impl.randomize_(ref_impl.reference_mobilenet_v2(3, 0.35), seed=1)
    torch.save({"state_dict": net.state_dict()}, str(tmp_path / "ck.pth"))
    code = main(["convert", "--backbone", "MobileNet", "--checkpoint", str(tmp_path / "ck.pth"),
                 "--out", str(tmp_path / "m.onnx"), "--num-classes", "3"])   # width 1.0, checkpoint has 0.35
    err = capsys.readouterr().err
    assert code == 2 and "backbone.conv1.conv.weight [16, 3, 3, 3] in the checkpoint, [32, 3, 3, 3]" in err
    code = main(["convert", "--backbone", "MobileNet", "--checkpoint", str(tmp_path / "ck.pth"), "--width-mult",
                 "0.35", "--input-size", "64", "--opset", "11", "--quiet", "--out", str(tmp_path / "m.onnx")])
    assert code == 0 and capsys.readouterr().out.split() == [str(tmp_path / "m.onnx"), str(tmp_path / "m.py")]


@pytest.mark.slow  # the committed models converted and run: 70 s on a busy machine
def test_demo(tmp_path, capsys):
    from exporter.demo import run_demo
    assert run_demo(out_dir=str(tmp_path / "out"), repeats=1) == 0
    out = capsys.readouterr().out
    assert "speed" in out and "DIFFERS" not in out and "WRONG" not in out
    folder = tmp_path / "out" / "demo"
    assert {"shapes_cls.onnx", "shapes_det.onnx"} <= set(os.listdir(str(folder)))
    assert len(os.listdir(str(folder / "annotated"))) == 8
