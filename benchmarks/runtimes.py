"""The runtimes compared: each a callable ``run()`` that computes one result for one model.

    tinyrt-numba   tinyrt with the numba kernels        tinyrt-numpy   tinyrt on numpy only
    onnxruntime    the oracle and the target            torch          torch eager, the module itself
    onnx-reference onnx's ReferenceEvaluator (pure Python + numpy), 1 thread only

Each also runs as a script in a fresh process (``python -m benchmarks.runtimes RUNTIME MODEL THREADS``)
for cold start and peak RSS: it prints ``cold=<s from process start to first result> rss=<peak MB>``.
``settle()`` waits until the thread pools of the runtime that ran last have stopped spinning.
"""
import time

T0 = time.perf_counter()  # as early as possible: cold start counts imports

import os  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402

RUNTIMES = ["tinyrt-numba", "tinyrt-numpy", "onnxruntime", "torch"]


def make(runtime, model, threads):
    """A function computing one result of ``model`` (a benchmarks.models name) on ``runtime``."""
    from . import models
    path = models.path_of(model)
    x = models.input_for(model)
    if runtime.startswith("tinyrt") or runtime == "onnxruntime":
        return session_runner(runtime, path, x, threads)
    if runtime == "torch":
        import torch
        torch.set_num_threads(threads)
        module = _torch_module(model)
        xt = torch.from_numpy(x)

        def run():
            torch.set_num_threads(threads)  # one process holds several thread counts: set it every run
            with torch.inference_mode():
                return module(xt)
        return run
    if runtime == "onnx-reference":
        from onnx.reference import ReferenceEvaluator
        from tinyrt.threads import blas_threads
        ref = ReferenceEvaluator(path)
        name = ref.input_names[0]

        def run():
            with blas_threads(1):
                return ref.run(None, {name: x})
        return run
    raise ValueError("unknown runtime %r" % runtime)


def session_runner(runtime, path, x, threads):
    """``run()`` for the model file ``path`` fed ``x``, on tinyrt (-numba or -numpy) or onnxruntime."""
    if runtime.startswith("tinyrt"):
        import tinyrt
        options = tinyrt.SessionOptions()
        options.intra_op_num_threads = threads
        options.kernels = runtime.split("-")[1]
        sess = tinyrt.InferenceSession(path, options)
        if sess.kernels.name != options.kernels:
            raise RuntimeError("%s asked for, %s running" % (runtime, sess.kernels.name))
    else:
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        sess = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda: sess.run(None, {name: x})


def settle(limit=0.5, window=0.005):
    """Sleep until this process's other threads stop using the CPU, at most ``limit`` s (off Linux: limit).

    Thread pools keep spinning after a run (OpenBLAS and onnxruntime for about 0.1 s, torch's OpenMP for
    about 10 ms, on a 2-core EPYC) and would take a core from whatever runs next.
    """
    t0 = time.perf_counter()
    before = _others_cpu_ns()
    while time.perf_counter() - t0 < limit:
        time.sleep(window)
        now = _others_cpu_ns()
        if before is not None and now is not None and now - before < 0.05 * window * 1e9:
            return  # under 5% of a core in the last window: idle
        before = now


def _others_cpu_ns():
    """CPU time (ns) used so far by this process's threads other than the calling one; None off Linux."""
    me = threading.get_native_id()
    total = None
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return None
    for tid in tids:
        try:
            with open("/proc/self/task/%s/schedstat" % tid) as f:
                ns = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # the thread has just ended (or no schedstat in this kernel)
        total = (total or 0) + (ns if int(tid) != me else 0)
    return total


def _torch_module(model):
    """The exporter's nn.Module for ``model`` (random weights; detection: network only, no post-processing)."""
    from . import models
    root = models.ROOT
    if root not in sys.path:
        sys.path.insert(0, root)
    from exporter.models import get_backbone
    backbone, size, classes, width = models.MODELS[model]
    if backbone.startswith("torch:"):
        import torch
        from . import torch_defs
        torch.manual_seed(0)
        if backbone == "torch:shufflenet_v2_x0_5":
            return torch_defs.shufflenet_v2_x0_5(classes).eval()
        raise RuntimeError("no torch module for %s (its post-processing is export-only)" % model)
    if backbone in ("chain",) or backbone.startswith("demo:"):
        raise RuntimeError("no torch module for %s" % model)
    return get_backbone(backbone).build(classes, width, size).eval()


def main(argv):
    runtime, model, threads = argv[0], argv[1], int(argv[2])
    run = make(runtime, model, threads)
    run()
    cold = time.perf_counter() - T0
    for _ in range(3):
        run()
    print("cold=%.4f rss=%.1f" % (cold, peak_rss_mb()))


def peak_rss_mb():
    """This process's peak resident set size. On Linux VmHWM: ru_maxrss would include the parent's
    memory at fork time (it survives exec), which makes every child look as big as the benchmark."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


if __name__ == "__main__":
    main(sys.argv[1:])
