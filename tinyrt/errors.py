"""tinyrt's errors: one small hierarchy, so callers can catch exactly what they mean."""


class TinyrtError(Exception):
    """Base class of every error tinyrt raises on purpose."""


class ModelError(TinyrtError):
    """The model file is malformed: bad bytes, broken graph, inconsistent sizes."""


class UnsupportedError(TinyrtError):
    """The model is valid ONNX but uses something tinyrt does not implement."""


class InputError(TinyrtError, ValueError):
    """The caller's feeds or arguments do not fit the model."""
