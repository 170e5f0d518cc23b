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


def info_nce_multi(img: torch.Tensor, txt: torch.Tensor, logit_scale: torch.Tensor,
                   same: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE with K captions per image: img [B,D], txt [B*K,D] (captions of image i at
    rows i*K..i*K+K-1), all L2-normalised. Text->image: each caption against the B images. Image->text:
    each of an image's K captions against the captions of the other images (its own other captions
    leave the denominator, so K = 1 is exactly `info_nce`). same: optional [B*K,B*K] bool, True where
    two captions have identical text; a caption identical to one of image j's is no negative for j."""
    b, k = img.shape[0], txt.shape[0] // img.shape[0]
    owner = torch.arange(b, device=img.device).repeat_interleave(k)
    logits = logit_scale.exp().clamp(max=100.0) * img @ txt.t()  # [B, B*K]
    not_neg = owner[None, :] == torch.arange(b, device=img.device)[:, None]  # own captions
    if same is not None:
        not_neg = not_neg | same.view(b * k, b, k).any(-1).t()  # image j has a caption identical to t
    neg = logits.masked_fill(not_neg, -1e4)  # [B, B*K]
    pos = logits.gather(1, (torch.arange(b, device=img.device)[:, None] * k + torch.arange(k, device=img.device)))
    neg_lse = torch.logsumexp(neg, dim=1, keepdim=True)  # [B,1]
    i2t = -(pos - torch.logaddexp(pos, neg_lse)).mean()
    t_logits = logits.t()  # [B*K, B]
    t_mask = not_neg.t() & (owner[:, None] != torch.arange(b, device=img.device)[None, :])
    t2i = F.cross_entropy(t_logits.masked_fill(t_mask, -1e4), owner)
    return 0.5 * (i2t + t2i)
