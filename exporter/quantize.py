"""int8 models: onnxruntime's static quantization (QDQ format), calibrated on the user's own pictures.

    python -m exporter convert --backbone MobileNet --checkpoint best.pth --out cls.onnx --int8 my_dataset
    exporter.convert("MobileNet", checkpoint="best.pth", out_file="cls.onnx", quantize="int8",
                     calibration="my_dataset")

``calibration`` is a dataset folder in MMEdu's layout (``classes.txt`` and ``val_set/`` with a folder per
class for classifiers; ``annotations/valid.json`` + pictures for detectors, as exporter.data writes them),
or any folder of pictures. Up to ``CALIBRATION_PICTURES`` of them, prepared exactly as tinyrt.run prepares
a picture (the preprocessing stored in the model file), give each activation its range. Then:

- onnxruntime's ``quantize_static`` writes the QDQ model: int8 weights per output channel with 7-bit range
  (``reduce_range``: onnxruntime's advice for x86 machines without VNNI, whose kernels otherwise saturate,
  and what keeps onnxruntime and tinyrt on the same integers everywhere), uint8 activations;
- the usual verification: onnxruntime and tinyrt run the int8 model on calibration pictures and must give
  the same top class (detectors: the same boxes' labels), their largest difference is printed;
- when the pictures carry labels (a labelled split), the float and int8 models' top-1 (detectors:
  mAP@0.5) on them, and the difference, are printed and returned.
"""
import os
import tempfile

import numpy as np

from .errors import ExporterError

CALIBRATION_PICTURES = 100
ACCURACY_PICTURES = 400   # labelled pictures the float and int8 models are compared on
PICTURE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def _pictures_in(folder):
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(PICTURE_EXTENSIONS):
                found.append(os.path.join(root, name))
    return found


def _spread(items, limit):
    """At most ``limit`` items spread evenly over the list (every class, not the first one only)."""
    if len(items) <= limit:
        return list(items)
    step = len(items) / float(limit)
    return [items[int(i * step)] for i in range(limit)]


def calibration_set(dataset, task, limit=CALIBRATION_PICTURES):
    """(picture paths, labelled split or None): the pictures to calibrate on; ExporterError when none."""
    if not dataset:
        raise ExporterError("int8 quantization calibrates on your own pictures: give a dataset folder "
                            "(--int8 DATASET, or calibration=DATASET), e.g. the one you trained on")
    dataset = os.fspath(dataset)
    if not os.path.isdir(dataset):
        raise ExporterError("calibration pictures: %s is not a folder; give the dataset folder you trained on "
                            "(with classes.txt and val_set/) or any folder of pictures" % dataset)
    from .data import read_classification_split, read_detection_split
    for split in ("val", "test", "train"):
        try:
            if task == "classification":
                items, _ = read_classification_split(dataset, split)
                paths = [p for p, _ in items]
            else:
                items, _ = read_detection_split(dataset, split)
                paths = [p for p, _, _ in items]
        except (OSError, ValueError, KeyError):
            continue
        if paths:
            return _spread(paths, limit), split
    paths = _pictures_in(dataset)
    if not paths:
        raise ExporterError("calibration pictures: no .jpg/.png/.bmp pictures in %s; int8 quantization needs "
                            "some of your own pictures (a few dozen is enough)" % dataset)
    return _spread(paths, limit), None


def check_request(quantize, calibration, task):
    """convert()'s early check: a known quantization and calibration pictures to run it on."""
    if quantize != "int8":
        raise ExporterError("quantize=%r: the exporter quantizes to 'int8' only" % (quantize,))
    calibration_set(calibration, task)


class _Reader:
    """onnxruntime's CalibrationDataReader: one prepared picture at a time."""

    def __init__(self, name, paths, pre):
        from .evaluate import preprocess
        self.items = iter([{name: preprocess(p, pre)[0]} for p in paths])

    def get_next(self):
        return next(self.items, None)


