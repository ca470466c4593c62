"""tinyrt on an emulated legacy Raspberry Pi OS 32-bit: Debian bullseye armhf under qemu-arm-static.

The board has Debian's Python 3.9.2, numpy 1.19.5, Pillow 8.1.2 and numba 0.52.0 (llvmlite 0.35, LLVM 9;
``sudo apt install python3-numba``) and nothing of ours but a copied ``tinyrt/`` and ``kernels/`` (no pip):
what a student gets on a Pi where onnxruntime has no wheel. The root is built once (a few minutes; 210 MB
on disk) and cached (see make_root.sh). Everything runs on each kernel path boardtest.BOARDS lists for the
board, once per pytest session, and the sessions must report that path; numba is checked to work there and
kernels/_target.py to find lock-free atomics for it. The board models are compared with the goldens
onnxruntime recorded on x86, and the node bundle with x86.
If the root cannot be built (no network, no qemu), these tests FAIL with the reason: they do not skip.
"""
import pytest

from boardtest import (IMAGE, INFO_MODEL, JPEG_RUNS, PATHS, board_check, check_model, check_node_suite,
                       model_names, node_suite)

pytestmark = pytest.mark.slow
BOARD = "armhf"


@pytest.fixture(scope="module", params=PATHS[BOARD])
def path(request):
    return request.param


@pytest.fixture(scope="module")
def armv7(path):
    return board_check(BOARD, path)


def test_platform(armv7):
    assert armv7["machine"] == "armv7l"
    assert armv7["python"].startswith("3.9."), armv7["python"]
    assert armv7["numpy"].startswith("1.19."), armv7["numpy"]
    assert armv7["PIL"] is not None, "Debian's python3-pil is missing from the root"
    assert armv7["numba"] == "0.52.0", "Debian bullseye's python3-numba is missing from the root"


def test_session_path(armv7, path):
    """Every session ran on the path asked for (on a numba run: the kernels loaded; had their target check
    refused them, tinyrt would have warned and run numpy, failing here)."""
    assert {m["kernels"] for m in armv7["models"]} == {path}, armv7["errors"]


def test_numba_there():
    """Debian's numba 0.52 compiles and runs a function there, and the kernels' target check finds the
    atomics lock-free (ARMv7 triple). numba 0.52 makes its code generator while ``import numba`` runs, so
    kernels/_target.py hands it the kernel's hwcaps (NEON, VFPv4) in NUMBA_CPU_FEATURES before that import
    (board_check.py imports numba as the kernels do): without them, LLVM's generic ARMv7 had no NEON and no
    fused multiply-add, and the numba path ran slower than numpy there."""
    checked = board_check(BOARD, PATHS[BOARD][0])
    check = checked.get("numba_check")
    assert check and check["ok"], checked["errors"]
    target = check["target"]
    assert target["atomics"], target
    assert target["cpu"] == "generic" and target["configured"], target
    assert "+v7" in target["features"] and "+neon" in target["features"] and target["fma"], target


@pytest.mark.parametrize("name", model_names())
def test_model_matches_golden(armv7, path, name):
    check_model(armv7, name, path)


def test_every_model_ran(armv7):
    assert not armv7["errors"], "\n".join(armv7["errors"])


def test_info_command(armv7):
    """``python -m tinyrt info`` on the MMEdu-layout file, on the board."""
    info = armv7["info"][INFO_MODEL]
    assert info["exit"] == 0, info["stdout"]
    out = info["stdout"]
    assert "input" in out and "[1, 3, 224, 224]" in out
    assert "probs" in out and "MODEL_INFO" in out and '"MMCls"' in out


def test_pillow_decodes_jpeg(armv7):
    """Debian's Pillow decodes a JPEG there (the input path of ``tinyrt run``)."""
    import os
    image = armv7["images"][os.path.basename(IMAGE)]
    assert image["size"] == [240, 180]


@pytest.mark.parametrize("spec", JPEG_RUNS)
def test_tinyrt_run_on_a_jpeg(armv7, spec):
    """``python -m tinyrt run MODEL shapes.jpg`` on the board (Debian's Pillow 8.1 decodes, resizes and
    draws) gives the labels, scores and boxes that ``tinyrt run`` gives here on x86."""
    import contextlib
    import io
    import json
    import os

    from boardtest import make_models
    from tinyrt.cli import main

    run = armv7["runs"][spec]
    assert run["exit"] == 0, run["stdout"] + run["stderr"]
    board = json.loads(run["stdout"])
    args = spec.split()
    args[0] = os.path.join(make_models.MODELS, args[0])
    args[1] = IMAGE
    if "--save" in args:
        del args[args.index("--save"):args.index("--save") + 2]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["run"] + args) == 0
    here = json.loads(out.getvalue())
    assert len(board) == len(here) == 1
    got, want = board[0]["predictions"], here[0]["predictions"]
    assert len(want) > 0
    assert [p["label"] for p in got] == [p["label"] for p in want]
    assert [p["name"] for p in got] == [p["name"] for p in want]
    for g, w in zip(got, want):
        assert abs(g["score"] - w["score"]) <= 1e-4
        if "box" in w:
            assert max(abs(a - b) for a, b in zip(g["box"], w["box"])) <= 0.05
    if "--save" in spec:
        assert board[0]["saved"] == "drawn/shapes.jpg"


def test_node_suite_agrees_with_x86(path):
    """Every node conformance case tinyrt runs on x86 (about 1,200, small arrays) gives the same outputs on
    the board: the ops' numpy calls work on numpy 1.19 and 32-bit armv7 (and, on a numba run, the kernels
    on numba 0.52: every Conv, pool, Softmax, NonMaxSuppression case the kernels take)."""
    pytest.importorskip("onnx")
    check_node_suite(node_suite(BOARD, path), "1.19.", path)
