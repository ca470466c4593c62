"""A small training helper, read the way MMEdu's is: fine-tune our small models on the CPU in minutes.

    from exporter import Classifier
    model = Classifier(backbone="MobileNet", width_mult=0.35, input_size=96)
    model.load_dataset("out/shapes_cls")            # ImageNet-style folders + classes.txt
    model.save_fold = "checkpoints/shapes_cls"
    model.train(epochs=10, lr=0.003, batch_size=32, optimizer="AdamW")  # checkpoint=...: start from a .pth

    from exporter import Detector
    model = Detector(backbone="SSD_Lite", width_mult=0.35, input_size=160)
    model.load_dataset("out/shapes_det")            # COCO-style annotations/*.json + images/*
    # a classifier's MobileNetV2 backbone (mmcls keys) can start the detector: mmcls_backbone_for_ssdlite
    model.train(epochs=8, lr=0.003, batch_size=16, optimizer="AdamW", checkpoint="classifier.pth")

It is a helper for the demo and for fine-tuning small models, not a training framework: one process, the
CPU, the whole (resized) dataset in memory, no distributed anything.

What it does, per task:

* classification: the pictures are squashed to the exporter's resize size once (``round(size*256/224)``);
  each step takes a random ``size`` crop (the exported file takes the centre crop), random flips and quarter
  turns, normalises with the ImageNet mean/std and minimises cross-entropy. Validation: top-1 on the
  centre crop.
* detection (SSD-Lite, mmdet's recipe): pictures are squashed to ``size`` x ``size`` (the exporter's
  preprocessing) and flipped at random. Targets follow mmdet's SSDHead: every anchor is matched to the ground
  truth box it overlaps most (MaxIoUAssigner: IoU >= 0.5 positive, < 0.5 background, and each box also gets
  its single best anchor whatever the IoU); positives regress DeltaXYWH offsets (means 0, stds 0.1 0.1 0.2
  0.2) with smooth-L1 (beta 1); the classification loss is cross-entropy over C+1 classes (background last)
  on all positives plus the 3x as many hardest negatives (hard-negative mining 3:1); both are divided by the
  number of positives. Validation: mAP@0.5 of the post-processed detections (the same graph that is
  exported, run in torch).

Optimiser: SGD (momentum 0.9, MMEdu's default) or Adam/AdamW, weight decay 4e-5 (none on BatchNorm and
biases), a linear warm-up over the first iterations, then a cosine decay to 1% of ``lr``. Seeded: the same
seed and the same dataset give the same run (up to the CPU's floating-point thread scheduling).

Checkpoints are MMEdu's: ``{"meta": {"CLASSES": [...], "epoch": n, ...}, "state_dict": {...}}`` in
``save_fold``: ``latest.pth`` every epoch and ``best_accuracy_top-1_epoch_N.pth`` /
``best_bbox_mAP_epoch_N.pth`` for the best validation so far, which the exporter converts as they are.
"""
import math
import os
import sys
import time

import numpy as np

from .errors import ExporterError

IMAGENET_MEAN = np.array([123.675, 116.28, 103.53], np.float32)
IMAGENET_STD = np.array([58.395, 57.12, 57.375], np.float32)


# ------------------------------------------------------------------------------------------------ data


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
        from .data import read_classification_split
        items, self.classes = read_classification_split(path, split)
        if limit:
            items = _spread(items, limit)
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
        from .data import read_detection_split
        items, self.classes = read_detection_split(path, split)
        if limit:
            items = _spread(items, limit)
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


def _spread(items, limit):
    """At most ``limit`` items, taken evenly over the list (so every class folder contributes)."""
    if len(items) <= limit:
        return items
    idx = np.linspace(0, len(items) - 1, int(limit)).round().astype(int)
    return [items[i] for i in idx]


