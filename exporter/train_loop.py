"""The training loop behind ``Classifier/Detector(...).train(...)``, read the way MMEdu's is: fine-tune our
small models on the CPU in minutes.

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
import re
import sys
import time

import numpy as np
import torch

from .checkpoint import load_checkpoint, to_model_layout
from .detection import DetectionExport
from .errors import ExporterError
from .evaluate import mean_average_precision
from .train_data import centre_crop, classification_batch, detection_batch, normalise
from .train_ssd import ssd_loss


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


def _optimizer(model, optimizer, lr, weight_decay):
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
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    m = {"CLASSES": list(classes)}
    m.update(meta)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    tmp = path + ".part"
    torch.save({"meta": m, "state_dict": state}, tmp)
    os.replace(tmp, path)
    return path


def train_model(spec, classes, train_data, val_data, epochs, lr, batch_size, width_mult, input_size,
                save_fold, checkpoint=None, optimizer="SGD", weight_decay=4e-5, seed=0, threads=2, validate=True,
                log=print, warmup=None):
    """Train ``spec``'s model on in-memory data and save MMEdu checkpoints; returns ``(path, history)``."""
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
                x, boxes, labels = detection_batch(train_data, idx, input_size, rs)
                cls_scores, bbox_preds = model(x)
                loss, lc, lb, _ = ssd_loss(cls_scores, bbox_preds, anchors, boxes, labels, len(classes))
                sums += [float(loss.detach()), float(lc), float(lb)]
                text = "loss %.3f (cls %.3f, box %.3f)" % tuple(sums / (it + 1))
            else:
                x, y = classification_batch(train_data, idx, input_size, rs)
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


def evaluate_classifier_torch(model, data, size, batch=64):
    """Top-1 accuracy (0..1) in torch on the centre crop (validation during training)."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, len(data), batch):
            x = normalise(centre_crop(data.images[s:s + batch], size))
            correct += int((model(x).argmax(1).numpy() == data.labels[s:s + batch]).sum())
    return correct / max(1, len(data))


def evaluate_detector_torch(model, data, size, batch=16):
    """mAP@0.5 (0..1) in torch of the exported pipeline (validation during training)."""
    model.eval()
    wrapped = DetectionExport(model, input_size=size).eval()
    dets_all = []
    with torch.no_grad():
        for s in range(0, len(data), batch):
            dets, labels = wrapped(normalise(data.images[s:s + batch]))
            for d, lab in zip(dets.numpy(), labels.numpy()):
                keep = d[:, 4] > 0
                dets_all.append((d[keep, :4], d[keep, 4], lab[keep]))
    gts = list(zip(data.boxes, data.labels))
    return mean_average_precision(dets_all, gts, num_classes=len(data.classes))[0]
