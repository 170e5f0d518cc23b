"""Stage 1b: adapt the MobileNetV2 backbone to aerial images, from pixels.

    /usr/bin/python3 -m models.retrieval.finetune --init models/runs/r4v-s0 --run-dir models/runs/ft-s0

Starts from a finished stage-1 run (`--init`: its trained image head and text tower) and trains a
copy of the backbone's `features[CUT:]` (`--tune-cut`, default 7: the 14x14 and 7x7 stages) together with the head and the text tower, contrastively (the stage-1 loss), on the
RSICD train JPEGs with pixel augmentation: a random dihedral view, a random resized crop and a
mild brightness/contrast jitter per image and step. `features[:CUT]` stays the frozen ImageNet
stem, and the frozen `features[CUT:]` still gives the exported `grid` (what the captioning model
was trained on), so the image tower runs the stem once and the top of the network twice.

At step 0 the model is exactly the `--init` model: the copy starts at the frozen weights, or at the
init's own tuned blocks when the init already fine-tuned features[c:] with c >= CUT (for example a
shipped member rebuilt by models.retrieval.import_onnx; training then continues from it).
Seeded; one checkpoint per epoch in RUN/stage1/last.pt (atomic), resumed automatically; logs to
RUN/stage1/train.log. Val (RSICD val, never trained on) is embedded from the JPEGs in the views
of `--val-views`, as the app does with the manifest's testTimeViews. CPU threads: RSLENS_THREADS
(default 2; 1 each when two runs share the 2 cores).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from pathlib import Path
from typing import List

import torch
import torch.nn.functional as F

from ..rslens import paths
from ..rslens.data import load_images_uint8, read_split
from ..rslens.utils import count_params, get_device, load_checkpoint, log_to_file, rng_state, save_checkpoint, seed_everything
from .evaluate import embed_image_views_from_pixels, embed_texts, fmt, recall_metrics
from .features import VIEWS, apply_view
from .losses import info_nce, info_nce_multi
from .model import RetrievalModel
from .train import optimizer_step, param_groups, restore, stage_dir, tokenize_split, warmup_cosine
from .vocab import load_tokenizer


def augment(batch_u8: torch.Tensor, gen: torch.Generator, min_scale: float = 0.6, jitter: float = 0.15) -> torch.Tensor:
    """uint8 [B,3,224,224] -> float RGB in [0,1]: random dihedral view, random resized crop (area
    fraction min_scale..1, aspect 3/4..4/3, bilinear back to 224), brightness/contrast x(1 +- jitter)."""
    b, _, h, w = batch_u8.shape
    x = batch_u8.float() / 255.0
    views = torch.randint(len(VIEWS), (b,), generator=gen)
    x = torch.stack([apply_view(x[i], VIEWS[int(views[i])]) for i in range(b)])
    area = min_scale + (1 - min_scale) * torch.rand(b, generator=gen)
    aspect = torch.exp((torch.rand(b, generator=gen) - 0.5) * 2 * math.log(4 / 3))
    out = torch.empty_like(x)
    for i in range(b):
        ch = min(h, max(16, int(round(h * math.sqrt(float(area[i]) / float(aspect[i]))))))
        cw = min(w, max(16, int(round(w * math.sqrt(float(area[i]) * float(aspect[i]))))))
        r = int(torch.randint(0, h - ch + 1, (1,), generator=gen))
        c = int(torch.randint(0, w - cw + 1, (1,), generator=gen))
        crop = x[i:i + 1, :, r:r + ch, c:c + cw]
        out[i] = crop[0] if (ch, cw) == (h, w) else F.interpolate(crop, (h, w), mode="bilinear", align_corners=False)[0]
    bright = 1 + (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1) * jitter
    contrast = 1 + (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1) * jitter
    mean = out.mean((1, 2, 3), keepdim=True)
    return ((out - mean) * contrast + mean * bright).clamp(0, 1)


# The 8 dihedral views as 2x2 matrices acting on normalised (x, y) sampling coordinates.
DIHEDRAL = torch.tensor([[[1, 0], [0, 1]], [[-1, 0], [0, 1]], [[1, 0], [0, -1]], [[-1, 0], [0, -1]],
                         [[0, 1], [1, 0]], [[0, -1], [1, 0]], [[0, 1], [-1, 0]], [[0, -1], [-1, 0]]], dtype=torch.float32)


def augment_batched(batch_u8: torch.Tensor, gen: torch.Generator, min_scale: float = 0.6, jitter: float = 0.15) -> torch.Tensor:
    """The distribution of `augment` (dihedral view, random resized crop, brightness/contrast), drawn as
    one affine resampling of the whole batch on the batch's own device: no per-image Python loop, so a
    GPU is not left waiting on the CPU. Crop sides are not rounded to whole pixels, and a crop that
    covers the image is resampled too (exact for the dihedral part: sample points fall on pixel centres),
    and a crop's border pixels blend in the image pixels just outside it (interpolating the cut-out crop
    repeats its own edge instead)."""
    b, _, h, w = batch_u8.shape
    dev = batch_u8.device
    x = batch_u8.float() / 255.0
    view = torch.randint(len(DIHEDRAL), (b,), generator=gen)
    area = min_scale + (1 - min_scale) * torch.rand(b, generator=gen)
    aspect = torch.exp((torch.rand(b, generator=gen) - 0.5) * 2 * math.log(4 / 3))
    sh = torch.sqrt(area / aspect).clamp(16 / h, 1.0)  # crop side as a fraction of the image
    sw = torch.sqrt(area * aspect).clamp(16 / w, 1.0)
    cy = (torch.rand(b, generator=gen) * 2 - 1) * (1 - sh)  # crop centre, normalised to [-1, 1]
    cx = (torch.rand(b, generator=gen) * 2 - 1) * (1 - sw)
    theta = torch.zeros(b, 2, 3)
    theta[:, :, :2] = torch.diag_embed(torch.stack([sw, sh], 1)) @ DIHEDRAL[view]
    theta[:, 0, 2], theta[:, 1, 2] = cx, cy
    grid = F.affine_grid(theta.to(dev), [b, 3, h, w], align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    bright = (1 + (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1) * jitter).to(dev)
    contrast = (1 + (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1) * jitter).to(dev)
    mean = out.mean((1, 2, 3), keepdim=True)
    return ((out - mean) * contrast + mean * bright).clamp(0, 1)


def val_report(model, val_pixels, ids, mask, views: List[str], device) -> dict:
    ie = embed_image_views_from_pixels(model, val_pixels, views, device)
    te = embed_texts(model, ids, mask, device)
    res = {"id": recall_metrics((ie[0] @ te.t()).numpy())}
    if len(views) > 1:
        res[f"tta {len(views)}"] = recall_metrics((F.normalize(ie.mean(0), dim=-1) @ te.t()).numpy())
    return res


def model_from_init(init_ckpt: dict, tune_cut: int) -> RetrievalModel:
    """The --init model with a trainable copy of features[tune_cut:]. An init with a frozen backbone
    gets the copy fresh from the backbone; an init that already fine-tuned features[c:] (c >= tune_cut,
    e.g. a member rebuilt by import_onnx) keeps its tuned blocks, and features[tune_cut:c] join the copy
    from the frozen backbone."""
    cfg = dict(init_ckpt["model_config"])
    if init_ckpt.get("adapters"):
        raise ValueError("--init must be a stage-1 run (no adapters)")
    init_cut = cfg.pop("tune_cut", None)
    if init_cut is not None and init_cut < tune_cut:
        raise ValueError(f"--init fine-tuned features[{init_cut}:]; --tune-cut must be <= {init_cut}")
    vocab = cfg.pop("vocab_size")
    model = RetrievalModel(vocab, str(paths.mobilenet_tflite()), tune_cut=tune_cut, **cfg)
    # the tuned copy keeps the backbone's indices (image.tuned.7... is features[7]): what the init lacks
    # is the part of the copy that the init kept frozen, deep-copied from the (TFLite) backbone
    missing, unexpected = model.load_state_dict(init_ckpt["model"], strict=False)
    new_blocks = {f"image.tuned.{i}." for i in range(tune_cut, init_cut or 19)}
    assert not unexpected and all(k.startswith(tuple(new_blocks)) for k in missing), (missing, unexpected)
    for k, v in init_ckpt["model"].items():
        if k.startswith("image.stem."):
            assert torch.equal(model.state_dict()[k], v), k
    return model


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--init", required=True, help="finished stage-1 run folder to start from")
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--tune-cut", type=int, default=7, help="fine-tune features[CUT:] (1..18)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-4, help="image head and text tower")
    ap.add_argument("--lr-backbone", type=float, default=5e-5)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--warmup-epochs", type=float, default=0.3)
    ap.add_argument("--min-scale", type=float, default=0.6, help="random resized crop: smallest area fraction")
    ap.add_argument("--jitter", type=float, default=0.15, help="brightness/contrast factor range 1 +- J")
    ap.add_argument("--captions-per-image", type=int, default=1, choices=range(1, 6), metavar="K",
                    help="distinct captions of each image per step (1..5); K = 3 trains ~1.4x slower per "
                         "epoch on the CPU and measured no gain at 2 views (model card, session 9)")
    ap.add_argument("--augment", choices=("loop", "batched"), default="loop",
                    help="loop: per-image crops (the recipe of every shipped member); batched: the same "
                         "distribution as one resampling per batch on the training device (for a GPU)")
    ap.add_argument("--time-budget-min", type=float, default=None,
                    help="after epoch 1, set the number of epochs (and the cosine schedule) so that training "
                         "ends within this many minutes; the chosen number is logged and saved in hp")
    ap.add_argument("--weights-out", default=None,
                    help="at the end, also write the trained weights alone (float16, without the frozen "
                         "ImageNet backbone) to this file; models.retrieval.device_job unpack turns it back into a run")
    ap.add_argument("--val-views", default="id,hflip,vflip,rot90")
    ap.add_argument("--checkpoint-every", type=int, default=1, help="save the resumable checkpoint every N epochs (and at the end)")
    ap.add_argument("--eval-every", type=int, default=1, help="val report every N epochs and at the end; 0: never")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None)
    ap.add_argument("--limit-steps", type=int, default=None, help="debug: at most N steps per epoch")
    ap.add_argument("--limit-train", type=int, default=None, help="debug: first N train images only")
    ap.add_argument("--limit-val", type=int, default=None, help="debug: first N val images only")
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--no-init-eval", action="store_true",
                    help="skip the val report of the init model (it equals the init run's own report)")
    args = ap.parse_args(argv)
    out = stage_dir(1, args.run_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = log_to_file(out / "train.log")
    device = get_device(args.device)
    seed_everything(args.seed)
    cmd = "/usr/bin/python3 -m models.retrieval.finetune " + " ".join(argv if argv is not None else sys.argv[1:])
    log(f"stage 1b (backbone fine-tune from pixels) on {device}, {torch.get_num_threads()} threads; cmd: {cmd}")

    init = load_checkpoint(stage_dir(1, args.init) / "last.pt")
    if init is None or not init.get("finished"):
        log(f"--init {args.init}: no finished stage-1 checkpoint")
        return 1
    model = model_from_init(init, args.tune_cut).to(device)
    nhwc = device.type == "cpu" or args.augment == "batched"  # oneDNN's (and cuDNN's) depthwise convolutions are faster in NHWC
    if nhwc:
        model.image.stem.to(memory_format=torch.channels_last)
        model.image.tuned.to(memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes
    for p in model.parameters():
        p.requires_grad_(False)
    for mod in (model.image.tuned, model.image.ln, model.image.fc1, model.image.fc2, model.image.skip, model.text):
        for p in mod.parameters():
            p.requires_grad_(True)
    model.logit_scale.requires_grad_(True)
    n_train, n_total = count_params(model), count_params(model, trainable_only=False)
    log(f"trainable parameters: {n_train:,} of {n_total:,} (tuned features[{args.tune_cut}:] "
        f"{count_params(model.image.tuned):,})")

    tok = load_tokenizer()
    train_items, val_items = read_split("train"), read_split("val")
    if args.eval_every <= 0:  # no val report at all (e.g. on a machine that holds only the train images)
        val_items, args.no_init_eval = [], True
    if args.limit_val:
        val_items = val_items[:args.limit_val]
    if args.limit_train:
        train_items = train_items[:args.limit_train]
    tr_ids, tr_mask = tokenize_split(train_items, tok.max_length)
    tr_ids, tr_mask = tr_ids.view(len(train_items), 5, -1), tr_mask.view(len(train_items), 5, -1)
    va_ids, va_mask = tokenize_split(val_items, tok.max_length) if val_items else (None, None)
    t0 = time.time()
    train_px, val_px = load_images_uint8(train_items), load_images_uint8(val_items) if val_items else None
    log(f"decoded {len(train_px)} train and {len(val_items)} val images in {time.time() - t0:.1f}s")
    val_views = args.val_views.split(",")
    batched = args.augment == "batched"
    if batched:  # crops are drawn where the model runs (1.3 GB of uint8 pixels for RSICD train)
        train_px = train_px.to(device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()

    opt = torch.optim.AdamW(param_groups(model, args.lr, args.lr, args.wd, args.lr_backbone), betas=(0.9, 0.98))
    steps_per_epoch = len(train_items) // args.batch
    if args.limit_steps:
        steps_per_epoch = min(steps_per_epoch, args.limit_steps)
    total, warm = steps_per_epoch * args.epochs, int(args.warmup_epochs * steps_per_epoch)

    ckpt_path = out / "last.pt"
    ck = None if args.fresh else load_checkpoint(ckpt_path)
    start_epoch, history = 0, []
    if ck is not None:
        start_epoch, history = restore(ck, model, opt)
        log(f"resumed at epoch {start_epoch}")
        if ck.get("finished"):
            log("already finished")
            return 0
    elif not args.no_init_eval:
        init_val = val_report(model, val_px, va_ids, va_mask, val_views, device)
        log(f"init model val: " + " | ".join(f"{k}: {fmt(v)}" for k, v in init_val.items()))
        history.append({"epoch": 0, "val": init_val})

    gen = torch.Generator().manual_seed(args.seed)
    if ck is not None and ck.get("hp", {}).get("time_budget_min"):
        args.epochs = ck["hp"]["epochs"]  # the number chosen after epoch 1 of the interrupted run
        total = steps_per_epoch * args.epochs
    epoch = start_epoch
    while epoch < args.epochs:
        model.train()
        gen.manual_seed(args.seed * 1000 + epoch)
        perm = torch.randperm(len(train_items), generator=gen)
        cap_idx = torch.randint(5, (len(train_items),), generator=gen)
        if args.captions_per_image > 1:  # K distinct captions per image (K = 1 keeps the old draw)
            cap_idx = torch.argsort(torch.rand(len(train_items), 5, generator=gen), dim=1)[:, :args.captions_per_image]
        t_ep, tot, tot_n = time.time(), 0.0, 0
        for s in range(steps_per_epoch):
            f = warmup_cosine(epoch * steps_per_epoch + s, warm, total)
            for g in opt.param_groups:
                g["lr"] = g["base_lr"] * f
            b = perm[s * args.batch:(s + 1) * args.batch]
            x = (augment_batched(train_px[b.to(train_px.device)], gen, args.min_scale, args.jitter) if batched
                 else augment(train_px[b], gen, args.min_scale, args.jitter)).to(device)
            if nhwc:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast:
                grid = model.image.tuned_grid(x)  # the frozen stem below the cut takes no gradient
            rows, cols = b[:, None], cap_idx[b].view(len(b), -1)
            ids, mask = tr_ids[rows, cols].flatten(0, 1), tr_mask[rows, cols].flatten(0, 1)  # [B*K, L], by image
            L = int(mask.sum(1).max())
            ids, mask = ids[:, :L].to(device), mask[:, :L].to(device)
            same = (ids[:, None, :] == ids[None, :, :]).all(-1)
            same.fill_diagonal_(False)
            with autocast:
                ie, _ = model.encode_image_from_stem(grid.contiguous())
                te = model.encode_text(ids, mask)
            ie, te = ie.float(), te.float()
            loss = info_nce(ie, te, model.logit_scale, same) if args.captions_per_image == 1 \
                else info_nce_multi(ie, te, model.logit_scale, same)
            optimizer_step(model, opt, loss)
            tot += float(loss) * len(b)
            tot_n += len(b)
            if s % 10 == 0:
                el = time.time() - t_ep
                log(f"  ep {epoch + 1} step {s}/{steps_per_epoch} loss {float(loss):.4f} lr x{f:.3f} "
                    f"{(s + 1) * args.batch / max(el, 1e-6):.1f} img/s")
        rec = {"epoch": epoch + 1, "loss": tot / tot_n, "epoch_s": round(time.time() - t_ep, 1),
               "temperature": 1 / model.logit_scale.exp().item()}
        if args.time_budget_min and epoch == 0:
            args.epochs = max(1, int(args.time_budget_min * 60 // rec["epoch_s"]))
            total = steps_per_epoch * args.epochs
            log(f"time budget {args.time_budget_min} min at {rec['epoch_s']:.0f} s per epoch: {args.epochs} epochs")
        finished = epoch + 1 == args.epochs
        if args.eval_every > 0 and ((epoch + 1) % args.eval_every == 0 or finished):
            t_ev = time.time()
            rec["val"] = val_report(model, val_px, va_ids, va_mask, val_views, device)
            rec["eval_s"] = round(time.time() - t_ev, 1)
        history.append(rec)
        log(f"epoch {epoch + 1}/{args.epochs} loss {rec['loss']:.4f} time {rec['epoch_s']:.0f}s"
            + ("".join(f" | val {k}: {fmt(v)}" for k, v in rec["val"].items()) if "val" in rec else ""))
        if (epoch + 1) % args.checkpoint_every == 0 or finished:
            save_checkpoint(ckpt_path, {
                "model": model.state_dict(), "optimizer": opt.state_dict(), "rng": rng_state(), "epoch": epoch + 1,
                "history": history, "hp": vars(args), "views": "all 8 dihedral views + crop + jitter, from pixels",
                "seed": args.seed, "model_config": model.config, "adapters": False, "stage": 1,
                "trainable_params": n_train, "total_params": n_total, "command": cmd, "finished": finished,
                "init": {"run": Path(args.init).name, "command": init.get("command")},
            })
        epoch += 1
    if args.weights_out:
        from .device_job import save_trained_weights
        save_trained_weights(model, Path(args.weights_out), {"command": cmd, "history": history, "hp": vars(args),
                                                             "init_command": init.get("command"),
                                                             "init_run": Path(args.init).name}, init["model"])
        log(f"trained weights alone: {args.weights_out}")
    with open(out / "summary.json", "w", encoding="utf-8") as fh:
        json.dump({"stage": "1b", "trainable_params": n_train, "total_params": n_total, "hp": vars(args),
                   "command": cmd, "init_command": init.get("command"), "history": history,
                   "device": str(device)}, fh, indent=1)
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
