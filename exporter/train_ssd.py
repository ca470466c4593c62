"""SSD-Lite's training targets and loss, mmdet's SSDHead recipe, in torch.

Every anchor is matched to the ground-truth box it overlaps most (MaxIoUAssigner: IoU >= 0.5 positive,
< 0.5 background, and each box also gets its single best anchor whatever the IoU); positives regress
DeltaXYWH offsets (means 0, stds 0.1 0.1 0.2 0.2; :func:`exporter.detection.delta2bbox` decodes them) with
smooth-L1 (beta 1); the classification loss is cross-entropy over C+1 classes (background last) on all
positives plus the 3x as many hardest negatives; both are divided by the number of positives.
"""
import torch
import torch.nn.functional as F


def _box_iou(a, b):
    """IoU matrix of boxes a [M, 4] and b [N, 4] (x1 y1 x2 y2), torch."""
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-6)


def bbox2delta(anchors, gt, stds=(0.1, 0.1, 0.2, 0.2)):
    """mmdet DeltaXYWHBBoxCoder.encode (means 0): the offsets that :func:`detection.delta2bbox` decodes."""
    pw, ph = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    px, py = anchors[:, 0] + 0.5 * pw, anchors[:, 1] + 0.5 * ph
    gw, gh = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
    gx, gy = gt[:, 0] + 0.5 * gw, gt[:, 1] + 0.5 * gh
    d = torch.stack([(gx - px) / pw, (gy - py) / ph, torch.log(gw / pw), torch.log(gh / ph)], dim=-1)
    return d / d.new_tensor(stds)


def assign_anchors(anchors, gt_boxes, gt_labels, num_classes, pos_iou=0.5, neg_iou=0.5):
    """mmdet's MaxIoUAssigner for SSD (pos 0.5, neg 0.5, min_pos_iou 0, gt_max_assign_all False).

    Returns ``(labels [A] int64 with background = num_classes, box targets [A, 4], positive mask [A])``."""
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
