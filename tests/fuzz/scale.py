"""Very large, very simple models written straight as protobuf bytes (faster than onnx.helper, which writes
the same bytes for a chain named ``x%d``): long chains, dead nodes, fan-out. For the near-linear load checks of
tests/test_hardening_graph.py and the measurements of docs/limits.md:

    python -m tests.fuzz.scale chain 100000 Identity     # load time and peak memory of one such model
    python -m tests.fuzz.scale dead 100000
    python -m tests.fuzz.scale chain 1000000 Relu --name x%d        # the issue's million nodes (25.8 MB)
    python -m tests.fuzz.scale chain 100000 Relu --name x%d --trace # tracemalloc's peak (slows loading)
"""
import os
import resource
import sys
import time

from tinyrt.proto.writer import _varint  # the one protobuf varint writer




def _field(number, payload):
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _node(op, inputs, outputs):
    body = b"".join(_field(1, i.encode()) for i in inputs) + b"".join(_field(2, o.encode()) for o in outputs)
    return _field(1, body + _field(4, op.encode()))  # GraphProto.node


def _value_info(name, dims):
    shape = b"".join(_field(1, _varint(1 << 3) + _varint(d)) for d in dims)  # Dimension.dim_value
    tensor = _varint(1 << 3) + _varint(1) + _field(2, shape)                    # elem_type FLOAT, shape
    return _field(1, name.encode()) + _field(2, _field(1, tensor))


def _model(nodes, inputs, outputs, opset=13):
    graph = b"".join(nodes) + _field(2, b"g")
    graph += b"".join(_field(11, _value_info(n, d)) for n, d in inputs)
    graph += b"".join(_field(12, _value_info(n, d)) for n, d in outputs)
    opset_id = _field(1, b"") + _varint(2 << 3) + _varint(opset)
    return _varint(1 << 3) + _varint(8) + _field(8, opset_id) + _field(7, graph)


def chain(n, op="Identity", name="%x"):
    """x -> op -> op -> ... (n nodes) -> y, on a float [1] input. ``name="x%d"`` names the values as the
    issue 21 measurements did with onnx.helper (a million Relus: a 25.8 MB file; "%x": 21.9 MB)."""
    names = ["x"] + [name % i for i in range(1, n)] + ["y"]
    nodes = [_node(op, [names[i]], [names[i + 1]]) for i in range(n)]
    return _model(nodes, [("x", [1])], [("y", [1])])


def dead(n, op="Relu", name="d%x"):
    """y = Relu(x), plus n nodes whose results nobody reads (each reads the one before: a dead chain)."""
    nodes = [_node("Relu", ["x"], ["y"])]
    names = ["x"] + [name % i for i in range(n)]
    nodes += [_node(op, [names[i]], [names[i + 1]]) for i in range(n)]
    return _model(nodes, [("x", [1])], [("y", [1])])


def fan_out(n, op="Relu", name="r%x"):
    """n nodes all reading x, summed by one Sum: wide rather than long."""
    nodes = [_node(op, ["x"], [name % i]) for i in range(n)]
    nodes.append(_node("Sum", [name % i for i in range(n)], ["y"]))
    return _model(nodes, [("x", [1])], [("y", [1])])


KINDS = {"chain": chain, "dead": dead, "fan_out": fan_out}


def _resident():
    """This process's resident set now, in bytes (Linux), or 0 where /proc does not say."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def measure(data, kernels=None, run=True, trace=False):
    """(seconds to load, CPU seconds to load, the peak RSS increase while loading in bytes, tracemalloc's
    peak in bytes or None). Call it in a fresh process: the peak is this process's highest so far, less
    what it held before loading (tinyrt is imported and one tiny model loaded first, so the increase is the
    model's). The CPU seconds are the ones to compare on a shared machine (the wall clock counts others)."""
    import numpy as np
    import tinyrt
    options = tinyrt.SessionOptions()
    options.kernels = kernels
    tinyrt.InferenceSession(chain(3, "Relu"), options)
    before = _resident()
    if trace:
        import tracemalloc
        tracemalloc.start()
    start, cpu = time.perf_counter(), time.process_time()
    sess = tinyrt.InferenceSession(data, options)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    traced = None
    if trace:
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    if run:
        try:
            sess.run(None, {"x": np.ones(1, np.float32)})
        except tinyrt.LimitError:
            pass  # past ~65,000 nodes a run exceeds the work budget of a small file (docs/limits.md)
    return seconds, cpu, peak, traced


def main(argv):
    """python -m tests.fuzz.scale KIND N [OP [KERNELS]] [--name x%d] [--trace]"""
    trace = "--trace" in argv
    name = argv[argv.index("--name") + 1] if "--name" in argv else None
    argv = [a for i, a in enumerate(argv) if a != "--trace" and a != "--name" and (i == 0 or argv[i - 1] != "--name")]
    kind, n = argv[0], int(argv[1])
    op = argv[2] if len(argv) > 2 else None
    kernels = argv[3] if len(argv) > 3 else None
    args = (n, op) if op else (n,)
    data = KINDS[kind](*args, name=name) if name else KINDS[kind](*args)
    seconds, cpu, peak, traced = measure(data, kernels, run=not trace, trace=trace)
    print("%s %d %s: file %.1f MB, load %.2f s (%.2f s of CPU), peak RSS +%.0f MB (%.1fx the file)%s"
          % (kind, n, op or "", len(data) / 1e6, seconds, cpu, peak / 1e6, peak / len(data),
             "" if traced is None else ", tracemalloc's peak %.0f MB (%.1fx)" % (traced / 1e6, traced / len(data))))


if __name__ == "__main__":
    main(sys.argv[1:])
