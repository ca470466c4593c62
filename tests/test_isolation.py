"""tinyrt needs nothing but the standard library and numpy, at import time and at run time.

The test process exports a MobileNetV2 (224x224, opset 13) with torch and computes onnxruntime's outputs;
a fresh interpreter then runs the model with tinyrt while an import hook makes onnx, protobuf, onnxruntime,
numba, torch and PIL unimportable, checks the result against onnxruntime's, and checks that none of those
modules was loaded. TINYRT_KERNELS=numpy forces the numpy kernels (numba would be blocked anyway).
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCKED = ("onnx", "google.protobuf", "onnxruntime", "numba", "torch", "PIL")

SCRIPT = textwrap.dedent(r'''
    import importlib.abc
    import json
    import sys

    BLOCKED = %(blocked)r
    REPO, MODEL, INPUT, EXPECTED = sys.argv[1:5]


    def blocked(name):
        return any(name == b or name.startswith(b + ".") for b in BLOCKED)


    already = sorted(m for m in sys.modules if blocked(m))
    assert not already, "loaded before the test started: %%s" %% already


    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if blocked(name):
                raise ImportError("%%s is blocked: tinyrt must not need it" %% name)
            return None


    sys.meta_path.insert(0, Blocker())
    sys.path.insert(0, REPO)

    import numpy as np
    import tinyrt

    assert tinyrt.__file__.startswith(REPO), "imported %%s, not the checkout" %% tinyrt.__file__
    x = np.load(INPUT)
    expected = np.load(EXPECTED)
    with open(MODEL, "rb") as f:
        data = f.read()
    results = {}
    for how, source in (("path", MODEL), ("bytes", data)):
        sess = tinyrt.InferenceSession(source)
        name = sess.get_inputs()[0].name
        got = sess.run(None, {name: x})[0]
        assert got.shape == expected.shape and got.dtype == expected.dtype, (got.shape, got.dtype)
        diff = float(np.max(np.abs(got.astype(np.float64) - expected)))
        limit = 1e-4 * max(1.0, float(np.max(np.abs(expected))))
        assert diff <= limit, "%%s: max diff %%g > %%g" %% (how, diff, limit)
        results[how] = diff
    loaded = sorted(m for m in sys.modules if blocked(m))
    assert not loaded, "tinyrt loaded %%s" %% loaded
    print(json.dumps({"max_diff": results, "tinyrt": tinyrt.__file__}))
''') % {"blocked": BLOCKED}


@pytest.fixture(scope="module")
def mobilenet_files(tmp_path_factory):
    """model.onnx (MobileNetV2 1.0, 224x224, opset 13), input.npy and onnxruntime's expected.npy."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch_models as tm
    return tm.reference_files(tmp_path_factory.mktemp("isolation"), opset=13, seed=3, input_seed=7,
                              num_classes=1000, width_mult=1.0, size=224)


def test_runs_with_only_numpy(mobilenet_files):
    d = mobilenet_files
    script = d / "isolated.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, TINYRT_KERNELS="numpy")
    env.pop("PYTHONPATH", None)
    # -I: isolated mode (no PYTHON* variables, no user site, no script dir on sys.path); run from the tmp dir.
    proc = subprocess.run([sys.executable, "-I", str(script), REPO, str(d / "model.onnx"), str(d / "input.npy"),
                           str(d / "expected.npy")], cwd=str(d), env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, "isolated run failed:\n%s\n%s" % (proc.stdout, proc.stderr)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["tinyrt"].startswith(REPO)


def test_blocker_really_blocks(tmp_path):
    """The import hook of the isolated script does refuse the blocked packages (so a pass means something)."""
    probe = SCRIPT.split("sys.meta_path.insert(0, Blocker())")[0] + textwrap.dedent('''
        sys.meta_path.insert(0, Blocker())
        for name in BLOCKED + ("onnx.helper",):
            try:
                __import__(name)
            except ImportError:
                pass
            else:
                raise SystemExit("%s was importable" % name)
        print("ok")
    ''')
    script = tmp_path / "probe.py"
    script.write_text(probe)
    proc = subprocess.run([sys.executable, "-I", str(script), REPO, "m", "i", "e"], cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr
