"""Fresh install: a new virtual environment with only numpy, ``pip install <repo>``, and a torch-exported
MobileNetV2 run from outside the checkout, compared with onnxruntime's outputs computed here.

This is the Raspberry Pi story: nothing but numpy next to tinyrt. pip may reach PyPI (numpy, and setuptools
in pip's isolated build environment, which is not installed into the venv). Deselect with ``-m "not install"``.
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytestmark = pytest.mark.install

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALLOWED = {"numpy", "pip", "setuptools", "wheel", "tinyrt"}

RUN = textwrap.dedent(r'''
    import json, sys
    import numpy as np
    import tinyrt

    repo, model, inp, expected = sys.argv[1:5]
    x, want = np.load(inp), np.load(expected)
    sess = tinyrt.InferenceSession(model)
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype)
    diff = float(np.max(np.abs(got.astype(np.float64) - want)))
    assert diff <= 1e-4 * max(1.0, float(np.max(np.abs(want)))), "max diff %g" % diff
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("onnx", "onnxruntime", "torch", "numba", "PIL"))
    assert not heavy, heavy
    print(json.dumps({"tinyrt": tinyrt.__file__, "version": getattr(tinyrt, "__version__", None),
                      "max_diff": diff}))
''')


def _run(cmd, cwd, env, timeout=900):
    proc = subprocess.run([str(c) for c in cmd], cwd=str(cwd), env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, "%s failed (%d):\n%s\n%s" % (" ".join(map(str, cmd)), proc.returncode,
                                                          proc.stdout[-4000:], proc.stderr[-4000:])
    return proc.stdout


def _venv_python(venv):
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """model.onnx (MobileNetV2 0.75, 160x160, opset 11, torch), input.npy, expected.npy (onnxruntime)."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch_models as tm
    return tm.reference_files(tmp_path_factory.mktemp("install_ref"), opset=11, seed=4, input_seed=8,
                              num_classes=100, width_mult=0.75, size=160)


def test_fresh_venv_install(reference, tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "PYTHONNOUSERSITE")}
    env["PYTHONNOUSERSITE"] = "1"
    # Build from a clean copy, so pip's in-tree build (build/, *.egg-info) does not litter the checkout.
    src = tmp_path / "src"
    shutil.copytree(REPO, str(src), ignore=shutil.ignore_patterns(
        ".git", "__pycache__", "*.pyc", "*.egg-info", "build", "dist", ".pytest_cache", ".benchmarks", "out",
        ".venv"))
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], tmp_path, env)
    py = _venv_python(venv)
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = str(py.parent) + os.pathsep + env.get("PATH", "")
    pip = [py, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run(pip + ["install", "numpy"], tmp_path, env)
    _run(pip + ["install", src], tmp_path, env)

    listed = json.loads(_run(pip + ["list", "--format=json"], tmp_path, env))
    names = {p["name"].lower().replace("_", "-") for p in listed}
    assert "tinyrt" in names and "numpy" in names, listed
    assert names <= ALLOWED, "installed besides numpy and tinyrt: %s" % sorted(names - ALLOWED)
    # tinyrt's other folders install under names of their own, never as generic top-level packages
    site = _run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path, env).strip()
    top = set(os.listdir(site))
    assert {"tinyrt", "tinyrt_kernels", "tinyrt_exporter"} <= top, sorted(top)
    assert not {"kernels", "exporter"} & top, sorted(top)

    # Run from a directory outside the checkout so that the installed package is what gets imported.
    work = tmp_path / "work"
    work.mkdir()
    (work / "run.py").write_text(RUN)
    out = _run([py, "run.py", REPO, reference / "model.onnx", reference / "input.npy",
                reference / "expected.npy"], work, env, timeout=600)
    result = json.loads(out.strip().splitlines()[-1])
    installed = os.path.realpath(result["tinyrt"])
    assert installed.startswith(os.path.realpath(str(venv))), "imported %s, not the installed copy" % installed
    assert not installed.startswith(os.path.realpath(REPO))


COPIED = textwrap.dedent(r'''
    import json, sys
    import numpy as np
    import tinyrt

    x = np.load("input.npy")
    out, found = {}, {}
    for path in ("numba", "numpy"):
        options = tinyrt.SessionOptions()
        options.kernels = path
        sess = tinyrt.InferenceSession("model.onnx", options)
        found[path] = sess.kernels.name
        out[path] = sess.run(None, {"x": x})[0]
    diff = float(np.max(np.abs(out["numba"] - out["numpy"])))
    print(json.dumps({"tinyrt": tinyrt.__file__, "kernels": sys.modules["kernels"].__file__, "paths": found,
                      "diff": diff, "scale": float(np.max(np.abs(out["numpy"])))}))
''')


def test_copied_folders_beside_a_script(tmp_path):
    """The board route without a board: only tinyrt/ and kernels/ copied next to a script (no pip), run from
    there; tinyrt finds the kernels/ folder beside it and its numba path agrees with its numpy path.
    (tests/boards/ do the same under qemu with Debian's Python.)"""
    pytest.importorskip("numba")
    from onnx import helper
    from oracle import make_model
    work = tmp_path / "work"
    for name in ("tinyrt", "kernels"):
        shutil.copytree(os.path.join(REPO, name), str(work / name), ignore=shutil.ignore_patterns("__pycache__"))
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((8, 3, 3, 3)).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    x = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"])]
    (work / "model.onnx").write_bytes(make_model(nodes, {"x": x}, ["y"], {"w": w, "b": b}))
    np.save(str(work / "input.npy"), x)
    (work / "run.py").write_text(COPIED)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TINYRT_KERNELS")}
    result = json.loads(_run([sys.executable, "run.py"], work, env, timeout=600).strip().splitlines()[-1])
    for name in ("tinyrt", "kernels"):
        assert os.path.realpath(result[name]).startswith(os.path.realpath(str(work / name))), result
    assert result["paths"] == {"numba": "numba", "numpy": "numpy"}, result
    assert result["diff"] <= 1e-4 * max(1.0, result["scale"]), result
