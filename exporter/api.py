"""The model-object API, read the way MMEdu's is:

    from exporter import Classifier            # or: from exporter import MMClassification as cls
    model = Classifier(backbone="MobileNet")
    model.num_classes = 2
    model.convert(checkpoint="best.pth", backend="ONNX", out_file="out/catdog.onnx", class_path="classes.txt")

    from exporter import Detector              # or: from exporter import MMDetection as det
    model = Detector(backbone="SSD_Lite")
    model.num_classes = 80
    model.convert(checkpoint="ssdlite.pth", backend="ONNX", out_file="out/coco.onnx", class_path="coco.txt")

Training (exporter/train_loop.py), in MMEdu's words too:

    model = Classifier(backbone="MobileNet", width_mult=0.35, input_size=96)
    model.load_dataset("out/shapes_cls")            # ImageNet-style folders + classes.txt
    model.save_fold = "checkpoints/shapes_cls"
    model.train(epochs=8, lr=0.002, batch_size=32, checkpoint=None)   # checkpoint: start from a .pth
"""
from .convert import convert
from .errors import ExporterError
from .models import backbone_names, get_backbone


class _Model:
    task = None
    default_backbone = None

    def __init__(self, backbone=None, num_classes=None, width_mult=None, input_size=None):
        backbone = backbone or self.default_backbone
        spec = get_backbone(backbone)
        if spec.task != self.task:
            other = "Detector" if spec.task == "detection" else "Classifier"
            raise ExporterError("%s is a %s backbone: use %s(backbone=%r); %s backbones are: %s"
                                % (spec.name, spec.task, other, spec.name, self.task,
                                   ", ".join(backbone_names(self.task))))
        self.backbone = spec.name
        self.num_classes = num_classes
        self.width_mult = width_mult          # None: the checkpoint's at convert(), else 1.0
        self.input_size = input_size          # None: the checkpoint's at convert(), else the backbone's default
        self.save_fold = "checkpoints/%s_model" % ("cls" if self.task == "classification" else "det")
        self.dataset_path = None

    def __repr__(self):
        return "%s(backbone=%r, num_classes=%r)" % (type(self).__name__, self.backbone, self.num_classes)

    def convert(self, checkpoint=None, backend="ONNX", out_file=None, class_path=None, **options):
        """Export to ``out_file`` (.onnx) plus ``<stem>.py``, verified; see :func:`exporter.convert` (the
        options are :class:`exporter.convert.ConvertOptions`' names). This model's backbone, num_classes,
        width_mult and input_size are used unless given here."""
        for name in ("input_size", "num_classes", "width_mult"):
            if options.get(name) is None:
                options[name] = getattr(self, name)
        return convert(self.backbone, checkpoint=checkpoint, out_file=out_file, class_path=class_path,
                       backend=backend, **options)

    def load_dataset(self, path):
        """Use the dataset at ``path`` (MMEdu's layout, see exporter/data) for :meth:`train`."""
        import os
        if not os.path.isfile(os.path.join(path, "classes.txt")):
            raise ExporterError("%s has no classes.txt: is it a dataset folder? (make one with "
                                "python -m exporter.data %s %s)" % (path, self.task, path))
        self.dataset_path = path
        return self

    def train(self, epochs=10, lr=0.001, batch_size=16, checkpoint=None, validate=True, optimizer="SGD",
              weight_decay=4e-5, seed=0, threads=2, device="cpu", limit=None, log=print):
        """Train on the loaded dataset and save MMEdu checkpoints in ``save_fold``; returns the best one's path.

        ``checkpoint``: a .pth to start from (fine-tuning; a head for other classes starts fresh).
        ``limit``: use at most this many training pictures (quick tries). Runs on the CPU (``device`` is
        accepted for MMEdu's signature; only "cpu" is supported)."""
        import time
        from . import train_data, train_loop   # torch: imported when training only
        if self.dataset_path is None:
            raise ExporterError("call model.load_dataset(path) before model.train(...)")
        if str(device).lower() != "cpu":
            raise ExporterError("this training helper runs on the CPU only (device=%r)" % device)
        spec = get_backbone(self.backbone)
        size = int(self.input_size or spec.default_size)
        t = time.time()
        if self.task == "classification":
            resize = spec.preprocess(size)["resize"][0]
            train_split = train_data.ClassificationData(self.dataset_path, "train", resize, limit)
            val_split = train_data.ClassificationData(self.dataset_path, "val", resize) if validate else None
        else:
            train_split = train_data.DetectionData(self.dataset_path, "train", size, limit)
            val_split = train_data.DetectionData(self.dataset_path, "val", size) if validate else None
        classes = train_split.classes
        if self.num_classes is not None and int(self.num_classes) != len(classes):
            raise ExporterError("num_classes is %s but %s/classes.txt lists %d classes"
                                % (self.num_classes, self.dataset_path, len(classes)))
        self.num_classes = len(classes)
        log("loaded %s: %d training pictures%s in %.1f s" % (
            self.dataset_path, len(train_split), (", %d validation" % len(val_split)) if val_split is not None else "",
            time.time() - t))
        path, self.history = train_loop.train_model(
            spec, classes, train_split, val_split, int(epochs), float(lr), int(batch_size),
            float(1.0 if self.width_mult is None else self.width_mult),
            size, self.save_fold, checkpoint=checkpoint, optimizer=optimizer, weight_decay=weight_decay, seed=seed,
            threads=threads, validate=validate, log=log)
        self.checkpoint = path
        return path


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
