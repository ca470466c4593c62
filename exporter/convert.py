"""``convert()``: a checkpoint in, a verified ONNX file (with metadata) and a sample script out.

    from exporter import convert
    convert("MobileNet", checkpoint="best.pth", out_file="out/catdog.onnx", class_path="classes.txt")

Steps: load the checkpoint safely and map its keys onto our module; settle the class names; export with
torch.onnx.export (TorchScript exporter, or the dynamo exporter with ``dynamo=True``); write the metadata;
verify torch == onnxruntime == tinyrt on a seeded input; write ``<stem>.py``. Both files are first written
under temporary names in the output folder and renamed at the very end, so a failed convert leaves nothing.
"""
import contextlib
import io
import logging
import os
import warnings

import numpy as np

from .checkpoint import (checkpoint_num_classes, checkpoint_settings, load_checkpoint, load_into, meta_classes,
                         to_model_layout)
from .classes import ExporterWarning, resolve_classes
from .errors import BackendError, ExporterError
from .metadata import EXPORTER_VERSION, build_metadata, write_metadata
from .models import backbone_names, get_backbone
from .outputs import check_script_path, out_paths, publish, remove, shown_path, temp_names
from .verify import verify

BACKENDS = ("ONNX",)
# what MMEdu's documentation announces; we say clearly that they do not exist here
PLANNED_ELSEWHERE = ("NCNN", "TensorRT", "OpenVINO")
MIN_OPSET, MAX_OPSET, DEFAULT_OPSET = 11, 18, 13
DYNAMO_OPSET = 18
INPUT_NAME = "input"


class ConvertResult:
    """What convert() made: paths, class names, metadata and the verification report."""

    def __init__(self, onnx_path, script_path, classes, metadata, report, input_shape, opset, notes):
        self.onnx_path = onnx_path
        self.script_path = script_path
        self.classes = classes
        self.metadata = metadata
        self.report = report
        self.input_shape = input_shape
        self.opset = opset
        self.notes = notes

    def __repr__(self):
        return "ConvertResult(%r, %r)" % (self.onnx_path, self.script_path)


