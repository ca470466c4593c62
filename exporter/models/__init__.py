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
# BaseDT / MMEdu preprocessing (RGB 0-255, then (x - mean) / std): tinyrt's constants, so a file and the
# runtime that reads it agree
from tinyrt.vision.preprocess import IMAGENET_MEAN, IMAGENET_STD, MNIST_MEAN, MNIST_STD

from ..errors import ExporterError


class BackboneSpec:
    """What the exporter knows about one backbone name."""

    def __init__(self, name, task, build, default_size, channels, codebase, resize_policy, fixed_size=False,
                 aliases=(), mean=IMAGENET_MEAN, std=IMAGENET_STD, description=""):
        self.name = name
        self.task = task                      # "classification" | "detection"
        self._build = build                   # (num_classes, width_mult, input_size) -> nn.Module
        self.default_size = default_size      # square input side
        self.channels = channels              # 3 (RGB) or 1 (grayscale)
        self.codebase = codebase              # XEdu MODEL_INFO codebase: "MMCls" | "MMDet"
        self.resize_policy = resize_policy    # "resize_crop" (squash to size*256/224, centre crop) | "resize"
        self.fixed_size = fixed_size          # the input size cannot change (LeNet)
        self.aliases = aliases
        self.mean = list(mean)
        self.std = list(std)
        self.description = description

    def build(self, num_classes, width_mult=1.0, input_size=None):
        return self._build(num_classes, width_mult, input_size or self.default_size)

    def preprocess(self, input_size):
        """The BaseDT-style preprocessing for an input of ``input_size`` x ``input_size`` (see metadata.md)."""
        if self.resize_policy == "resize_crop":
            resize = int(round(input_size * 256 / 224.0))
            crop = [input_size, input_size]
        else:
            resize, crop = input_size, None
        return {"pipeline": "basedt", "color": "RGB" if self.channels == 3 else "GRAY", "resize": [resize, resize],
                "resize_policy": "squash", "interpolation": "opencv_linear", "crop": crop,
                "mean": self.mean, "std": self.std, "scale": "0-255", "layout": "NCHW"}


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
    BackboneSpec("MobileNet", "classification", _mobilenet, 224, 3, "MMCls", "resize_crop",
                 aliases=("MobileNetV2", "MobileNet_V2"), description="MobileNetV2 (mmcls layout, MMEdu)"),
    BackboneSpec("MobileNetV3_Small", "classification", _v3_small, 224, 3, "MMCls", "resize_crop",
                 aliases=("MobileNetV3Small",), description="MobileNetV3-Small (torchvision layout)"),
    BackboneSpec("MobileNetV3_Large", "classification", _v3_large, 224, 3, "MMCls", "resize_crop",
                 aliases=("MobileNetV3Large", "MobileNetV3"), description="MobileNetV3-Large (torchvision layout)"),
    BackboneSpec("ResNet18", "classification", _resnet18, 224, 3, "MMCls", "resize_crop",
                 aliases=("ResNet-18", "ResNet_18"), description="ResNet-18 (torchvision / mmcls layout)"),
    BackboneSpec("LeNet", "classification", _lenet, 32, 1, "MMCls", "resize", fixed_size=True,
                 aliases=("LeNet5",), mean=MNIST_MEAN, std=MNIST_STD,
                 description="LeNet-5, 1x32x32 grayscale (mmcls layout, MMEdu)"),
    BackboneSpec("SSD_Lite", "detection", _ssdlite, 320, 3, "MMDet", "resize",
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
