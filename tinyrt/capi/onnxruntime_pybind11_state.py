"""onnxruntime's ``capi.onnxruntime_pybind11_state`` names, for scripts that catch its exceptions.

    from tinyrt.capi.onnxruntime_pybind11_state import InvalidArgument, Fail   # as with onnxruntime
    try:
        sess.run(None, feeds)
    except InvalidArgument:          # catches tinyrt.InputError (a bad feed)
        ...

The exception classes are defined here, with onnxruntime's names; tinyrt's own errors derive from them
(see tinyrt/errors.py), so an ``except`` clause written for onnxruntime catches what tinyrt raises. The
session classes and module functions of onnxruntime's C module are reachable here too (loaded on first use,
so importing this module from tinyrt.errors stays free of cycles).
"""


class Fail(Exception):
    """onnxruntime's status FAIL: a run stopped (tinyrt: RunOptions.terminate)."""


class InvalidArgument(Exception):
    """onnxruntime's status INVALID_ARGUMENT: a bad feed (tinyrt: InputError)."""


class NoSuchFile(Exception):
    """onnxruntime's status NO_SUCHFILE: the model file does not exist."""


class NoModel(Exception):
    pass


class EngineError(Exception):
    pass


class RuntimeException(Exception):
    pass


class InvalidProtobuf(Exception):
    """onnxruntime's status INVALID_PROTOBUF: the bytes are not an ONNX model (tinyrt: ModelError)."""


class ModelLoaded(Exception):
    pass


class NotImplemented(Exception):  # noqa: A001 (onnxruntime's name)
    """onnxruntime's status NOT_IMPLEMENTED: an op or type the runtime lacks (tinyrt: UnsupportedError)."""


class InvalidGraph(Exception):
    """onnxruntime's status INVALID_GRAPH: a broken graph (tinyrt: ModelError)."""


class EPFail(Exception):
    pass


class ModelLoadCanceled(Exception):
    pass


class ModelRequiresCompilation(Exception):
    pass


class NotFound(Exception):
    pass


class DeviceReset(Exception):
    pass


class _Unavailable(type):
    """onnxruntime's device-memory and provider classes: the names exist (so imports and isinstance checks
    work), but tinyrt runs on numpy arrays and has none of their functionality."""

    def __getattr__(cls, name):
        raise AttributeError("tinyrt has no %s.%s: %s" % (cls.__name__, name, cls._why))

    def __call__(cls, *args, **kwargs):
        from ..errors import UnsupportedError
        raise UnsupportedError("tinyrt has no %s: %s" % (cls.__name__, cls._why))


_NUMPY = "tinyrt runs on numpy arrays in the CPU's memory; pass them to run() directly"
OrtValue = _Unavailable("OrtValue", (), {"_why": _NUMPY})
OrtValueVector = _Unavailable("OrtValueVector", (), {"_why": _NUMPY})
SparseTensor = _Unavailable("SparseTensor", (), {"_why": "tinyrt has no sparse tensors"})
SessionIOBinding = _Unavailable("SessionIOBinding", (), {"_why": _NUMPY})
OrtDevice = _Unavailable("OrtDevice", (), {"_why": "tinyrt runs on the CPU only"})
OrtMemoryInfo = _Unavailable("OrtMemoryInfo", (), {"_why": "tinyrt runs on the CPU only"})
OrtArenaCfg = _Unavailable("OrtArenaCfg", (), {"_why": "tinyrt allocates with numpy, without arenas"})
LoraAdapter = _Unavailable("LoraAdapter", (), {"_why": "onnxruntime's LoRA adapter files are not supported"})


_FROM_TINYRT = ("InferenceSession", "SessionOptions", "RunOptions", "NodeArg", "ModelMetadata",
                "GraphOptimizationLevel", "ExecutionMode", "ExecutionOrder", "get_all_providers",
                "get_available_providers", "get_device", "get_version_string", "get_build_info", "set_seed",
                "set_default_logger_callback", "set_default_logger_severity", "set_default_logger_verbosity", "enable_telemetry_events",
                "disable_telemetry_events", "get_default_session_options")


def __getattr__(name):
    # Loaded on first use: tinyrt.errors imports this module while tinyrt itself is still importing.
    if name in _FROM_TINYRT:
        import tinyrt
        return getattr(tinyrt, name)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
