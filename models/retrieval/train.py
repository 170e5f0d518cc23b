"""Train the retrieval model.

    /usr/bin/python3 -m models.retrieval.features          # once: cache the frozen stem
    /usr/bin/python3 -m models.retrieval.train --stage 1   # contrastive, both towers
    /usr/bin/python3 -m models.retrieval.train --stage 2   # HarMA adapters, towers frozen

Seeded; checkpoints every epoch to models/runs/retrieval/stage{N}/last.pt (atomic) and
resumes from it automatically (--fresh to start over); logs to train.log in the same
folder. Trains on RSICD train only; evaluates on RSICD val (never trained on).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Tuple

import numpy as np
import torch

from ..rslens import paths
from ..rslens.data import read_split
from ..rslens.utils import (count_params, get_device, load_checkpoint, log_to_file, rng_state,
                            save_checkpoint, seed_everything, set_rng_state)
from .evaluate import evaluate_from_cache, fmt
from .features import VIEWS, load_cache
from .losses import info_nce, weighted_triplet
from .model import RetrievalModel
from .vocab import load_tokenizer

DEFAULTS = {
    1: dict(epochs=12, batch=128, lr=5e-4, lr_image=5e-4, wd=0.05, warmup_epochs=1, triplet_weight=0.0,
            window_aug=4),
    2: dict(epochs=4, batch=128, lr=1e-3, lr_image=1e-3, wd=0.01, warmup_epochs=0.5, triplet_weight=1.0,
            window_aug=0),
}


def window_mask(n: int, size: int, min_window: int, gen: torch.Generator) -> torch.Tensor:
    """Random-window pooling augmentation on the frozen 7x7 grid (a feature-space random crop):
    per sample a random square window of side min_window..size; returns a [n,1,size,size] multiplier
    m * (size^2 / area) so that grid*m averaged over the full grid = the mean over the window."""
    side = torch.randint(min_window, size + 1, (n,), generator=gen)
    m = torch.zeros(n, 1, size, size)
    for i in range(n):
        s = int(side[i])
        r, c = torch.randint(0, size - s + 1, (2,), generator=gen).tolist()
        m[i, 0, r:r + s, c:c + s] = size * size / (s * s)
    return m


def stage_dir(stage: int, root=None) -> Path:
    """root: run folder (default models/runs/retrieval)."""
    return (Path(root) if root else paths.runs_dir() / "retrieval") / f"stage{stage}"


def tokenize_split(items, max_len: int) -> Tuple[torch.Tensor, torch.Tensor]:
    tok = load_tokenizer()
    assert tok.max_length == max_len
    ids, mask = tok.batch([c for it in items for c in it.captions])
    if ids.shape[1] < max_len:
        pad = max_len - ids.shape[1]
        ids = torch.nn.functional.pad(ids, (0, pad))
        mask = torch.nn.functional.pad(mask, (0, pad))
    return ids, mask


def val_tensors(max_len: int, cut: int = 19):
    arrs, index = load_cache("val", ["id"], cut=cut)
    items = read_split("val")
    assert [it.image for it in items] == index
    ids, mask = tokenize_split(items, max_len)
    return arrs[0], ids, mask


def build_model(vocab_size: int, dropout: float = 0.1, tune_cut=None) -> RetrievalModel:
    return RetrievalModel(vocab_size, str(paths.mobilenet_tflite()), dropout=dropout, tune_cut=tune_cut)


@torch.no_grad()
def tuned_grid(model: RetrievalModel, feats, bs: int = 128) -> np.ndarray:
    """Cached features[:tune_cut] maps -> grid of the fine-tuned top blocks (float32 [N,1280,7,7])."""
    if model.image.tuned is None:
        return feats
    model.eval()
    out = []
    for s in range(0, len(feats), bs):
        x = torch.from_numpy(np.asarray(feats[s:s + bs], dtype=np.float32))
        out.append(model.image.tuned(x.to(next(model.parameters()).device)).cpu().numpy())
    return np.concatenate(out)


def word_dropout(ids: torch.Tensor, mask: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Caption augmentation: mask out each real word piece (not bos/eos) with probability p."""
    drop = (torch.rand(ids.shape, generator=gen) < p) & (ids > 3) & (mask > 0)
    return mask.masked_fill(drop.to(mask.device), 0)