def _normalise(batch_uint8):
    """uint8 [N, H, W, 3] -> float32 torch [N, 3, H, W], (x - mean) / std."""
    import torch
    x = (batch_uint8.astype(np.float32) - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


# ------------------------------------------------------------------------------------------ progress


class Progress:
    """A one-line progress bar (redrawn in place on a terminal; only the epoch summaries otherwise)."""

    def __init__(self, total, prefix, stream=None, width=24):
        self.total, self.prefix, self.width = total, prefix, width
        self.stream = stream or sys.stderr
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.time()

    def update(self, done, text=""):
        if not self.live:
            return
        filled = int(self.width * done / max(1, self.total))
        elapsed = time.time() - self.start
        eta = elapsed / max(1, done) * (self.total - done)
        self.stream.write("\r%s [%s%s] %d/%d %s %.0fs<%.0fs  " % (
            self.prefix, "#" * filled, "." * (self.width - filled), done, self.total, text, elapsed, eta))
        self.stream.flush()

    def close(self):
        if self.live:
            self.stream.write("\r" + " " * 100 + "\r")
            self.stream.flush()


# ------------------------------------------------------------------------------------------ optimiser


def _optimizer(model, optimizer, lr, weight_decay):
    import torch
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)   # no decay on BatchNorm weights and biases
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    name = str(optimizer).lower()
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise ExporterError("optimizer %r is not available; choose SGD, Adam or AdamW" % optimizer)


def _lr_at(step, total, base, warmup):
    """Linear warm-up over ``warmup`` steps, then cosine from ``base`` down to 1% of it."""
    if step < warmup:
        return base * (0.1 + 0.9 * step / max(1, warmup))
    t = (step - warmup) / max(1, total - warmup)
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def _load_pretrained(model, spec, checkpoint, log):
    """Start from ``checkpoint`` (MMEdu's ``train(checkpoint=...)``): every tensor whose key and shape fit;
    a classification head for other classes is left at its fresh initialisation."""
    from .checkpoint import load_checkpoint, to_model_layout
    sd, _ = load_checkpoint(os.fspath(checkpoint))
    if spec.name == "SSD_Lite" and any(k.startswith("backbone.layer1.0.conv.") for k in sd):
        sd, layout = mmcls_backbone_for_ssdlite(sd), "mmcls MobileNetV2 backbone (a classifier)"
    else:
        sd, layout = to_model_layout(spec, sd)
    own = model.state_dict()
    fitting = {k: v for k, v in sd.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    if not fitting:
        raise ExporterError("checkpoint %s has no tensor that fits %s (width_mult %s?)"
                            % (checkpoint, spec.name, getattr(model, "width_mult", "?")))
    model.load_state_dict(fitting, strict=False)
    skipped = len(own) - len(fitting)
    log("started from %s (%s layout): %d tensors loaded%s" % (
        checkpoint, layout, len(fitting), (", %d left fresh (e.g. a head for other classes)" % skipped)
        if skipped else ""))


def mmcls_backbone_for_ssdlite(sd):
    """A classifier's MobileNetV2 backbone (mmcls keys) in SSD-Lite's (mmdet) names, to start a detector from.

    mmcls names a block's convs ``conv.0``, ``conv.1`` (and ``conv.2``): expand, depthwise, linear, or without
    the expansion (expand ratio 1, layer1) depthwise, linear; mmdet names them ``expand_conv``,
    ``depthwise_conv``, ``linear_conv``. ``conv1`` and ``conv2`` are the same; the head is dropped. (The
    BatchNorm epsilons differ, 1e-5 and 1e-3, which fine-tuning absorbs.)"""
    import re
    out = {}
    for k, v in sd.items():
        if not k.startswith("backbone."):
            continue
        m = re.match(r"backbone\.layer(\d+)\.(\d+)\.conv\.(\d)\.(.*)$", k)
        if m:
            layer, block, idx, rest = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
            names = ["depthwise_conv", "linear_conv"] if layer == 1 else ["expand_conv", "depthwise_conv",
                                                                         "linear_conv"]
            k = "backbone.layer%d.%s.%s.%s" % (layer, block, names[idx], rest)
        out[k] = v
    return out


def save_checkpoint(path, model, classes, **meta):
    """MMEdu's checkpoint layout: ``{"meta": {"CLASSES": [...], ...}, "state_dict": {...}}``."""
    import torch
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    m = {"CLASSES": list(classes)}
    m.update(meta)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    tmp = path + ".part"
    torch.save({"meta": m, "state_dict": state}, tmp)
    os.replace(tmp, path)
    return path


# ------------------------------------------------------------------------------------------ detection


def _box_iou(a, b):
    """IoU matrix of boxes a [M, 4] and b [N, 4] (x1 y1 x2 y2), torch."""
    import torch
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-6)


