"""Shared helpers of the board tests (test_armv7.py, test_arm64.py): run board_check.py on a board, parse it.

Not a test module. The board runs take tens of seconds, so each test module runs the board script once
(a module-scoped fixture) and its tests read the parsed result.
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


def model_names():
    return sorted(make_models.FEEDS)


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


def run_board_check(arch, env=None, extra_args=(), numba_check=False, xfail_on_sigsegv=None):
    """Run board_check.py on ``arch`` with every model and golden, the info check and the JPEG.
    Returns (parsed RESULT dict, Result). ``xfail_on_sigsegv``: a reason; a SIGSEGV then xfails the test."""
    board_root(arch)
    files = [os.path.join(make_models.MODELS, m) for m in model_names()]
    files += [make_models.golden_path(m) for m in model_names()] + [IMAGE]
    args = ["%s:%s" % (m, os.path.basename(make_models.golden_path(m))) for m in model_names()]
    args += ["--info", INFO_MODEL, "--image", os.path.basename(IMAGE)] + list(extra_args)
    if numba_check:
        args.append("--numba-check")
    result = run_on_board.run(arch, os.path.join(HERE, "board_check.py"), files, args, env=env)
    sys.stdout.write(result.stdout)  # shown by pytest when a test fails (and with -s)
    sys.stderr.write(result.stderr)
    print("board_check.py on %s: exit %d after %.1f s" % (arch, result.returncode, result.seconds))
    if result.returncode == -11 and xfail_on_sigsegv:
        pytest.xfail(xfail_on_sigsegv)
    lines = [l for l in result.stdout.splitlines() if l.startswith("RESULT ")]
    if not lines:
        pytest.fail("board_check.py on %s printed no RESULT line (exit %d):\n%s\n%s"
                    % (arch, result.returncode, result.stdout[-3000:], result.stderr[-3000:]), pytrace=False)
    return json.loads(lines[-1][len("RESULT "):]), result


def by_model(parsed):
    return {m["model"]: m for m in parsed["models"]}


def check_model(parsed, name):
    """The assertions every board makes for one model of the set."""
    errors = [e for e in parsed["errors"] if e.startswith(name + ":")]
    assert not errors, "\n".join(errors)
    m = by_model(parsed).get(name)
    assert m is not None, "%s did not run on the board" % name
    assert m["sha256_ok"], "%s differs from the file its golden was made from: run tests/boards/make_models.py" % name
    assert m["max_rel_diff"] <= TOLERANCE, "%s: largest relative difference %.2e > %g" % (
        name, m["max_rel_diff"], TOLERANCE)
    return m
