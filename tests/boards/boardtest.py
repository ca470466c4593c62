"""Shared helpers of the board tests (test_armv7*.py, test_arm64.py, test_riscv64.py): run the board scripts
on the emulated boards, once per pytest session, and parse what they print.

Not a test module. Each board runs the kernel paths BOARDS lists for it in every session, whatever the
host's TINYRT_KERNELS: board_check.py (the models) and, where the node bundle runs, board_suite.py, on the
numba path (nothing set: tinyrt's default where numba imports; the sessions must report ``numba``) and/or
with TINYRT_KERNELS=numpy (riscv64 gets nothing set: numba does not import there, and the fallback is what
runs). The kernels numba compiles are cached beside the root (run_on_board.py), so only the first session
after a change of kernels/ compiles them, and only those the runs use. Because one session covers every
path, ``make test``'s second pass (TINYRT_KERNELS=numpy) leaves the emulated boards out (Makefile:
BOARD_TESTS): it would repeat the same runs.

The runs are subprocesses (qemu), mostly waiting for one emulated core: when the first board test needs one,
every run the session's board tests need (conftest.py: ``plan``) starts, JOBS boards at a time (one per host
core by default; TINYRT_BOARD_JOBS), each board's runs in order (its first path first, the models before the
node cases, which then find the models' kernels compiled). Each test then waits for the run it reads.
``stop`` ends what is left.
"""
import json
import os
import re
import shutil
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor

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

# `tinyrt run` on the bullseye board: the MMEdu-layout classifier (top 3) and the SSD-Lite (boxes, drawn
# with --save), compared with `tinyrt run` here by test_armv7.py.
JPEG_RUNS = ["mmedu_mobilenet.onnx shapes.jpg --json --topk 3",
             "ssdlite_op11.onnx shapes.jpg --json --score 0.035 --save drawn/"]

# What each board runs, longest first: its kernel paths (in this order), whether the node bundle runs there
# too, board_check.py's extra arguments, and whether the first path's run also checks numba there
# (--numba-check: a small function compiled, the kernels' target). The armhf boards' numba path is not
# part of every session: compiling their kernels cold under emulation takes about 10 minutes a root on a
# quiet machine and over an hour on a busy one (README, "Running on a board"). TINYRT_BOARD_ARMHF_NUMBA=1
# puts it first on both armhf boards (`make test-armhf-numba`: the numba path only, one board at a time).
ARMHF_NUMBA = os.environ.get("TINYRT_BOARD_ARMHF_NUMBA", "").strip() not in ("", "0")
ARMHF_PATHS = ("numba", "numpy") if ARMHF_NUMBA else ("numpy",)
BOARDS = {
    "armhf": {"paths": ARMHF_PATHS, "nodes": True, "numba_check": True, "warmup": True,
              "args": [a for spec in JPEG_RUNS for a in ("--run", spec)]},
    "armhf-bookworm": {"paths": ARMHF_PATHS, "nodes": True, "numba_check": True, "warmup": True, "args": []},
    "arm64": {"paths": ("numba", "numpy"), "nodes": False, "numba_check": True, "args": []},
    "riscv64": {"paths": ("numpy",), "nodes": True, "numba_check": False, "args": []},
}
PATHS = {board: spec["paths"] for board, spec in BOARDS.items()}
JOBS = max(1, int(os.environ.get("TINYRT_BOARD_JOBS") or os.cpu_count() or 1))

RUNS = {}     # (board, what, path) -> parsed RESULT, for this session (and the summary in conftest.py)
TIMES = {}    # (board, what, path) -> seconds the run took


def model_names():
    return sorted(make_models.FEEDS)


def board_env(arch, path):
    """The environment the board's Python gets for ``path``: nothing for numba (tinyrt picks it where numba
    imports, as a user's default), TINYRT_KERNELS=numpy for numpy; riscv64 gets nothing either (numba does
    not import there: the fallback is what runs)."""
    return {} if path == "numba" or arch == "riscv64" else {"TINYRT_KERNELS": "numpy"}


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


def _parse(arch, script, result, log):
    log.append(result.stdout)
    log.append(result.stderr)
    log.append("%s on %s: exit %d after %.1f s\n" % (script, arch, result.returncode, result.seconds))
    lines = [l for l in result.stdout.splitlines() if l.startswith("RESULT ")]
    if not lines:
        pytest.fail("%s on %s printed no RESULT line (exit %d):\n%s\n%s"
                    % (script, arch, result.returncode, result.stdout[-3000:], result.stderr[-3000:]), pytrace=False)
    parsed = json.loads(lines[-1][len("RESULT "):])
    parsed["compiled"] = compiled_kernels(result.stderr)
    return parsed


def compiled_kernels(stderr):
    """[(kernel, seconds)] numba compiled in a run, from the lines kernels/_jit.py prints while compiling
    ("tinyrt:   conv.pointwise ... 12.3 s (40 s in all)"); empty when every kernel came from the cache."""
    found = []
    for line in stderr.splitlines():
        m = re.match(r"tinyrt:\s+(\S+)\s+\.\.\.\s*([0-9.]+) s ", line)
        if m:
            found.append((m.group(1), float(m.group(2))))
    return found


def run_board_check(arch, env=None, extra_args=(), numba_check=False, warmup=False, log=None):
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
    return _parse(arch, "board_check.py", result, [] if log is None else log), result


