"""Synthetic shape datasets in MMEdu's layouts, made from a seed.

    python -m exporter.data classification out/shapes_cls --seed 0
    python -m exporter.data detection out/shapes_det --seed 0

Classification (ImageNet-style class folders, what MMEdu's ``MMClassification.load_dataset`` reads)::

    out/shapes_cls/classes.txt                       one class name a line, index = label
    out/shapes_cls/training_set/circle/00000.jpg     one folder per class
    out/shapes_cls/val_set/<class>/*.jpg   + val.txt   ("circle/00007.jpg 0" lines, mmcls's ann_file)
    out/shapes_cls/test_set/<class>/*.jpg  + test.txt

Detection (COCO-style JSON, what MMEdu's ``MMDetection.load_dataset`` reads)::

    out/shapes_det/classes.txt
    out/shapes_det/annotations/train.json, valid.json, test.json   COCO: images, annotations, categories
    out/shapes_det/images/train/00000.jpg, images/valid/..., images/test/...

COCO boxes are ``[x, y, width, height]`` in picture pixels; category ids are 1..C in the order of classes.txt
(a label is the category id minus 1, as mmdet's CocoDataset maps them).

Every picture has its own random stream, seeded by (seed, split, index): the same seed gives the same
dataset, and asking for more pictures of a split leaves the first ones unchanged.
"""
import json
import os

import numpy as np

from .shapes import CLASSES, classification_scene, detection_scene, draw_scene, shape_outline

CLS_SPLITS = {"train": "training_set", "val": "val_set", "test": "test_set"}
DET_SPLITS = {"train": "train", "val": "valid", "test": "test"}
_SPLIT_IDS = {"train": 0, "val": 1, "test": 2, "sample": 3}
JPEG_QUALITY = 92


def _stream(seed, split, index):
    return np.random.RandomState([int(seed), _SPLIT_IDS[split], int(index)])


def _save(arr, path):
    from PIL import Image
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(arr).save(path, quality=JPEG_QUALITY)


