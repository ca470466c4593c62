"""Accuracy of an exported ONNX file, measured through a runtime (tinyrt or onnxruntime), not torch.

    python -m exporter.evaluate out/shapes_cls.onnx out/shapes_cls_data        # top-1 on the test split
    python -m exporter.evaluate out/shapes_det.onnx out/shapes_det_data        # mAP@0.5 on the test split

Each picture goes through the preprocessing the file's metadata describes (``tinyrt.preprocess``, see
docs/metadata.md), prepared by tinyrt's own recipe (tinyrt/vision/preprocess.py), then through the runtime's
``InferenceSession`` at batch 1, as a board would run it.

mAP@0.5 (:func:`mean_average_precision`): per class, detections of all pictures sorted by score (best
first); a detection is a true positive when its IoU with a not yet matched ground-truth box of that class
in its picture is >= 0.5 (the box it overlaps most; a second detection of an already matched box is a false
positive); precision / recall along that list; AP is the area under the precision-recall curve with
precision made monotone (all-point interpolation, as in VOC2010+ and COCO's per-threshold AP without COCO's
101-point sampling). Classes without ground truth are left out of the mean. Areas use continuous
coordinates (w = x2 - x1, no "+1").
"""
import json
import sys
import time

import numpy as np

from .data import read_classification_split, read_detection_split, spread


# ---------------------------------------------------------------------------------------------- metrics


def box_iou(a, b):
    """IoU matrix [M, N] of boxes a [M, 4] and b [N, 4] (x1, y1, x2, y2), numpy float64."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def average_precision(recall, precision):
    """All-point interpolated AP: the area under the precision-recall curve after making precision
    non-increasing from the right (VOC2010+). ``recall`` increasing, both 1-D, same length."""
    r = np.concatenate([[0.0], np.asarray(recall, np.float64), [1.0]])
    p = np.concatenate([[0.0], np.asarray(precision, np.float64), [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]          # the precision envelope
    i = np.nonzero(r[1:] != r[:-1])[0]                 # where recall steps
    return float(np.sum((r[i + 1] - r[i]) * p[i + 1]))


def mean_average_precision(detections, ground_truths, num_classes, iou_thr=0.5):
    """mAP over the classes that have ground truth, and the per-class APs (NaN for a class without any).

    ``detections``: per picture ``(boxes [n, 4], scores [n], labels [n])``; ``ground_truths``: per picture
    ``(boxes [m, 4], labels [m])``; boxes x1, y1, x2, y2 in the same pixels."""
    if len(detections) != len(ground_truths):
        raise ValueError("%d detection lists for %d pictures" % (len(detections), len(ground_truths)))
    aps = []
    for c in range(num_classes):
        gts = [np.asarray(b, np.float64).reshape(-1, 4)[np.asarray(lab) == c] for b, lab in ground_truths]
        n_gt = sum(len(g) for g in gts)
        if n_gt == 0:
            aps.append(float("nan"))
            continue
        rows = []   # (score, picture, box)
        for img, (boxes, scores, labels) in enumerate(detections):
            boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
            scores, labels = np.asarray(scores).reshape(-1), np.asarray(labels).reshape(-1)
            for k in np.nonzero(labels == c)[0]:
                rows.append((float(scores[k]), img, boxes[k]))
        rows.sort(key=lambda r: -r[0])                  # stable: equal scores keep picture order
        matched = [np.zeros(len(g), bool) for g in gts]
        tp = np.zeros(len(rows))
        for k, (_, img, box) in enumerate(rows):
            g = gts[img]
            if len(g):
                ious = box_iou(box[None], g)[0]
                j = int(np.argmax(ious))
                if ious[j] >= iou_thr and not matched[img][j]:
                    matched[img][j] = True
                    tp[k] = 1
        ctp = np.cumsum(tp)
        recall = ctp / n_gt
        precision = ctp / np.arange(1, len(rows) + 1)
        aps.append(average_precision(recall, precision) if rows else 0.0)
    valid = [a for a in aps if not np.isnan(a)]
    return (float(np.mean(valid)) if valid else 0.0), aps


# ------------------------------------------------------------------------------------- through a runtime


def session(path, runtime):
    """An InferenceSession of ``runtime`` ('tinyrt' or 'onnxruntime') for ``path``."""
    if runtime == "tinyrt":
        import tinyrt
        return tinyrt.InferenceSession(path)
    if runtime == "onnxruntime":
        import onnxruntime
        opts = onnxruntime.SessionOptions()
        opts.log_severity_level = 3
        return onnxruntime.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    raise ValueError("runtime must be 'tinyrt' or 'onnxruntime', not %r" % runtime)


def read_metadata(sess):
    meta = sess.get_modelmeta().custom_metadata_map
    return meta["tinyrt.task"], json.loads(meta["tinyrt.classes"]), json.loads(meta["tinyrt.preprocess"])


def preprocess(path_or_image, pre):
    """A picture -> (float32 [1, C, H, W], (original width, height)), following the file's ``tinyrt.preprocess``
    exactly as ``tinyrt.run`` does (tinyrt/vision/preprocess.py: the basedt or the pillow pipeline)."""
    from tinyrt.vision.preprocess import Recipe
    recipe = Recipe("", [], pre["color"], pre["resize"], pre.get("crop"), pre["mean"], pre["std"],
                    pipeline=pre.get("pipeline") or "pillow")
    picture, _ = recipe.read(path_or_image)
    x, geometry = recipe.prepare(picture)
    return x, (geometry.width, geometry.height)


def detections_in_picture(dets, labels, x_shape, original):
    """The real rows of one picture's outputs, boxes scaled from network-input to picture pixels."""
    keep = dets[:, 4] > 0
    sx, sy = original[0] / float(x_shape[3]), original[1] / float(x_shape[2])
    boxes = dets[keep, :4].astype(np.float64) * np.array([sx, sy, sx, sy])
    return boxes, dets[keep, 4].astype(np.float64), labels[keep].astype(np.int64)


