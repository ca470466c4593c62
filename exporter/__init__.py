"""The torch side of tinyrt: model definitions, checkpoint loading and conversion to ONNX."""
