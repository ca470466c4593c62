"""tinyrt on an emulated RISC-V board: Debian trixie riscv64 under qemu-riscv64-static.

Python 3.13, numpy 2.2 and Pillow 11 from Debian (no numba there, no onnxruntime wheel), a copied
``tinyrt/`` and ``kernels/``. Trixie has a merged /usr: make_root.sh links ``lib -> usr/lib`` so that qemu
finds the loader. The sessions run on the numpy path (numba does not import there: the fallback is part of
the test), once per pytest session (boardtest.py). The board models are compared with the x86 goldens,
the node bundle with x86. Failing to build the root fails the tests, with the reason.
"""
import pytest

from boardtest import INFO_MODEL, PATHS, board_check, check_model, check_node_suite, model_names, node_suite

pytestmark = pytest.mark.slow
BOARD = "riscv64"


@pytest.fixture(scope="module", params=PATHS[BOARD])
def path(request):
    return request.param  # numpy only: numba does not import there


@pytest.fixture(scope="module")
def riscv(path):
    return board_check(BOARD, path)


def test_platform(riscv):
    assert riscv["machine"] == "riscv64"
    assert riscv["python"].startswith("3.13."), riscv["python"]
    assert riscv["numpy"].startswith("2.2."), riscv["numpy"]
    assert riscv["numba"] is None


def test_session_path(riscv, path):
    assert path == "numpy"
    assert {m["kernels"] for m in riscv["models"]} == {"numpy"}, riscv["errors"]


@pytest.mark.parametrize("name", model_names())
def test_model_matches_golden(riscv, path, name):
    check_model(riscv, name, path)


def test_every_model_ran(riscv):
    assert not riscv["errors"], "\n".join(riscv["errors"])


def test_info_command(riscv):
    info = riscv["info"][INFO_MODEL]
    assert info["exit"] == 0, info["stdout"]
    assert "[1, 3, 224, 224]" in info["stdout"]


def test_node_suite_agrees_with_x86(path):
    pytest.importorskip("onnx")
    check_node_suite(node_suite(BOARD, path), "2.2.", path)
