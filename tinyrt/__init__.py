"""tinyrt: a tiny ONNX runtime for CNNs that needs nothing but numpy.

    import tinyrt
    sess = tinyrt.InferenceSession("mobilenet.onnx")     # onnxruntime's API
    probs = sess.run(None, {"input": x})[0]

    print(tinyrt.run("catdog.onnx", "cat.jpg"))          # a picture in, a labelled answer out
"""
from .errors import InputError, ModelError, TinyrtError, UnsupportedError
from .limits import LimitError
from .session import GraphOptimizationLevel, InferenceSession, NodeArg, SessionOptions
from . import ops
from .api import Model, load, run

__version__ = "0.1.0"


def supported_ops():
    """Names of the ops tinyrt implements in the default ONNX domain, sorted."""
    return sorted(op_type for domain, op_type in ops.registered() if domain == "")


def get_available_providers():
    return ["CPUExecutionProvider"]


def get_device():
    return "CPU"


__all__ = ["InferenceSession", "SessionOptions", "GraphOptimizationLevel", "NodeArg", "TinyrtError",
           "ModelError", "UnsupportedError", "InputError", "LimitError", "supported_ops", "get_available_providers",
           "get_device", "run", "load", "Model"]
