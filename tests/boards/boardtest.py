"""Shared helpers of the board tests (test_armv7*.py, test_arm64.py, test_riscv64.py): run the board scripts
on an emulated board, once per pytest session, and parse what they print.

Not a test module. Which kernel path the boards run follows the host's pass, like every other test: the
default pass (``make test``'s first) runs the boards in NUMBA_BOARDS on the numba path, the
``TINYRT_KERNELS=numpy`` pass on the numpy path; so ``make test`` holds them to the x86 goldens on both
paths. The other boards run the numpy path on both passes (riscv64 has no numba; the armhf roots have
Debian's numba, whose kernels compile there since kernels/_target.py, but compiling all of them under
emulation took over an hour on the shared 2-core machine this was written on: they are not part of
``make test`` yet). Each board runs board_check.py (the models; the kernels' cache is kept beside the
root) and board_suite.py (the node bundle) once per session; every test reads those results.
"""
import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import make_models  # noqa: E402  (numpy only at import; torch/onnxruntime only when building)
import run_on_board  # noqa: E402

TOLERANCE = 1e-4
INFO_MODEL = "mmedu_mobilenet.onnx"
IMAGE = os.path.join(make_models.IMAGES, "shapes.jpg")
# Under emulation the first compile of every kernel takes many minutes (and more on a busy machine).
COMPILE_TIMEOUT = 3 * 3600

RUNS = {}     # (board, what) -> parsed RESULT, for this session (and the summary in conftest.py)
TIMES = {}    # (board, what) -> seconds the run took


def model_names():
    return sorted(make_models.FEEDS)


NUMBA_BOARDS = ("arm64",)  # boards whose sessions run the numba kernels on the default pass


def host_path():
    """The kernel path of this pytest session: "numpy" under TINYRT_KERNELS=numpy, else "numba"."""
    return "numpy" if os.environ.get("TINYRT_KERNELS", "").strip().lower() == "numpy" else "numba"


def board_path(arch):
    """The path ``arch``'s sessions must run on in this session (see the module docstring)."""
    return "numba" if host_path() == "numba" and arch in NUMBA_BOARDS else "numpy"


def board_env(arch):
    """The environment the board's Python gets: nothing on a numba board's default pass (auto: numba),
    else TINYRT_KERNELS=numpy; riscv64 gets nothing either (no numba there: the fallback is tested)."""
    return {} if board_path(arch) == "numba" or arch == "riscv64" else {"TINYRT_KERNELS": "numpy"}


def board_root(arch):
    """The cached root, built on first use. A build that fails (no network, no qemu) FAILS the test,
    loudly: a board test that skips itself would stop protecting the Python 3.9 / numpy 1.19 floor."""
    try:
        return run_on_board.root(arch)
    except run_on_board.BoardError as e:
        why = str(e)
    pytest.fail("the emulated %s board could not be set up, so the board tests cannot run:\n%s\n"
                "(it needs qemu-user-static and, the first time, Debian's package mirror; the root is "
                "cached under %s afterwards)" % (arch, why, run_on_board.cache_dir()), pytrace=False)


def _parse(arch, script, result):
    sys.stdout.write(result.stdout)  # shown by pytest when a test fails (and with -s)
    sys.stderr.write(result.stderr)
    print("%s on %s: exit %d after %.1f s" % (script, arch, result.returncode, result.seconds))
    lines = [l for l in result.stdout.splitlines() if l.startswith("RESULT ")]
    if not lines:
        pytest.fail("%s on %s printed no RESULT line (exit %d):\n%s\n%s"
                    % (script, arch, result.returncode, result.stdout[-3000:], result.stderr[-3000:]), pytrace=False)
    return json.loads(lines[-1][len("RESULT "):])


def run_board_check(arch, env=None, extra_args=(), numba_check=False, warmup=False):
    """Run board_check.py on ``arch`` with every model and golden, the info check and the JPEG.
    Returns (parsed RESULT dict, Result)."""
    board_root(arch)
    files = [os.path.join(make_models.MODELS, m) for m in model_names()]
    files += [make_models.golden_path(m) for m in model_names()] + [IMAGE]
    args = ["%s:%s" % (m, os.path.basename(make_models.golden_path(m))) for m in model_names()]
    args += ["--info", INFO_MODEL, "--image", os.path.basename(IMAGE)] + list(extra_args)
    if numba_check:
        args.append("--numba-check")
    if warmup:
        args.append("--warmup")
    result = run_on_board.run(arch, os.path.join(HERE, "board_check.py"), files, args, env=env,
                              timeout=COMPILE_TIMEOUT)
    return _parse(arch, "board_check.py", result), result


def board_check(arch, extra_args=(), numba_check=False):
    """board_check.py on ``arch`` on its path (``board_path``), once per session."""
    key = (arch, "models")
    if key not in RUNS:
        parsed, result = run_board_check(arch, board_env(arch), extra_args, numba_check)
        RUNS[key], TIMES[key] = parsed, result.seconds
    return RUNS[key]


def node_suite(arch, tmp_dir):
    """board_suite.py over the node bundle on ``arch``, on this session's path, once per session."""
    key = (arch, "nodes")
    if key not in RUNS:
        import node_bundle
        board_root(arch)
        bundle = os.path.join(str(tmp_dir), "node_bundle.npz")
        count, _ = node_bundle.build(bundle)
        assert count > 500, "only %d node cases in the bundle" % count
        result = run_on_board.run(arch, os.path.join(HERE, "board_suite.py"), [bundle], [os.path.basename(bundle)],
                                  env=board_env(arch), timeout=COMPILE_TIMEOUT)
        RUNS[key], TIMES[key] = _parse(arch, "board_suite.py", result), result.seconds
    return RUNS[key]


def by_model(parsed):
    return {m["model"]: m for m in parsed["models"]}


def check_model(arch, parsed, name):
    """The assertions every board makes for one model of the set."""
    errors = [e for e in parsed["errors"] if e.startswith(name + ":")]
    assert not errors, "\n".join(errors)
    m = by_model(parsed).get(name)
    assert m is not None, "%s did not run on the board" % name
    assert m["sha256_ok"], "%s differs from the file its golden was made from: run tests/boards/make_models.py" % name
    assert m["kernels"] == board_path(arch), "%s ran on the %s path, expected %s" % (
        name, m["kernels"], board_path(arch))
    assert m["max_rel_diff"] <= TOLERANCE, "%s: largest relative difference %.2e > %g" % (
        name, m["max_rel_diff"], TOLERANCE)
    return m


def check_node_suite(parsed, numpy_prefix, path):
    """The node bundle ran on ``path`` (every session) and every case agrees with x86."""
    assert parsed["numpy"].startswith(numpy_prefix), parsed["numpy"]
    assert set(parsed["kernels"]) == {path}, "node cases ran on %s, expected only %s" % (parsed["kernels"], path)
    failures = parsed["failures"]
    assert not failures, "%d node cases differ on %s from x86:\n%s" % (
        len(failures), parsed["machine"], "\n".join("%s: %s" % kv for kv in sorted(failures.items())))
