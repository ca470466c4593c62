"""onnxruntime's ``capi.onnxruntime_inference_collection``: the Python-side session classes."""
from ..environment import check_and_normalize_provider_args  # noqa: F401
from ..session import InferenceSession

Session = InferenceSession
