"""onnxruntime's ``capi._pybind_state`` (what its own code imports as ``C``): the same names as
``onnxruntime_pybind11_state``."""
from .onnxruntime_pybind11_state import *  # noqa: F401,F403
from .onnxruntime_pybind11_state import __getattr__  # noqa: F401
