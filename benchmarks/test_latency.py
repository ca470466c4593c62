"""pytest-benchmark suite: ``pytest benchmarks`` (not part of the default ``pytest`` run: testpaths = tests).

One benchmark per (model, threads, runtime), grouped by model and thread count: pytest-benchmark prints
one table per group with the runtimes side by side (each figure's ratio to the group's best in brackets).
The models are exported on first use (benchmarks/models.py). Compare runs with pytest-benchmark's own tools
(--benchmark-autosave, pytest-benchmark compare).
"""
import pytest

from benchmarks import models, runtimes

pytest.importorskip("pytest_benchmark")


@pytest.mark.parametrize("runtime", runtimes.RUNTIMES)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("model", list(models.MODELS))
def test_latency(benchmark, model, threads, runtime):
    if runtime == "tinyrt-numba":
        pytest.importorskip("numba")
    if runtime in ("onnxruntime",):
        pytest.importorskip("onnxruntime")
    if runtime == "torch":
        pytest.importorskip("torch")
    models.ensure(model)
    run = runtimes.make(runtime, model, threads)
    run()  # compile / warm up outside the timing
    runtimes.settle()  # the previous test's thread pools may still be spinning
    benchmark.group = "%s, %d thread%s" % (model, threads, "s" if threads > 1 else "")
    benchmark.pedantic(run, rounds=10, iterations=1, warmup_rounds=2)
