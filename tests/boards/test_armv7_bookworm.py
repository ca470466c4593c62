"""tinyrt on an emulated Raspberry Pi OS 32-bit of today: Debian bookworm armhf under qemu-arm-static.

Python 3.11, numpy 1.24, Pillow 9.4 and Debian's numba 0.56.4 (llvmlite 0.39, LLVM 14), a copied
``tinyrt/`` and ``kernels/``. This is the board where numba's JIT, left to itself, aborted the interpreter
("LLVM ERROR: Symbol not found: __sync_fetch_and_add_4"): under qemu LLVM cannot name the CPU, and LLVM
14's plain ``arm`` triple then means ARMv4T, without ldrex/strex for the pool's atomics. kernels/_target.py
gives numba the features the Linux kernel reports instead (ARMv7, NEON, VFPv4): checked here. The models
and the node bundle run on each kernel path boardtest.BOARDS lists for the board, once per pytest session.
Failing to build the root fails the tests, with the reason.
"""
import pytest

from boardtest import PATHS, board_check, check_model, check_node_suite, model_names, node_suite

pytestmark = pytest.mark.slow
BOARD = "armhf-bookworm"


@pytest.fixture(scope="module", params=PATHS[BOARD])
def path(request):
    return request.param


@pytest.fixture(scope="module")
def bookworm(path):
    return board_check(BOARD, path)


def test_platform(bookworm):
    assert bookworm["machine"] == "armv7l"
    assert bookworm["python"].startswith("3.11."), bookworm["python"]
    assert bookworm["numpy"].startswith("1.24."), bookworm["numpy"]
    assert bookworm["numba"] == "0.56.4", "Debian bookworm's python3-numba is missing from the root"


def test_session_path(bookworm, path):
    """Every session ran on the path asked for (on a numba run: the kernels' target check let them load)."""
    assert {m["kernels"] for m in bookworm["models"]} == {path}, bookworm["errors"]


def test_numba_target():
    """numba compiles there, and the kernels compile for ARMv7 with NEON and VFPv4 (lock-free atomics,
    fused multiply-add), as kernels/_target.py sets from the kernel's hwcaps (qemu's default CPU has them)
    where LLVM itself says only "generic"."""
    checked = board_check(BOARD, PATHS[BOARD][0])
    check = checked.get("numba_check")
    assert check and check["ok"], checked["errors"]
    target = check["target"]
    assert target["cpu"] == "generic" and target["configured"], target
    assert "+v7" in target["features"] and "+neon" in target["features"], target
    assert target["atomics"] and target["fma"], target


@pytest.mark.parametrize("name", model_names())
def test_model_matches_golden(bookworm, path, name):
    check_model(bookworm, name, path)


def test_every_model_ran(bookworm):
    assert not bookworm["errors"], "\n".join(bookworm["errors"])


def test_node_suite_agrees_with_x86(path):
    pytest.importorskip("onnx")
    check_node_suite(node_suite(BOARD, path), "1.24.", path)
