"""Reading ONNX files without the onnx or protobuf packages: the wire format, then ONNX's messages."""
from .onnx_messages import load_model  # noqa: F401
