"""The torch side of tinyrt: model definitions, checkpoint loading and conversion to a verified ONNX file.

    from exporter import convert
    convert("MobileNet", checkpoint="best.pth", out_file="out/catdog.onnx", class_path="classes.txt")

or, the way MMEdu reads:

    from exporter import Classifier
    model = Classifier(backbone="MobileNet")
    model.num_classes = 2
    model.convert(checkpoint="best.pth", backend="ONNX", out_file="out/catdog.onnx", class_path="classes.txt")

Command line: ``python -m exporter convert --help``.
"""

from .metadata import EXPORTER_VERSION as __version__  # noqa: E402
from .errors import BackendError, CheckpointError, ClassesError, ExporterError, VerificationError  # noqa: E402


# Imported eagerly so that ``exporter.convert`` is the function (the submodule shares its name); none of
# these import torch at import time.
from .convert import ConvertOptions, ConvertResult, convert  # noqa: E402
from .api import Classifier, Detector, MMClassification, MMDetection  # noqa: E402

__all__ = ["convert", "ConvertOptions", "ConvertResult", "Classifier", "Detector", "MMClassification", "MMDetection",
           "ExporterError", "CheckpointError", "ClassesError", "VerificationError", "BackendError"]
