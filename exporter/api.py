"""The model-object API, read the way MMEdu's is:

    from exporter import Classifier            # or: from exporter import MMClassification as cls
    model = Classifier(backbone="MobileNet")
    model.num_classes = 2
    model.convert(checkpoint="best.pth", backend="ONNX", out_file="out/catdog.onnx", class_path="classes.txt")

    from exporter import Detector              # or: from exporter import MMDetection as det
    model = Detector(backbone="SSD_Lite")
    model.num_classes = 80
    model.convert(checkpoint="ssdlite.pth", backend="ONNX", out_file="out/coco.onnx", class_path="coco.txt")
"""
from .convert import DEFAULT_OPSET, convert
from .errors import ExporterError
from .models import backbone_names, get_backbone


class _Model:
    task = None
    default_backbone = None

    def __init__(self, backbone=None, num_classes=None, width_mult=1.0):
        backbone = backbone or self.default_backbone
        spec = get_backbone(backbone)
        if spec.task != self.task:
            other = "Detector" if spec.task == "detection" else "Classifier"
            raise ExporterError("%s is a %s backbone: use %s(backbone=%r); %s backbones are: %s"
                                % (spec.name, spec.task, other, spec.name, self.task,
                                   ", ".join(backbone_names(self.task))))
        self.backbone = spec.name
        self.num_classes = num_classes
        self.width_mult = width_mult

    def __repr__(self):
        return "%s(backbone=%r, num_classes=%r)" % (type(self).__name__, self.backbone, self.num_classes)

    def convert(self, checkpoint=None, backend="ONNX", out_file=None, class_path=None, opset=DEFAULT_OPSET,
                input_size=None, dynamic_batch=False, dynamo=False, **kwargs):
        """Export to ``out_file`` (.onnx) plus ``<stem>.py``, verified; see :func:`exporter.convert`."""
        return convert(self.backbone, checkpoint=checkpoint, out_file=out_file, class_path=class_path,
                       num_classes=self.num_classes, opset=opset, input_size=input_size,
                       dynamic_batch=dynamic_batch, dynamo=dynamo, backend=backend, width_mult=self.width_mult,
                       **kwargs)


class Classifier(_Model):
    """Image classification: MobileNet, MobileNetV3_Small, MobileNetV3_Large, ResNet18, LeNet."""
    task = "classification"
    default_backbone = "LeNet"   # MMEdu's MMClassification default


class Detector(_Model):
    """Object detection: SSD_Lite."""
    task = "detection"
    default_backbone = "SSD_Lite"


# MMEdu's names, so `from exporter import MMClassification as cls` reads like MMEdu code
MMClassification = Classifier
MMDetection = Detector