def set_trainable(model: RetrievalModel, stage: int) -> None:
    for p in model.parameters():
        p.requires_grad_(False)
    if stage == 1:
        for mod in (model.image.ln, model.image.fc1, model.image.fc2, model.image.skip, model.text):
            for p in mod.parameters():
                p.requires_grad_(True)
        if model.image.tuned is not None:
            for p in model.image.tuned.parameters():
                p.requires_grad_(True)
    else:
        for mod in (model.image.adapter, model.text.adapters, model.shared):
            for p in mod.parameters():
                p.requires_grad_(True)
    model.logit_scale.requires_grad_(True)
    for p in model.image.stem.parameters():
        p.requires_grad_(False)


def build_model_from_checkpoint(path, device):
    ck = load_checkpoint(Path(path), map_location="cpu")
    if ck is None:
        raise FileNotFoundError(f"no checkpoint {paths.rel(Path(path))}")
    cfg = dict(ck["model_config"])
    model = RetrievalModel(cfg.pop("vocab_size"), None, **cfg)
    if ck.get("adapters"):
        model.add_adapters()
    model.load_state_dict(ck["model"])
    return model.to(device).eval(), ck


def param_groups(model: RetrievalModel, lr: float, lr_image: float, wd: float, lr_backbone: float = 1e-4):
    groups = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        kind = "backbone" if name.startswith("image.tuned.") else "image" if name.startswith("image.") else "text"
        no_decay = p.ndim < 2 or "pos" in name or "tok.weight" in name or "logit_scale" in name or "gate" in name
        key = (kind, no_decay)
        groups.setdefault(key, []).append(p)
    lrs = {"backbone": lr_backbone, "image": lr_image, "text": lr}
    return [{"params": ps, "lr": lrs[k], "base_lr": lrs[k],
             "weight_decay": 0.0 if nd else wd} for (k, nd), ps in groups.items()]


def warmup_cosine(step: int, warm: int, total: int) -> float:
    """lr multiplier: linear warm-up over `warm` steps, then cosine decay to 0 at `total`."""
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))


def restore(ck: dict, model, opt) -> Tuple[int, list]:
    """Loads a checkpoint's model, optimizer and RNG state; -> (epochs done, history)."""
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    set_rng_state(ck["rng"])
    return ck["epoch"], ck["history"]


