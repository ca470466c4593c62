"""pytest-benchmark suite: ``pytest benchmarks`` (not part of the default ``pytest`` run: testpaths = tests).

One benchmark per (model, runtime) at 1 thread; the models are exported on first use (benchmarks/models.py).
Compare runs with pytest-benchmark's own tools (--benchmark-autosave, pytest-benchmark compare).
"""
import pytest

from benchmarks import models, runtimes

pytest.importorskip("pytest_benchmark")


@pytest.mark.parametrize("runtime", runtimes.RUNTIMES)
@pytest.mark.parametrize("model", list(models.MODELS))
def test_latency(benchmark, model, runtime):
    if runtime == "tinyrt-numba":
        pytest.importorskip("numba")
    if runtime in ("onnxruntime",):
        pytest.importorskip("onnxruntime")
    if runtime == "torch":
        pytest.importorskip("torch")
    models.ensure(model)
    run = runtimes.make(runtime, model, 1)
    run()  # compile / warm up outside the timing
    benchmark.group = model
    benchmark.pedantic(run, rounds=10, iterations=1, warmup_rounds=2)