def bbox2delta(anchors, gt, stds=(0.1, 0.1, 0.2, 0.2)):
    """mmdet DeltaXYWHBBoxCoder.encode (means 0): the offsets that :func:`detection.delta2bbox` decodes."""
    import torch
    pw, ph = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    px, py = anchors[:, 0] + 0.5 * pw, anchors[:, 1] + 0.5 * ph
    gw, gh = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
    gx, gy = gt[:, 0] + 0.5 * gw, gt[:, 1] + 0.5 * gh
    d = torch.stack([(gx - px) / pw, (gy - py) / ph, torch.log(gw / pw), torch.log(gh / ph)], dim=-1)
    return d / d.new_tensor(stds)


def assign_anchors(anchors, gt_boxes, gt_labels, num_classes, pos_iou=0.5, neg_iou=0.5):
    """mmdet's MaxIoUAssigner for SSD (pos 0.5, neg 0.5, min_pos_iou 0, gt_max_assign_all False).

    Returns ``(labels [A] int64 with background = num_classes, box targets [A, 4], positive mask [A])``."""
    import torch
    a = anchors.shape[0]
    labels = torch.full((a,), num_classes, dtype=torch.int64)
    targets = torch.zeros((a, 4))
    if gt_boxes.shape[0] == 0:
        return labels, targets, torch.zeros(a, dtype=torch.bool)
    iou = _box_iou(gt_boxes, anchors)                     # [G, A]
    best_iou, best_gt = iou.max(0)                         # per anchor
    assigned = torch.full((a,), -1, dtype=torch.int64)
    assigned[best_iou < neg_iou] = -1
    assigned[best_iou >= pos_iou] = best_gt[best_iou >= pos_iou]
    # every box gets its best anchor (later boxes win a shared anchor, as in mmdet)
    gt_best_anchor = iou.argmax(1)
    for g in range(gt_boxes.shape[0]):
        if iou[g, gt_best_anchor[g]] > 0:
            assigned[gt_best_anchor[g]] = g
    pos = assigned >= 0
    labels[pos] = gt_labels[assigned[pos]]
    targets[pos] = bbox2delta(anchors[pos], gt_boxes[assigned[pos]])
    return labels, targets, pos


def ssd_loss(cls_scores, bbox_preds, anchors, gt_boxes, gt_labels, num_classes, neg_pos_ratio=3, beta=1.0):
    """SSD's loss (mmdet SSDHead.loss) for a batch: ``(loss, loss_cls, loss_bbox, positives)``.

    ``cls_scores`` / ``bbox_preds``: the head's per-level outputs; ``anchors`` [A, 4] (all levels, the
    head's order); ``gt_boxes`` / ``gt_labels``: per picture tensors."""
    import torch
    import torch.nn.functional as F
    n = cls_scores[0].shape[0]
    cls = torch.cat([c.permute(0, 2, 3, 1).reshape(n, -1, num_classes + 1) for c in cls_scores], 1)
    reg = torch.cat([r.permute(0, 2, 3, 1).reshape(n, -1, 4) for r in bbox_preds], 1)
    labels, targets, pos = [], [], []
    for b in range(n):
        lab, tgt, p = assign_anchors(anchors, gt_boxes[b], gt_labels[b], num_classes)
        labels.append(lab)
        targets.append(tgt)
        pos.append(p)
    labels, targets, pos = torch.stack(labels), torch.stack(targets), torch.stack(pos)
    num_pos = int(pos.sum())
    denom = max(1, num_pos)
    ce = F.cross_entropy(cls.reshape(-1, num_classes + 1), labels.reshape(-1), reduction="none").reshape(n, -1)
    # hard-negative mining: per picture, the 3 x (its positives) background anchors with the highest loss
    neg_ce = ce.detach().clone()
    neg_ce[pos] = -1.0
    order = neg_ce.argsort(dim=1, descending=True)
    rank = order.argsort(dim=1)
    num_neg = (pos.sum(1, keepdim=True) * neg_pos_ratio).clamp(max=pos.shape[1] - 1)
    neg = (rank < num_neg) & ~pos
    loss_cls = (ce[pos].sum() + ce[neg].sum()) / denom
    if num_pos:
        loss_bbox = F.smooth_l1_loss(reg[pos], targets[pos], beta=beta, reduction="sum") / denom
    else:
        loss_bbox = reg.sum() * 0.0
    return loss_cls + loss_bbox, loss_cls.detach(), loss_bbox.detach(), num_pos


def _flip_boxes(boxes, size, horizontal):
    b = boxes.copy()
    if horizontal:
        b[:, [0, 2]] = size - boxes[:, [2, 0]]
    else:
        b[:, [1, 3]] = size - boxes[:, [3, 1]]
    return b


# -------------------------------------------------------------------------------------------- trainer