class ClassifierExport:
    """Builds the module that is exported: the classifier followed by Softmax over the classes."""

    def __new__(cls, model):
        import torch

        class _Softmaxed(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.model = inner

            def forward(self, x):
                return torch.softmax(self.model(x), dim=1)

        return _Softmaxed(model).eval()


def check_backend(backend):
    if str(backend).strip().upper() in BACKENDS:
        return "ONNX"
    raise BackendError("backend %r is not available; the backends are: %s (%s are not implemented)"
                       % (backend, ", ".join(BACKENDS), ", ".join(PLANNED_ELSEWHERE)))


def check_opset(opset):
    try:
        value = int(str(opset).strip())
    except ValueError:
        value = None
    if isinstance(opset, bool) or value is None or not MIN_OPSET <= value <= MAX_OPSET:
        raise ExporterError("opset %r is not supported; choose %d..%d (default %d)"
                            % (opset, MIN_OPSET, MAX_OPSET, DEFAULT_OPSET))
    return value


# The score an object needs to be reported (>=), stored in the file as tinyrt.report_threshold and read by
# tinyrt.run, `tinyrt run`, the sample script and the demo: XEduHub's thr=0.3. The graph's own score_thr
# (0.02, mmdet's test_cfg) only decides which boxes reach NonMaxSuppression.
REPORT_THRESHOLD = 0.3


def detection_settings(score_thr=None, iou_thr=None, max_per_img=None, nms_pre=None, report_thr=None):
    from .detection import DEFAULTS
    d = {"score_thr": DEFAULTS["score_thr"], "iou_thr": DEFAULTS["iou_thr"],
         "max_per_img": DEFAULTS["max_per_img"], "nms_pre": DEFAULTS["nms_pre"], "report_thr": REPORT_THRESHOLD}
    for key, value in (("score_thr", score_thr), ("iou_thr", iou_thr), ("max_per_img", max_per_img),
                       ("nms_pre", nms_pre), ("report_thr", report_thr)):
        if value is not None:
            d[key] = value
    if not 0.0 <= float(d["score_thr"]) < 1.0:
        raise ExporterError("score_thr must be in [0, 1), got %r" % d["score_thr"])
    if not 0.0 <= float(d["report_thr"]) <= 1.0:
        raise ExporterError("report_thr must be in [0, 1], got %r" % d["report_thr"])
    d["report_thr"] = float(d["report_thr"])
    if not 0.0 < float(d["iou_thr"]) <= 1.0:
        raise ExporterError("iou_thr must be in (0, 1], got %r" % d["iou_thr"])
    if int(d["max_per_img"]) < 1 or int(d["nms_pre"]) < 1:
        raise ExporterError("max_per_image and nms_pre must be at least 1")
    d["score_thr"], d["iou_thr"] = float(d["score_thr"]), float(d["iou_thr"])
    d["max_per_img"], d["nms_pre"] = int(d["max_per_img"]), int(d["nms_pre"])
    return d


@contextlib.contextmanager
def _quiet_torch():
    """Silence torch.onnx's progress prints, warnings and logger chatter during an export."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    buf = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(buf):
            warnings.simplefilter("ignore")
            yield buf
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def export_onnx(module, path, example, output_names, opset, dynamic_batch=False, dynamo=False):
    """torch.onnx.export ``module`` at ``path`` with input ``input`` and the given outputs."""
    import torch
    with torch.no_grad(), _quiet_torch():
        if dynamo:
            kwargs = {}
            if dynamic_batch:
                kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch", min=1, max=4096)},)
            torch.onnx.export(module, (example,), path, dynamo=True, opset_version=opset, input_names=[INPUT_NAME],
                              output_names=list(output_names), external_data=False, verbose=False, **kwargs)
        else:
            kwargs = {}
            if dynamic_batch:
                kwargs["dynamic_axes"] = {n: {0: "batch"} for n in [INPUT_NAME] + list(output_names)}
            torch.onnx.export(module, (example,), path, dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=list(output_names),
                              do_constant_folding=True, **kwargs)


def _detection_input(module, shape, seed):
    """A seeded input for which the detector gives boxes (noise first, then smooth synthetic pictures)."""
    import torch
    best, best_count = None, -1
    rs = np.random.RandomState(seed)
    candidates = [rs.standard_normal(shape).astype(np.float32) for _ in range(3)]
    n, c, h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for k in range(3):
        img = np.stack([np.sin(xx / (7.0 + 5 * k) + ch) + np.cos(yy / (11.0 + 3 * k) - ch) for ch in range(c)])
        img[:, h // 4: h // 2, w // 3: 2 * w // 3] = 2.0 - k
        candidates.append(np.broadcast_to(img, shape).astype(np.float32).copy())
    with torch.no_grad():
        for x in candidates:
            dets = module(torch.from_numpy(x))[0].numpy()
            count = int((dets[..., 4] > 0).sum())
            if count > best_count:
                best, best_count = x, count
            if count >= 5 * n:
                break
    return best, best_count


def _settle(what, given, recorded, default, flag):
    """The value of a setting: what the checkpoint recorded, unless the caller gave another (refused)."""
    if recorded is None:
        return default if given is None else given, "default" if given is None else "given"
    value, where = recorded
    if given is not None and given != value:
        raise ExporterError("%s %s disagrees with the checkpoint, which was trained with %s %s (%s); leave %s "
                            "out to use the checkpoint's" % (flag, _show(given), what, _show(value), where, flag))
    return value, "the checkpoint's %s" % where


def _show(v):
    return "%g" % v if isinstance(v, float) else str(v)


def checkpoint_backbone(backbone, settings, checkpoint):
    """The backbone spec to build: the one given, checked against what the checkpoint says it is."""
    recorded = settings.get("backbone")
    if backbone is None:
        if recorded is None:
            raise ExporterError("no backbone given and checkpoint %s does not record one; pass backbone= "
                                "(--backbone), e.g. MobileNet or SSD_Lite" % checkpoint)
        return get_backbone(recorded[0])
    spec = get_backbone(backbone)
    task = settings.get("task")
    if recorded is not None:
        try:
            other = get_backbone(recorded[0])
        except ExporterError:
            other = None
        if other is not None and other.name != spec.name:
            raise ExporterError("backbone %s disagrees with checkpoint %s, which holds a %s %s (%s); use "
                                "backbone %s (%s(backbone=%r), --backbone %s)"
                                % (spec.name, checkpoint, other.name, other.task, recorded[1], other.name,
                                   "Detector" if other.task == "detection" else "Classifier", other.name,
                                   other.name))
    if task is not None and task[0] != spec.task:
        names = backbone_names(task[0])
        raise ExporterError("checkpoint %s holds a %s model (%s) but %s is a %s backbone; use a %s backbone: %s "
                            "(%s(backbone=...))" % (checkpoint, task[0], task[1], spec.name, spec.task, task[0],
                                                    ", ".join(names),
                                                    "Detector" if task[0] == "detection" else "Classifier"))
    return spec


class ConvertOptions:
    """How to convert, besides which model and which files: ``convert(..., options=ConvertOptions(...))`` or the
    same names as keywords of :func:`convert` (``convert(..., opset=11, dynamic_batch=True)``).

    ``opset`` (11..18), ``input_size`` and ``width_mult`` (None: the checkpoint's, else the backbone's
    default and 1.0), ``num_classes`` (None: from the classes file or the checkpoint), ``dynamic_batch``,
    ``dynamo`` (torch's newer exporter), ``backend`` ("ONNX" only); for detectors ``score_thr``, ``iou_thr``,
    ``max_per_img`` (alias ``max_per_image``), ``nms_pre`` (built into the graph) and ``report_thr`` (stored
    in the file); ``seed`` (the verification input, and the weights when there is no checkpoint), ``log``
    (a print-like function, or None for silence), ``verify_runtimes``, ``quantize`` ("int8") with
    ``calibration`` (a dataset folder), ``force`` (replace a .py the exporter did not write)."""

    DETECTION = ("score_thr", "iou_thr", "max_per_img", "nms_pre", "report_thr")

    def __init__(self, opset=DEFAULT_OPSET, input_size=None, width_mult=None, num_classes=None, dynamic_batch=False,
                 dynamo=False, backend="ONNX", score_thr=None, iou_thr=None, max_per_img=None, nms_pre=None,
                 max_per_image=None, report_thr=None, seed=0, log=print, verify_runtimes=("onnxruntime", "tinyrt"),
                 quantize=None, calibration=None, force=False):
        self.opset, self.input_size, self.width_mult, self.num_classes = opset, input_size, width_mult, num_classes
        self.dynamic_batch, self.dynamo, self.backend = dynamic_batch, dynamo, backend
        self.score_thr, self.iou_thr, self.nms_pre, self.report_thr = score_thr, iou_thr, nms_pre, report_thr
        self.max_per_img = max_per_image if max_per_image is not None else max_per_img
        self.seed, self.log, self.verify_runtimes = seed, log, verify_runtimes
        self.quantize, self.calibration, self.force = quantize, calibration, force

    @classmethod
    def of(cls, options, keywords):
        """``options`` (or the defaults) with ``keywords`` applied on top; unknown names are a TypeError."""
        merged = dict(vars(options)) if options is not None else {}
        if "max_per_image" in keywords:
            keywords = dict(keywords, max_per_img=keywords.pop("max_per_image"))
        unknown = sorted(set(keywords) - set(vars(cls())))
        if unknown:
            raise TypeError("convert() got unexpected keyword arguments: %s" % ", ".join(unknown))
        merged.update(keywords)
        return cls(**merged)

    def detection_settings(self, spec):
        """The detection thresholds (checked), or None for a classifier (which must not be given any)."""
        given = {k: getattr(self, k) for k in self.DETECTION}
        if spec.task == "detection":
            return detection_settings(**given)
        if any(v is not None for v in given.values()):
            raise ExporterError("score/iou thresholds, max_per_image and nms_pre are for detection backbones; "
                                "%s is a classifier" % spec.name)
        return None


def convert(backbone=None, checkpoint=None, out_file=None, class_path=None, options=None, **keywords):
    """Convert ``backbone`` (an MMEdu name: MobileNet, ResNet18, LeNet, SSD_Lite, ...) to ONNX.

    Writes ``out_file`` (.onnx) and its sample script ``<stem>.py`` and returns a ConvertResult. The rest
    is a :class:`ConvertOptions`, or its names as keywords. ``checkpoint=None`` exports seeded random
    weights (for trying things out). Raises ExporterError (or a subclass: CheckpointError, ClassesError,
    VerificationError, BackendError) with a clear message.

    The checkpoint is trusted: the backbone, ``width_mult``, ``input_size`` and the class names it records
    (its ``meta``, or the training config mmcls / mmdet / MMEdu keep there) are used; an argument that
    disagrees with them is refused, naming both values.
    An existing ``<stem>.py`` that is not a sample script the exporter wrote is never replaced silently:
    refused, unless ``force=True``.
    """
    opts = ConvertOptions.of(options, keywords)
    log = opts.log or (lambda *a, **k: None)
    check_backend(opts.backend)
    opset = check_opset(opts.opset)
    onnx_path, script_path, folder, stem = out_paths(out_file)
    check_script_path(script_path, opts.force)
    raw_sd, meta, settings = None, {}, {}
    if checkpoint is not None:
        raw_sd, meta = load_checkpoint(os.fspath(checkpoint))
        settings = checkpoint_settings(meta, raw_sd)
    spec = checkpoint_backbone(backbone, settings, checkpoint)
    width_mult, size = _model_size(spec, settings, checkpoint, opts, log)
    detection = opts.detection_settings(spec)
    if opts.quantize is not None:  # int8: refuse before anything is written when the pictures are missing
        from .quantize import check_request
        check_request(opts.quantize, opts.calibration, spec.task)
    num_classes = None if opts.num_classes is None else int(opts.num_classes)
    if num_classes is not None and num_classes < 1:
        raise ExporterError("num_classes must be at least 1, got %d" % num_classes)
    notes = []
    if opts.dynamo and opset < DYNAMO_OPSET:
        notes.append("the dynamo exporter writes opset %d (torch cannot convert its graphs lower); "
                     "use dynamo=False for opset %d" % (DYNAMO_OPSET, opset))
        opset = DYNAMO_OPSET

    import torch

    # 1. weights and classes
    sd, layout = (None, None) if checkpoint is None else to_model_layout(spec, raw_sd)
    classes, class_source = resolve_classes(num_classes, class_path, meta_classes(meta) if meta else None,
                                            checkpoint_num_classes(spec, sd) if sd is not None else None)

    # 2. the module
    model = _build_model(spec, len(classes), width_mult, size, sd, layout, checkpoint, opts.seed, notes, log)
    log("classes (%s): %s" % (class_source, ", ".join(classes[:20]) + (" ..." if len(classes) > 20 else "")))
    if spec.task == "classification":
        module, output_names = ClassifierExport(model), ["probs"]
    else:
        from .detection import DetectionExport
        module = DetectionExport(model, score_threshold=detection["score_thr"], iou_threshold=detection["iou_thr"],
                                 max_per_image=detection["max_per_img"], nms_pre=detection["nms_pre"],
                                 input_size=size).eval()
        output_names = ["dets", "labels"]
    shape = (2 if opts.dynamic_batch else 1, spec.channels, size, size)
    x = _verification_input(spec, module, shape, opts.seed, detection, notes, log)

    # 3. export, metadata, verification, script: under temporary names, renamed at the very end
    tmp_onnx, tmp_py = temp_names(folder, stem)
    try:
        log("exporting %s (%s exporter, opset %d%s) ..." % (spec.name, "dynamo" if opts.dynamo else "TorchScript",
                                                            opset, ", dynamic batch" if opts.dynamic_batch else ""))
        _export(spec, module, tmp_onnx, torch.from_numpy(x), output_names, opset, opts)
        props = build_metadata(spec, classes, size, INPUT_NAME, output_names, opset, EXPORTER_VERSION,
                               dynamic_batch=opts.dynamic_batch, detection=detection, width_mult=width_mult,
                               source=os.path.basename(os.fspath(checkpoint)) if checkpoint is not None else None)
        write_metadata(tmp_onnx, props, doc_string="%s exported by tinyrt's exporter" % spec.name)
        import onnx
        onnx.checker.check_model(tmp_onnx)
        report = verify(tmp_onnx, module, {INPUT_NAME: x}, output_names, log=log, runtimes=opts.verify_runtimes,
                        detection=detection)
        if opts.quantize is not None:
            from .quantize import quantize_in_place
            report.int8 = quantize_in_place(tmp_onnx, opts.calibration, log=log)  # the accuracy difference too
        from .sample_script import render
        with open(tmp_py, "w", encoding="utf-8") as f:
            f.write(render(stem + ".onnx", spec.task))
        publish(tmp_onnx, onnx_path, tmp_py, script_path)
    finally:
        remove(tmp_onnx)
        remove(tmp_py)
    for note in notes:
        log("note: " + note)
    log("wrote %s and %s" % (shown_path(onnx_path), shown_path(script_path)))
    return ConvertResult(onnx_path, script_path, classes, props, report, list(shape), opset, notes)


def _model_size(spec, settings, checkpoint, opts, log):
    """(width_mult, input size): the checkpoint's where it records them, else the options' or the defaults."""
    width_mult, width_from = _settle("width_mult", None if opts.width_mult is None else float(opts.width_mult),
                                     settings.get("width_mult"), 1.0, "width_mult (--width-mult)")
    input_size, size_from = _settle("input_size", None if opts.input_size is None else int(opts.input_size),
                                    settings.get("input_size"), None, "input_size (--input-size)")
    recorded = [(k, v, src) for k, v, src in (("width_mult", width_mult, width_from),
                                              ("input_size", input_size, size_from))
                if src.startswith("the checkpoint")]
    if checkpoint is not None and recorded:
        log("from the checkpoint: %s" % ", ".join(
            "%s %s (%s)" % (k, _show(v), src[len("the checkpoint's "):]) for k, v, src in recorded))
    size = spec.default_size if input_size is None else int(input_size)
    if spec.fixed_size and size != spec.default_size:
        raise ExporterError("%s takes %dx%d inputs only, not %d" % (spec.name, spec.default_size,
                                                                     spec.default_size, size))
    if size < 32:
        raise ExporterError("input_size %d is too small; use at least 32" % size)
    return float(1.0 if width_mult is None else width_mult), size


def _build_model(spec, num_classes, width_mult, size, sd, layout, checkpoint, seed, notes, log):
    """The torch model with the checkpoint's weights (or seeded random ones), in eval mode."""
    try:
        model = spec.build(num_classes, width_mult, size)
    except (ValueError, AssertionError) as e:
        raise ExporterError("cannot build %s (num_classes %d, width_mult %g, input %d): %s"
                            % (spec.name, num_classes, width_mult, size, e))
    if sd is not None:
        hint = ""
        if spec.name in ("MobileNet", "SSD_Lite", "ResNet18") or spec.name.startswith("MobileNetV3"):
            hint = " (if the shapes differ everywhere, the checkpoint may use another width_mult than %g)" % width_mult
        load_into(model, sd, "checkpoint %s (%s layout)" % (checkpoint, layout), hint)
        log("loaded %s: %s layout, %d tensors" % (checkpoint, layout, len(sd)))
    else:
        from .models._layers import randomize
        randomize(model, seed, (2, spec.channels, size, size))
        notes.append("no checkpoint: seeded random weights (seed %d)" % seed)
    return model.eval()


def _verification_input(spec, module, shape, seed, detection, notes, log):
    """The seeded input torch, onnxruntime and tinyrt are compared on."""
    if spec.task == "classification":
        return np.random.RandomState(seed).standard_normal(shape).astype(np.float32)
    x, count = _detection_input(module, shape, seed)
    if count == 0:
        notes.append("the verification input gave no boxes above score_thr %g: only the empty outputs "
                     "were compared" % detection["score_thr"])
    else:
        log("verification input: %d boxes from torch" % count)
    return x


def _export(spec, module, path, example, output_names, opset, opts):
    try:
        export_onnx(module, path, example, output_names, opset, opts.dynamic_batch, opts.dynamo)
    except ExporterError:
        raise
    except Exception as e:
        raise ExporterError("torch.onnx.export failed for %s at opset %d: %s: %s"
                            % (spec.name, opset, type(e).__name__, str(e).strip().splitlines()[0][:300]
                               if str(e).strip() else ""))


__all__ = ["convert", "ConvertOptions", "ConvertResult", "BACKENDS", "check_backend", "export_onnx", "ExporterWarning"]