def quantize_file(float_path, out_path, dataset, log=print):
    """Write the int8 QDQ model of ``float_path`` (an exporter file) to ``out_path``; returns a report dict."""
    log = log or (lambda *a, **k: None)
    try:
        from onnxruntime import quantization as q
    except ImportError:
        raise ExporterError("int8 quantization uses onnxruntime's quantization tool: pip install onnxruntime")
    from .evaluate import read_metadata, session
    float_sess = session(float_path, "tinyrt")
    task, classes, pre = read_metadata(float_sess)
    name = float_sess.get_inputs()[0].name
    paths, split = calibration_set(dataset, task)
    log("int8: calibrating on %d pictures of %s%s" % (len(paths), dataset, " (%s split)" % split if split else ""))
    q.quantize_static(float_path, out_path, _Reader(name, paths, pre), quant_format=q.QuantFormat.QDQ,
                      per_channel=True, activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8,
                      reduce_range=True)
    _copy_metadata(float_path, out_path)
    report = {"pictures": len(paths), "split": split}
    report.update(_verify(out_path, paths[:8], pre, name, task))
    log("int8: onnxruntime and tinyrt agree on %d pictures (largest difference %.3g)"
        % (report["verified"], report["max_diff"]))
    if split is not None:
        report.update(_accuracy(float_path, out_path, dataset, split, task))
        log("int8: %s on %d pictures of the %s split: float %.4f, int8 %.4f (%+.4f)"
            % (report["metric"], report["count"], split, report["float"], report["int8"],
               report["int8"] - report["float"]))
    else:
        log("int8: the pictures carry no labels, so no accuracy difference is measured")
    return report


def _copy_metadata(src, dst):
    """The class names and preprocessing stay in the file (onnxruntime's tool may drop metadata)."""
    import onnx
    original = onnx.load(src, load_external_data=False)
    model = onnx.load(dst)
    keys = {p.key for p in model.metadata_props}
    for prop in original.metadata_props:
        if prop.key not in keys:
            model.metadata_props.add(key=prop.key, value=prop.value)
    model.doc_string = original.doc_string
    onnx.save(model, dst)


def _verify(path, paths, pre, name, task):
    """onnxruntime and tinyrt on the int8 model: same top classes (labels), and their largest difference."""
    from .evaluate import preprocess, session
    from .errors import VerificationError
    ort_sess, tiny_sess = session(path, "onnxruntime"), session(path, "tinyrt")
    worst = 0.0
    for p in paths:
        x = {name: preprocess(p, pre)[0]}
        want, got = ort_sess.run(None, x), tiny_sess.run(None, x)
        for w, g in zip(want, got):
            if w.shape != g.shape:
                raise VerificationError("int8 model: tinyrt gives shape %s, onnxruntime %s on %s" % (g.shape, w.shape, p))
            if w.size:
                worst = max(worst, float(np.abs(w.astype(np.float64) - g).max()))
        same = (np.argmax(want[0][0]) == np.argmax(got[0][0])) if task == "classification" else \
            np.array_equal(want[-1], got[-1])
        if not same:
            raise VerificationError("int8 model: tinyrt and onnxruntime disagree on %s (largest difference %.3g)"
                                    % (p, worst))
    return {"verified": len(paths), "max_diff": worst}


def _accuracy(float_path, int8_path, dataset, split, task):
    from .evaluate import evaluate_classifier, evaluate_detector
    if task == "classification":
        f, n = evaluate_classifier(float_path, dataset, split, limit=ACCURACY_PICTURES)
        i, _ = evaluate_classifier(int8_path, dataset, split, limit=ACCURACY_PICTURES)
        return {"metric": "top-1", "float": f, "int8": i, "count": n}
    f, _, n = evaluate_detector(float_path, dataset, split, limit=ACCURACY_PICTURES)
    i = evaluate_detector(int8_path, dataset, split, limit=ACCURACY_PICTURES)[0]
    return {"metric": "mAP@0.5", "float": f, "int8": i, "count": n}


def quantize_in_place(path, dataset, log=print):
    """Replace the float model at ``path`` by its int8 version (written beside it first, then moved)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".int8.", suffix=".onnx.part", dir=folder)
    os.close(fd)
    try:
        report = quantize_file(path, tmp, dataset, log=log)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return report
