"""Issue 21 (hardening, round two), the graph: items 6 (functions calling functions twice a level expand
exponentially), 7 (passes quadratic in the node count), 14 (a function named like a standard op replaced
it). The load-time complexity checks are generous (a shared machine) and marked slow; the figures of the
issue's must-show are measured with ``python -m tests.fuzz.scale`` (docs/limits.md)."""
import os
import time

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper

import tinyrt
from bounded import check_bounded
from hardening_models import model, vi
from fuzz import scale
from fuzz.semantic import doubling_functions


# --- item 6 -----------------------------------------------------------------------------------------------

def test_functions_that_expand_a_little_still_load_and_run():
    data = doubling_functions(6)  # 64 Relus
    x = np.array([-1.0, 2.0], np.float32)
    np.testing.assert_array_equal(tinyrt.InferenceSession(data).run(None, {"x": x})[0], [0.0, 2.0])


@pytest.mark.parametrize("depth", [21, 41])
def test_functions_that_expand_exponentially_are_refused_quickly(depth):
    # depth 21 took over 120 s, depth 41 3.8 GB then SIGABRT
    check_bounded("""
        import sys, tinyrt
        sys.path.insert(0, "tests")
        from fuzz.semantic import doubling_functions
        try:
            tinyrt.InferenceSession(doubling_functions(%d))
            raise SystemExit("loaded")
        except tinyrt.ModelError as e:
            assert "expand to more than" in str(e), e
        """ % depth, timeout=90, memory_mb=1024)


# --- item 14 ----------------------------------------------------------------------------------------------

def test_a_function_never_shadows_a_standard_op():
    f = helper.make_function("", "Relu", ["x"], ["y"], [helper.make_node("Neg", ["x"], ["y"])],
                             [helper.make_opsetid("", 13)])
    data = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [2])], [vi("y", None)], functions=[f])
    x = np.array([-1.0, 1.0], np.float32)
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(tinyrt.InferenceSession(data).run(None, {"x": x})[0], want)
    np.testing.assert_array_equal(want, [0.0, 1.0])


def test_a_function_of_the_default_domain_with_its_own_name_is_inlined():
    f = helper.make_function("", "MyNeg", ["x"], ["y"], [helper.make_node("Neg", ["x"], ["y"])],
                             [helper.make_opsetid("", 13)])
    data = model([helper.make_node("MyNeg", ["x"], ["y"])], [vi("x", [2])], [vi("y", None)], functions=[f])
    x = np.array([-1.0, 1.0], np.float32)
    np.testing.assert_array_equal(tinyrt.InferenceSession(data).run(None, {"x": x})[0], -x)


# --- item 7: loading is near-linear in the node count -----------------------------------------------------

def _cpu_seconds_to_load(data):
    start = time.process_time()
    tinyrt.InferenceSession(data)
    return time.process_time() - start


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["chain", "dead", "fan_out"])
def test_loading_is_near_linear_in_the_node_count(kind):
    make = getattr(scale, kind)
    op = "Identity" if kind == "chain" else "Relu"
    small = min(_cpu_seconds_to_load(make(5000, op)) for _ in range(2))
    big = _cpu_seconds_to_load(make(50000, op))
    # 10x the nodes: linear is 10x the time; quadratic (what it was: 12,000 Identities took 34 s) is 100x.
    # CPU time, not the wall clock, and a generous factor: other processes share this machine.
    assert big < 30 * small + 1.0, (small, big)


# The must-show: 100,000 chained Identity nodes and 100,000 dead nodes each load in under 5 s; a million tiny
# nodes in under 60 s and in bounded memory. CPU seconds (what other processes on a shared machine do not
# inflate); the figures are in docs/limits.md ("Load time").

@pytest.mark.parametrize("kind, op", [("chain", "Identity"), ("dead", "Relu")])
def test_100000_chained_identities_or_dead_nodes_load_in_under_5_seconds(kind, op):
    data = getattr(scale, kind)(100000, op)
    seconds = _cpu_seconds_to_load(data)
    assert seconds < 5.0, seconds  # 12,000 of them took 34 s (Identity) and 61 s (dead) before


