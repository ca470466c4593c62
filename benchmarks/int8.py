"""``python -m benchmarks.int8``: a QDQ int8 model's latency beside its float parent's, on each tinyrt path.

    python -m benchmarks.int8                         MobileNetV2-224, 1 thread, wall time
    python -m benchmarks.int8 --cpu --repeats 60      process CPU time (steadier on a loaded machine)

The int8 model is the benchmark's MobileNetV2-224 quantized by onnxruntime's own tool the way
``exporter --int8`` does it (QDQ, int8 weights per channel with reduce_range, uint8 activations), calibrated
on 8 inputs like ``models.input_for``'s; it is made once and kept beside the benchmark models. Runs are
interleaved in one process (one run of each in turn, the order rotated every round, each timed run after
an untimed one), medians taken; onnxruntime's pair is given for reference.
"""
import argparse
import os
import sys
import time

import numpy as np

from . import models, runtimes

RUNS = [("tinyrt-numba", "float"), ("tinyrt-numba", "int8"), ("tinyrt-numpy", "float"), ("tinyrt-numpy", "int8"),
        ("onnxruntime", "float"), ("onnxruntime", "int8")]


def int8_path(model):
    """The QDQ int8 copy of benchmark model ``model``, made on first use."""
    path = os.path.join(models.folder(), model + "-int8-qdq.onnx")
    if os.path.exists(path):
        return path
    from onnxruntime import quantization as q
    src = models.ensure(model, lambda m: print(m, file=sys.stderr))
    x = models.input_for(model)
    rs = np.random.RandomState(1)
    batches = [((rs.rand(*x.shape) - 0.5) * 4).astype(np.float32) for _ in range(8)]

    class Reader:
        items = iter([{"input": b} for b in batches])

        def get_next(self):
            return next(self.items, None)
    tmp = path + ".part"
    q.quantize_static(src, tmp, Reader(), quant_format=q.QuantFormat.QDQ, per_channel=True,
                      activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8, reduce_range=True)
    os.replace(tmp, path)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.int8", description=__doc__.split("\n")[0])
    p.add_argument("--model", default="MobileNetV2-224")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--cpu", action="store_true", help="CPU time of this process instead of wall time")
    args = p.parse_args(argv)
    clock = time.process_time if args.cpu else time.perf_counter
    paths = {"float": models.ensure(args.model, lambda m: print(m, file=sys.stderr)), "int8": int8_path(args.model)}
    x = models.input_for(args.model)
    fns = {}
    for runtime, kind in RUNS:
        fns[runtime, kind] = runtimes.session_runner(runtime, paths[kind], x, args.threads)
        fns[runtime, kind]()
    keys = list(fns)
    times = {k: [] for k in keys}
    for r in range(args.repeats):
        for key in keys[r % len(keys):] + keys[:r % len(keys)]:
            fns[key]()
            t0 = clock()
            fns[key]()
            times[key].append(clock() - t0)
    med = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
    print("%s, %d thread(s), median of %d interleaved runs (%s)" % (args.model, args.threads, args.repeats,
                                                                     "CPU time" if args.cpu else "wall time"))
    for runtime in dict.fromkeys(r for r, _ in RUNS):
        f, i = med[runtime, "float"], med[runtime, "int8"]
        print("  %-13s float %7.2f ms   int8 %7.2f ms   int8 / float %.2f" % (runtime, f, i, i / f))


if __name__ == "__main__":
    main()
