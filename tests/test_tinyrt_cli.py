"""The ``tinyrt`` command on the exporter's MobileNetV2 and SSD-Lite and on the MMEdu-layout file:
run (text, --json, --save), info, profile, trace, check, and how errors look."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
pytest.importorskip("torch")

from oracle import assert_close  # noqa: E402
from tinyrt.cli import main  # noqa: E402
from test_api import check_drawn, expected_detections, ort_run, reference_input  # noqa: E402
from test_vision_models import CLASSES, DET_CLASSES, ROOT, models  # noqa: E402


@pytest.fixture(scope="module")
def m():
    return models()


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_run_classifier_json_matches_onnxruntime(m, capsys):
    code, out, err = cli(capsys, "run", m["cls"], m["jpeg"], "--json", "--topk", 3)
    assert code == 0, err
    (entry,) = json.loads(out)
    probs = ort_run(m["cls"], reference_input(m["jpeg"], 73, 64))[0][0]
    order = np.argsort(-probs, kind="stable")[:3]
    assert [p["label"] for p in entry["predictions"]] == order.tolist()
    assert [p["name"] for p in entry["predictions"]] == [CLASSES[i] for i in order]
    assert np.allclose([p["score"] for p in entry["predictions"]], probs[order], atol=1e-4)
    code, out, _ = cli(capsys, "run", m["cls"], m["jpeg"])
    assert out.startswith("%s (240x180): %s " % (m["jpeg"], CLASSES[order[0]]))


def test_run_detector_matches_onnxruntime_and_saves_boxes(m, capsys, tmp_path):
    code, out, err = cli(capsys, "run", m["det"], m["jpeg"], "--json", "--save", tmp_path / "drawn", "--score", "0.2")
    assert code == 0, err
    (entry,) = json.loads(out)
    assert (entry["score_threshold"], entry["score_threshold_from"]) == (0.2, "score=")
    _, labels, scores, boxes = expected_detections(m, 0.2)
    got = entry["predictions"]
    assert [p["label"] for p in got] == labels.tolist() and len(got) >= 1
    assert [p["name"] for p in got] == [DET_CLASSES[i] for i in labels]
    assert np.allclose([p["score"] for p in got], scores, atol=1e-4)
    assert np.allclose([p["box"] for p in got], boxes, atol=0.02)
    saved = tmp_path / "drawn" / "pic.jpg"
    assert entry["saved"] == str(saved) and saved.exists()
    before = np.asarray(Image.open(m["jpeg"]).convert("RGB")).astype(int)
    after = np.asarray(Image.open(str(saved)).convert("RGB")).astype(int)

    class P:
        def __init__(self, box):
            self.box = box
    check_drawn(before, after, [P(p["box"]) for p in got], exact=False)
    code, text, _ = cli(capsys, "run", m["det"], m["jpeg"], "--lang", "zh", "--json", "--score", "0.2")
    assert set(json.loads(text)[0]["predictions"][0]) == {"标签", "置信度", "预测结果", "坐标"}


def test_run_folder_with_progress(m, capsys, tmp_path):
    for name in ("a.jpg", "b.jpg", "c.png"):
        Image.open(m["jpeg"]).save(str(tmp_path / name))
    code, out, err = cli(capsys, "run", m["mmedu"], tmp_path, "--progress")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 4 and "a.jpg" in out and "c.png" in out
    assert lines[-1].startswith("3 pictures in ") and "pictures/s" in lines[-1]   # the folder is no class: no accuracy
    assert "3/3" in err and "[####" in err


def test_run_without_a_model_uses_the_embedded_classifier(capsys):
    samples = os.path.join(ROOT, "exporter", "pretrained", "samples")
    code, out, err = cli(capsys, "run", os.path.join(samples, "cls_star.jpg"), os.path.join(samples, "cls_circle.jpg"))
    assert code == 0 and "embedded default classifier" in err
    assert re.search(r"cls_star\.jpg .*: star (0\.9\d{3}|1\.0000) \(label 3\)", out), out
    assert re.search(r"cls_circle\.jpg .*: circle (0\.9\d{3}|1\.0000)", out), out


def test_run_errors(m, capsys, tmp_path):
    code, out, err = cli(capsys, "run")
    assert code == 2 and out == "" and "no picture given" in err and len(err.strip().splitlines()) == 1
    code, out, err = cli(capsys, "run", m["cls"], tmp_path / "missing.jpg")
    assert code == 2 and err.strip() == "tinyrt: error: no such picture: %s" % (tmp_path / "missing.jpg")
    proto = onnx.load(m["cls"])
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "bare.onnx"))
    code, out, err = cli(capsys, "run", tmp_path / "bare.onnx", m["jpeg"])
    assert code == 2 and "--mean" in err and "missing: mean=, std=" in err
    code, out, err = cli(capsys, "run", tmp_path / "bare.onnx", m["jpeg"], "--mean", "123.675,116.28,103.53",
                         "--std", "58.395,57.12,57.375", "--resize", 73, "--crop", 64, "--classes", "cat,dog,bird")
    assert code == 0 and re.search(r": (cat|dog|bird) 0\.\d{4} \(label \d\)", out)
    with pytest.raises(tinyrt_error()):
        main(["--debug", "run", m["cls"], str(tmp_path / "missing.jpg")])


def tinyrt_error():
    import tinyrt
    return tinyrt.TinyrtError


def test_command_line_entry_points(m):
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONIOENCODING="utf-8")
    out = subprocess.run([sys.executable, "-m", "tinyrt", "run"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, env=env)
    assert out.returncode == 2 and out.stderr.startswith("tinyrt: error: no picture given")
    assert "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "tinyrt", "run", m["mmedu"], m["jpeg"], "--lang", "zh", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "预测结果" in out.stdout


def _initializer_count(path):
    return sum(int(np.prod(t.dims)) for t in onnx.load(path).graph.initializer)


@pytest.mark.parametrize("name", ["cls", "det", "mmedu"])
def test_info(m, capsys, name):
    code, out, err = cli(capsys, "info", m[name])
    assert code == 0, err
    assert "inputs:\n  input" in out and "outputs:" in out
    assert "MODEL_INFO" in out
    assert re.search(r"ops in the file: \d+ nodes\n", out) and re.search(r"\n  Conv +\d+\n", out)
    params = int(re.search(r"parameters: [\d.]+ [kMG]? ?\((\d+)\)", out).group(1))
    assert params == _initializer_count(m[name])
    macs = int(re.search(r"MACs \(multiply-accumulates.*\): [\d.]+ [kMG] \((\d+)\)", out).group(1))
    assert macs > 1e5
    if name == "mmedu":
        assert "[1, 3, 224, 224]" in out and "probs" in out
        assert ("picture -> BaseDT/XEduHub recipe: RGB (no EXIF rotation) -> (x - mean) / std, mean [123.675, "
                "116.28, 103.53] std [58.395, 57.12, 57.375] on the float picture -> resize 256x256 (OpenCV "
                "INTER_LINEAR, aspect not kept) -> centre crop 224x224") in out
        assert "settings from MODEL_INFO" in out


def test_info_macs_of_a_single_conv(capsys, tmp_path):
    from onnx import TensorProto, helper
    w = helper.make_tensor("w", TensorProto.FLOAT, [8, 3, 3, 3], np.ones(8 * 27, np.float32))
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 10, 10])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 10, 10])], [w])
    path = str(tmp_path / "conv.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    code, out, _ = cli(capsys, "info", path)
    assert code == 0 and "(%d)" % (8 * 10 * 10 * 27) in out and "parameters: 216 (216)" in out
    assert "cannot prepare pictures from the metadata alone" in out


def test_mac_counts_are_read_from_the_op_records():
    from tinyrt.ops.registry import TINYRT_DOMAIN, mac_count, resolve
    x, w = np.ones((1, 4, 6, 6), np.float32), np.ones((8, 2, 3, 3), np.float32)
    y = np.ones((1, 8, 4, 4), np.float32)
    for op_type, domain in (("Conv", ""), ("FusedConv", TINYRT_DOMAIN)):
        assert mac_count(resolve(op_type, domain, 13), [x, w], [y], {}) == y.size * 2 * 9
    wt = np.ones((4, 3, 3, 3), np.float32)
    assert mac_count(resolve("ConvTranspose", "", 13), [x, wt], [y], {}) == x.size * 27
    a, out = np.ones((5, 7), np.float32), np.ones((5, 2), np.float32)
    assert mac_count(resolve("MatMul", "", 13), [a, None], [out], {}) == 10 * 7
    assert mac_count(resolve("Gemm", "", 13), [a, None], [out], {}) == 10 * 7
    assert mac_count(resolve("Gemm", "", 13), [a, None], [out], {"transA": 1}) == 10 * 5
    assert mac_count(resolve("Relu", "", 13), [a], [a], {}) == 0      # an op without a count
    assert mac_count(resolve("MatMul", "", 13), [a, a], [None], {}) == 0  # no array out


@pytest.mark.parametrize("name", ["cls", "det", "mmedu"])
def test_profile(m, capsys, name):
    code, out, err = cli(capsys, "profile", m[name], m["jpeg"], "--runs", 3, "--top", 5)
    assert code == 0, err
    assert "3 runs after 1 warm-up" in out and "per op type:" in out and "per node" in out
    op_rows = out.split("per op type:")[1].split("per node")[0].strip().splitlines()[1:]
    shares = [float(r.split()[-1].rstrip("%")) for r in op_rows]
    assert abs(sum(shares) - 100) < 1.0
    node_rows = out.split("per node")[1].strip().splitlines()[2:]
    assert len(node_rows) == 5


@pytest.mark.parametrize("name", ["cls", "det", "mmedu"])
def test_trace(m, capsys, name, tmp_path):
    code, out, err = cli(capsys, "trace", m[name], m["jpeg"])
    assert code == 0, err
    proto = onnx.load(m[name])
    shown = [n for n in proto.graph.node if n.op_type != "Constant"]
    rows = [l for l in out.splitlines() if re.match(r"\s+\d+  [A-Za-z]", l)]
    assert len(rows) == len(shown)
    assert [r.split()[1] for r in rows] == [n.op_type for n in shown]   # torch writes them in run order
    first = rows[0].split()
    assert first[1] == "Conv" and first[2].startswith("[1,3,")
    assert "outputs:" in out
    npy, png = tmp_path / "first.npy", tmp_path / "maps.png"
    code, out, err = cli(capsys, "trace", m[name], m["jpeg"], "--stop-at", shown[0].name, "--out", npy, "--png", png)
    assert code == 0, err and "stopped after #1 Conv" in out
    value = np.load(str(npy))
    assert value.ndim == 4 and value.shape[0] == 1
    grid = Image.open(str(png))
    assert grid.mode == "L" and min(grid.size) > value.shape[2]


def test_trace_stop_at_matches_onnxruntime(m, capsys, tmp_path):
    """The saved output of a node deep inside is what onnxruntime computes for that value."""
    proto = onnx.load(m["cls"])
    conv = [n for n in proto.graph.node if n.op_type == "Conv"][5]
    npy = tmp_path / "v.npy"
    code, out, err = cli(capsys, "trace", m["cls"], m["jpeg"], "--stop-at", conv.output[0], "--out", npy)
    assert code == 0, err
    proto.graph.output.append(onnx.helper.make_tensor_value_info(conv.output[0], onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run([conv.output[0]], {"input": reference_input(m["jpeg"], 73, 64)})[0]
    got = np.load(str(npy))
    assert_close(got, want)
    code, out, err = cli(capsys, "trace", m["cls"], m["jpeg"], "--stop-at", "no-such-node")
    assert code == 2 and "--stop-at no-such-node" in err


@pytest.mark.parametrize("name", ["cls", "det", "mmedu"])
def test_check(m, capsys, name):
    code, out, err = cli(capsys, "check", m[name], m["jpeg"])
    assert code == 0, out + err
    assert "against onnxruntime" in out and "tinyrt agrees with onnxruntime" in out
    names = ["dets", "labels"] if name == "det" else ["probs"]
    for n in names:
        assert re.search(r"^  %s +\[" % n, out, re.M)
    code, out, err = cli(capsys, "check", m[name])          # seeded noise
    assert code == 0 and "seeded random input" in out
