"""Issue 21 (hardening, round two), what tinyrt and the exporter write: items 3 (a quote in --out was pasted
into the sample script's code), 4 (save= overwrote the pictures it read, two pictures of one name gave one
file, --out train.onnx replaced train.py), 16 (save= failures were raw ValueError/FileNotFoundError after
inference), 17 (half-written files: tinyrt trace --out, the exporter's .part files after kill -9; tinyrt
info allocating for dynamic dims)."""
import ast
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import tinyrt
from bounded import ROOT, check_bounded
from oracle import needs_torch
from hardening_models import model, vi

PIL = pytest.importorskip("PIL.Image")
MODEL = os.path.join(ROOT, "tinyrt", "data", "default_classifier.onnx")
INJECTION = 'a"+str(__import__("os").system("touch INJECTED"))+".onnx'


def pictures(folder, names):
    os.makedirs(str(folder), exist_ok=True)
    paths = []
    for i, name in enumerate(names):
        path = os.path.join(str(folder), name)
        PIL.fromarray(np.full((30, 40, 3), 40 * i, np.uint8)).save(path)
        paths.append(path)
    return paths


# --- item 3 ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [INJECTION, "it's.onnx", 'x"""y.onnx', "back\\slash\\N{x}.onnx", "猫.onnx",
                                  "a'''b\"\"\"c.onnx"])
def test_the_sample_script_never_runs_a_file_name(tmp_path, name):
    from exporter.sample_script import render
    text = render(name, "classification")
    tree = ast.parse(text)  # still Python
    model_line = [n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "MODEL"][0]
    assert isinstance(model_line.value.args[1], ast.Constant) and model_line.value.args[1].value == name
    script = tmp_path / "s.py"
    script.write_text(text, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), "--help"], cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "INJECTED").exists()


@pytest.mark.slow
def test_the_exporter_with_a_quote_in_out(tmp_path):
    needs_torch()
    import exporter
    out = tmp_path / INJECTION
    result = exporter.convert("LeNet", out_file=str(out), num_classes=2, log=None)
    done = subprocess.run([sys.executable, result.script_path, "--help"], cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "INJECTED").exists()


# --- item 4 ------------------------------------------------------------------------------------------------------

def test_save_into_the_pictures_own_folder_is_refused_before_running(tmp_path):
    paths = pictures(tmp_path / "photos", ["a.jpg", "b.png"])
    before = [open(p, "rb").read() for p in paths]
    for save in (str(tmp_path / "photos"), str(tmp_path / "photos") + "/"):
        with pytest.raises(tinyrt.InputError, match="overwrite the picture"):
            tinyrt.run(MODEL, str(tmp_path / "photos"), save=save)
    with pytest.raises(tinyrt.InputError, match="overwrite the picture"):
        tinyrt.run(MODEL, paths[0], save=paths[0])
    assert [open(p, "rb").read() for p in paths] == before


def test_two_pictures_of_one_name_give_two_files(tmp_path):
    a = pictures(tmp_path / "one", ["cat.jpg"])[0]
    b = pictures(tmp_path / "two", ["cat.jpg", "x.jpg"])[0]
    results = tinyrt.run(MODEL, [a, b], save=str(tmp_path / "out"))
    saved = [r.saved for r in results]
    assert len(set(saved)) == 2 and all(os.path.exists(p) for p in saved)
    assert sorted(os.listdir(str(tmp_path / "out"))) == ["cat.jpg", "cat_2.jpg"]


@pytest.mark.parametrize("save,message", [("out/x.unknown", "saves pictures as"), ("out/noext", None)])
def test_save_failures_are_input_errors_before_running(tmp_path, save, message):
    path = pictures(tmp_path, ["p.jpg"])[0]
    if message is None:  # no extension: a folder of that name
        r = tinyrt.run(MODEL, path, save=str(tmp_path / save))
        assert os.path.exists(r.saved)
        return
    with pytest.raises(tinyrt.InputError, match=message):
        tinyrt.run(MODEL, path, save=str(tmp_path / save))