def train_model(spec, classes, train_data, val_data, epochs, lr, batch_size, width_mult, input_size,
                save_fold, checkpoint=None, optimizer="SGD", weight_decay=4e-5, seed=0, threads=2, validate=True,
                log=print, warmup=None):
    """Train ``spec``'s model on in-memory data and save MMEdu checkpoints; returns ``(path, history)``."""
    import torch
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    rs = np.random.RandomState(seed)
    model = spec.build(len(classes), width_mult, input_size)
    if checkpoint is not None:
        _load_pretrained(model, spec, checkpoint, log)
    detection = spec.task == "detection"
    opt = _optimizer(model, optimizer, lr, weight_decay)
    n = len(train_data)
    if n == 0:
        raise ExporterError("the training split is empty")
    steps_per_epoch = max(1, n // batch_size)   # drop the last incomplete batch (BatchNorm likes full ones)
    total = steps_per_epoch * epochs
    warmup = min(200, max(1, total // 10)) if warmup is None else int(warmup)
    anchors = torch.cat(model.anchors((input_size, input_size)), 0) if detection else None
    metric = "bbox_mAP" if detection else "accuracy_top-1"
    best, best_path, history = -1.0, None, []
    os.makedirs(save_fold, exist_ok=True)
    log("training %s (width %g, input %d, %d classes) on %d pictures: %d epochs x %d steps, batch %d, %s lr %g"
        % (spec.name, width_mult, input_size, len(classes), n, epochs, steps_per_epoch, batch_size, optimizer, lr))
    step = 0
    for epoch in range(1, epochs + 1):
        model.train()
        perm = rs.permutation(n)
        bar = Progress(steps_per_epoch, "epoch %d/%d" % (epoch, epochs))
        t0 = time.time()
        sums = np.zeros(3)
        correct = seen = 0
        for it in range(steps_per_epoch):
            idx = perm[it * batch_size:(it + 1) * batch_size]
            for g in opt.param_groups:
                g["lr"] = _lr_at(step, total, lr, warmup)
            if detection:
                x, boxes, labels = _detection_batch(train_data, idx, input_size, rs)
                cls_scores, bbox_preds = model(x)
                loss, lc, lb, _ = ssd_loss(cls_scores, bbox_preds, anchors, boxes, labels, len(classes))
                sums += [float(loss.detach()), float(lc), float(lb)]
                text = "loss %.3f (cls %.3f, box %.3f)" % tuple(sums / (it + 1))
            else:
                x, y = _classification_batch(train_data, idx, input_size, rs)
                logits = model(x)
                loss = torch.nn.functional.cross_entropy(logits, y)
                correct += int((logits.argmax(1) == y).sum())
                seen += len(y)
                sums[0] += float(loss.detach())
                text = "loss %.3f, train top-1 %.1f%%" % (sums[0] / (it + 1), 100.0 * correct / seen)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            bar.update(it + 1, text)
        bar.close()
        summary = {"epoch": epoch, "loss": sums[0] / steps_per_epoch, "lr": opt.param_groups[0]["lr"],
                   "seconds": time.time() - t0}
        line = "epoch %d/%d: %s, lr %.2g, %.0f s" % (epoch, epochs, text, summary["lr"], summary["seconds"])
        score = None
        if validate and val_data is not None and len(val_data):
            score = (evaluate_detector_torch(model, val_data, input_size) if detection
                     else evaluate_classifier_torch(model, val_data, input_size))
            summary[metric] = score
            line += ", val %s %.2f%%" % ("mAP@0.5" if detection else "top-1", 100 * score)
        log(line)
        history.append(summary)
        meta = {"epoch": epoch, "backbone": spec.name, "width_mult": width_mult, "input_size": input_size,
                "seed": seed}
        if score is not None:
            meta[metric] = float(score)
        save_checkpoint(os.path.join(save_fold, "latest.pth"), model, classes, **meta)
        if score is not None and score > best:
            best = score
            if best_path and os.path.exists(best_path):
                os.remove(best_path)
            best_path = save_checkpoint(os.path.join(save_fold, "best_%s_epoch_%d.pth" % (metric, epoch)), model,
                                        classes, **meta)
    final = best_path or os.path.join(save_fold, "latest.pth")
    log("saved %s" % final)
    return final, history


def _classification_batch(data, idx, size, rs):
    """Random crop of ``size`` from the resized pictures, random flips and quarter turns."""
    import torch
    r = data.images.shape[1]
    out = np.empty((len(idx), size, size, 3), np.uint8)
    for k, i in enumerate(idx):
        top, left = rs.randint(0, r - size + 1, 2)
        img = data.images[i, top:top + size, left:left + size]
        if rs.rand() < 0.5:
            img = img[:, ::-1]
        img = np.rot90(img, rs.randint(4))
        out[k] = img
    return _normalise(out), torch.from_numpy(data.labels[idx])


def _detection_batch(data, idx, size, rs):
    """Pictures with random horizontal / vertical flips, and their boxes flipped alike."""
    import torch
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
    return _normalise(np.stack(imgs)), boxes, labels


def _centre_crop(images, size):
    r = images.shape[1]
    o = int(round((r - size) / 2.0))
    return images[:, o:o + size, o:o + size]


def evaluate_classifier_torch(model, data, size, batch=64):
    """Top-1 accuracy (0..1) in torch on the centre crop (validation during training)."""
    import torch
    model.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, len(data), batch):
            x = _normalise(_centre_crop(data.images[s:s + batch], size))
            correct += int((model(x).argmax(1).numpy() == data.labels[s:s + batch]).sum())
    return correct / max(1, len(data))


def evaluate_detector_torch(model, data, size, batch=16):
    """mAP@0.5 (0..1) in torch of the exported pipeline (validation during training)."""
    import torch
    from .detection import DetectionExport
    from .evaluate import mean_average_precision
    model.eval()
    wrapped = DetectionExport(model, input_size=size).eval()
    dets_all = []
    with torch.no_grad():
        for s in range(0, len(data), batch):
            dets, labels = wrapped(_normalise(data.images[s:s + batch]))
            for d, lab in zip(dets.numpy(), labels.numpy()):
                keep = d[:, 4] > 0
                dets_all.append((d[keep, :4], d[keep, 4], lab[keep]))
    gts = list(zip(data.boxes, data.labels))
    return mean_average_precision(dets_all, gts, num_classes=len(data.classes))[0]


def main(argv=None):
    """``python -m exporter.train``: the command line of ``Classifier/Detector(...).train(...)``."""
    import argparse
    import shutil
    from .api import Classifier, Detector
    from .models import get_backbone
    p = argparse.ArgumentParser(prog="python -m exporter.train",
                                description="Train a small model on a dataset in MMEdu's layout (CPU). The "
                                "README's shapes classifier: --backbone MobileNet --width-mult 0.35 --input-size 96 "
                                "--lr 0.003 --batch-size 32 --optimizer AdamW.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)  # --help shows them
    p.add_argument("--backbone", required=True, help="MobileNet, SSD_Lite, ... (MMEdu's names)")
    p.add_argument("--dataset", required=True, help="dataset folder (python -m exporter.data makes one)")
    p.add_argument("--width-mult", type=float, default=1.0)
    p.add_argument("--input-size", type=int, default=None)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=0.001)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--optimizer", default="SGD", choices=["SGD", "Adam", "AdamW"])
    p.add_argument("--weight-decay", type=float, default=4e-5)
    p.add_argument("--checkpoint", default=None, help="start from this .pth (fine-tuning)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, default=None, help="use at most this many training pictures")
    p.add_argument("--save-fold", default=None, help="folder for the checkpoints (default checkpoints/<task>_model)")
    p.add_argument("--copy-to", default=None, help="also copy the best checkpoint to this path")
    args = p.parse_args(argv)
    spec = get_backbone(args.backbone)
    cls = Detector if spec.task == "detection" else Classifier
    model = cls(backbone=spec.name, width_mult=args.width_mult, input_size=args.input_size)
    model.load_dataset(args.dataset)
    if args.save_fold:
        model.save_fold = args.save_fold
    t = time.time()
    path = model.train(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, checkpoint=args.checkpoint,
                       optimizer=args.optimizer, weight_decay=args.weight_decay, seed=args.seed,
                       threads=args.threads, limit=args.limit)
    print("training took %.0f s; best checkpoint %s" % (time.time() - t, path))
    if args.copy_to:
        os.makedirs(os.path.dirname(os.path.abspath(args.copy_to)), exist_ok=True)
        shutil.copyfile(path, args.copy_to)
        print("copied to %s" % args.copy_to)
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["train_model", "save_checkpoint", "ClassificationData", "DetectionData", "ssd_loss", "assign_anchors",
           "bbox2delta", "evaluate_classifier_torch", "evaluate_detector_torch"]
