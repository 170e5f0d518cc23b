"""YOLOX loss with SimOTA assignment (as in YOLOX, without the extra L1 term).

Per image: candidates = anchor points whose centre lies inside a GT box or within 2.5 strides of its
centre; cost = BCE(sqrt(cls*obj), onehot) + 3 * (-log IoU) + 1e5 * (not in box-and-centre);
dynamic k = max(1, int(sum of the top-10 IoUs)) lowest-cost anchors per GT; an anchor claimed by
several GTs goes to the cheapest. Losses: IoU loss (1 - IoU^2) * 5 on positives, objectness BCE on
all anchors (target 1 on positives), class BCE on positives with target onehot * IoU; normalised
by the number of positives."""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F

from models.detection.yolox import flatten_levels, make_grids


def box_iou_cxcywh(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a [N,4], b [M,4] (cx,cy,w,h) -> [N,M]."""
    a1, a2 = a[:, None, :2] - a[:, None, 2:] / 2, a[:, None, :2] + a[:, None, 2:] / 2
    b1, b2 = b[None, :, :2] - b[None, :, 2:] / 2, b[None, :, :2] + b[None, :, 2:] / 2
    wh = (torch.min(a2, b2) - torch.max(a1, b1)).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (a[:, None, 2] * a[:, None, 3] + b[None, :, 2] * b[None, :, 3] - inter + 1e-9)


def iou_loss(pred: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    p1, p2 = pred[:, :2] - pred[:, 2:] / 2, pred[:, :2] + pred[:, 2:] / 2
    t1, t2 = tgt[:, :2] - tgt[:, 2:] / 2, tgt[:, :2] + tgt[:, 2:] / 2
    wh = (torch.min(p2, t2) - torch.max(p1, t1)).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    iou = inter / (pred[:, 2] * pred[:, 3] + tgt[:, 2] * tgt[:, 3] - inter + 1e-16)
    return 1 - iou ** 2


@torch.no_grad()
def simota(boxes_p, cls_logit, obj_logit, centers, strides, gt_boxes, gt_cls, num_classes):
    """One image. boxes_p [A,4] cxcywh; centers [A,2]; strides [A]; gt_boxes [G,4] cxcywh.
    Returns fg_mask [A], matched gt index per fg anchor, iou per fg anchor."""
    G = gt_boxes.shape[0]
    gl = gt_boxes[:, None, :2] - gt_boxes[:, None, 2:] / 2
    gr = gt_boxes[:, None, :2] + gt_boxes[:, None, 2:] / 2
    c = centers[None]
    in_box = ((c > gl) & (c < gr)).all(-1)                                   # [G,A]
    r = 2.5 * strides[None, :, None]
    in_ctr = ((c > gt_boxes[:, None, :2] - r) & (c < gt_boxes[:, None, :2] + r)).all(-1)
    cand = (in_box | in_ctr).any(0)                                           # [A]
    both = (in_box & in_ctr)[:, cand]
    bp = boxes_p[cand]
    ious = box_iou_cxcywh(gt_boxes, bp)                                       # [G,Ac]
    p = (cls_logit[cand].float().sigmoid() * obj_logit[cand].float().sigmoid()).sqrt()  # [Ac,C]
    onehot = F.one_hot(gt_cls, num_classes).float()
    cls_cost = F.binary_cross_entropy(p[None].expand(G, -1, -1).clamp(1e-6, 1 - 1e-6),
                                      onehot[:, None].expand(-1, p.shape[0], -1), reduction="none").sum(-1)
    cost = cls_cost + 3.0 * (-torch.log(ious + 1e-8)) + 1e5 * (~both).float()
    match = torch.zeros_like(cost)
    topk = min(10, ious.shape[1])
    dyn_k = torch.clamp(torch.topk(ious, topk, 1).values.sum(1).int(), min=1)
    for g in range(G):
        k = int(min(dyn_k[g].item(), cost.shape[1]))
        idx = torch.topk(cost[g], k, largest=False).indices
        match[g, idx] = 1.0
    multi = match.sum(0) > 1
    if multi.any():
        cmin = cost[:, multi].argmin(0)
        match[:, multi] = 0.0
        match[cmin, multi.nonzero().squeeze(1)] = 1.0
    fg_c = match.sum(0) > 0
    gt_idx = match[:, fg_c].argmax(0)
    iou_fg = (match * ious).sum(0)[fg_c]
    fg = torch.zeros(boxes_p.shape[0], dtype=torch.bool, device=boxes_p.device)
    cidx = cand.nonzero().squeeze(1)
    fg[cidx[fg_c]] = True
    return fg, gt_idx, iou_fg


def yolox_loss(outs: Sequence[torch.Tensor], strides: Sequence[int], targets: List[Tuple[torch.Tensor, torch.Tensor]],
               num_classes: int):
    """outs: raw level outputs; targets: per image (boxes xyxy [G,4] in input px, labels [G])."""
    p = flatten_levels(outs)                     # [B,A,5+C]
    grid, s = make_grids(outs, strides)
    s = s[0, :, 0]
    centers = (grid[0] + 0.5) * s[:, None]
    xy = (p[..., :2] + grid) * s[None, :, None]
    wh = torch.exp(p[..., 2:4].clamp(max=10.0)) * s[None, :, None]
    boxes = torch.cat([xy, wh], -1)
    obj_t = torch.zeros_like(p[..., 4])
    reg_p, reg_t, cls_p, cls_t = [], [], [], []
    n_fg = 0
    for b, (gb, gl) in enumerate(targets):
        if gb.shape[0] == 0:
            continue
        gt = torch.cat([(gb[:, :2] + gb[:, 2:]) / 2, (gb[:, 2:] - gb[:, :2])], 1)
        fg, gi, iou = simota(boxes[b].detach(), p[b, :, 5:].detach(), p[b, :, 4:5].detach(), centers, s, gt, gl, num_classes)
        if fg.sum() == 0:
            continue
        obj_t[b, fg] = 1.0
        reg_p.append(boxes[b, fg])
        reg_t.append(gt[gi])
        cls_p.append(p[b, fg, 5:])
        cls_t.append(F.one_hot(gl[gi], num_classes).float() * iou[:, None])
        n_fg += int(fg.sum())
    nf = max(n_fg, 1)
    l_obj = F.binary_cross_entropy_with_logits(p[..., 4], obj_t, reduction="sum") / nf
    if n_fg:
        l_iou = iou_loss(torch.cat(reg_p), torch.cat(reg_t)).sum() / nf
        l_cls = F.binary_cross_entropy_with_logits(torch.cat(cls_p), torch.cat(cls_t), reduction="sum") / nf
    else:
        l_iou = l_cls = p.sum() * 0
    total = 5.0 * l_iou + l_obj + l_cls
    return total, {"iou": float(l_iou), "obj": float(l_obj), "cls": float(l_cls), "fg": n_fg}
