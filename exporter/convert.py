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
import tempfile
import warnings

import numpy as np

from .checkpoint import (checkpoint_num_classes, checkpoint_settings, load_checkpoint, load_into, meta_classes,
                         to_model_layout)
from .classes import ExporterWarning, resolve_classes
from .errors import BackendError, ExporterError
from .metadata import EXPORTER_VERSION, build_metadata, write_metadata
from .models import backbone_names, get_backbone
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


def _out_paths(out_file):
    if not out_file:
        raise ExporterError("out_file is required, e.g. out_file='out/catdog.onnx'")
    out_file = os.fspath(out_file)
    if not out_file.lower().endswith(".onnx"):
        out_file += ".onnx"
    folder = os.path.dirname(os.path.abspath(out_file))
    stem = os.path.splitext(os.path.basename(out_file))[0]
    return os.path.abspath(out_file), os.path.join(folder, stem + ".py"), folder, stem


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


def convert(backbone=None, checkpoint=None, out_file=None, class_path=None, num_classes=None, opset=DEFAULT_OPSET,
            input_size=None, dynamic_batch=False, dynamo=False, backend="ONNX", width_mult=None,
            score_thr=None, iou_thr=None, max_per_img=None, nms_pre=None, max_per_image=None, report_thr=None,
            seed=0, log=print, verify_runtimes=("onnxruntime", "tinyrt"), quantize=None, calibration=None,
            force=False):
    """Convert ``backbone`` (an MMEdu name: MobileNet, ResNet18, LeNet, SSD_Lite, ...) to ONNX.

    Writes ``out_file`` (.onnx) and its sample script ``<stem>.py`` and returns a ConvertResult.
    ``checkpoint=None`` exports seeded random weights (for trying things out). Raises ExporterError (or a
    subclass: CheckpointError, ClassesError, VerificationError, BackendError) with a clear message.

    The checkpoint is trusted: the backbone, ``width_mult``, ``input_size`` and the class names it records
    (its ``meta``, or the training config mmcls / mmdet / MMEdu keep there) are used; an argument that
    disagrees with them is refused, naming both values.
    An existing ``<stem>.py`` that is not a sample script the exporter wrote is never replaced silently:
    refused, unless ``force=True``.
    """
    log = log or (lambda *a, **k: None)
    check_backend(backend)
    opset = check_opset(opset)
    onnx_path, script_path, folder, stem = _out_paths(out_file)
    _check_script_path(script_path, force)
    raw_sd, meta, settings = None, {}, {}
    if checkpoint is not None:
        raw_sd, meta = load_checkpoint(os.fspath(checkpoint))
        settings = checkpoint_settings(meta, raw_sd)
    spec = checkpoint_backbone(backbone, settings, checkpoint)
    width_mult, width_from = _settle("width_mult", None if width_mult is None else float(width_mult),
                                     settings.get("width_mult"), 1.0, "width_mult (--width-mult)")
    input_size, size_from = _settle("input_size", None if input_size is None else int(input_size),
                                    settings.get("input_size"), None, "input_size (--input-size)")
    if checkpoint is not None and (width_from.startswith("the checkpoint") or size_from.startswith("the checkpoint")):
        log("from the checkpoint: %s" % ", ".join(
            "%s %s (%s)" % (k, _show(v), src[len("the checkpoint's "):]) for k, v, src in
            (("width_mult", width_mult, width_from), ("input_size", input_size, size_from))
            if src.startswith("the checkpoint")))
    notes = []
    if max_per_image is not None:
        max_per_img = max_per_image
    detection = None
    if spec.task == "detection":
        detection = detection_settings(score_thr, iou_thr, max_per_img, nms_pre, report_thr)
    elif any(v is not None for v in (score_thr, iou_thr, max_per_img, nms_pre, report_thr)):
        raise ExporterError("score/iou thresholds, max_per_image and nms_pre are for detection backbones; "
                            "%s is a classifier" % spec.name)
    if quantize is not None:  # int8: refuse before anything is written when the pictures are missing
        from .quantize import check_request
        check_request(quantize, calibration, spec.task)
    size = spec.default_size if input_size is None else int(input_size)
    if spec.fixed_size and size != spec.default_size:
        raise ExporterError("%s takes %dx%d inputs only, not %d" % (spec.name, spec.default_size,
                                                                     spec.default_size, size))
    if size < 32:
        raise ExporterError("input_size %d is too small; use at least 32" % size)
    if width_mult is None:
        width_mult = 1.0
    width_mult = float(width_mult)
    if num_classes is not None:
        num_classes = int(num_classes)
        if num_classes < 1:
            raise ExporterError("num_classes must be at least 1, got %d" % num_classes)
    if dynamo and opset < DYNAMO_OPSET:
        notes.append("the dynamo exporter writes opset %d (torch cannot convert its graphs lower); "
                     "use dynamo=False for opset %d" % (DYNAMO_OPSET, opset))
        opset = DYNAMO_OPSET

    import torch

    # 1. weights and classes
    sd, layout = None, None
    if checkpoint is not None:
        sd, layout = to_model_layout(spec, raw_sd)
    classes, class_source = resolve_classes(num_classes, class_path, meta_classes(meta) if meta else None,
                                            checkpoint_num_classes(spec, sd) if sd is not None else None)
    num_classes = len(classes)

    # 2. the module
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
    model.eval()
    log("classes (%s): %s" % (class_source, ", ".join(classes[:20]) + (" ..." if len(classes) > 20 else "")))

    if spec.task == "classification":
        module = ClassifierExport(model)
        output_names = ["probs"]
    else:
        from .detection import DetectionExport
        module = DetectionExport(model, score_threshold=detection["score_thr"], iou_threshold=detection["iou_thr"],
                                 max_per_image=detection["max_per_img"], nms_pre=detection["nms_pre"],
                                 input_size=size).eval()
        output_names = ["dets", "labels"]

    batch = 2 if dynamic_batch else 1
    shape = (batch, spec.channels, size, size)
    if spec.task == "classification":
        x = np.random.RandomState(seed).standard_normal(shape).astype(np.float32)
    else:
        x, count = _detection_input(module, shape, seed)
        if count == 0:
            notes.append("the verification input gave no boxes above score_thr %g: only the empty outputs "
                         "were compared" % detection["score_thr"])
        else:
            log("verification input: %d boxes from torch" % count)

    # 3. export, metadata, verification, script: under temporary names
    try:
        os.makedirs(folder, exist_ok=True)
        tmp_onnx = _temp_name(folder, stem, ".onnx")
        try:
            tmp_py = _temp_name(folder, stem, ".py")
        except OSError:
            _remove(tmp_onnx)
            raise
    except OSError as e:
        raise ExporterError("cannot write into the output folder %s: %s; choose a folder you can write to"
                            % (folder, e.strerror or e)) from None
    try:
        log("exporting %s (%s exporter, opset %d%s) ..." % (spec.name, "dynamo" if dynamo else "TorchScript",
                                                            opset, ", dynamic batch" if dynamic_batch else ""))
        try:
            export_onnx(module, tmp_onnx, torch.from_numpy(x), output_names, opset, dynamic_batch, dynamo)
        except ExporterError:
            raise
        except Exception as e:
            raise ExporterError("torch.onnx.export failed for %s at opset %d: %s: %s"
                                % (spec.name, opset, type(e).__name__, str(e).strip().splitlines()[0][:300]
                                   if str(e).strip() else ""))
        props = build_metadata(spec, classes, size, INPUT_NAME, output_names, opset, EXPORTER_VERSION,
                               dynamic_batch=dynamic_batch, detection=detection, width_mult=width_mult,
                               source=os.path.basename(os.fspath(checkpoint)) if checkpoint is not None else None)
        write_metadata(tmp_onnx, props, doc_string="%s exported by tinyrt's exporter" % spec.name)
        import onnx
        onnx.checker.check_model(tmp_onnx)
        report = verify(tmp_onnx, module, {INPUT_NAME: x}, output_names, log=log, runtimes=verify_runtimes,
                        detection=detection)
        if quantize is not None:
            from .quantize import quantize_in_place
            report.int8 = quantize_in_place(tmp_onnx, calibration, log=log)  # the accuracy difference too
        from .sample_script import render
        with open(tmp_py, "w", encoding="utf-8") as f:
            f.write(render(stem + ".onnx", spec.task))
        try:
            os.replace(tmp_onnx, onnx_path)
        except OSError as e:
            raise ExporterError("cannot write %s: %s" % (onnx_path, e.strerror or e)) from None
        try:
            os.replace(tmp_py, script_path)
        except BaseException as e:
            _remove(onnx_path)
            if isinstance(e, OSError):
                raise ExporterError("cannot write %s: %s" % (script_path, e.strerror or e)) from None
            raise
    finally:
        _remove(tmp_onnx)
        _remove(tmp_py)
    for note in notes:
        log("note: " + note)
    log("wrote %s and %s" % (_rel(onnx_path), _rel(script_path)))
    return ConvertResult(onnx_path, script_path, classes, props, report, list(shape), opset, notes)