def _run(key, log):
    """One board run: (parsed RESULT, seconds)."""
    board, what, path = key
    if what == "models":
        spec = BOARDS[board]
        # ``warmup``: `tinyrt warmup` first on the numba path, so that every kernel compiles on the board's
        # numba, not only those its models run (an int8 Gemm's, ShuffleNet's channel copies)
        parsed, result = run_board_check(board, board_env(board, path), spec["args"],
                                         numba_check=spec["numba_check"] and path == spec["paths"][0],
                                         warmup=spec.get("warmup", False) and path == "numba", log=log)
        return parsed, result.seconds
    board_root(board)
    if _bundle.get("error"):
        raise _bundle["error"]
    result = run_on_board.run(board, os.path.join(HERE, "board_suite.py"), [_bundle["path"]],
                              [os.path.basename(_bundle["path"])], env=board_env(board, path),
                              timeout=COMPILE_TIMEOUT)
    return _parse(board, "board_suite.py", result, log), result.seconds


# The session's runs: planned at collection, started together on first need (see the module docstring).
_planned = set()     # keys (board, "models" | "nodes", path) the collected tests read
_submitted = set()
_outcomes = {}       # key -> (parsed or None, exception or None, log text)
_shown = set()
_done = threading.Condition()
_stopping = threading.Event()
_pool = []           # the ThreadPoolExecutor, once started
_bundle = {}         # "path" of the node bundle (built here, on x86) or the "error" building it raised


def plan(keys):
    """The runs this session's tests will read (conftest.py, after collection)."""
    _planned.update(keys)


def _chain(keys):
    """One board's runs, in order; each outcome is published as it ends."""
    for key in keys:
        log = []
        try:
            if _stopping.is_set():
                raise RuntimeError("the session ended before the %s run on %s started" % (key[1], key[0]))
            parsed, seconds = _run(key, log)
            outcome = (parsed, None, "".join(log))
            RUNS[key], TIMES[key] = parsed, seconds
        except BaseException as e:  # pytest.fail's exception too: the test that reads this run raises it
            outcome = (None, e, "".join(log))
        with _done:
            _outcomes[key] = outcome
            _done.notify_all()


def _submit(keys):
    keys = [k for k in keys if k not in _submitted]
    if not keys:
        return
    _submitted.update(keys)
    if any(what == "nodes" for _, what, _ in keys) and not _bundle:
        _build_bundle()
    if not _pool:
        _pool.append(ThreadPoolExecutor(max_workers=JOBS, thread_name_prefix="board"))
    order = list(BOARDS)
    for board in sorted({k[0] for k in keys}, key=order.index):
        paths = BOARDS[board]["paths"]
        chain = sorted((k for k in keys if k[0] == board), key=lambda k: (paths.index(k[2]), k[1] == "nodes"))
        _pool[0].submit(_chain, chain)


def _build_bundle():
    """The node bundle (every node case tinyrt runs on x86, with its outputs), built once, here (it runs
    tinyrt on x86: not beside the tests in another thread)."""
    try:
        import node_bundle
        folder = tempfile.mkdtemp(prefix="tinyrt-node-bundle-")
        _bundle["dir"] = folder
        path = os.path.join(folder, "node_bundle.npz")
        count, _ = node_bundle.build(path)
        assert count > 500, "only %d node cases in the bundle" % count
        _bundle["path"] = path
    except BaseException as e:
        _bundle["error"] = e


def result(board, what, path):
    """The parsed RESULT of ``board``'s ``what`` run ("models": board_check.py, "nodes": board_suite.py) on
    ``path``, once per session; the first call starts every planned run."""
    key = (board, what, path)
    _submit(sorted(_planned | {key}, key=str))
    with _done:
        while key not in _outcomes:
            _done.wait()
    parsed, error, log = _outcomes[key]
    if key not in _shown:
        _shown.add(key)
        sys.stdout.write(log)  # shown by pytest when the first test that reads the run fails (and with -s)
    if error is not None:
        raise error
    return parsed


def stop():
    """End the runs still going (pytest ends the session: -x, Ctrl-C, or all done) and the node bundle."""
    _stopping.set()
    run_on_board.stop_all()
    if _pool:
        _pool[0].shutdown(wait=True)
    if _bundle.get("dir"):
        shutil.rmtree(_bundle["dir"], ignore_errors=True)


def board_check(arch, path):
    """board_check.py's results on ``arch`` on ``path`` (every model, info, the JPEG, BOARDS' arguments)."""
    return result(arch, "models", path)


def node_suite(arch, path):
    """board_suite.py's results over the node bundle on ``arch`` on ``path``."""
    return result(arch, "nodes", path)


def by_model(parsed):
    return {m["model"]: m for m in parsed["models"]}


def check_model(parsed, name, path):
    """The assertions every board makes for one model of the set, run on ``path``."""
    errors = [e for e in parsed["errors"] if e.startswith(name + ":")]
    assert not errors, "\n".join(errors)
    m = by_model(parsed).get(name)
    assert m is not None, "%s did not run on the board" % name
    assert m["sha256_ok"], "%s differs from the file its golden was made from: run tests/boards/make_models.py" % name
    assert m["kernels"] == path, "%s ran on the %s path, expected %s" % (name, m["kernels"], path)
    assert m["max_rel_diff"] <= TOLERANCE, "%s on the %s path: largest relative difference %.2e > %g" % (
        name, path, m["max_rel_diff"], TOLERANCE)
    assert m["program_same"], "%s on the %s path: the compiled program's outputs differ from the first run's" % (
        name, path)
    return m


def check_node_suite(parsed, numpy_prefix, path):
    """The node bundle ran on ``path`` (every session) and every case agrees with x86."""
    assert parsed["numpy"].startswith(numpy_prefix), parsed["numpy"]
    assert set(parsed["kernels"]) == {path}, "node cases ran on %s, expected only %s" % (parsed["kernels"], path)
    failures = parsed["failures"]
    assert not failures, "%d node cases differ on %s (%s path) from x86:\n%s" % (
        len(failures), parsed["machine"], path, "\n".join("%s: %s" % kv for kv in sorted(failures.items())))
