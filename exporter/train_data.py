"""The training data: a dataset split held in memory, and the batches a training step takes from it.

Pictures are squashed once when a split is loaded (Pillow's bilinear resize, as the exported file's
preprocessing does); a step then takes random crops / flips / quarter turns (classification) or random
flips with their boxes (detection) and normalises with the ImageNet mean/std the exported file records.
"""
import numpy as np
import torch

from tinyrt.vision.preprocess import IMAGENET_MEAN, IMAGENET_STD

from .data import read_classification_split, read_detection_split, spread

_MEAN = np.array(IMAGENET_MEAN, np.float32)
_STD = np.array(IMAGENET_STD, np.float32)


def _load_rgb(path, size):
    """A picture squashed to ``size`` = (w, h), bilinear, uint8 HWC, exactly as the exported file's
    preprocessing does it (Pillow's resize)."""
    from PIL import Image
    with Image.open(path) as im:
        im = im.convert("RGB")
        w0, h0 = im.size
        return np.asarray(im.resize(size, Image.BILINEAR), dtype=np.uint8), (w0, h0)


class ClassificationData:
    """A split held in memory: ``images`` uint8 [N, R, R, 3] squashed to the resize side R, ``labels`` [N]."""

    def __init__(self, path, split, resize, limit=None):
        items, self.classes = read_classification_split(path, split)
        if limit:
            items = spread(items, limit)
        self.paths = [p for p, _ in items]
        self.labels = np.array([lab for _, lab in items], dtype=np.int64)
        self.images = np.stack([_load_rgb(p, (resize, resize))[0] for p in self.paths]) if items else \
            np.zeros((0, resize, resize, 3), np.uint8)

    def __len__(self):
        return len(self.labels)


class DetectionData:
    """A split held in memory: ``images`` uint8 [N, S, S, 3] squashed to the input side S, and per picture
    the boxes (float32 [n, 4], x1 y1 x2 y2 in input pixels) and labels (int64 [n])."""

    def __init__(self, path, split, size, limit=None):
        items, self.classes = read_detection_split(path, split)
        if limit:
            items = spread(items, limit)
        self.paths, self.boxes, self.labels, self.original_boxes, imgs = [], [], [], [], []
        for p, boxes, labels in items:
            img, (w0, h0) = _load_rgb(p, (size, size))
            imgs.append(img)
            self.paths.append(p)
            self.original_boxes.append(boxes)
            self.boxes.append(boxes * np.array([size / w0, size / h0] * 2, np.float32))
            self.labels.append(labels)
        self.images = np.stack(imgs) if imgs else np.zeros((0, size, size, 3), np.uint8)

    def __len__(self):
        return len(self.images)




def normalise(batch_uint8):
    """uint8 [N, H, W, 3] -> float32 torch [N, 3, H, W], (x - mean) / std."""
    x = (batch_uint8.astype(np.float32) - _MEAN) / _STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))



def _flip_boxes(boxes, size, horizontal):
    b = boxes.copy()
    if horizontal:
        b[:, [0, 2]] = size - boxes[:, [2, 0]]
    else:
        b[:, [1, 3]] = size - boxes[:, [3, 1]]
    return b



def classification_batch(data, idx, size, rs):
    """Random crop of ``size`` from the resized pictures, random flips and quarter turns."""
    r = data.images.shape[1]
    out = np.empty((len(idx), size, size, 3), np.uint8)
    for k, i in enumerate(idx):
        top, left = rs.randint(0, r - size + 1, 2)
        img = data.images[i, top:top + size, left:left + size]
        if rs.rand() < 0.5:
            img = img[:, ::-1]
        img = np.rot90(img, rs.randint(4))
        out[k] = img
    return normalise(out), torch.from_numpy(data.labels[idx])


def detection_batch(data, idx, size, rs):
    """Pictures with random horizontal / vertical flips, and their boxes flipped alike."""
    imgs, boxes, labels = [], [], []
    for i in idx:
        img, b = data.images[i], data.boxes[i]
        if rs.rand() < 0.5:
            img, b = img[:, ::-1], _flip_boxes(b, size, True)
        if rs.rand() < 0.5:
            img, b = img[::-1], _flip_boxes(b, size, False)
        imgs.append(img)
        boxes.append(torch.from_numpy(np.ascontiguousarray(b, dtype=np.float32)))
        labels.append(torch.from_numpy(data.labels[i]))
    return normalise(np.stack(imgs)), boxes, labels


def centre_crop(images, size):
    r = images.shape[1]
    o = int(round((r - size) / 2.0))
    return images[:, o:o + size, o:o + size]
