"""Errors that name the file, ``info`` on any ONNX file, datasets, ``--input`` tensors, ``bench`` and
``--version`` (issue 22). Models are built here with onnx's helper, or the classifier shipped in tinyrt."""
import json
import os
import shutil

import numpy as np
import pytest

import tinyrt
from oracle import assert_close
from tinyrt.cli import main
from tinyrt.cli.dataset import collect, save_names

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSIFIER = os.path.join(ROOT, "tinyrt", "data", "default_classifier.onnx")
SAMPLES = os.path.join(ROOT, "exporter", "pretrained", "samples")


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def matmul_model(path, external=False):
    rs = np.random.RandomState(0)
    w = numpy_helper.from_array(rs.standard_normal((4, 3)).astype(np.float32), "w")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Tanh", ["m"], ["y"])],
                          "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    if external:
        onnx.save_model(m, str(path), save_as_external_data=True, location="w.bin", size_threshold=0)
    else:
        onnx.save(m, str(path))
    return str(path)


def custom_op_model(path):
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["r"]),
                           helper.make_node("MyOp", ["r"], ["y"], domain="com.example", alpha=0.5)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.example", 1)])
    m.metadata_props.add(key="author", value="someone")
    onnx.save(m, str(path))
    return str(path)


# --- errors that name the file --------------------------------------------------------------------------------

def one_line_error(capsys, *argv):
    code, out, err = cli(capsys, *argv)
    assert code == 2 and err.count("\n") == 1 and err.startswith("tinyrt: error: ")
    return err


def test_truncated_model_named_in_one_line(tmp_path, capsys):
    data = open(CLASSIFIER, "rb").read()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[:3000])
    with pytest.raises(tinyrt.ModelError) as e:
        tinyrt.InferenceSession(str(path))
    text = str(e.value)
    assert text.startswith(str(path) + " is truncated at byte 3000 of ") and "\n" not in text
    assert "wire format:" in text                     # the expert's detail comes after
    err = one_line_error(capsys, "info", path)
    assert str(path) + " is truncated at byte 3000" in err
    with pytest.raises(tinyrt.ModelError, match="cut.onnx is truncated"):
        tinyrt.run(str(path), os.path.join(SAMPLES, "cls_star.jpg"))


def test_jpeg_named_onnx_is_not_an_onnx_model(tmp_path, capsys):
    path = tmp_path / "photo.onnx"
    shutil.copy(os.path.join(SAMPLES, "cls_star.jpg"), str(path))
    err = one_line_error(capsys, "run", path, os.path.join(SAMPLES, "cls_star.jpg"))
    assert "%s is not an ONNX model: it is a JPEG picture" % path in err
    with open(str(path), "rb") as f:
        with pytest.raises(tinyrt.ModelError, match="photo.onnx is not an ONNX model"):
            tinyrt.InferenceSession(f)


@pytest.mark.parametrize("data, says", [
    (b"<!DOCTYPE html><html>Not found</html>", "is not an ONNX model: it is a text file"),
    (b"PK\x03\x04" + b"\x00" * 40, "is not an ONNX model: it is a zip archive"),
    (b"\xff\xff\xff\xff", "is not an ONNX model: its first bytes are not an ONNX ModelProto"),
    (b"", "is empty (0 bytes)"),
])
def test_other_files(tmp_path, data, says):
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    with pytest.raises(tinyrt.ModelError) as e:
        tinyrt.InferenceSession(str(path))
    assert str(e.value).startswith(str(path) + " " + says)


def test_bytes_are_named_as_such():
    with pytest.raises(tinyrt.ModelError, match="^the model bytes is truncated at byte 100 of"):
        tinyrt.InferenceSession(open(CLASSIFIER, "rb").read()[:100])


def test_missing_external_data_named(tmp_path, capsys):
    path = matmul_model(tmp_path / "ext.onnx", external=True)
    os.remove(str(tmp_path / "w.bin"))
    err = one_line_error(capsys, "info", path)
    assert "%s: external data missing: " % path in err and "'w.bin'" in err


# --- info -------------------------------------------------------------------------------------------------------

def test_info_shows_a_model_tinyrt_cannot_run(tmp_path, capsys):
    path = custom_op_model(tmp_path / "custom.onnx")
    code, out, err = cli(capsys, "info", path)
    assert code == 0, err
    assert "opsets: ai.onnx 13, com.example 1" in out
    assert "inputs:\n  x " in out and "outputs:\n  y " in out and "author = someone" in out
    lines = out.splitlines()
    (mark,) = [l for l in lines if "com.example.MyOp" in l and "<-" in l]
    assert "tinyrt cannot run: unknown op MyOp in domain 'com.example'" in mark
    (relu,) = [l for l in lines if l.split()[:1] == ["Relu"]]
    assert "<-" not in relu
    assert "tinyrt cannot run this model (com.example.MyOp)" in out