def optimizer_step(model: RetrievalModel, opt, loss: torch.Tensor) -> None:
    """Backward, clip the gradient norm at 5, step, keep the temperature at >= 0.01."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 5.0)
    opt.step()
    with torch.no_grad():
        model.logit_scale.clamp_(0, math.log(100.0))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", type=int, choices=(1, 2), required=True)
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--lr-image", type=float)
    ap.add_argument("--triplet-weight", type=float)
    ap.add_argument("--wd", type=float)
    ap.add_argument("--dropout", type=float, help="stage 1: dropout of the text tower and image head (default 0.1)")
    ap.add_argument("--views", default="id", help="cached augmentation views to sample from (of " + ",".join(VIEWS) + ")")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=4)
    ap.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    ap.add_argument("--device", default=None)
    ap.add_argument("--tune-cut", type=int, choices=(15, 16, 17, 18), default=None,
                    help="stage 1: fine-tune a copy of MobileNetV2 features[CUT:19] on the cached cutCUT maps "
                         "(the frozen copy still gives the exported grid)")
    ap.add_argument("--lr-backbone", type=float, default=1e-4, help="lr of the fine-tuned top blocks")
    ap.add_argument("--word-drop", type=float, default=0.0, help="stage 1: caption word-piece dropout probability")
    ap.add_argument("--run-dir", default=None, help="run folder holding stage1/ and stage2/ (default models/runs/retrieval)")
    ap.add_argument("--limit-steps", type=int, default=None, help="debug: at most N steps per epoch")
    args = ap.parse_args(argv)
    hp = dict(DEFAULTS[args.stage])
    for k in ("epochs", "batch", "lr", "lr_image", "triplet_weight", "wd"):
        if getattr(args, k) is not None:
            hp[k] = getattr(args, k)

    out = stage_dir(args.stage, args.run_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = log_to_file(out / "train.log")
    device = get_device(args.device)
    seed_everything(args.seed)
    views = args.views.split(",")
    cmd = "/usr/bin/python3 -m models.retrieval.train " + " ".join(argv if argv is not None else sys.argv[1:])
    log(f"stage {args.stage} on {device}; hp {hp}; views {views}; cmd: {cmd}")

    tok = load_tokenizer()
    train_items = read_split("train")
    if args.stage == 2:  # the tuned blocks are frozen in stage 2: recover tune_cut from the stage-1 checkpoint
        s1 = load_checkpoint(stage_dir(1, args.run_dir) / "last.pt")
        if s1 is None or not s1.get("finished"):
            log("stage 2 needs a finished stage-1 checkpoint")
            return 1
        args.tune_cut = s1["model_config"].get("tune_cut")
    cut = args.tune_cut or 19
    log(f"tune_cut {args.tune_cut}; lr_backbone {args.lr_backbone}; word_drop {args.word_drop}; threads {torch.get_num_threads()}")
    arrs, index = load_cache("train", views, cut=cut)
    assert index == [it.image for it in train_items]
    t0 = time.time()
    train_feats = np.stack(arrs)  # [V,N,160,7,7] float16
    del arrs
    log(f"loaded train cache {train_feats.shape} in {time.time() - t0:.1f}s")
    tr_ids, tr_mask = tokenize_split(train_items, tok.max_length)
    tr_ids = tr_ids.view(len(train_items), 5, -1)
    tr_mask = tr_mask.view(len(train_items), 5, -1)
    va_feats, va_ids, va_mask = val_tensors(tok.max_length, cut)

    ckpt_path = out / "last.pt"
    ck = None if args.fresh else load_checkpoint(ckpt_path)
    if args.stage == 1:
        model = build_model(tok.vocab_size, 0.1 if args.dropout is None else args.dropout, args.tune_cut)
    else:
        model, _ = build_model_from_checkpoint(stage_dir(1, args.run_dir) / "last.pt", "cpu")
        model.add_adapters()
    model.to(device)
    set_trainable(model, args.stage)
    n_train = count_params(model)
    n_total = count_params(model, trainable_only=False)
    log(f"trainable parameters: {n_train:,} of {n_total:,}")

    opt = torch.optim.AdamW(param_groups(model, hp["lr"], hp["lr_image"], hp["wd"], args.lr_backbone),
                            betas=(0.9, 0.98))
    steps_per_epoch = len(train_items) // hp["batch"]
    if args.limit_steps:
        steps_per_epoch = min(steps_per_epoch, args.limit_steps)
    total_steps = steps_per_epoch * hp["epochs"]
    warm = int(hp["warmup_epochs"] * steps_per_epoch)
    start_epoch, history = 0, []
    if ck is not None:
        start_epoch, history = restore(ck, model, opt)
        log(f"resumed from {paths.rel(ckpt_path)} at epoch {start_epoch}")
        if ck.get("finished"):
            log("already finished")
            return 0

    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(start_epoch, hp["epochs"]):
        model.train()
        if args.stage == 2:  # frozen towers: keep their dropout off, train adapters only
            model.eval()
            for mod in (model.image.adapter, model.text.adapters, model.shared):
                mod.train()
        gen.manual_seed(args.seed * 1000 + epoch)
        perm = torch.randperm(len(train_items), generator=gen)
        view_idx = torch.randint(len(views), (len(train_items),), generator=gen)
        cap_idx = torch.randint(5, (len(train_items),), generator=gen)
        t_ep, tot, tot_n = time.time(), 0.0, 0
        for s in range(steps_per_epoch):
            step = epoch * steps_per_epoch + s
            f = warmup_cosine(step, warm, total_steps)
            for g in opt.param_groups:
                g["lr"] = g["base_lr"] * f
            b = perm[s * hp["batch"]:(s + 1) * hp["batch"]]
            x = torch.from_numpy(train_feats[view_idx[b].numpy(), b.numpy()].astype(np.float32))
            if model.image.tuned is not None:
                x = x.to(device)
                if args.stage == 1:
                    x = model.image.tuned(x)
                else:
                    with torch.no_grad():
                        x = model.image.tuned(x)
                x = x.cpu() if device.type == "cpu" else x
            if hp.get("window_aug"):
                x = x * window_mask(len(b), x.shape[-1], hp["window_aug"], gen)
            x = x.to(device)
            ids, mask = tr_ids[b, cap_idx[b]], tr_mask[b, cap_idx[b]]
            L = int(mask.sum(1).max())
            ids, mask = ids[:, :L].to(device), mask[:, :L].to(device)
            # identical caption text at j != i is not a negative (decided on the full captions)
            same = (ids[:, None, :] == ids[None, :, :]).all(-1)
            same.fill_diagonal_(False)
            if args.word_drop > 0 and args.stage == 1:
                mask = word_dropout(ids, mask, args.word_drop, gen)
            ie, _ = model.encode_image_from_stem(x)
            te = model.encode_text(ids, mask)
            loss = info_nce(ie, te, model.logit_scale, same)
            if hp["triplet_weight"] > 0:
                loss = loss + hp["triplet_weight"] * weighted_triplet(ie, te, same=same)
            optimizer_step(model, opt, loss)
            tot += float(loss) * len(b)
            tot_n += len(b)
            if s % 20 == 0:
                log(f"  ep {epoch + 1} step {s}/{steps_per_epoch} loss {float(loss):.4f} "
                    f"T {1 / model.logit_scale.exp().item():.4f} lr x{f:.3f}")
        ep_time = time.time() - t_ep
        rec = {"epoch": epoch + 1, "loss": tot / tot_n, "epoch_s": round(ep_time, 1),
               "temperature": 1 / model.logit_scale.exp().item()}
        if (epoch + 1) % args.eval_every == 0 or epoch + 1 == hp["epochs"]:
            t_ev = time.time()
            rec["val"] = evaluate_from_cache(model, tuned_grid(model, va_feats), va_ids, va_mask, device)
            rec["eval_s"] = round(time.time() - t_ev, 1)
        history.append(rec)
        log(f"epoch {epoch + 1}/{hp['epochs']} loss {rec['loss']:.4f} time {ep_time:.0f}s"
            + (f" | val {fmt(rec['val'])}" if "val" in rec else ""))
        finished = epoch + 1 == hp["epochs"]
        save_checkpoint(ckpt_path, {
            "model": model.state_dict(), "optimizer": opt.state_dict(), "rng": rng_state(),
            "epoch": epoch + 1, "history": history, "hp": hp, "views": views, "seed": args.seed,
            "model_config": model.config, "adapters": model.has_adapters(), "stage": args.stage,
            "trainable_params": n_train, "total_params": n_total, "command": cmd, "finished": finished,
        })
    with open(out / "summary.json", "w", encoding="utf-8") as fh:
        json.dump({"stage": args.stage, "trainable_params": n_train, "total_params": n_total, "hp": hp,
                   "views": views, "command": cmd, "history": history, "device": str(device)}, fh, indent=1)
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