# Memory a node costs at load: the string naming its output and the graph node, which is also the plan's step
# (about 170 bytes together: docs/limits.md); the file holds ~26 bytes a node, and its bytes are held while the
# nodes are built. The must-show: under 10x the file.
MAX_PEAK_PER_FILE_BYTE = 10    # peak RSS increase / file size: a million nodes measured 7.5x (11.9x before)
MAX_TRACED_PER_FILE_BYTE = 10  # tracemalloc's peak / file size: 100,000 nodes measured 7.8x (11.6x before)


@pytest.mark.slow
def test_a_million_tiny_nodes_load_in_under_a_minute_in_bounded_memory(tmp_path):
    if not os.path.exists("/proc/self/statm"):
        pytest.skip("measures the resident set through /proc")
    big, small = tmp_path / "million.onnx", tmp_path / "small.onnx"
    big.write_bytes(scale.chain(1000000, "Relu", name="x%d"))  # the file: 25.8 MB, as onnx.helper writes it
    small.write_bytes(scale.chain(100000, "Relu", name="x%d"))
    out = check_bounded("""
        import os, time, tracemalloc
        import tinyrt
        tinyrt.InferenceSession(%(small)r)  # imports and kernels first: the memory measured is the model's

        def resident():
            return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        before = resident()
        start = time.process_time()
        tinyrt.InferenceSession(%(big)r)
        seconds = time.process_time() - start
        # VmHWM: this process image's peak. (ru_maxrss would not do: Linux carries the peak of the image
        # before exec over, and that is the forked pytest process, as big as the test run has made it.)
        peak = [int(line.split()[1]) * 1024 for line in open("/proc/self/status")
                if line.startswith("VmHWM:")][0] - before
        tracemalloc.start()  # (it slows loading several times: on the smaller model)
        tinyrt.InferenceSession(%(small)r)
        traced = tracemalloc.get_traced_memory()[1]
        print(seconds, peak, traced)
        """ % {"big": str(big), "small": str(small)}, timeout=600, memory_mb=4096)
    seconds, peak, traced = [float(v) for v in out.split()]
    print("a million nodes: %.1f s of CPU, peak RSS +%.0f MB (%.1fx the file); 100,000: traced peak %.1fx"
          % (seconds, peak / 1e6, peak / big.stat().st_size, traced / small.stat().st_size))
    assert seconds < 60, seconds  # it took 49 s of CPU and +1.2 GB (47x the file) before issue 21
    assert peak < MAX_PEAK_PER_FILE_BYTE * big.stat().st_size, peak
    assert traced < MAX_TRACED_PER_FILE_BYTE * small.stat().st_size, traced


def test_long_chains_and_dead_nodes_give_the_right_results():
    x = np.array([-1.0], np.float32)
    for data in (scale.chain(3000), scale.dead(3000), scale.fan_out(300)):
        want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        np.testing.assert_array_equal(tinyrt.InferenceSession(data).run(None, {"x": x})[0], want)


def test_a_long_plan_runs_step_by_step_not_as_a_program_bigger_than_the_tensor_limit():
    """Compiling a program's source costs ~12 KB a step: 50,000 tiny nodes (a 1 MB file) took +580 MB on the
    second run. A plan longer than max(MIN_PROGRAM_STEPS, tensor limit / PROGRAM_STEP_BYTES) runs step by
    step (docs/limits.md); a shorter one still gets its program; the results are the same."""
    from tinyrt import program
    x = np.array([-1.0], np.float32)
    long_chain = scale.chain(program.MIN_PROGRAM_STEPS + 501, "Neg")  # a small file: a 16 MiB tensor limit
    short_chain = scale.chain(1000, "Neg")
    for data, programs, want in ((long_chain, False, -x), (short_chain, True, x)):
        sess = tinyrt.InferenceSession(data)
        for _ in range(3):  # the second run of a signature makes its program
            np.testing.assert_array_equal(sess.run(None, {"x": x})[0], want)
        assert (sess.plan.last_program is not None) == programs
    options = tinyrt.SessionOptions()
    options.max_tensor_bytes = (program.MIN_PROGRAM_STEPS + 600) * program.PROGRAM_STEP_BYTES  # room for it
    sess = tinyrt.InferenceSession(long_chain, options)
    for _ in range(3):
        sess.run(None, {"x": x})
    assert sess.plan.last_program is not None
