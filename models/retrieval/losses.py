"""Contrastive (symmetric InfoNCE) and hard-negative-weighted triplet losses."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(img: torch.Tensor, txt: torch.Tensor, logit_scale: torch.Tensor,
             same: torch.Tensor | None = None) -> torch.Tensor:
    """img, txt: [B,D] L2-normalised, row i of each is a positive pair. same: optional [B,B] bool,
    True for off-diagonal pairs that are not true negatives (identical caption text): excluded."""
    logits = logit_scale.exp().clamp(max=100.0) * img @ txt.t()
    if same is not None:
        logits = logits.masked_fill(same, -1e4)
    target = torch.arange(img.shape[0], device=img.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def weighted_triplet(img: torch.Tensor, txt: torch.Tensor, margin: float = 0.2, hard_temp: float = 0.05,
                     same: torch.Tensor | None = None) -> torch.Tensor:
    """Triplet ranking loss over all in-batch negatives, each weighted by softmax(s_neg / hard_temp)
    (detached): harder negatives weigh more (a smooth version of VSE++'s hardest negative).
    same: optional [B,B] bool, True where j is not a true negative of i (e.g. identical caption)."""
    s = img @ txt.t()
    pos = s.diag()
    b = s.shape[0]
    invalid = torch.eye(b, dtype=torch.bool, device=s.device)
    if same is not None:
        invalid = invalid | same
    loss = 0.0
    for sim, p in ((s, pos), (s.t(), pos)):  # image->text rows, text->image rows
        cost = (margin + sim - p[:, None]).clamp_min(0).masked_fill(invalid, 0.0)
        w = torch.softmax((sim / hard_temp).masked_fill(invalid, -1e4), dim=1).detach()
        loss = loss + (w * cost).sum(1).mean()
    return loss
