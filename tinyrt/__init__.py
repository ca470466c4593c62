"""tinyrt: a tiny ONNX runtime for CNNs that needs nothing but numpy.

    import tinyrt
    sess = tinyrt.InferenceSession("mobilenet.onnx")     # onnxruntime's API
    probs = sess.run(None, {"input": x})[0]

    print(tinyrt.run("catdog.onnx", "cat.jpg"))          # a picture in, a labelled answer out
"""
from .errors import InputError, ModelError, TinyrtError, UnsupportedError
from .limits import LimitError
from .options import ExecutionMode, ExecutionOrder, GraphOptimizationLevel, RunOptions, SessionOptions
from .session import InferenceSession, ModelMetadata, NodeArg
from .environment import (disable_telemetry_events, enable_telemetry_events, get_all_providers,
                          get_available_providers, get_build_info, get_device, get_version_string, set_seed,
                          set_default_logger_callback, set_default_logger_severity, set_default_logger_verbosity)
from . import capi, ops
from .capi.onnxruntime_pybind11_state import (LoraAdapter, OrtDevice, OrtMemoryInfo, OrtValue,  # noqa: F401
                                              SparseTensor, SessionIOBinding as IOBinding)
from .api import Model, load, run

__version__ = "0.1.0"


def supported_ops():
    """Names of the ops tinyrt implements in the default ONNX domain, sorted."""
    return sorted(op_type for domain, op_type in ops.registered() if domain == "")


def get_default_session_options():
    return SessionOptions()


__all__ = ["InferenceSession", "SessionOptions", "RunOptions", "GraphOptimizationLevel", "ExecutionMode",
           "ExecutionOrder", "NodeArg", "ModelMetadata", "TinyrtError", "ModelError", "UnsupportedError",
           "InputError", "LimitError", "supported_ops", "get_all_providers", "get_available_providers",
           "get_device", "get_version_string", "get_build_info", "set_seed", "set_default_logger_callback",
           "set_default_logger_severity",
           "set_default_logger_verbosity", "enable_telemetry_events", "disable_telemetry_events", "capi", "run",
           "load", "Model"]
