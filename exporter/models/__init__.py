"""The backbone registry: MMEdu's backbone names -> how to build the model and how to feed it.

=====================  ==============  =================  ===========================================
name                   task            input              layout of the module's state_dict keys
=====================  ==============  =================  ===========================================
``MobileNet``          classification  3 x 224 x 224 RGB  mmcls MobileNetV2 (``backbone.*``, ``head.fc``)
``MobileNetV3_Small``  classification  3 x 224 x 224 RGB  torchvision mobilenet_v3_small
``MobileNetV3_Large``  classification  3 x 224 x 224 RGB  torchvision mobilenet_v3_large
``ResNet18``           classification  3 x 224 x 224 RGB  torchvision resnet18
``LeNet``              classification  1 x 32 x 32 gray   mmcls LeNet5 (``backbone.features/classifier``)
``SSD_Lite``           detection       3 x 320 x 320 RGB  mmdet ssdlite_mobilenetv2 (worker B's module)
=====================  ==============  =================  ===========================================

checkpoint.py maps the other layouts (mmcls / torchvision) onto these.
"""
# BaseDT / MMEdu preprocessing per backbone (input size, colour, mean/std, resize-and-crop rule): tinyrt's
# table, so a file and the runtime that reads it agree
from tinyrt.vision.preprocess import BACKBONES as BASEDT_SETTINGS, IMAGENET_MEAN, IMAGENET_STD, basedt_preprocess

from ..errors import ExporterError


class BackboneSpec:
    """What the exporter knows about one backbone name."""

    def __init__(self, name, task, build, codebase, fixed_size=False, aliases=(), description=""):
        self.name = name
        self.task = task                      # "classification" | "detection"
        self._build = build                   # (num_classes, width_mult, input_size) -> nn.Module
        _, self.default_size, color, mean, std = BASEDT_SETTINGS[name]   # square input side; MMEdu's settings
        self.channels = 1 if color == "GRAY" else 3
        self.codebase = codebase              # XEdu MODEL_INFO codebase: "MMCls" | "MMDet"
        self.fixed_size = fixed_size          # the input size cannot change (LeNet)
        self.aliases = aliases
        self.mean = list(mean)
        self.std = list(std)
        self.description = description

    def build(self, num_classes, width_mult=1.0, input_size=None):
        return self._build(num_classes, width_mult, input_size or self.default_size)

    def preprocess(self, input_size):
        """The BaseDT-style preprocessing for an input of ``input_size`` x ``input_size`` (see metadata.md):
        tinyrt's recipe for this backbone (squash to round(size * 256 / 224) and cut the centre, or squash to
        the size), with the keys the file records."""
        pre = basedt_preprocess(self.name, (input_size, input_size), self.channels, self.task)
        return {"pipeline": "basedt", "color": pre["color"], "resize": list(pre["resize"]), "resize_policy": "squash",
                "interpolation": "opencv_linear", "crop": pre["crop"] and list(pre["crop"]), "mean": list(pre["mean"]),
                "std": list(pre["std"]), "scale": "0-255", "layout": "NCHW"}


def _mobilenet(num_classes, width_mult, input_size):
    from .mobilenetv2 import MobileNetV2
    return MobileNetV2(num_classes, width_mult)


def _v3_small(num_classes, width_mult, input_size):
    from .mobilenetv3 import mobilenet_v3_small
    return mobilenet_v3_small(num_classes, width_mult)


def _v3_large(num_classes, width_mult, input_size):
    from .mobilenetv3 import mobilenet_v3_large
    return mobilenet_v3_large(num_classes, width_mult)


def _resnet18(num_classes, width_mult, input_size):
    from .resnet import ResNet18
    return ResNet18(num_classes, width_mult)


def _lenet(num_classes, width_mult, input_size):
    from .lenet import LeNet
    return LeNet(num_classes, width_mult)


def _ssdlite(num_classes, width_mult, input_size):
    from .ssdlite import SSDLite
    return SSDLite(num_classes, width_mult=width_mult, input_size=input_size)


BACKBONES = {}
for _spec in [
    BackboneSpec("MobileNet", "classification", _mobilenet, "MMCls",
                 aliases=("MobileNetV2", "MobileNet_V2"), description="MobileNetV2 (mmcls layout, MMEdu)"),
    BackboneSpec("MobileNetV3_Small", "classification", _v3_small, "MMCls",
                 aliases=("MobileNetV3Small",), description="MobileNetV3-Small (torchvision layout)"),
    BackboneSpec("MobileNetV3_Large", "classification", _v3_large, "MMCls",
                 aliases=("MobileNetV3Large", "MobileNetV3"), description="MobileNetV3-Large (torchvision layout)"),
    BackboneSpec("ResNet18", "classification", _resnet18, "MMCls",
                 aliases=("ResNet-18", "ResNet_18"), description="ResNet-18 (torchvision / mmcls layout)"),
    BackboneSpec("LeNet", "classification", _lenet, "MMCls", fixed_size=True, aliases=("LeNet5",),
                 description="LeNet-5, 1x32x32 grayscale (mmcls layout, MMEdu)"),
    BackboneSpec("SSD_Lite", "detection", _ssdlite, "MMDet",
                 aliases=("SSDLite", "SSD-Lite", "SSDLite_MobileNetV2"),
                 description="SSD-Lite with MobileNetV2 (mmdet layout, MMEdu)"),
]:
    BACKBONES[_spec.name] = _spec


def _norm(name):
    return str(name).replace("-", "").replace("_", "").lower()


def get_backbone(name):
    """The spec for ``name`` (MMEdu's spelling; case, ``-`` and ``_`` do not matter), else an ExporterError."""
    wanted = _norm(name)
    for spec in BACKBONES.values():
        if wanted == _norm(spec.name) or wanted in {_norm(a) for a in spec.aliases}:
            return spec
    raise ExporterError("unknown backbone %r; the backbones are: %s" % (name, ", ".join(BACKBONES)))


def backbone_names(task=None):
    return [n for n, s in BACKBONES.items() if task is None or s.task == task]


__all__ = ["BACKBONES", "BackboneSpec", "get_backbone", "backbone_names", "IMAGENET_MEAN", "IMAGENET_STD"]