def evaluate_classifier(onnx_path, dataset, split="test", runtime="tinyrt", limit=None):
    """Top-1 accuracy (0..1) of ``onnx_path`` on a classification split, and the number of pictures."""
    items, classes = read_classification_split(dataset, split)
    if limit:
        items = spread(items, limit)
    sess = session(onnx_path, runtime)
    task, model_classes, pre = read_metadata(sess)
    _check_classes(model_classes, classes)
    name = sess.get_inputs()[0].name
    correct = 0
    for path, label in items:
        x, _ = preprocess(path, pre)
        correct += int(np.argmax(sess.run(None, {name: x})[0][0]) == label)
    return correct / max(1, len(items)), len(items)


def evaluate_detector(onnx_path, dataset, split="test", runtime="tinyrt", limit=None, iou_thr=0.5):
    """mAP@``iou_thr`` (0..1) of ``onnx_path`` on a COCO-style split; returns (mAP, per-class APs, pictures)."""
    items, classes = read_detection_split(dataset, split)
    if limit:
        items = spread(items, limit)
    sess = session(onnx_path, runtime)
    task, model_classes, pre = read_metadata(sess)
    _check_classes(model_classes, classes)
    name = sess.get_inputs()[0].name
    dets_all, gts = [], []
    for path, boxes, labels in items:
        x, original = preprocess(path, pre)
        dets, labs = sess.run(None, {name: x})
        dets_all.append(detections_in_picture(dets[0], labs[0], x.shape, original))
        gts.append((boxes, labels))
    m, aps = mean_average_precision(dets_all, gts, len(model_classes), iou_thr)
    return m, aps, len(items)


def _check_classes(model_classes, data_classes):
    if list(model_classes) != list(data_classes):
        raise ValueError("the model's classes %s are not the dataset's %s" % (model_classes, data_classes))


def main(argv=None):
    import argparse
    p = argparse.ArgumentParser(prog="python -m exporter.evaluate",
                                description="Accuracy of an exported file through tinyrt and onnxruntime.")
    p.add_argument("model", help="the .onnx file (classification or detection, from the exporter)")
    p.add_argument("dataset", help="the dataset folder (MMEdu layout, e.g. from python -m exporter.data)")
    p.add_argument("--split", default="test")
    p.add_argument("--runtime", action="append", choices=["tinyrt", "onnxruntime"],
                   help="runtime(s) to measure (default both)")
    p.add_argument("--limit", type=int, help="at most this many pictures")
    args = p.parse_args(argv)
    for rt in args.runtime or ["tinyrt", "onnxruntime"]:
        t = time.time()
        sess = session(args.model, rt)
        task = read_metadata(sess)[0]
        if task == "classification":
            acc, n = evaluate_classifier(args.model, args.dataset, args.split, rt, args.limit)
            print("%-12s top-1 %.2f%% on %d pictures (%.1f s)" % (rt, 100 * acc, n, time.time() - t))
        else:
            m, aps, n = evaluate_detector(args.model, args.dataset, args.split, rt, args.limit)
            print("%-12s mAP@0.5 %.4f on %d pictures (per class %s) (%.1f s)" % (
                rt, m, n, ", ".join("%.3f" % a for a in aps), time.time() - t))
    return 0


if __name__ == "__main__":
    sys.exit(main())