def write_classes(path, classes):
    with open(os.path.join(path, "classes.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(classes) + "\n")


def read_classes(path):
    with open(os.path.join(path, "classes.txt"), encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def classification_sample(seed, split, index, size=112, classes=CLASSES):
    """One classification picture: ``(uint8 [size, size, 3], label)``."""
    return classification_scene(_stream(seed, split, index), size, classes)


def detection_sample(seed, split, index, width=320, height=320, classes=CLASSES, **kw):
    """One detection picture: ``(uint8 [h, w, 3], [(label, (x1, y1, x2, y2)), ...])``."""
    return detection_scene(_stream(seed, split, index), width, height, classes, **kw)


def make_classification_dataset(path, seed=0, train=2000, val=200, test=400, size=112, classes=CLASSES,
                                log=None):
    """Write an ImageNet-style classification dataset at ``path``; returns ``path``."""
    os.makedirs(path, exist_ok=True)
    write_classes(path, classes)
    for split, count in (("train", train), ("val", val), ("test", test)):
        folder = os.path.join(path, CLS_SPLITS[split])
        lines = []
        for i in range(count):
            arr, label = classification_sample(seed, split, i, size, classes)
            rel = "%s/%05d.jpg" % (classes[label], i)
            _save(arr, os.path.join(folder, rel))
            lines.append("%s %d" % (rel, label))
        for c in classes:   # every class has its folder, even an empty one
            os.makedirs(os.path.join(folder, c), exist_ok=True)
        if split != "train":
            with open(os.path.join(path, split + ".txt"), "w", encoding="utf-8") as f:
                f.write("\n".join(lines) + ("\n" if lines else ""))
        if log:
            log("%s: %d pictures in %s" % (split, count, folder))
    return path


def coco_dict(records, classes):
    """COCO JSON for ``records`` = [(file_name, width, height, [(label, (x1, y1, x2, y2)), ...]), ...]."""
    images, annotations = [], []
    for image_id, (name, w, h, objs) in enumerate(records, 1):
        images.append({"id": image_id, "file_name": name, "width": int(w), "height": int(h)})
        for label, (x1, y1, x2, y2) in objs:
            bw, bh = x2 - x1, y2 - y1
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(label) + 1,
                                "bbox": [round(x1, 2), round(y1, 2), round(bw, 2), round(bh, 2)],
                                "area": round(bw * bh, 2), "iscrowd": 0})
    categories = [{"id": i + 1, "name": c, "supercategory": "shape"} for i, c in enumerate(classes)]
    return {"images": images, "annotations": annotations, "categories": categories}


def make_detection_dataset(path, seed=0, train=2000, val=100, test=200, width=320, height=320, classes=CLASSES,
                           log=None, **scene_kw):
    """Write a COCO-style detection dataset at ``path``; returns ``path``."""
    os.makedirs(os.path.join(path, "annotations"), exist_ok=True)
    write_classes(path, classes)
    for split, count in (("train", train), ("val", val), ("test", test)):
        sub = DET_SPLITS[split]
        records = []
        for i in range(count):
            arr, objs = detection_sample(seed, split, i, width, height, classes, **scene_kw)
            name = "%05d.jpg" % i
            _save(arr, os.path.join(path, "images", sub, name))
            records.append((name, width, height, objs))
        os.makedirs(os.path.join(path, "images", sub), exist_ok=True)
        with open(os.path.join(path, "annotations", sub + ".json"), "w", encoding="utf-8") as f:
            json.dump(coco_dict(records, classes), f)
        if log:
            log("%s: %d pictures, %d boxes in %s" % (split, count, sum(len(r[3]) for r in records),
                                                    os.path.join(path, "images", sub)))
    return path


def make_samples(folder, seed=0, per_task=4, cls_size=112, det_size=320, classes=CLASSES):
    """A handful of pictures with their ground truth, for demos and tests: ``cls_<class>.jpg`` (one per class,
    the first of the "sample" split with that class), ``det_<i>.jpg`` (the first ``per_task`` of it) and
    ``samples.json`` = {file: {"task", "label"/"objects": [{"label", "name", "box"}]}}."""
    os.makedirs(folder, exist_ok=True)
    truth = {}
    found, i = set(), 0
    while len(found) < min(per_task, len(classes)) and i < 1000:
        arr, label = classification_sample(seed, "sample", i, cls_size, classes)
        i += 1
        if label in found:
            continue
        found.add(label)
        name = "cls_%s.jpg" % classes[label]
        _save(arr, os.path.join(folder, name))
        truth[name] = {"task": "classification", "label": label, "name": classes[label]}
    for k in range(per_task):
        arr, objs = detection_sample(seed, "sample", 1000 + k, det_size, det_size, classes)
        name = "det_%d.jpg" % k
        _save(arr, os.path.join(folder, name))
        truth[name] = {"task": "detection", "objects": [
            {"label": int(lab), "name": classes[lab], "box": [round(float(v), 2) for v in box]}
            for lab, box in objs]}
    with open(os.path.join(folder, "samples.json"), "w", encoding="utf-8") as f:
        json.dump(truth, f, indent=1, sort_keys=True)
    return truth


def read_classification_split(path, split):
    """``[(picture path, label), ...]`` of a split (``train``/``val``/``test`` or MMEdu's folder names)."""
    classes = read_classes(path)
    folder = os.path.join(path, CLS_SPLITS.get(split, split))
    if not os.path.isdir(folder) and split in CLS_SPLITS and os.path.isdir(os.path.join(path, split)):
        folder = os.path.join(path, split)
    items = []
    for label, c in enumerate(classes):
        d = os.path.join(folder, c)
        if os.path.isdir(d):
            for name in sorted(os.listdir(d)):
                if name.lower().endswith((".jpg", ".jpeg", ".png", ".bmp")):
                    items.append((os.path.join(d, name), label))
    return items, classes


def read_detection_split(path, split):
    """``([(picture path, boxes float32 [n, 4] x1y1x2y2, labels int64 [n]), ...], classes)`` of a split."""
    sub = DET_SPLITS.get(split, split)
    with open(os.path.join(path, "annotations", sub + ".json"), encoding="utf-8") as f:
        coco = json.load(f)
    cats = sorted(coco["categories"], key=lambda c: c["id"])
    cat_to_label = {c["id"]: i for i, c in enumerate(cats)}
    classes = [c["name"] for c in cats]
    per_image = {im["id"]: [] for im in coco["images"]}
    for a in coco["annotations"]:
        x, y, w, h = a["bbox"]
        per_image[a["image_id"]].append((x, y, x + w, y + h, cat_to_label[a["category_id"]]))
    items = []
    for im in coco["images"]:
        objs = per_image[im["id"]]
        boxes = np.array([o[:4] for o in objs], dtype=np.float32).reshape(-1, 4)
        labels = np.array([o[4] for o in objs], dtype=np.int64)
        items.append((os.path.join(path, "images", sub, im["file_name"]), boxes, labels))
    return items, classes



def spread(items, limit):
    """At most ``limit`` items, taken evenly over the list (so every class folder contributes)."""
    if len(items) <= limit:
        return items
    idx = np.linspace(0, len(items) - 1, int(limit)).round().astype(int)
    return [items[i] for i in idx]


__all__ = ["CLASSES", "spread", "make_samples", "make_classification_dataset", "make_detection_dataset", "classification_sample",
           "detection_sample", "read_classification_split", "read_detection_split", "read_classes",
           "coco_dict", "draw_scene", "shape_outline"]
