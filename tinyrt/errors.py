"""tinyrt's errors: one small hierarchy, so callers can catch exactly what they mean.

Each also derives from the onnxruntime exception a script written for onnxruntime would catch (the classes
in tinyrt/capi/onnxruntime_pybind11_state.py, with onnxruntime's names), so ``except InvalidArgument``
catches a bad feed while ``InputError`` stays a ``ValueError``. The messages are tinyrt's own.

    TinyrtError
      ModelError        (onnxruntime: InvalidGraph, InvalidProtobuf)   the file is malformed
        LimitError      (tinyrt/limits.py)                             a tensor or the work is too big
        ModelFileNotFound (NoSuchFile, FileNotFoundError)              no file at that path
      UnsupportedError  (NotImplemented)                               valid ONNX tinyrt does not implement
      InputError        (InvalidArgument, ValueError)                  the caller's feeds or arguments
        ArgumentTypeError (TypeError)                                  e.g. InferenceSession(123)
        OptionError     (Fail, RuntimeError)                           an unknown provider or config key
      RunTerminated     (Fail)                                         RunOptions.terminate stopped a run
"""
from .capi import onnxruntime_pybind11_state as _ort


class TinyrtError(Exception):
    """Base class of every error tinyrt raises on purpose."""


class ModelError(TinyrtError, _ort.InvalidGraph, _ort.InvalidProtobuf):
    """The model file is malformed: bad bytes, broken graph, inconsistent sizes."""


class ModelFileNotFound(ModelError, _ort.NoSuchFile, FileNotFoundError):
    """There is no model file at the path given."""


class UnsupportedError(TinyrtError, _ort.NotImplemented):
    """The model is valid ONNX but uses something tinyrt does not implement."""


class InputError(TinyrtError, _ort.InvalidArgument, ValueError):
    """The caller's feeds or arguments do not fit the model."""


class ArgumentTypeError(InputError, TypeError):
    """An argument of the wrong kind altogether (onnxruntime raises TypeError for these)."""


class OptionError(InputError, _ort.Fail, RuntimeError):
    """An unknown execution provider or session config key (onnxruntime raises RuntimeError or Fail)."""


class RunTerminated(TinyrtError, _ort.Fail):
    """A run stopped between two nodes because its RunOptions.terminate was set."""
