"""Small hostile models for the hardening tests (tests/test_hardening_*.py), built with onnx's helper."""
import tracemalloc

import numpy as np
from onnx import TensorProto, helper, numpy_helper

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def vi(name, shape, elem=F):
    return helper.make_tensor_value_info(name, elem, shape)


def const(name, value, dtype=np.int64):
    return numpy_helper.from_array(np.array(value, dtype), name)


def model(nodes, inputs, outputs, inits=(), opset=13, functions=(), **kwargs):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits), **kwargs)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("local", 1)],
                          functions=list(functions))
    m.ir_version = 8
    return m.SerializeToString()


def traced(fn):
    """(result or exception, peak bytes traced) of ``fn()``."""
    tracemalloc.start()
    try:
        try:
            out = fn()
        except Exception as e:  # noqa: B902
            out = e
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
