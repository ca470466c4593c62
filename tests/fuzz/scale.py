"""Very large, very simple models written straight as protobuf bytes (onnx.helper would take minutes and
gigabytes for a million nodes): long chains, dead nodes, fan-out. For the near-linear load checks of
tests/test_hardening_graph.py and the measurements of docs/limits.md:

    python -m tests.fuzz.scale chain 100000 Identity     # load time and peak memory of one such model
    python -m tests.fuzz.scale dead 100000
"""
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


def chain(n, op="Identity"):
    """x -> op -> op -> ... (n nodes) -> y, on a float [1] input."""
    names = ["x"] + ["%x" % i for i in range(1, n)] + ["y"]
    nodes = [_node(op, [names[i]], [names[i + 1]]) for i in range(n)]
    return _model(nodes, [("x", [1])], [("y", [1])])


def dead(n, op="Relu"):
    """y = Relu(x), plus n nodes whose results nobody reads (each reads the one before: a dead chain)."""
    nodes = [_node("Relu", ["x"], ["y"])]
    names = ["x"] + ["d%x" % i for i in range(n)]
    nodes += [_node(op, [names[i]], [names[i + 1]]) for i in range(n)]
    return _model(nodes, [("x", [1])], [("y", [1])])


def fan_out(n, op="Relu"):
    """n nodes all reading x, summed by one Sum: wide rather than long."""
    nodes = [_node(op, ["x"], ["r%x" % i]) for i in range(n)]
    nodes.append(_node("Sum", ["r%x" % i for i in range(n)], ["y"]))
    return _model(nodes, [("x", [1])], [("y", [1])])


KINDS = {"chain": chain, "dead": dead, "fan_out": fan_out}


def measure(data, kernels=None, run=True):
    """(seconds to load, CPU seconds to load, peak RSS in bytes of this process after loading [and one run]).

    The CPU seconds are the ones to compare on a shared machine (the wall clock counts other processes)."""
    import numpy as np
    import tinyrt
    options = tinyrt.SessionOptions()
    options.kernels = kernels
    start, cpu = time.perf_counter(), time.process_time()
    sess = tinyrt.InferenceSession(data, options)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    if run:
        try:
            sess.run(None, {"x": np.ones(1, np.float32)})
        except tinyrt.LimitError:
            pass  # past ~65,000 nodes a run exceeds the work budget of a small file (docs/limits.md)
    return seconds, cpu, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main(argv):
    kind, n = argv[0], int(argv[1])
    op = argv[2] if len(argv) > 2 else None
    kernels = argv[3] if len(argv) > 3 else None
    data = KINDS[kind](n, op) if op else KINDS[kind](n)
    import numpy  # noqa: F401  (baseline memory without the model)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    seconds, cpu, peak = measure(data, kernels)
    print("%s %d %s: file %.1f MB, load %.2f s (%.2f s of CPU), peak RSS %.0f MB (%.1fx the file; %.0f MB before loading)"
          % (kind, n, op or "", len(data) / 1e6, seconds, cpu, peak / 1e6, peak / len(data), before / 1e6))


if __name__ == "__main__":
    main(sys.argv[1:])
