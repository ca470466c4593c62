"""onnxruntime's ``capi`` package layout, so ``ort.capi.onnxruntime_pybind11_state.InvalidArgument`` and
``from onnxruntime.capi import _pybind_state as C`` keep working after ``import tinyrt as ort``."""
from . import onnxruntime_pybind11_state  # noqa: F401