def _check_script_path(script_path, force):
    """Refuse to replace a .py that is not one of our sample scripts (``--out train.onnx`` next to train.py)."""
    from .sample_script import is_sample_script
    if os.path.lexists(script_path) and not force and not is_sample_script(script_path):
        raise ExporterError("%s exists and is not a sample script the exporter wrote; the sample script would "
                            "replace it. Choose another --out name, or pass --force (force=True) to replace it"
                            % script_path)


def _temp_name(folder, stem, suffix):
    # the writer's process id in the name: a later convert removes the parts of a writer that died (kill -9)
    _remove_stale_parts(folder, stem)
    fd, path = tempfile.mkstemp(prefix=".%s.%d." % (stem, os.getpid()), suffix=suffix + ".part", dir=folder)
    os.close(fd)
    umask = os.umask(0)   # mkstemp makes the file private (0600); give it the mode open() would
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
    return path


def _remove_stale_parts(folder, stem):
    """Remove ``.<stem>.<pid>.*.part`` files whose writer process no longer runs."""
    prefix = "." + stem + "."
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".part")):
            continue
        pid = name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            _remove(os.path.join(folder, name))


def _running(pid):
    if pid == os.getpid() or os.name != "posix":  # on Windows os.kill(pid, 0) would end that process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process, or a system that cannot tell: leave its files alone
    return True


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _rel(path):
    try:
        rel = os.path.relpath(path)
        return rel if not rel.startswith("..") else path
    except ValueError:
        return path


__all__ = ["convert", "ConvertResult", "BACKENDS", "check_backend", "export_onnx", "ExporterWarning"]