def test_save_where_a_file_blocks_the_folder_is_an_input_error(tmp_path):
    path = pictures(tmp_path, ["p.jpg"])[0]
    (tmp_path / "blocker").write_text("a file where the folder would be")
    with pytest.raises(tinyrt.InputError, match="save="):
        tinyrt.run(MODEL, path, save=str(tmp_path / "blocker" / "x.jpg"))


@pytest.mark.slow
def test_the_exporter_never_replaces_an_unrelated_script(tmp_path):
    needs_torch()
    import exporter
    from exporter.errors import ExporterError
    mine = tmp_path / "train.py"
    mine.write_text("print('my training code')\n")
    with pytest.raises(ExporterError, match="--force"):
        exporter.convert("LeNet", out_file=str(tmp_path / "train.onnx"), num_classes=2, log=None)
    assert mine.read_text() == "print('my training code')\n" and not (tmp_path / "train.onnx").exists()
    exporter.convert("LeNet", out_file=str(tmp_path / "train.onnx"), num_classes=2, log=None, force=True)
    assert "tinyrt's exporter" in mine.read_text()
    # its own sample script is replaced without asking
    exporter.convert("LeNet", out_file=str(tmp_path / "train.onnx"), num_classes=2, log=None)


# --- item 17 -----------------------------------------------------------------------------------------------------

def test_trace_out_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    from tinyrt.cli import main
    out = tmp_path / "x.npy"
    out.write_bytes(b"the previous file")
    import numpy
    real_save = numpy.save

    def failing_save(f, value, *a, **k):
        f.write(b"\x93NUMPY half")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(numpy, "save", failing_save)
    assert main(["trace", MODEL, "--stop-at", "3", "--out", str(out)]) != 0  # the error is reported
    monkeypatch.setattr(numpy, "save", real_save)
    assert out.read_bytes() == b"the previous file"
    assert os.listdir(str(tmp_path)) == ["x.npy"]  # no temporary file left either
    assert main(["trace", MODEL, "--stop-at", "3", "--out", str(out)]) == 0
    assert isinstance(np.load(str(out)), np.ndarray)  # a whole .npy file


def test_info_on_many_dynamic_dims_does_not_allocate(tmp_path):
    from onnx import helper
    data = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", ["a", "b", "c", "d", "e", "f"])], [vi("y", None)])
    path = tmp_path / "dyn.onnx"
    path.write_bytes(data)
    out = check_bounded("""
        from tinyrt.cli import main
        raise SystemExit(main(["info", %r]))
        """ % str(path), timeout=60, memory_mb=1024)
    assert "MACs: not measured" in out


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="kill -9 and process ids")
def test_the_exporter_cleans_up_after_a_killed_run(tmp_path):
    needs_torch()
    code = ("import exporter, sys, time\n"
            "c = sys.modules['exporter.convert']\n"
            "real = c.verify\n"
            "def slow(*a, **k):\n"
            "    time.sleep(600)\n"
            "c.verify = slow\n"
            "exporter.convert('LeNet', out_file=%r, num_classes=2, log=None)\n" % str(tmp_path / "m.onnx"))
    env = dict(os.environ, PYTHONPATH=ROOT)
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)
    deadline = time.time() + 180
    while time.time() < deadline and child.poll() is None and \
            not [n for n in os.listdir(str(tmp_path)) if n.endswith(".part")]:
        time.sleep(0.5)
    time.sleep(1)
    child.send_signal(signal.SIGKILL)
    child.wait()
    left = [n for n in os.listdir(str(tmp_path)) if n.endswith(".part")]
    assert left and not (tmp_path / "m.onnx").exists()  # kill -9: the parts stay, never a partial .onnx
    import exporter
    exporter.convert("LeNet", out_file=str(tmp_path / "m.onnx"), num_classes=2, log=None)
    assert sorted(os.listdir(str(tmp_path))) == ["m.onnx", "m.py"]  # the dead run's parts are gone