def test_info_marks_an_unimplemented_attribute(tmp_path, capsys):
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], something=1)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path = str(tmp_path / "attr.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    code, out, _ = cli(capsys, "info", path)
    assert code == 0 and "attribute 'something' not implemented" in out


# --- datasets -------------------------------------------------------------------------------------------------

def make_dataset(root):
    """MMEdu's layout from the four sample pictures: test_set/<class>/..., two copies of each (same names)."""
    for name in ("circle", "square", "triangle", "star"):
        for split in ("test_set", "val_set"):
            folder = root / split / name
            folder.mkdir(parents=True)
            shutil.copy(os.path.join(SAMPLES, "cls_%s.jpg" % name), str(folder / "a.jpg"))
            shutil.copy(os.path.join(SAMPLES, "cls_%s.jpg" % ("star" if name == "circle" else name)),
                        str(folder / "b.jpg"))
    (root / "classes.txt").write_text("circle\nsquare\ntriangle\nstar\n")


def test_run_on_a_dataset_prints_accuracy(tmp_path, capsys):
    data = tmp_path / "shapes"
    make_dataset(data)
    model = tinyrt.load(CLASSIFIER)
    pictures = collect([str(data / "test_set")])
    assert len(pictures) == 8 and all(t == os.path.basename(os.path.dirname(p)) for p, t in pictures)
    right = sum(model.run(p)[0].name == t for p, t in pictures)          # the answers through the API
    save = tmp_path / "drawn"
    code, out, err = cli(capsys, "run", CLASSIFIER, data / "test_set", "--save", save)
    assert code == 0, err
    assert "accuracy: %d of 8 = %.2f%%" % (right, 100.0 * right / 8) in out
    assert "confusion (rows: the truth" in out
    assert "8 pictures in " in out and "pictures/s" in out and "ms/picture" in out
    assert len(os.listdir(str(save))) == 8                 # a.jpg in every class folder: none overwritten
    code, out, err = cli(capsys, "run", CLASSIFIER, data, "--json")   # the whole dataset, recursively
    assert code == 0 and len(json.loads(out)) == 16 and "accuracy: " in err and "16 pictures in" in err


def test_run_on_a_folder_of_other_names_has_no_accuracy(tmp_path, capsys):
    shutil.copytree(SAMPLES, str(tmp_path / "photos"))
    code, out, err = cli(capsys, "run", CLASSIFIER, tmp_path / "photos")
    assert code == 0, err
    assert "accuracy" not in out and "8 pictures in" in out


def test_save_names_are_unique():
    pictures = [("d/circle/a.jpg", "circle"), ("d/star/a.jpg", "star"), ("d/star/b.jpg", "star"), ("a.jpg", None)]
    names = save_names(pictures)
    assert len(set(names)) == 4 and names[2] == "b.jpg"


# --- tensors, bench, version ----------------------------------------------------------------------------------

def test_run_input_npy_on_a_non_picture_model(tmp_path, capsys):
    path = matmul_model(tmp_path / "mm.onnx")
    x = np.random.RandomState(1).standard_normal((2, 4)).astype(np.float32)
    np.save(str(tmp_path / "x.npy"), x)
    want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    for spec in (tmp_path / "x.npy", "x=%s" % (tmp_path / "x.npy")):
        out_file = tmp_path / "y.npz"
        code, out, err = cli(capsys, "run", path, "--input", spec, "--out", out_file)
        assert code == 0, err
        assert "y: float32 [2, 3]" in out
        got = np.load(str(out_file))["y"]
        assert_close(got, want)
    np.savez(str(tmp_path / "feeds.npz"), x=x)
    code, out, err = cli(capsys, "run", path, "--input", tmp_path / "feeds.npz", "--json")
    assert code == 0, err
    got = np.array(json.loads(out)["y"]["values"], np.float32)
    assert_close(got, want)
    code, out, err = cli(capsys, "run", path, "--input", "nope=%s" % (tmp_path / "x.npy"))
    assert code == 2 and "the model has no input 'nope' (its inputs: x)" in err


def test_bench_prints_both_runtimes(tmp_path, capsys):
    path = matmul_model(tmp_path / "mm.onnx")
    code, out, err = cli(capsys, "bench", path, "--runs", 3, "--threads", 1, "--kernels", "numpy")
    assert code == 0, err
    assert "3 runs each" in out and "1 thread," in out
    rows = {l.split()[0]: l.split() for l in out.splitlines()[2:]}
    assert set(rows) == {"tinyrt-numpy", "onnxruntime"}
    assert float(rows["tinyrt-numpy"][1]) > 0 and rows["onnxruntime"][4] == "1.00"
    with pytest.raises(SystemExit) as e:                     # argparse refuses it, not one quiet run
        main(["bench", path, "--runs", "0"])
    assert e.value.code == 2 and "--runs: 0: give at least 1" in capsys.readouterr().err


def test_bench_times_onnxruntime_alone_when_tinyrt_cannot_run(tmp_path, capsys):
    g = helper.make_graph([helper.make_node("Gelu", ["x"], ["y"], domain="com.microsoft")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path = str(tmp_path / "gelu.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                                  helper.make_opsetid("com.microsoft", 1)]), path)
    code, out, err = cli(capsys, "bench", path, "--runs", 2)
    # onnxruntime's own contrib op: onnxruntime runs it, tinyrt does not and says so
    assert code == 0, err
    assert "onnxruntime" in out and "tinyrt cannot run this model: " in out


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith("tinyrt %s (Python " % tinyrt.__version__)


# --- Chinese class names without a CJK font -------------------------------------------------------------------

def test_cjk_names_without_a_font_warn_once_naming_the_package(tmp_path, monkeypatch):
    pytest.importorskip("PIL")
    from tinyrt.vision import draw
    monkeypatch.setattr(draw, "_fc_list", lambda lang: [])           # a machine without any CJK font
    monkeypatch.setattr(draw, "CJK_FONTS", [])
    monkeypatch.setattr(draw, "_font_files", {})
    monkeypatch.setattr(draw, "_warned", [])
    monkeypatch.setattr(draw, "_given", [])
    monkeypatch.delenv("TINYRT_FONT", raising=False)
    model = tinyrt.load(CLASSIFIER, classes=["圆", "方", "三角", "星"])
    star = os.path.join(SAMPLES, "cls_star.jpg")
    with pytest.warns(UserWarning, match=r"no font with Chinese characters.*fonts-noto-cjk") as caught:
        model.run(star, save=str(tmp_path / "a.jpg"))
        model.run(star, save=str(tmp_path / "b.jpg"))
    assert len([w for w in caught if "Chinese" in str(w.message)]) == 1
    assert draw.label_text(model.run(star)[0], can_cjk=False).startswith("#3 ")
    with pytest.raises(tinyrt.InputError, match="no such font file"):
        model.run(star, save=str(tmp_path / "c.jpg"), font=str(tmp_path / "none.ttc"))
    latin = draw.find_font(cjk=False)
    if latin:                                                        # font= is then the one used
        model.run(star, save=str(tmp_path / "d.jpg"), font=latin)
        assert draw.find_font(cjk=True) == latin


def test_trace_png_needs_stop_at_and_leaves_no_stray_npy(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    star = os.path.join(SAMPLES, "cls_star.jpg")
    code, out, err = cli(capsys, "trace", CLASSIFIER, star, "--png", "maps.png")
    assert code == 2 and "add --stop-at NODE" in err and not os.listdir(str(tmp_path))
    code, out, err = cli(capsys, "trace", CLASSIFIER, star, "--stop-at", 1, "--png", "maps.png")
    assert code == 0, err
    assert os.listdir(str(tmp_path)) == ["maps.png"]


# --- smaller items ---------------------------------------------------------------------------------------------

def test_sample_script_given_a_folder_says_so(tmp_path):
    import subprocess
    import sys
    from exporter.sample_script import render
    shutil.copy(CLASSIFIER, str(tmp_path / "m.onnx"))
    (tmp_path / "m.py").write_text(render("m.onnx", "classification"))
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, str(tmp_path / "m.py"), SAMPLES], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True, env=env)
    assert out.returncode == 2 and "is a folder: give one picture file" in out.stderr
    assert "Traceback" not in out.stderr


def test_show_without_a_display_warns(monkeypatch):
    pytest.importorskip("PIL")
    import sys
    if not sys.platform.startswith("linux"):
        pytest.skip("the display check is Linux's (DISPLAY / WAYLAND_DISPLAY)")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.warns(UserWarning, match="no display"):
        tinyrt.run(CLASSIFIER, os.path.join(SAMPLES, "cls_star.jpg"), show=True)


def test_no_metadata_hint_leaves_out_the_size_of_a_fixed_input(tmp_path):
    proto = onnx.load(CLASSIFIER)
    del proto.metadata_props[:]
    path = str(tmp_path / "bare.onnx")
    onnx.save(proto, path)                                   # input fixed at [1, 3, 96, 96]
    with pytest.raises(tinyrt.InputError) as e:
        tinyrt.run(path, os.path.join(SAMPLES, "cls_star.jpg"))
    assert "size=224" not in str(e.value) and "--size" not in str(e.value) and "missing: mean=, std=" in str(e.value)
