"""Train the tiny-object detector (one command, seeded, resumable).

  /usr/bin/python3 -m models.detection.train --variant tinynet   # MDCA + PFDH(stride 4) + ARB
  /usr/bin/python3 -m models.detection.train --variant baseline  # YOLOX-Nano + new class head

Checkpoints + log: models/runs/detection-<variant>/ (last.pt every `--ckpt-every` iterations and at
every epoch end; rerunning the same command resumes from last.pt). CUDA is used when available.
`--max-minutes` stops cleanly (checkpoint written) so a run fits a session; rerun to continue.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import time

import numpy as np
import torch
import torch.nn.functional as F

from models.rslens import paths
from models.rslens.utils import (count_params, get_device, load_checkpoint, log_to_file, rng_state,
                                 save_checkpoint, seed_everything, set_rng_state)
from models.detection.data import CLASSES, TileSampler, load_records
from models.detection.loss import yolox_loss
from models.detection.yolox import build_detector


def yolox_onnx_path():
    return paths.shared_dir() / "weights" / "yolox_nano_coco.onnx"


class EMA:
    """Model EMA as in YOLOX: decay * (1 - exp(-updates / 2000))."""

    def __init__(self, model, decay=0.9995, ramp=400):
        self.ema = copy.deepcopy(model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.decay, self.ramp, self.updates = decay, ramp, 0

    @torch.no_grad()
    def update(self, model):
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / self.ramp))
        msd = model.state_dict()
        for k, v in self.ema.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(msd[k].detach(), alpha=1 - d)
            else:
                v.copy_(msd[k])


def make_batch(sampler, rng, n, device):
    imgs, tgts = [], []
    for _ in range(n):
        im, b, l = sampler.sample(rng)
        imgs.append(torch.from_numpy(im).permute(2, 0, 1))
        tgts.append((torch.from_numpy(b).to(device), torch.from_numpy(l).to(device)))
    return torch.stack(imgs).float().to(device), tgts


def lr_at(it, total, base, warmup):
    if it < warmup:
        return base * (it + 1) / warmup
    t = (it - warmup) / max(1, total - warmup)
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", choices=["tinynet", "baseline"], default="tinynet")
    ap.add_argument("--tile", type=int, default=256, help="training tile side (px); the model is fully convolutional")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--iters-per-epoch", type=int, default=50)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--wd", type=float, default=5e-4)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--smin", type=float, default=0.5)
    ap.add_argument("--smax", type=float, default=1.5)
    ap.add_argument("--arb-weight", type=float, default=0.25, help="aux detection loss weight (tinynet)")
    ap.add_argument("--recon-weight", type=float, default=0.5, help="ARB reconstruction L1 weight")
    ap.add_argument("--freeze", default="stem,dark2", help="pretrained backbone stages kept frozen ('' = none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ckpt-every", type=int, default=25)
    ap.add_argument("--max-minutes", type=float, default=0, help="stop (with checkpoint) after this long; 0 = no limit")
    ap.add_argument("--out", default=None)
    ap.add_argument("--device", default=None)
    args = ap.parse_args()

    out = paths.runs_dir() / (args.out or f"detection-{args.variant}")
    out.mkdir(parents=True, exist_ok=True)
    log = log_to_file(out / "train.log")
    device = get_device(args.device)
    seed_everything(args.seed)
    t_start = time.time()

    recs = load_records(("train",))
    sampler = TileSampler(recs, tile=args.tile, smin=args.smin, smax=args.smax)
    nb = sum(len(r.boxes) for r in recs)
    model = build_detector(args.variant, len(CLASSES), str(yolox_onnx_path()), log=log).to(device)
    if args.freeze:
        model.freeze_stem(tuple(args.freeze.split(",")))
    ema = EMA(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=args.wd)
    rng = random.Random(args.seed)
    total = args.epochs * args.iters_per_epoch
    it = 0
    ck = load_checkpoint(out / "last.pt", map_location=device)
    if ck is not None:
        model.load_state_dict(ck["model"])
        ema.ema.load_state_dict(ck["ema"])
        ema.updates = ck["ema_updates"]
        opt.load_state_dict(ck["opt"])
        it = ck["iter"]
        rng.setstate(ck["sampler_rng"])
        set_rng_state(ck["rng"])
        log(f"resumed from {paths.rel(out / 'last.pt')} at iter {it}")
    else:
        log(f"start {args.variant}: {len(recs)} training records ({nb} boxes), device {device}, "
            f"threads {torch.get_num_threads()}, params {count_params(model)/1e6:.3f} M "
            f"(export graph without ARB: {count_params(model) - (count_params(model.arb) if model.tinynet else 0):,}), "
            f"args {json.dumps(vars(args))}")

    def checkpoint(tag="last"):
        save_checkpoint(out / f"{tag}.pt", {
            "model": model.state_dict(), "ema": ema.ema.state_dict(), "ema_updates": ema.updates,
            "opt": opt.state_dict(), "iter": it, "sampler_rng": rng.getstate(), "rng": rng_state(),
            "variant": args.variant, "classes": CLASSES, "args": vars(args)})

    model.train()
    t_ep, agg = time.time(), {}
    while it < total:
        for g in opt.param_groups:
            g["lr"] = lr_at(it, total, args.lr, args.warmup)
        x, tgts = make_batch(sampler, rng, args.batch, device)
        outs, aux = model.forward_raw(x)
        loss, st = yolox_loss(outs, model.strides, tgts, len(CLASSES))
        if aux:
            la, sta = yolox_loss(aux["arb_outs"], (4, 8, 16, 32), tgts, len(CLASSES))
            tgt_img = F.avg_pool2d(x, 4) / 255.0
            lr_ = F.l1_loss(aux["recon"], tgt_img)
            loss = loss + args.arb_weight * la + args.recon_weight * lr_
            st["arb"], st["recon"] = float(la), float(lr_)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        ema.update(model)
        it += 1
        st["loss"] = float(loss)
        for k, v in st.items():
            agg[k] = agg.get(k, 0.0) + float(v)
        if it % args.ckpt_every == 0 or it % args.iters_per_epoch == 0:
            checkpoint()
        if it % args.iters_per_epoch == 0:
            n = args.iters_per_epoch
            dt = time.time() - t_ep
            log(f"epoch {it // n}/{args.epochs} iter {it} " + " ".join(f"{k} {v / n:.4f}" for k, v in agg.items())
                + f" lr {opt.param_groups[0]['lr']:.2e} time {dt:.0f}s ({n * args.batch / dt:.2f} tiles/s)")
            agg, t_ep = {}, time.time()
        elif it % 10 == 0:
            log(f"iter {it} loss {float(loss):.4f} " + " ".join(f"{k} {v:.3f}" for k, v in st.items() if k != "loss"))
        if args.max_minutes and (time.time() - t_start) > args.max_minutes * 60:
            checkpoint()
            log(f"stopping at iter {it} (--max-minutes {args.max_minutes}); rerun the same command to resume")
            return 0
    checkpoint()
    save_checkpoint(out / "final.pt", {"ema": ema.ema.state_dict(), "variant": args.variant, "classes": CLASSES,
                                       "iter": it, "args": vars(args)})
    log(f"done: {it} iterations; final EMA weights in {paths.rel(out / 'final.pt')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
